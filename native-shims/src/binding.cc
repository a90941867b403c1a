// V8 glue for the pmemu native core. Node-API cannot create a
// SharedArrayBuffer over external memory on Node 20, so this uses the V8 API:
// each window is a SharedArrayBuffer whose BackingStore points into one
// mapping; the deleter drops a reference and the last one unmaps, whichever
// thread's GC lets go last.
#include <node.h>
#include <v8.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <unistd.h>

extern "C" {
#include "baseline.h"
#include "pmem_core.h"
}

using v8::Array;
using v8::BackingStore;
using v8::Boolean;
using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

namespace {

void ThrowErrno(Isolate *iso, int err, const char *syscall, const char *msg = nullptr) {
  iso->ThrowException(node::ErrnoException(iso, err, syscall, msg));
}

void ThrowRange(Isolate *iso, const char *msg) {
  iso->ThrowException(Exception::RangeError(String::NewFromUtf8(iso, msg).ToLocalChecked()));
}

void WindowDeleter(void *data, size_t length, void *deleter_data) {
  (void)data;
  (void)length;
  pm_mapping_unref(static_cast<pm_mapping *>(deleter_data));
}

double NumArg(const FunctionCallbackInfo<Value> &a, int i) {
  Local<Context> ctx = a.GetIsolate()->GetCurrentContext();
  return a[i]->NumberValue(ctx).FromMaybe(-1);
}

// Build { sabs, mapSync, syncErrno } with one SAB per [offset, length] pair.
bool MakeWindows(Isolate *iso, pm_mapping *m, Local<Array> slices, int sync_errno, Local<Object> *out) {
  Local<Context> ctx = iso->GetCurrentContext();
  uint32_t n = slices->Length() / 2;
  Local<Array> sabs = Array::New(iso, n);
  for (uint32_t i = 0; i < n; i++) {
    double off = slices->Get(ctx, 2 * i).ToLocalChecked()->NumberValue(ctx).FromMaybe(-1);
    double len = slices->Get(ctx, 2 * i + 1).ToLocalChecked()->NumberValue(ctx).FromMaybe(-1);
    if (off < 0 || len <= 0 || off + len > (double)m->length) {
      ThrowRange(iso, "window outside the mapping");
      return false;
    }
    pm_mapping_ref(m);
    std::unique_ptr<BackingStore> bs = SharedArrayBuffer::NewBackingStore(
        static_cast<char *>(m->addr) + (size_t)off, (size_t)len, WindowDeleter, m);
    Local<SharedArrayBuffer> sab = SharedArrayBuffer::New(iso, std::shared_ptr<BackingStore>(std::move(bs)));
    sabs->Set(ctx, i, sab).Check();
  }
  Local<Object> o = Object::New(iso);
  o->Set(ctx, String::NewFromUtf8Literal(iso, "sabs"), sabs).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "mapSync"), Boolean::New(iso, m->map_sync != 0)).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "syncErrno"), Number::New(iso, sync_errno)).Check();
  *out = o;
  return true;
}

// mapFile(fd, length, readOnly, trySync, slices) -> { sabs, mapSync, syncErrno }
void MapFile(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  if (a.Length() < 5 || !a[4]->IsArray()) return ThrowRange(iso, "mapFile(fd, length, readOnly, trySync, slices)");
  int fd = (int)NumArg(a, 0);
  double length = NumArg(a, 1);
  if (length <= 0) return ThrowRange(iso, "mapping length must be positive");
  int sync_errno = 0;
  pm_mapping *m = pm_map(fd, (size_t)length, a[2]->BooleanValue(iso), a[3]->BooleanValue(iso), &sync_errno);
  if (!m) return ThrowErrno(iso, errno, "mmap");
  Local<Object> out;
  bool ok = MakeWindows(iso, m, a[4].As<Array>(), sync_errno, &out);
  pm_mapping_unref(m);  // the windows hold their own references now
  if (ok) a.GetReturnValue().Set(out);
}

