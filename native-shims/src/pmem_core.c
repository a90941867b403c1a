#define _GNU_SOURCE
#include "pmem_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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
  int memfd = -1;
  if (fd < 0) {
    /* The memory backend: a memfd, so mapping ranges can map its pages again. */
    memfd = pm_memfd(length);
    if (memfd >= 0) fd = memfd;
  }
  if (addr == MAP_FAILED) {
    int flags = fd < 0 ? (MAP_SHARED | MAP_ANONYMOUS) : read_only ? MAP_PRIVATE : MAP_SHARED;
    /* Large sparse regions: do not reserve swap for pages never touched. */
    flags |= MAP_NORESERVE;
    addr = mmap(NULL, length, prot, flags, fd, 0);
    if (addr == MAP_FAILED) { int e = errno; if (memfd >= 0) close(memfd); errno = e; return NULL; }
  }
  pm_mapping *m = (pm_mapping *)calloc(1, sizeof *m);
  if (!m) { int e = errno; munmap(addr, length); if (memfd >= 0) close(memfd); errno = e; return NULL; }
  m->fd = memfd;
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
    if (m->fd >= 0) close(m->fd);
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

/* ---- memory files ----------------------------------------------------------------------- */

int pm_memfd(size_t length) {
#ifdef SYS_memfd_create
  int fd = (int)syscall(SYS_memfd_create, "pmemu", 1u /* MFD_CLOEXEC */);
  if (fd < 0) return -1;
  if (ftruncate(fd, (off_t)length) != 0) { int e = errno; close(fd); errno = e; return -1; }
  return fd;
#else
  (void)length;
  errno = ENOSYS;
  return -1;
#endif
}

/* ---- per-mapping address ranges --------------------------------------------------------- */

/* The canary source: a memory file of CANARY_BYTES holding the pattern, mapped
 * MAP_PRIVATE over guard runs (its pages are shared until a stale store copies
 * one), and a read-only mapping of it to compare against. */
#define CANARY_BYTES ((size_t)4 << 20)
static pthread_once_t canary_once = PTHREAD_ONCE_INIT;
static int canary_fd = -1;
static const unsigned char *canary_bytes;

