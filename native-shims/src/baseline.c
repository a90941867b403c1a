#define _GNU_SOURCE
#include "baseline.h"
#include "pmem_core.h"
#include <string.h>
#include <time.h>

uint64_t pm_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t pm_bench_get_put(int32_t *word, uint64_t iters) {
  uint64_t t0 = pm_now_ns();
  for (uint64_t i = 0; i < iters; i++) {
    __atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(word, 1, __ATOMIC_SEQ_CST);
  }
  return pm_now_ns() - t0;
}

uint64_t pm_bench_pin_unpin(int32_t *word, int32_t delta, uint64_t iters) {
  uint64_t t0 = pm_now_ns();
  for (uint64_t i = 0; i < iters; i++) {
    __atomic_add_fetch(word, delta, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(word, delta, __ATOMIC_SEQ_CST);
  }
  return pm_now_ns() - t0;
}

uint64_t pm_bench_edge_pair(int32_t *word, int64_t *pgmap, int32_t delta, uint64_t iters) {
  uint64_t t0 = pm_now_ns();
  for (uint64_t i = 0; i < iters; i++) {
    __atomic_add_fetch(word, delta, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(pgmap, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(word, delta, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(pgmap, 1, __ATOMIC_SEQ_CST);
  }
  return pm_now_ns() - t0;
}

uint64_t pm_bench_sweep(char *base, size_t stride, size_t count, int32_t delta, uint64_t rounds) {
  uint64_t t0 = pm_now_ns();
  for (uint64_t r = 0; r < rounds; r++) {
    for (size_t i = 0; i < count; i++) __atomic_add_fetch((int32_t *)(base + i * stride), delta, __ATOMIC_SEQ_CST);
    for (size_t i = 0; i < count; i++) __atomic_sub_fetch((int32_t *)(base + i * stride), delta, __ATOMIC_SEQ_CST);
  }
  return pm_now_ns() - t0;
}

uint64_t pm_bench_folio_pin(int32_t *ref, int32_t *pincount, uint64_t iters) {
  uint64_t t0 = pm_now_ns();
  for (uint64_t i = 0; i < iters; i++) {
    __atomic_add_fetch(ref, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(pincount, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(pincount, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(ref, 1, __ATOMIC_SEQ_CST);
  }
  return pm_now_ns() - t0;
}

uint64_t pm_bench_memcpy(void *dst, const void *src, size_t len, uint64_t rounds) {
  uint64_t t0 = pm_now_ns();
  for (uint64_t r = 0; r < rounds; r++) {
    memcpy(dst, src, len);
    __asm__ __volatile__("" ::: "memory");
  }
  return pm_now_ns() - t0;
}

uint64_t pm_bench_persist(void *addr, size_t len, int kind, uint64_t iters) {
  uint64_t t0 = pm_now_ns();
  for (uint64_t i = 0; i < iters; i++) pm_persist((pm_flush_kind)kind, addr, len);
  return pm_now_ns() - t0;
}