// mapAnon(length, slices) -> { sabs, mapSync: false, syncErrno }
void MapAnon(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  if (a.Length() < 2 || !a[1]->IsArray()) return ThrowRange(iso, "mapAnon(length, slices)");
  double length = NumArg(a, 0);
  if (length <= 0) return ThrowRange(iso, "mapping length must be positive");
  int sync_errno = 0;
  pm_mapping *m = pm_map(-1, (size_t)length, 0, 0, &sync_errno);
  if (!m) return ThrowErrno(iso, errno, "mmap");
  Local<Object> out;
  bool ok = MakeWindows(iso, m, a[1].As<Array>(), EOPNOTSUPP, &out);
  if (ok) {
    // The memfd, duplicated: the caller owns (and closes) this descriptor, so
    // its number stays valid however long the windows live.
    int fd = m->fd >= 0 ? dup(m->fd) : -1;
    out->Set(iso->GetCurrentContext(), String::NewFromUtf8Literal(iso, "fd"), Number::New(iso, fd)).Check();
  }
  pm_mapping_unref(m);
  if (ok) a.GetReturnValue().Set(out);
}

char *SabData(Isolate *iso, Local<Value> v, double off, double len) {
  if (!v->IsSharedArrayBuffer()) {
    ThrowRange(iso, "expected a SharedArrayBuffer");
    return nullptr;
  }
  // Data()/ByteLength() rather than GetBackingStore(): no shared_ptr copy (two
  // locked refcount operations) on every persist and copy of the hot paths.
  Local<SharedArrayBuffer> sab = v.As<SharedArrayBuffer>();
  if (off < 0 || len < 0 || off + len > (double)sab->ByteLength()) {
    ThrowRange(iso, "range outside the buffer");
    return nullptr;
  }
  return static_cast<char *>(sab->Data()) + (size_t)off;
}

pm_flush_kind KindArg(Isolate *iso, Local<Value> v) {
  // the hot path passes the kind as a small integer (FLUSH_CODES in region.ts): no string compare per call
  if (v->IsInt32()) {
    int32_t k = v.As<v8::Int32>()->Value();
    return k == PM_FLUSH_CLWB || k == PM_FLUSH_CLFLUSHOPT || k == PM_FLUSH_MSYNC ? (pm_flush_kind)k : PM_FLUSH_NONE;
  }
  String::Utf8Value s(iso, v);
  const char *k = *s ? *s : "";
  if (!strcmp(k, "clwb")) return PM_FLUSH_CLWB;
  if (!strcmp(k, "clflushopt")) return PM_FLUSH_CLFLUSHOPT;
  if (!strcmp(k, "msync")) return PM_FLUSH_MSYNC;
  return PM_FLUSH_NONE;
}

// persist(sab, offset, length, kind)
void Persist(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  double off = NumArg(a, 1), len = NumArg(a, 2);
  char *p = SabData(iso, a[0], off, len);
  if (!p) return;
  int err = pm_persist(KindArg(iso, a[3]), p, (size_t)len);
  if (err) ThrowErrno(iso, err, "msync");
}

void CpuFlush(const FunctionCallbackInfo<Value> &a) {
  a.GetReturnValue().Set(String::NewFromUtf8(a.GetIsolate(), pm_flush_name(pm_cpu_flush())).ToLocalChecked());
}

// Baselines: each returns elapsed nanoseconds as a Number.
void BenchGetPut(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  char *p = SabData(iso, a[0], NumArg(a, 1), 4);
  if (!p) return;
  a.GetReturnValue().Set((double)pm_bench_get_put((int32_t *)p, (uint64_t)NumArg(a, 2)));
}

void BenchPinUnpin(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  char *p = SabData(iso, a[0], NumArg(a, 1), 4);
  if (!p) return;
  a.GetReturnValue().Set((double)pm_bench_pin_unpin((int32_t *)p, (int32_t)NumArg(a, 2), (uint64_t)NumArg(a, 3)));
}

// benchEdgePair(sab, refOffset, pgmapSab, pgmapOffset, delta, iters)
void BenchEdgePair(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  char *r = SabData(iso, a[0], NumArg(a, 1), 4);
  if (!r) return;
  double pgOff = NumArg(a, 3);
  if (((uint64_t)pgOff & 7) != 0) return ThrowRange(iso, "the pgmap counter must be 8-byte aligned");
  char *g = SabData(iso, a[2], pgOff, 8);
  if (!g) return;
  a.GetReturnValue().Set((double)pm_bench_edge_pair((int32_t *)r, (int64_t *)g, (int32_t)NumArg(a, 4), (uint64_t)NumArg(a, 5)));
}

