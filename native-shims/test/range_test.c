/* Unit test of the C core's mapping ranges (no Node, no V8): build with
 *   cc -std=gnu11 -O1 -o range_test native-shims/test/range_test.c native-shims/src/pmem_core.c -lpthread
 * Prints one "ok N - ..." / "not ok N - ..." line per check (TAP) and exits 1 on any failure. */
#define _GNU_SOURCE
#include "../src/pmem_core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int n, failed;
static void ok(int cond, const char *what) {
  n++;
  if (!cond) failed++;
  printf("%sok %d - %s\n", cond ? "" : "not ", n, what);
}

int main(void) {
  size_t ps = (size_t)sysconf(_SC_PAGESIZE);
  /* A "device": 8 pages of a memory file, page i filled with byte 'A'+i. */
  size_t devLen = 8 * ps;
  int fd = pm_memfd(devLen);
  ok(fd >= 0, "pm_memfd gives a descriptor");
  unsigned char *dev = mmap(NULL, devLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ok(dev != MAP_FAILED, "the device maps");
  for (size_t i = 0; i < 8; i++) memset(dev + i * ps, 'A' + (int)i, ps);

  size_t before = pm_range_count();
  pm_range *r = pm_range_reserve(4 * ps);
  ok(r != NULL, "reserve 4 pages");
  ok(pm_range_count() == before + 1, "the range is registered");
  ok(pm_range_get(r->id) == r, "found by id");
  pm_range_unref(r);
  unsigned char *a = (unsigned char *)r->addr;
  ok(a[0] == 0 && a[4 * ps - 1] == 0, "unfaulted pages read zero (never PROT_NONE)");
  a[5] = 1; /* writable: a store to an unfaulted page does not kill the process */

  /* Map device pages 5,6 at range pages 0,1 and device page 2 at range page 3: discontiguous runs. */
  ok(pm_range_map(r, 0, 2 * ps, fd, 5 * ps, PM_RUN_SHARED) == 0, "map a run of two pages");
  ok(pm_range_map(r, 3 * ps, ps, fd, 2 * ps, PM_RUN_SYNC) == 0, "map one page (MAP_SYNC falls back on a memfd)");
  ok(a[0] == 'F' && a[ps] == 'G' && a[3 * ps] == 'C', "each run at its place");
  a[ps + 7] = 'x';
  ok(dev[6 * ps + 7] == 'x', "a store through the range is a store to the device page");
  dev[2 * ps] = 'y';
  ok(a[3 * ps] == 'y', "and the other way round");

  /* Zap run 0-1 to guard pages. */
  ok(pm_range_guard(r, 0, 2 * ps) == 0, "guard two pages");
  uint32_t w;
  memcpy(&w, a + 8, 4);
  ok(w == PM_CANARY, "a guard page reads the canary");
  ok(pm_range_check(r, 0, 2 * ps) == -1, "untouched guard pages hold the canary");
  a[ps + 7] = 'z'; /* a stale store */
  ok(dev[6 * ps + 7] == 'x', "a store through a guard page does not reach the device");
  ok(pm_range_check(r, 0, 2 * ps) == (int64_t)(ps + 7), "pm_range_check finds the stale store");
  ok(pm_range_check(r, 0, ps) == -1, "and only where it is");

  /* Hole of a read-only mapping: zero pages over a guard. */
  ok(pm_range_zero(r, ps, ps) == 0, "zero a page");
  ok(a[ps + 7] == 0, "zero pages read zero");

  /* A later fault maps the live page back. */
  ok(pm_range_map(r, 0, ps, fd, 7 * ps, PM_RUN_SHARED) == 0, "map again");
  ok(a[0] == 'H', "the live page is back");

  /* Bad input. */
  ok(pm_range_map(r, 1, ps, fd, 0, PM_RUN_SHARED) == EINVAL, "unaligned offset: EINVAL");
  ok(pm_range_map(r, 3 * ps, 2 * ps, fd, 0, PM_RUN_SHARED) == EINVAL, "past the range: EINVAL");
  ok(pm_range_guard(r, 0, 0) == EINVAL, "empty run: EINVAL");
  ok(pm_range_check(r, 4 * ps, ps) == -2, "check outside: -2");
  errno = 0;
  ok(pm_range_reserve(PM_RANGE_MAX + ps) == NULL && errno == ENOMEM, "larger than PM_RANGE_MAX: ENOMEM");
  ok(pm_range_reserve(ps + 1) == NULL && errno == EINVAL, "not whole pages: EINVAL");

  uint64_t id = r->id;
  pm_range_ref(r);
  pm_range_unref(r);
  ok(pm_range_get(id) == r, "still there while referenced");
  pm_range_unref(r);
  pm_range_unref(r); /* the last reference */
  ok(pm_range_get(id) == NULL, "gone after the last reference");
  ok(pm_range_count() == before, "unregistered");
  ok(dev[6 * ps + 7] == 'x' && dev[5 * ps] == 'F', "the device kept its bytes");
  printf("1..%d\n", n);
  return failed ? 1 : 0;
}
