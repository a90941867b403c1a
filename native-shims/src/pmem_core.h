/* pmemu native core: mappings, cache flushes, MAP_SYNC probe. Plain C, no
 * Node or V8 headers, so it can be read (and tested) apart from the glue. */
#ifndef PMEMU_CORE_H
#define PMEMU_CORE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { PM_FLUSH_NONE = 0, PM_FLUSH_MSYNC = 1, PM_FLUSH_CLFLUSHOPT = 2, PM_FLUSH_CLWB = 3 } pm_flush_kind;

/* One mapping shared by several SharedArrayBuffers (windows). The last
 * window's deleter to drop its reference unmaps it. */
typedef struct pm_mapping {
  void *addr;
  size_t length;
  int refs; /* updated with __atomic builtins */
  int map_sync; /* MAP_SYNC held */
  int fd; /* the memory backend's memfd (closed with the mapping), else -1 */
} pm_mapping;

/* Map `length` bytes of fd MAP_SHARED. Tries MAP_SHARED_VALIDATE|MAP_SYNC
 * first when try_sync; *sync_errno gets the errno of that attempt (0 if it
 * held). Returns NULL and sets errno on failure. fd < 0 maps anonymous
 * shared memory: a memfd when the kernel has memfd_create (m->fd keeps it,
 * so mapping ranges can map its pages), else MAP_ANONYMOUS (m->fd = -1). */
pm_mapping *pm_map(int fd, size_t length, int read_only, int try_sync, int *sync_errno);
/* Take / drop a reference; dropping the last unmaps and frees. */
void pm_mapping_ref(pm_mapping *m);
void pm_mapping_unref(pm_mapping *m);

/* The CPU's best flush instruction (cpuid), or PM_FLUSH_NONE. */
pm_flush_kind pm_cpu_flush(void);
const char *pm_flush_name(pm_flush_kind k);
/* Make [addr, addr+len) durable with kind k. Returns 0 or an errno. */
int pm_persist(pm_flush_kind k, void *addr, size_t len);

/* Copy len bytes from src to dst (libc memcpy; memmove when the ranges
 * overlap, e.g. a DMA buffer that is itself a view of the region). */
void pm_copy(void *dst, const void *src, size_t len);

/* Length of the prefix of words[0..count) equal to first, first+1, …, each
 * read with a seq-cst atomic load (the DMA gup-fast re-check of a run of
 * ptes: every pte is read after the pin, as a JS Atomics.load would). */
size_t pm_count_sequence(const int32_t *words, int32_t first, size_t count);


/* ---- per-mapping address ranges (one virtual range per DAX mapping) ----
 * A range is address space reserved for one mapping, PROT_READ|PROT_WRITE
 * everywhere (never PROT_NONE: a JavaScript access there would kill the
 * process). Unfaulted pages are private anonymous zero pages; a run of device
 * pages is mapped in at its place (MAP_FIXED|MAP_SHARED from the device fd);
 * a zap replaces a run with guard pages: private copies of a canary page, so
 * a stale store lands in process-private memory, where pm_range_check finds
 * it. Ranges are registered by id so the glue can reach them from any thread
 * without handing raw pointers to JavaScript. */

/* The canary: every guard page is this 4-byte word (little endian), repeated. */
#define PM_CANARY 0xefbeaddeu /* bytes de ad be ef */
/* The largest range pm_range_reserve accepts (16 TiB of address space). */
#define PM_RANGE_MAX ((size_t)1 << 44)

typedef enum { PM_RUN_SHARED = 0, PM_RUN_PRIVATE = 1, PM_RUN_SYNC = 2 } pm_run_mode;

typedef struct pm_range {
  void *addr;
  size_t length;
  int refs;           /* updated under the registry lock */
  uint64_t id;
  struct pm_range *next;
} pm_range;

/* Reserve `length` bytes (a multiple of the system page size, at most
 * PM_RANGE_MAX) of private anonymous zero pages, registered under a new id.
 * One reference, the caller's. NULL and errno (EINVAL, ENOMEM) on failure. */
pm_range *pm_range_reserve(size_t length);
/* The range with this id, with a reference taken; NULL if it is gone. */
pm_range *pm_range_get(uint64_t id);
void pm_range_ref(pm_range *r);
/* Drop a reference; the last one unregisters and unmaps the range. */
void pm_range_unref(pm_range *r);
/* Map [foff, foff+len) of fd at range offset off (MAP_FIXED). Offsets and
 * len page aligned, inside the range. PM_RUN_SYNC tries MAP_SYNC. 0 or errno. */
int pm_range_map(pm_range *r, size_t off, size_t len, int fd, uint64_t foff, pm_run_mode mode);
/* Replace [off, off+len) with guard pages (the canary). 0 or errno. */
int pm_range_guard(pm_range *r, size_t off, size_t len);
/* Replace [off, off+len) with private zero pages (a hole of a read-only mapping). 0 or errno. */
int pm_range_zero(pm_range *r, size_t off, size_t len);
/* Offset (from off) of the first byte of [off, off+len) that is not the
 * canary, or -1 when the whole run still holds it (or len is 0); -2 for a
 * run outside the range. Reads only: pages of
 * the canary are shared until written. */
int64_t pm_range_check(pm_range *r, size_t off, size_t len);
/* Live ranges (for tests of the deleter). */
size_t pm_range_count(void);

/* An anonymous memory file (memfd_create) of `length` bytes, for the memory
 * backend, so its pages can be mapped again into mapping ranges. -1 and errno. */
int pm_memfd(size_t length);

#ifdef __cplusplus
}
#endif
#endif