// benchPersist(sab, offset, length, kind, iters)
void BenchPersist(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  double len = NumArg(a, 2);
  char *p = SabData(iso, a[0], NumArg(a, 1), len);
  if (!p) return;
  a.GetReturnValue().Set((double)pm_bench_persist(p, (size_t)len, (int)KindArg(iso, a[3]), (uint64_t)NumArg(a, 4)));
}

// benchSweep(sab, offset, stride, count, delta, rounds)
void BenchSweep(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  double stride = NumArg(a, 2), count = NumArg(a, 3);
  if (count < 1 || stride < 4) return ThrowRange(iso, "bad sweep");
  char *p = SabData(iso, a[0], NumArg(a, 1), stride * (count - 1) + 4);
  if (!p) return;
  a.GetReturnValue().Set((double)pm_bench_sweep(p, (size_t)stride, (size_t)count, (int32_t)NumArg(a, 4), (uint64_t)NumArg(a, 5)));
}

// benchFolioPin(sab, refOffset, pincountOffset, iters)
void BenchFolioPin(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  char *r = SabData(iso, a[0], NumArg(a, 1), 4);
  if (!r) return;
  char *p = SabData(iso, a[0], NumArg(a, 2), 4);
  if (!p) return;
  a.GetReturnValue().Set((double)pm_bench_folio_pin((int32_t *)r, (int32_t *)p, (uint64_t)NumArg(a, 3)));
}

// benchMemcpy(dstSab, dstOff, srcSab, srcOff, length, rounds)
void BenchMemcpy(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  double len = NumArg(a, 4);
  char *d = SabData(iso, a[0], NumArg(a, 1), len);
  if (!d) return;
  char *s = SabData(iso, a[2], NumArg(a, 3), len);
  if (!s) return;
  a.GetReturnValue().Set((double)pm_bench_memcpy(d, s, (size_t)len, (uint64_t)NumArg(a, 5)));
}

// copy(dstSab, dstOff, srcSab, srcOff, length) -> length. A plain memcpy between
// two SharedArrayBuffers (the DMA worker's copy: V8's TypedArray.set between
// shared buffers copies word by word, libc memcpy uses the wide moves).
// Offsets and length must be whole numbers with both ranges inside their
// buffers (RangeError otherwise); overlapping ranges are copied as memmove.
void Copy(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  if (a.Length() < 5) return ThrowRange(iso, "copy(dstSab, dstOff, srcSab, srcOff, length)");
  double doff = NumArg(a, 1), soff = NumArg(a, 3), len = NumArg(a, 4);
  if (!(doff >= 0 && soff >= 0 && len >= 0) || doff != std::floor(doff) || soff != std::floor(soff) || len != std::floor(len)) {
    return ThrowRange(iso, "copy: offsets and length must be non-negative whole numbers");
  }
  char *d = SabData(iso, a[0], doff, len);
  if (!d) return;
  char *s = SabData(iso, a[2], soff, len);
  if (!s) return;
  pm_copy(d, s, (size_t)len);
  a.GetReturnValue().Set(len);
}

// countSequence(sab, index, first, count) -> k: how many of the Int32 words
// [index, index+count) of sab are first, first+1, … (stops at the first that
// is not), each read with a seq-cst atomic load. The DMA worker's gup-fast
// scan and re-check of a run of ptes: JS Atomics.load costs ~10 ns a word on
// Node 20, this loop well under 1.
void CountSequence(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  if (a.Length() < 4) return ThrowRange(iso, "countSequence(sab, index, first, count)");
  double index = NumArg(a, 1), first = NumArg(a, 2), count = NumArg(a, 3);
  if (!(index >= 0 && count >= 0) || index != std::floor(index) || count != std::floor(count) ||
      first != std::floor(first) || first < -2147483648.0 || first > 2147483647.0) {
    return ThrowRange(iso, "countSequence: index and count must be non-negative whole numbers, first an int32");
  }
  char *p = SabData(iso, a[0], index * 4, count * 4);
  if (!p) return;
  if (((uintptr_t)p & 3) != 0) return ThrowRange(iso, "countSequence: buffer not 4-byte aligned");
  a.GetReturnValue().Set((double)pm_count_sequence((const int32_t *)p, (int32_t)first, (size_t)count));
}