static void canary_init(void) {
  int fd = pm_memfd(CANARY_BYTES);
  unsigned char *buf = NULL;
  if (fd >= 0) {
    buf = (unsigned char *)mmap(NULL, CANARY_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (buf == MAP_FAILED) { close(fd); fd = -1; buf = NULL; }
  }
  if (!buf) {
    buf = (unsigned char *)mmap(NULL, CANARY_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return;
  }
  uint32_t w = PM_CANARY;
  for (size_t i = 0; i < CANARY_BYTES; i += 4) memcpy(buf + i, &w, 4);
  canary_fd = fd;
  canary_bytes = buf;
}

static pthread_mutex_t ranges_lock = PTHREAD_MUTEX_INITIALIZER;
static pm_range *ranges;
static uint64_t next_range_id = 1;
static size_t range_count;

static size_t sys_page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

pm_range *pm_range_reserve(size_t length) {
  size_t page = sys_page();
  if (length == 0 || length % page != 0) { errno = EINVAL; return NULL; }
  if (length > PM_RANGE_MAX) { errno = ENOMEM; return NULL; }
  void *addr = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) return NULL;
  pm_range *r = (pm_range *)calloc(1, sizeof *r);
  if (!r) { int e = errno; munmap(addr, length); errno = e; return NULL; }
  r->addr = addr;
  r->length = length;
  r->refs = 1;
  pthread_mutex_lock(&ranges_lock);
  r->id = next_range_id++;
  r->next = ranges;
  ranges = r;
  range_count++;
  pthread_mutex_unlock(&ranges_lock);
  return r;
}

pm_range *pm_range_get(uint64_t id) {
  pthread_mutex_lock(&ranges_lock);
  pm_range *r = ranges;
  while (r && r->id != id) r = r->next;
  if (r) r->refs++;
  pthread_mutex_unlock(&ranges_lock);
  return r;
}

void pm_range_ref(pm_range *r) {
  pthread_mutex_lock(&ranges_lock);
  r->refs++;
  pthread_mutex_unlock(&ranges_lock);
}

void pm_range_unref(pm_range *r) {
  pthread_mutex_lock(&ranges_lock);
  int last = --r->refs == 0;
  if (last) {
    pm_range **p = &ranges;
    while (*p && *p != r) p = &(*p)->next;
    if (*p) *p = r->next;
    range_count--;
  }
  pthread_mutex_unlock(&ranges_lock);
  if (last) {
    munmap(r->addr, r->length);
    free(r);
  }
}

size_t pm_range_count(void) {
  pthread_mutex_lock(&ranges_lock);
  size_t n = range_count;
  pthread_mutex_unlock(&ranges_lock);
  return n;
}

static int range_ok(pm_range *r, size_t off, size_t len) {
  size_t page = sys_page();
  return len > 0 && off % page == 0 && len % page == 0 && off <= r->length && len <= r->length - off;
}

/* A failed MAP_FIXED may leave the run unmapped: put private pages back so
 * no part of the range is ever without a mapping (an access would SIGSEGV). */
static void refill(char *at, size_t len) {
  mmap(at, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

int pm_range_map(pm_range *r, size_t off, size_t len, int fd, uint64_t foff, pm_run_mode mode) {
  if (!range_ok(r, off, len) || fd < 0 || foff % sys_page() != 0) return EINVAL;
  char *at = (char *)r->addr + off;
  int flags = mode == PM_RUN_PRIVATE ? MAP_PRIVATE : mode == PM_RUN_SYNC ? (MAP_SHARED_VALIDATE | MAP_SYNC) : MAP_SHARED;
  void *p = mmap(at, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, (off_t)foff);
  if (p == MAP_FAILED && mode == PM_RUN_SYNC && errno == EOPNOTSUPP) {
    p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, (off_t)foff);
  }
  if (p == MAP_FAILED) { int e = errno; refill(at, len); return e; }
  return 0;
}

int pm_range_guard(pm_range *r, size_t off, size_t len) {
  if (!range_ok(r, off, len)) return EINVAL;
  pthread_once(&canary_once, canary_init);
  if (!canary_bytes) return ENOMEM;
  char *at = (char *)r->addr + off;
  if (canary_fd < 0) {
    /* No memory files: private pages filled with the pattern (they cost memory). */
    if (mmap(at, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED) return errno;
    for (size_t done = 0; done < len; done += CANARY_BYTES) {
      size_t n = len - done < CANARY_BYTES ? len - done : CANARY_BYTES;
      memcpy(at + done, canary_bytes, n);
    }
    return 0;
  }
  for (size_t done = 0; done < len; done += CANARY_BYTES) {
    size_t n = len - done < CANARY_BYTES ? len - done : CANARY_BYTES;
    if (mmap(at + done, n, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_NORESERVE, canary_fd, 0) == MAP_FAILED) {
      int e = errno;
      refill(at + done, len - done);
      return e;
    }
  }
  return 0;
}

int pm_range_zero(pm_range *r, size_t off, size_t len) {
  if (!range_ok(r, off, len)) return EINVAL;
  char *at = (char *)r->addr + off;
  if (mmap(at, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED) return errno;
  return 0;
}

int64_t pm_range_check(pm_range *r, size_t off, size_t len) {
  if (len == 0 && off <= r->length) return -1;
  if (!range_ok(r, off, len)) return -2;
  pthread_once(&canary_once, canary_init);
  if (!canary_bytes) return -2;
  const unsigned char *at = (const unsigned char *)r->addr + off;
  for (size_t done = 0; done < len; done += CANARY_BYTES) {
    size_t n = len - done < CANARY_BYTES ? len - done : CANARY_BYTES;
    if (memcmp(at + done, canary_bytes, n) != 0) {
      for (size_t i = 0; i < n; i++) if (at[done + i] != canary_bytes[i]) return (int64_t)(done + i);
    }
  }
  return -1;
}
