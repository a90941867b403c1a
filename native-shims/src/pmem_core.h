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
} pm_mapping;

/* Map `length` bytes of fd MAP_SHARED. Tries MAP_SHARED_VALIDATE|MAP_SYNC
 * first when try_sync; *sync_errno gets the errno of that attempt (0 if it
 * held). Returns NULL and sets errno on failure. fd < 0 maps anonymous
 * shared memory. */
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

#ifdef __cplusplus
}
#endif
#endif