// ---- per-mapping address ranges (pmem_core.h) ----------------------------------------------

void RangeDeleter(void *data, size_t length, void *deleter_data) {
  (void)data;
  (void)length;
  pm_range_unref(static_cast<pm_range *>(deleter_data));
}

Local<SharedArrayBuffer> RangeSab(Isolate *iso, pm_range *r, size_t off, size_t len) {
  pm_range_ref(r);
  std::unique_ptr<BackingStore> bs = SharedArrayBuffer::NewBackingStore(
      static_cast<char *>(r->addr) + off, len, RangeDeleter, r);
  return SharedArrayBuffer::New(iso, std::shared_ptr<BackingStore>(std::move(bs)));
}

bool WholeArg(const FunctionCallbackInfo<Value> &a, int i, double *out) {
  double v = NumArg(a, i);
  if (!(v >= 0) || v != std::floor(v) || v > 9007199254740991.0) return false;
  *out = v;
  return true;
}

// reserve(length, step, span) -> { id, sabs }: windows of `span` bytes every `step` bytes.
void Reserve(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  Local<Context> ctx = iso->GetCurrentContext();
  double length, step, span;
  if (a.Length() < 3 || !WholeArg(a, 0, &length) || !WholeArg(a, 1, &step) || !WholeArg(a, 2, &span) ||
      length <= 0 || step <= 0 || span < step) {
    return ThrowRange(iso, "reserve(length, step, span): whole numbers, span >= step > 0");
  }
  if (length > (double)PM_RANGE_MAX) return ThrowErrno(iso, ENOMEM, "mmap", "larger than the address space a mapping can reserve");
  pm_range *r = pm_range_reserve((size_t)length);
  if (!r) return ThrowErrno(iso, errno, "mmap");
  uint32_t n = (uint32_t)std::ceil(length / step);
  Local<Array> sabs = Array::New(iso, n);
  for (uint32_t i = 0; i < n; i++) {
    size_t off = (size_t)(i * step);
    size_t len = (size_t)std::fmin(span, length - (double)off);
    sabs->Set(ctx, i, RangeSab(iso, r, off, len)).Check();
  }
  Local<Object> o = Object::New(iso);
  o->Set(ctx, String::NewFromUtf8Literal(iso, "id"), Number::New(iso, (double)r->id)).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "sabs"), sabs).Check();
  pm_range_unref(r);  // the windows hold theirs
  a.GetReturnValue().Set(o);
}

// The range `id` (referenced) and a checked [off, off+len) of it, else a RangeError.
pm_range *RangeArgs(const FunctionCallbackInfo<Value> &a, size_t *off, size_t *len) {
  Isolate *iso = a.GetIsolate();
  double id, o, l;
  if (a.Length() < 3 || !WholeArg(a, 0, &id) || !WholeArg(a, 1, &o) || !WholeArg(a, 2, &l)) {
    ThrowRange(iso, "range call: (id, offset, length) as whole numbers");
    return nullptr;
  }
  pm_range *r = pm_range_get((uint64_t)id);
  if (!r) {
    ThrowErrno(iso, ENXIO, "range", "the address range is gone");
    return nullptr;
  }
  if (o + l > (double)r->length) {
    pm_range_unref(r);
    ThrowRange(iso, "range outside the reservation");
    return nullptr;
  }
  *off = (size_t)o;
  *len = (size_t)l;
  return r;
}

// rangeSpan(id, offset, length) -> SharedArrayBuffer over that part of the range.
void RangeSpan(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  size_t off, len;
  pm_range *r = RangeArgs(a, &off, &len);
  if (!r) return;
  a.GetReturnValue().Set(RangeSab(iso, r, off, len));
  pm_range_unref(r);
}

// rangeMap(id, offset, length, fd, fileOffset, mode 0 shared | 1 private | 2 sync)
void RangeMap(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  size_t off, len;
  double fd, foff, mode;
  if (a.Length() < 6 || !WholeArg(a, 3, &fd) || !WholeArg(a, 4, &foff) || !WholeArg(a, 5, &mode) || mode > 2) {
    return ThrowRange(iso, "rangeMap(id, offset, length, fd, fileOffset, mode)");
  }
  pm_range *r = RangeArgs(a, &off, &len);
  if (!r) return;
  int err = pm_range_map(r, off, len, (int)fd, (uint64_t)foff, (pm_run_mode)(int)mode);
  pm_range_unref(r);
  if (err) ThrowErrno(iso, err, "mmap");
}

