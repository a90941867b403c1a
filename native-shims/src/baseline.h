/* C baselines of the refcount paths, timed in C, for the benchmarks: the same
 * operations the wasm/JS paths do, on the same side-table memory. */
#ifndef PMEMU_BASELINE_H
#define PMEMU_BASELINE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Monotonic nanoseconds. */
uint64_t pm_now_ns(void);
/* iters x (atomic +1 then atomic -1) on one word; returns elapsed ns. */
uint64_t pm_bench_get_put(int32_t *word, uint64_t iters);
/* iters x (atomic +delta then atomic -delta) on one word (pin+unpin with the bias). */
uint64_t pm_bench_pin_unpin(int32_t *word, int32_t delta, uint64_t iters);
/* A get+put (or pin+unpin) that crosses a 0<->1 edge each way: +delta on the
 * refcount word and +1 on a 64-bit pgmap counter, then both back: four locked
 * operations per iteration, as a per-page-pgmap model does on an idle page. */
uint64_t pm_bench_edge_pair(int32_t *word, int64_t *pgmap, int32_t delta, uint64_t iters);
/* One atomic add of delta on count words spaced stride bytes apart, then the
 * same with -delta (a pinRange + unpinRange sweep); returns elapsed ns. */
uint64_t pm_bench_sweep(char *base, size_t stride, size_t count, int32_t delta, uint64_t rounds);
/* Folio pin: +1 ref and +1 pincount on the head, then back; per iteration. */
uint64_t pm_bench_folio_pin(int32_t *ref, int32_t *pincount, uint64_t iters);
/* iters x pm_persist(kind, addr, len): flush (clwb / clflushopt / msync) and fence; returns elapsed ns. */
uint64_t pm_bench_persist(void *addr, size_t len, int kind, uint64_t iters);
/* memcpy of len bytes from src to dst, rounds times; returns elapsed ns. */
uint64_t pm_bench_memcpy(void *dst, const void *src, size_t len, uint64_t rounds);
#ifdef __cplusplus
}
#endif
#endif
