#define _GNU_SOURCE
#include "pmem_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define PM_X86 1
#endif

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

pm_mapping *pm_map(int fd, size_t length, int read_only, int try_sync, int *sync_errno) {
  /* Read-only devices are mapped private and writable: a stray store through a
   * JS view then lands in a private copy instead of killing the process with
   * SIGSEGV, and never reaches the file. */
  int prot = PROT_READ | PROT_WRITE;
  void *addr = MAP_FAILED;
  int held = 0;
  *sync_errno = 0;
  if (fd >= 0 && try_sync && !read_only) {
    addr = mmap(NULL, length, prot, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
    if (addr == MAP_FAILED) *sync_errno = errno; else held = 1;
  } else if (fd >= 0) {
    *sync_errno = EOPNOTSUPP;
  }
  if (addr == MAP_FAILED) {
    int flags = fd < 0 ? (MAP_SHARED | MAP_ANONYMOUS) : read_only ? MAP_PRIVATE : MAP_SHARED;
    /* Large sparse regions: do not reserve swap for pages never touched. */
    flags |= MAP_NORESERVE;
    addr = mmap(NULL, length, prot, flags, fd, 0);
    if (addr == MAP_FAILED) return NULL;
  }
  pm_mapping *m = (pm_mapping *)calloc(1, sizeof *m);
  if (!m) { int e = errno; munmap(addr, length); errno = e; return NULL; }
  m->addr = addr;
  m->length = length;
  m->refs = 1;
  m->map_sync = held;
  return m;
}

void pm_mapping_ref(pm_mapping *m) { __atomic_add_fetch(&m->refs, 1, __ATOMIC_ACQ_REL); }

void pm_mapping_unref(pm_mapping *m) {
  if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    munmap(m->addr, m->length);
    free(m);
  }
}

pm_flush_kind pm_cpu_flush(void) {
#ifdef PM_X86
  unsigned a, b, c, d;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    if (b & (1u << 24)) return PM_FLUSH_CLWB;
    if (b & (1u << 23)) return PM_FLUSH_CLFLUSHOPT;
  }
#endif
  return PM_FLUSH_NONE;
}

const char *pm_flush_name(pm_flush_kind k) {
  switch (k) {
    case PM_FLUSH_CLWB: return "clwb";
    case PM_FLUSH_CLFLUSHOPT: return "clflushopt";
    case PM_FLUSH_MSYNC: return "msync";
    default: return "none";
  }
}

#ifdef PM_X86
__attribute__((target("clwb"))) static void flush_clwb(char *p, char *end) {
  for (; p < end; p += 64) _mm_clwb(p);
  _mm_sfence();
}
__attribute__((target("clflushopt"))) static void flush_clflushopt(char *p, char *end) {
  for (; p < end; p += 64) _mm_clflushopt(p);
  _mm_sfence();
}
#endif

int pm_persist(pm_flush_kind k, void *addr, size_t len) {
  if (len == 0) return 0;
  uintptr_t start = (uintptr_t)addr;
  uintptr_t end = start + len;
  switch (k) {
#ifdef PM_X86
    case PM_FLUSH_CLWB:
      flush_clwb((char *)(start & ~(uintptr_t)63), (char *)end);
      return 0;
    case PM_FLUSH_CLFLUSHOPT:
      flush_clflushopt((char *)(start & ~(uintptr_t)63), (char *)end);
      return 0;
#endif
    case PM_FLUSH_MSYNC: {
      uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
      uintptr_t a = start & ~(page - 1);
      if (msync((void *)a, end - a, MS_SYNC) != 0) return errno;
      return 0;
    }
    default:
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
      return 0;
  }
}

void pm_copy(void *dst, const void *src, size_t len) {
  if (len == 0 || dst == src) return;
  uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
  if (d < s + len && s < d + len) memmove(dst, src, len);
  else memcpy(dst, src, len);
}

size_t pm_count_sequence(const int32_t *words, int32_t first, size_t count) {
  uint32_t want = (uint32_t)first;
  for (size_t k = 0; k < count; k++, want++) {
    if ((uint32_t)__atomic_load_n(&words[k], __ATOMIC_SEQ_CST) != want) return k;
  }
  return count;
}