void RangeGuard(const FunctionCallbackInfo<Value> &a) {
  size_t off, len;
  pm_range *r = RangeArgs(a, &off, &len);
  if (!r) return;
  int err = pm_range_guard(r, off, len);
  pm_range_unref(r);
  if (err) ThrowErrno(a.GetIsolate(), err, "mmap");
}

void RangeZero(const FunctionCallbackInfo<Value> &a) {
  size_t off, len;
  pm_range *r = RangeArgs(a, &off, &len);
  if (!r) return;
  int err = pm_range_zero(r, off, len);
  pm_range_unref(r);
  if (err) ThrowErrno(a.GetIsolate(), err, "mmap");
}

// rangeCheck(id, offset, length) -> -1 (all canary), the offset of the first other byte, or -2 (range gone)
void RangeCheck(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  double id;
  if (a.Length() >= 1 && WholeArg(a, 0, &id)) {
    pm_range *probe = pm_range_get((uint64_t)id);
    if (!probe) return a.GetReturnValue().Set(-2.0);
    pm_range_unref(probe);
  }
  size_t off, len;
  pm_range *r = RangeArgs(a, &off, &len);
  if (!r) return;
  int64_t k = pm_range_check(r, off, len);
  pm_range_unref(r);
  (void)iso;
  a.GetReturnValue().Set((double)k);
}

void RangeCount(const FunctionCallbackInfo<Value> &a) {
  a.GetReturnValue().Set((double)pm_range_count());
}

void RangeLimits(const FunctionCallbackInfo<Value> &a) {
  Isolate *iso = a.GetIsolate();
  Local<Context> ctx = iso->GetCurrentContext();
  Local<Object> o = Object::New(iso);
  o->Set(ctx, String::NewFromUtf8Literal(iso, "maxBytes"), Number::New(iso, (double)PM_RANGE_MAX)).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "canary"), Number::New(iso, (double)PM_CANARY)).Check();
  o->Set(ctx, String::NewFromUtf8Literal(iso, "pageSize"), Number::New(iso, (double)sysconf(_SC_PAGESIZE))).Check();
  a.GetReturnValue().Set(o);
}

}  // namespace

// Context-aware, so the addon loads in worker threads too.
NODE_MODULE_INIT(/* exports, module, context */) {
  NODE_SET_METHOD(exports, "mapFile", MapFile);
  NODE_SET_METHOD(exports, "mapAnon", MapAnon);
  NODE_SET_METHOD(exports, "persist", Persist);
  NODE_SET_METHOD(exports, "cpuFlush", CpuFlush);
  NODE_SET_METHOD(exports, "benchGetPut", BenchGetPut);
  NODE_SET_METHOD(exports, "benchPinUnpin", BenchPinUnpin);
  NODE_SET_METHOD(exports, "benchEdgePair", BenchEdgePair);
  NODE_SET_METHOD(exports, "benchSweep", BenchSweep);
  NODE_SET_METHOD(exports, "benchPersist", BenchPersist);
  NODE_SET_METHOD(exports, "benchFolioPin", BenchFolioPin);
  NODE_SET_METHOD(exports, "benchMemcpy", BenchMemcpy);
  NODE_SET_METHOD(exports, "copy", Copy);
  NODE_SET_METHOD(exports, "countSequence", CountSequence);
  NODE_SET_METHOD(exports, "reserve", Reserve);
  NODE_SET_METHOD(exports, "rangeSpan", RangeSpan);
  NODE_SET_METHOD(exports, "rangeMap", RangeMap);
  NODE_SET_METHOD(exports, "rangeGuard", RangeGuard);
  NODE_SET_METHOD(exports, "rangeZero", RangeZero);
  NODE_SET_METHOD(exports, "rangeCheck", RangeCheck);
  NODE_SET_METHOD(exports, "rangeCount", RangeCount);
  NODE_SET_METHOD(exports, "rangeLimits", RangeLimits);
}
