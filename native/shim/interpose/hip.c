/* HIP runtime interposition (ROCm). PyTorch on ROCm calls libamdhip64 through normal dynamic linking, so exporting the
 * runtime's symbols reaches it; lookups through dlsym are caught by interpose/dlsym.c. hipLaunchKernelGGL is an inline
 * template that ends in hipLaunchKernel, which is why that is the entry point to wrap. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "tailguard/hip_abi.h"
#include "wrap.h"

#define WRAP(sym, call_args, record_stmt) TG_WRAP(hipError_t, hipErrorNotInitialized, sym, call_args, record_stmt)
/* work submitted to stream s (a launch may be held), a wait on stream s (or everything), a blocking copy (both) */
#define IDENTIFIED_WORK(sym, s, launch) (ensure_identity(), tg_sched_work(TG_API_##sym, TG_KEY(sym, s), launch))
#define WRAP_WORK(sym, s, launch, call_args, record_stmt)                                                        \
    TG_WRAP_HOOKED(hipError_t, hipErrorNotInitialized, sym, IDENTIFIED_WORK(sym, s, launch),                    \
                   if (launch && res == hipSuccess) tg_budget_submitted(TG_API_##sym, TG_KEY(sym, s)), call_args, \
                   record_stmt)
#define WRAP_WAIT(sym, scope, s, call_args, record_stmt)                                                         \
    TG_WRAP_HOOKED(hipError_t, hipErrorNotInitialized, sym,                                                   \
                   (tg_gpu_time_sync(scope, TG_KEY(sym, s)), tg_sched_sync_enter()),                            \
                   tg_sched_sync_exit(scope, TG_KEY(sym, s), res == hipSuccess), call_args, record_stmt)
#define WRAP_BLOCKING(sym, call_args, record_stmt)                                                               \
    TG_WRAP_HOOKED(hipError_t, hipErrorNotInitialized, sym,                                                   \
                   (IDENTIFIED_WORK(sym, NULL, 0), tg_gpu_time_sync(TG_SYNC_ALL, 0), tg_sched_sync_enter()),    \
                   tg_sched_sync_exit(TG_SYNC_STREAM, TG_KEY(sym, NULL), res == hipSuccess), call_args, record_stmt)

static void *runtime_fn(const char *name) {
    void *p = tg_next_symbol(name);
    if (p) return p;
    static const char *const sonames[] = {"libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.7",
                                          "libamdhip64.so.5"};
    for (unsigned i = 0; i < sizeof sonames / sizeof *sonames && !p; i++) {
        void *h = dlopen(sonames[i], RTLD_NOLOAD | RTLD_LAZY);
        if (!h) continue;
        p = tg_real_dlsym(h, name);
        dlclose(h);
    }
    return p;
}

static const char *module_function_name(const void *f, char *buf, unsigned len) {
    static tg_pfn_hipKernelNameRef get;
    if (!get) get = (tg_pfn_hipKernelNameRef)runtime_fn("hipKernelNameRef");
    const char *name = get ? get((hipFunction_t)f) : NULL;
    if (name) return name;
    snprintf(buf, len, "function@%p", f);
    return buf;
}

static const char *host_kernel_name(const void *fn, char *buf, unsigned len) {
    static tg_pfn_hipKernelNameRefByPtr get;
    if (!get) get = (tg_pfn_hipKernelNameRefByPtr)runtime_fn("hipKernelNameRefByPtr");
    const char *name = get ? get(fn, NULL) : NULL;
    return name ? name : tg_host_function_name(fn, buf, len);
}

/* Events for the scheduler's own use (seeing its work complete), through the real runtime. */
static struct {
    tg_pfn_hipEventCreate create;
    tg_pfn_hipEventRecord record;
    tg_pfn_hipEventQuery query;
    tg_pfn_hipEventSynchronize sync;
    tg_pfn_hipEventElapsedTime elapsed;
} ev;
static int ev_create(void **e) { return ev.create((hipEvent_t *)e) == hipSuccess ? 0 : -1; }
static int ev_record(void *e, void *s) { return ev.record(e, s) == hipSuccess ? 0 : -1; }
static int ev_query(void *e) {
    hipError_t r = ev.query(e);
    return r == hipSuccess ? 0 : r == hipErrorNotReady ? 1 : -1;
}
static int ev_sync(void *e) { return ev.sync(e) == hipSuccess ? 0 : -1; }
static int ev_elapsed(void *from, void *to, uint64_t *ns) {
    float ms;
    if (ev.elapsed(&ms, from, to) != hipSuccess || ms < 0) return -1;
    *ns = (uint64_t)(ms * 1e6);
    return 0;
}
static int ev_elapsed_signed(void *from, void *to, int64_t *ns) {
    float ms;
    hipError_t r = ev.elapsed(&ms, from, to);
    if (r != hipSuccess) return r == hipErrorNotReady ? 1 : -1;
    *ns = (int64_t)((double)ms * 1e6);
    return 0;
}
static const tg_gpu_ops ops = {ev_create, ev_record, ev_query, ev_sync, ev_elapsed, ev_elapsed_signed};

static int identity_tried;
static void capture_identity(void) {
    static atomic_int once;
    if (atomic_exchange(&once, 1)) return;
    identity_tried = 1;
    tg_pfn_hipGetDevice get_device = (tg_pfn_hipGetDevice)runtime_fn("hipGetDevice");
    tg_pfn_hipDeviceGetName get_name = (tg_pfn_hipDeviceGetName)runtime_fn("hipDeviceGetName");
    tg_pfn_hipDeviceGetUuid get_uuid = (tg_pfn_hipDeviceGetUuid)runtime_fn("hipDeviceGetUuid");
    tg_pfn_hipDeviceGetPCIBusId get_pci = (tg_pfn_hipDeviceGetPCIBusId)runtime_fn("hipDeviceGetPCIBusId");
    int dev = -1;
    ev.create = (tg_pfn_hipEventCreate)runtime_fn("hipEventCreate");
    ev.record = (tg_pfn_hipEventRecord)runtime_fn("hipEventRecord");
    ev.query = (tg_pfn_hipEventQuery)runtime_fn("hipEventQuery");
    ev.sync = (tg_pfn_hipEventSynchronize)runtime_fn("hipEventSynchronize");
    ev.elapsed = (tg_pfn_hipEventElapsedTime)runtime_fn("hipEventElapsedTime");
    if (ev.create && ev.record && ev.query && ev.sync && ev.elapsed) {
        tg_budget_set_ops(&ops);
        tg_gpu_time_set_ops(&ops);
    }
    if (!get_device || get_device(&dev) != hipSuccess) return;
    char name[96] = "", pci[32] = "";
    hipUUID uuid;
    memset(&uuid, 0, sizeof uuid);
    if (get_name) get_name(name, sizeof name, dev);
    if (get_uuid) get_uuid(&uuid, dev);
    if (get_pci) get_pci(pci, sizeof pci, dev);
    tg_gpu_identity(dev, name, (const unsigned char *)uuid.bytes, pci);
}

static inline void ensure_identity(void) {
    if (TG_UNLIKELY(!identity_tried)) capture_identity();
}

static inline void record_launch(tg_ring_header *h, tg_lane *l, int api, uint64_t t0, uint64_t t1, hipError_t res, uint32_t kernel,
                                 unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                                 size_t shared, hipStream_t s) {
    tg_record_launch(h, l, api, t0, t1, res, kernel, gx, gy, gz, bx, by, bz, shared, s);
}

/* ---- launches ---- */

#define LAUNCH_HOST_KERNEL(sym)                                                                                  \
    TG_EXPORT hipError_t sym(const void *f, dim3 grid, dim3 block, void **args, size_t shared, hipStream_t s) { \
        WRAP_WORK(sym, s, 1, (f, grid, block, args, shared, s),                                                  \
             record_launch(h, l, TG_API_##sym, t0, t1, res, tg_name_id(f, host_kernel_name), grid.x, grid.y,        \
                           grid.z, block.x, block.y, block.z, shared, s))                                        \
    }
LAUNCH_HOST_KERNEL(hipLaunchKernel)
LAUNCH_HOST_KERNEL(hipLaunchKernel_spt)

TG_EXPORT hipError_t hipExtLaunchKernel(const void *f, dim3 grid, dim3 block, void **args, size_t shared,
                                        hipStream_t s, hipEvent_t start, hipEvent_t stop, int flags) {
    WRAP_WORK(hipExtLaunchKernel, s, 1, (f, grid, block, args, shared, s, start, stop, flags),
         record_launch(h, l, TG_API_hipExtLaunchKernel, t0, t1, res, tg_name_id(f, host_kernel_name), grid.x, grid.y,
                       grid.z, block.x, block.y, block.z, shared, s))
}

TG_EXPORT hipError_t hipModuleLaunchKernel(hipFunction_t f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                           unsigned by, unsigned bz, unsigned shared, hipStream_t s, void **params,
                                           void **extra) {
    WRAP_WORK(hipModuleLaunchKernel, s, 1, (f, gx, gy, gz, bx, by, bz, shared, s, params, extra),
         record_launch(h, l, TG_API_hipModuleLaunchKernel, t0, t1, res, tg_name_id(f, module_function_name), gx, gy,
                       gz, bx, by, bz, shared, s))
}

/* hipExtModuleLaunchKernel takes global work sizes (threads), not grid sizes (blocks). */
static inline unsigned blocks(uint32_t global, uint32_t local) { return local ? (global + local - 1) / local : 0; }

TG_EXPORT hipError_t hipExtModuleLaunchKernel(hipFunction_t f, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t lx,
                                              uint32_t ly, uint32_t lz, size_t shared, hipStream_t s, void **params,
                                              void **extra, hipEvent_t start, hipEvent_t stop, uint32_t flags) {
    WRAP_WORK(hipExtModuleLaunchKernel, s, 1, (f, gx, gy, gz, lx, ly, lz, shared, s, params, extra, start, stop, flags),
         record_launch(h, l, TG_API_hipExtModuleLaunchKernel, t0, t1, res, tg_name_id(f, module_function_name),
                       blocks(gx, lx), blocks(gy, ly), blocks(gz, lz), lx, ly, lz, shared, s))
}

TG_EXPORT hipError_t hipGraphLaunch(hipGraphExec_t g, hipStream_t s) {
    WRAP_WORK(hipGraphLaunch, s, 1, (g, s),
         TG_RECORD(h, l, TG_API_hipGraphLaunch, TG_KIND_LAUNCH, TG_OP_GRAPH, t0, t1, res, s, 0,
                   r->u.graph.exec = (uint64_t)(uintptr_t)g))
}

TG_EXPORT hipError_t hipLaunchHostFunc(hipStream_t s, hipHostFn_t fn, void *user) {
    WRAP_WORK(hipLaunchHostFunc, s, 1, (s, fn, user), uint32_t name = tg_name_id((const void *)fn, tg_host_function_name);
         TG_RECORD(h, l, TG_API_hipLaunchHostFunc, TG_KIND_LAUNCH, TG_OP_HOST_FUNC, t0, t1, res, s, 0,
                   r->u.launch.kernel = name))
}

/* ---- copies and memsets ---- */

static inline int direction(hipMemcpyKind kind) {
    switch (kind) {
    case hipMemcpyHostToHost: return TG_OP_HTOH;
    case hipMemcpyHostToDevice: return TG_OP_HTOD;
    case hipMemcpyDeviceToHost: return TG_OP_DTOH;
    case hipMemcpyDeviceToDevice: return TG_OP_DTOD;
    default: return TG_OP_ANY;
    }
}

#define COPY_RECORD(sym, op, s, nbytes, elem, flags)                                                              \
    TG_RECORD(h, l, TG_API_##sym, TG_KIND_COPY, op, t0, t1, res, s, flags,                                          \
              (r->u.copy.bytes = (uint64_t)(nbytes), r->u.copy.element_size = (elem)))

#define MEMCPY(sym)                                                                                              \
    TG_EXPORT hipError_t sym(void *d, const void *src, size_t n, hipMemcpyKind kind) {                          \
        WRAP_BLOCKING(sym, (d, src, n, kind), COPY_RECORD(sym, direction(kind), NULL, n, 0, TG_F_BLOCKING))      \
    }
#define MEMCPY_ASYNC(sym)                                                                                        \
    TG_EXPORT hipError_t sym(void *d, const void *src, size_t n, hipMemcpyKind kind, hipStream_t s) {           \
        WRAP_WORK(sym, s, 0, (d, src, n, kind, s), COPY_RECORD(sym, direction(kind), s, n, 0, TG_F_ASYNC))       \
    }
MEMCPY(hipMemcpy)
MEMCPY(hipMemcpy_spt)
MEMCPY_ASYNC(hipMemcpyAsync)
MEMCPY_ASYNC(hipMemcpyAsync_spt)

#define TYPED_COPY(sym, op, dtype, stype)                                                                        \
    TG_EXPORT hipError_t sym(dtype d, stype src, size_t n) {                                                    \
        WRAP_BLOCKING(sym, (d, src, n), COPY_RECORD(sym, op, NULL, n, 0, TG_F_BLOCKING))                         \
    }
#define TYPED_COPY_ASYNC(sym, op, dtype, stype)                                                                  \
    TG_EXPORT hipError_t sym(dtype d, stype src, size_t n, hipStream_t s) {                                     \
        WRAP_WORK(sym, s, 0, (d, src, n, s), COPY_RECORD(sym, op, s, n, 0, TG_F_ASYNC))                          \
    }
TYPED_COPY(hipMemcpyHtoD, TG_OP_HTOD, hipDeviceptr_t, void *)
TYPED_COPY(hipMemcpyDtoH, TG_OP_DTOH, void *, hipDeviceptr_t)
TYPED_COPY(hipMemcpyDtoD, TG_OP_DTOD, hipDeviceptr_t, hipDeviceptr_t)
TYPED_COPY_ASYNC(hipMemcpyHtoDAsync, TG_OP_HTOD, hipDeviceptr_t, void *)
TYPED_COPY_ASYNC(hipMemcpyDtoHAsync, TG_OP_DTOH, void *, hipDeviceptr_t)
TYPED_COPY_ASYNC(hipMemcpyDtoDAsync, TG_OP_DTOD, hipDeviceptr_t, hipDeviceptr_t)

#define MEMSET(sym, ptype, vtype, elem)                                                                          \
    TG_EXPORT hipError_t sym(ptype d, vtype v, size_t n) {                                                      \
        WRAP_BLOCKING(sym, (d, v, n), COPY_RECORD(sym, TG_OP_MEMSET, NULL, n * (elem), elem, TG_F_BLOCKING))     \
    }
#define MEMSET_ASYNC(sym, ptype, vtype, elem)                                                                    \
    TG_EXPORT hipError_t sym(ptype d, vtype v, size_t n, hipStream_t s) {                                       \
        WRAP_WORK(sym, s, 0, (d, v, n, s), COPY_RECORD(sym, TG_OP_MEMSET, s, n * (elem), elem, TG_F_ASYNC))      \
    }
MEMSET(hipMemset, void *, int, 1)
MEMSET_ASYNC(hipMemsetAsync, void *, int, 1)
MEMSET(hipMemsetD8, hipDeviceptr_t, unsigned char, 1)
MEMSET_ASYNC(hipMemsetD8Async, hipDeviceptr_t, unsigned char, 1)
MEMSET(hipMemsetD16, hipDeviceptr_t, unsigned short, 2)
MEMSET_ASYNC(hipMemsetD16Async, hipDeviceptr_t, unsigned short, 2)
MEMSET(hipMemsetD32, hipDeviceptr_t, int, 4)
MEMSET_ASYNC(hipMemsetD32Async, hipDeviceptr_t, int, 4)

/* ---- waiting, events, streams ---- */

#define STREAM_SYNC(sym)                                                                                         \
    TG_EXPORT hipError_t sym(hipStream_t s) {                                                                   \
        WRAP_WAIT(sym, TG_SYNC_STREAM, s, (s),                                                                   \
                  TG_RECORD(h, l, TG_API_##sym, TG_KIND_SYNC, TG_OP_SYNC_STREAM, t0, t1, res, s, TG_F_BLOCKING, )) \
    }
STREAM_SYNC(hipStreamSynchronize)
STREAM_SYNC(hipStreamSynchronize_spt)

TG_EXPORT hipError_t hipDeviceSynchronize(void) {
    WRAP_WAIT(hipDeviceSynchronize, TG_SYNC_ALL, NULL, (),
         TG_RECORD(h, l, TG_API_hipDeviceSynchronize, TG_KIND_SYNC, TG_OP_SYNC_DEVICE, t0, t1, res, NULL, TG_F_BLOCKING, ))
}

TG_EXPORT hipError_t hipEventSynchronize(hipEvent_t e) {
    TG_WRAP_HOOKED(hipError_t, hipErrorNotInitialized, hipEventSynchronize, (tg_event_gpu_time(e), tg_sched_sync_enter()),
                   tg_event_synced(e, res == hipSuccess), (e),
         TG_RECORD(h, l, TG_API_hipEventSynchronize, TG_KIND_SYNC, TG_OP_SYNC_EVENT, t0, t1, res, NULL, TG_F_BLOCKING,
                   r->u.sync.object = (uint64_t)(uintptr_t)e))
}

/* Polling instead of waiting: a query that finds the work done ends the request window (not recorded). */
TG_EXPORT hipError_t hipStreamQuery(hipStream_t s) {
    tg_pfn_hipStreamQuery real = (tg_pfn_hipStreamQuery)tg_real_get(TG_API_hipStreamQuery);
    if (TG_UNLIKELY(!real)) return hipErrorNotInitialized;
    if (tg_hot.state > 0) tg_gpu_time_sync(TG_SYNC_STREAM, TG_KEY(hipStreamQuery, s));
    hipError_t res = real(s);
    if (tg_hot.state > 0) tg_sched_polled(TG_KEY(hipStreamQuery, s), res == hipSuccess);
    return res;
}

TG_EXPORT hipError_t hipEventQuery(hipEvent_t e) {
    tg_pfn_hipEventQuery real = (tg_pfn_hipEventQuery)tg_real_get(TG_API_hipEventQuery);
    if (TG_UNLIKELY(!real)) return hipErrorNotInitialized;
    if (tg_hot.state > 0) tg_event_gpu_time(e);
    hipError_t res = real(e);
    if (tg_hot.state > 0) tg_event_polled(e, res == hipSuccess);
    return res;
}

#define STREAM_WAIT(sym)                                                                                         \
    TG_EXPORT hipError_t sym(hipStream_t s, hipEvent_t e, unsigned flags) {                                     \
        WRAP(sym, (s, e, flags), TG_RECORD(h, l, TG_API_##sym, TG_KIND_WAIT, TG_OP_NONE, t0, t1, res, s, 0,         \
                                           r->u.event.event = (uint64_t)(uintptr_t)e))                           \
    }
STREAM_WAIT(hipStreamWaitEvent)
STREAM_WAIT(hipStreamWaitEvent_spt)

TG_EXPORT hipError_t hipEventRecord(hipEvent_t e, hipStream_t s) {
    TG_WRAP_HOOKED(hipError_t, hipErrorNotInitialized, hipEventRecord, ,
                   if (res == hipSuccess) tg_sched_event_recorded((uint64_t)(uintptr_t)e, TG_KEY(hipEventRecord, s)),
                   (e, s),
         TG_RECORD(h, l, TG_API_hipEventRecord, TG_KIND_EVENT, TG_OP_NONE, t0, t1, res, s, 0,
                   r->u.event.event = (uint64_t)(uintptr_t)e))
}

#define CREATED(ps) ((res == hipSuccess && (ps)) ? *(ps) : NULL)
TG_EXPORT hipError_t hipStreamCreate(hipStream_t *ps) {
    WRAP(hipStreamCreate, (ps),
         TG_RECORD(h, l, TG_API_hipStreamCreate, TG_KIND_STREAM, TG_OP_CREATE, t0, t1, res, CREATED(ps), 0, ))
}
TG_EXPORT hipError_t hipStreamCreateWithFlags(hipStream_t *ps, unsigned flags) {
    WRAP(hipStreamCreateWithFlags, (ps, flags),
         TG_RECORD(h, l, TG_API_hipStreamCreateWithFlags, TG_KIND_STREAM, TG_OP_CREATE, t0, t1, res, CREATED(ps), 0,
                   r->u.stream_info.flags = flags))
}
TG_EXPORT hipError_t hipStreamCreateWithPriority(hipStream_t *ps, unsigned flags, int priority) {
    WRAP(hipStreamCreateWithPriority, (ps, flags, priority),
         TG_RECORD(h, l, TG_API_hipStreamCreateWithPriority, TG_KIND_STREAM, TG_OP_CREATE, t0, t1, res, CREATED(ps), 0,
                   (r->u.stream_info.flags = flags, r->u.stream_info.priority = priority)))
}
TG_EXPORT hipError_t hipStreamDestroy(hipStream_t s) {
    WRAP(hipStreamDestroy, (s),
         TG_RECORD(h, l, TG_API_hipStreamDestroy, TG_KIND_STREAM, TG_OP_DESTROY, t0, t1, res, s, 0, ))
}

TG_EXPORT hipError_t hipStreamBeginCapture(hipStream_t s, hipStreamCaptureMode mode) {
    WRAP(hipStreamBeginCapture, (s, mode), if (res == hipSuccess) tg_capture_begin(s);
         TG_RECORD(h, l, TG_API_hipStreamBeginCapture, TG_KIND_STREAM, TG_OP_CAPTURE_BEGIN, t0, t1, res, s, 0, ))
}
TG_EXPORT hipError_t hipStreamEndCapture(hipStream_t s, hipGraph_t *g) {
    WRAP(hipStreamEndCapture, (s, g), tg_capture_end(s);
         TG_RECORD(h, l, TG_API_hipStreamEndCapture, TG_KIND_STREAM, TG_OP_CAPTURE_END, t0, t1, res, s, 0, ))
}
