/* CUDA driver interposition. Each wrapper is exported under the driver's own symbol name (programs linked to libcuda
 * call it directly) and is also what cuGetProcAddress and dlsym hand out (the CUDA runtime's path). A wrapper:
 * looks up its real entry point, timestamps the call, forwards it, and appends one record. When no ring exists (the
 * shim is disabled or could not create one) it forwards untouched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "wrap.h"
#include "tailguard/cuda_abi.h"
#include "tailguard/log.h"

#define REAL(sym) ((tg_pfn_##sym)tg_real_get(TG_API_##sym))
#define NO_DRIVER CUDA_ERROR_NOT_INITIALIZED

/* ---- entry points of the driver that the shim itself calls (names, identity) ---- */

static void *driver_fn(const char *name) {
    void *gpa = atomic_load(&tg_real[TG_API_cuGetProcAddress_v2]);
    if (gpa) {
        void *p = NULL;
        CUdriverProcAddressQueryResult status;
        if (((tg_pfn_cuGetProcAddress_v2)gpa)(name, &p, 12030, 0, &status) == CUDA_SUCCESS && p) return p;
    }
    void *p = tg_next_symbol(name);
    if (p) return p;
    void *h = dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY);
    if (!h) return NULL;
    p = tg_real_dlsym(h, name);
    dlclose(h);
    return p;
}

typedef CUresult (*name_getter)(const char **name, const void *handle);

/* cuLaunchKernel takes CUfunction handles and, since CUDA 12, CUkernel handles: try both name queries. */
static const char *function_name(const void *f, char *buf, unsigned len) {
    static name_getter func_name, kernel_name;
    static int resolved;
    if (!resolved) {
        func_name = (name_getter)driver_fn("cuFuncGetName");
        kernel_name = (name_getter)driver_fn("cuKernelGetName");
        resolved = 1;
    }
    const char *name = NULL;
    if (func_name && func_name(&name, f) == CUDA_SUCCESS && name) return name;
    if (kernel_name && kernel_name(&name, f) == CUDA_SUCCESS && name) return name;
    snprintf(buf, len, "function@%p", f);
    return buf;
}

/* Events for the scheduler's own use (seeing its work complete), through the real driver. */
static struct {
    tg_pfn_cuEventCreate create;
    tg_pfn_cuEventRecord record;
    tg_pfn_cuEventQuery query;
    tg_pfn_cuEventSynchronize sync;
    tg_pfn_cuEventElapsedTime elapsed;
} ev;
static int ev_create(void **e) { return ev.create((CUevent *)e, 0) == CUDA_SUCCESS ? 0 : -1; }
static int ev_record(void *e, void *s) { return ev.record(e, s) == CUDA_SUCCESS ? 0 : -1; }
static int ev_query(void *e) {
    CUresult r = ev.query(e);
    return r == CUDA_SUCCESS ? 0 : r == CUDA_ERROR_NOT_READY ? 1 : -1;
}
static int ev_sync(void *e) { return ev.sync(e) == CUDA_SUCCESS ? 0 : -1; }
static int ev_elapsed(void *from, void *to, uint64_t *ns) {
    float ms;
    if (ev.elapsed(&ms, from, to) != CUDA_SUCCESS || ms < 0) return -1;
    *ns = (uint64_t)(ms * 1e6);
    return 0;
}
static int ev_elapsed_signed(void *from, void *to, int64_t *ns) {
    float ms;
    CUresult r = ev.elapsed(&ms, from, to);
    if (r != CUDA_SUCCESS) return r == CUDA_ERROR_NOT_READY ? 1 : -1;
    *ns = (int64_t)((double)ms * 1e6);
    return 0;
}
static const tg_gpu_ops ops = {ev_create, ev_record, ev_query, ev_sync, ev_elapsed, ev_elapsed_signed};

static void resolve_events(void) {
    ev.create = (tg_pfn_cuEventCreate)driver_fn("cuEventCreate");
    ev.record = (tg_pfn_cuEventRecord)driver_fn("cuEventRecord");
    ev.query = (tg_pfn_cuEventQuery)driver_fn("cuEventQuery");
    ev.sync = (tg_pfn_cuEventSynchronize)driver_fn("cuEventSynchronize");
    ev.elapsed = (tg_pfn_cuEventElapsedTime)driver_fn("cuEventElapsedTime");
    if (ev.create && ev.record && ev.query && ev.sync && ev.elapsed) {
        tg_budget_set_ops(&ops);
        tg_gpu_time_set_ops(&ops);
    }
}

/* The GPU of the process's first launch, published once into the ring header. */
static int identity_tried;
static void capture_identity(void) {
    static atomic_int once;
    if (atomic_exchange(&once, 1)) return;
    identity_tried = 1;
    tg_pfn_cuCtxGetDevice get_device = (tg_pfn_cuCtxGetDevice)driver_fn("cuCtxGetDevice");
    tg_pfn_cuDeviceGetName get_name = (tg_pfn_cuDeviceGetName)driver_fn("cuDeviceGetName");
    tg_pfn_cuDeviceGetUuid_v2 get_uuid = (tg_pfn_cuDeviceGetUuid_v2)driver_fn("cuDeviceGetUuid_v2");
    tg_pfn_cuDeviceGetPCIBusId get_pci = (tg_pfn_cuDeviceGetPCIBusId)driver_fn("cuDeviceGetPCIBusId");
    CUdevice dev = -1;
    resolve_events();
    if (!get_device || get_device(&dev) != CUDA_SUCCESS) return;
    char name[96] = "", pci[32] = "";
    CUuuid uuid;
    memset(&uuid, 0, sizeof uuid);
    if (get_name) get_name(name, sizeof name, dev);
    if (get_uuid) get_uuid(&uuid, dev);
    if (get_pci) get_pci(pci, sizeof pci, dev);
    tg_gpu_identity(dev, name, (const unsigned char *)uuid.bytes, pci);
}


static inline void ensure_identity(void) {
    if (TG_UNLIKELY(!identity_tried)) capture_identity();
}

static inline void record_launch(tg_ring_header *h, tg_lane *l, int api, uint64_t t0, uint64_t t1, CUresult res, const void *f,
                                 unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                                 unsigned shared, CUstream s) {
    uint32_t kernel = tg_name_id(f, function_name);
    tg_record_launch(h, l, api, t0, t1, res, kernel, gx, gy, gz, bx, by, bz, shared, s);
}

#define WRAP(sym, call_args, record_stmt) TG_WRAP(CUresult, NO_DRIVER, sym, call_args, record_stmt)
/* work submitted to stream s (a launch may be held), a wait on stream s (or everything), a blocking copy (both) */
#define IDENTIFIED_WORK(sym, s, launch) (ensure_identity(), tg_sched_work(TG_API_##sym, TG_KEY(sym, s), launch))
#define WRAP_WORK(sym, s, launch, call_args, record_stmt)                                                        \
    TG_WRAP_HOOKED(CUresult, NO_DRIVER, sym, IDENTIFIED_WORK(sym, s, launch),                                   \
                   if (launch && res == CUDA_SUCCESS) tg_budget_submitted(TG_API_##sym, TG_KEY(sym, s)), call_args, \
                   record_stmt)
#define WRAP_WAIT(sym, scope, s, call_args, record_stmt)                                                         \
    TG_WRAP_HOOKED(CUresult, NO_DRIVER, sym,                                                                  \
                   (tg_gpu_time_sync(scope, TG_KEY(sym, s)), tg_sched_sync_enter()),                            \
                   tg_sched_sync_exit(scope, TG_KEY(sym, s), res == CUDA_SUCCESS), call_args, record_stmt)
#define WRAP_BLOCKING(sym, call_args, record_stmt)                                                               \
    TG_WRAP_HOOKED(CUresult, NO_DRIVER, sym,                                                                  \
                   (IDENTIFIED_WORK(sym, NULL, 0), tg_gpu_time_sync(TG_SYNC_ALL, 0), tg_sched_sync_enter()),    \
                   tg_sched_sync_exit(TG_SYNC_STREAM, TG_KEY(sym, NULL), res == CUDA_SUCCESS), call_args,       \
                   record_stmt)
#define RECORD TG_RECORD

/* ---- launches ---- */

#define LAUNCH_KERNEL(sym)                                                                                       \
    TG_EXPORT CUresult sym(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,        \
                           unsigned bz, unsigned shared, CUstream s, void **params, void **extra) {              \
        WRAP_WORK(sym, s, 1, (f, gx, gy, gz, bx, by, bz, shared, s, params, extra),                              \
             record_launch(h, l, TG_API_##sym, t0, t1, res, f, gx, gy, gz, bx, by, bz, shared, s))                  \
    }
LAUNCH_KERNEL(cuLaunchKernel)
LAUNCH_KERNEL(cuLaunchKernel_ptsz)

#define LAUNCH_KERNEL_EX(sym)                                                                                    \
    TG_EXPORT CUresult sym(const CUlaunchConfig *c, CUfunction f, void **params, void **extra) {                \
        WRAP_WORK(sym, c ? c->hStream : NULL, 1, (c, f, params, extra),                                          \
             if (c) record_launch(h, l, TG_API_##sym, t0, t1, res, f, c->gridDimX, c->gridDimY, c->gridDimZ,        \
                                  c->blockDimX, c->blockDimY, c->blockDimZ, c->sharedMemBytes, c->hStream);      \
             else record_launch(h, l, TG_API_##sym, t0, t1, res, f, 0, 0, 0, 0, 0, 0, 0, NULL))                     \
    }
LAUNCH_KERNEL_EX(cuLaunchKernelEx)
LAUNCH_KERNEL_EX(cuLaunchKernelEx_ptsz)

#define LAUNCH_COOPERATIVE(sym)                                                                                  \
    TG_EXPORT CUresult sym(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,        \
                           unsigned bz, unsigned shared, CUstream s, void **params) {                            \
        WRAP_WORK(sym, s, 1, (f, gx, gy, gz, bx, by, bz, shared, s, params),                                     \
             record_launch(h, l, TG_API_##sym, t0, t1, res, f, gx, gy, gz, bx, by, bz, shared, s))                  \
    }
LAUNCH_COOPERATIVE(cuLaunchCooperativeKernel)
LAUNCH_COOPERATIVE(cuLaunchCooperativeKernel_ptsz)

#define GRAPH_LAUNCH(sym)                                                                                        \
    TG_EXPORT CUresult sym(CUgraphExec g, CUstream s) {                                                         \
        WRAP_WORK(sym, s, 1, (g, s), RECORD(h, l, TG_API_##sym, TG_KIND_LAUNCH, TG_OP_GRAPH, t0, t1, res, s, 0,                \
                                 r->u.graph.exec = (uint64_t)(uintptr_t)g))                                      \
    }
GRAPH_LAUNCH(cuGraphLaunch)
GRAPH_LAUNCH(cuGraphLaunch_ptsz)

#define HOST_FUNC(sym)                                                                                           \
    TG_EXPORT CUresult sym(CUstream s, CUhostFn fn, void *user) {                                               \
        WRAP_WORK(sym, s, 1, (s, fn, user), uint32_t name = tg_name_id((const void *)fn, tg_host_function_name);               \
             RECORD(h, l, TG_API_##sym, TG_KIND_LAUNCH, TG_OP_HOST_FUNC, t0, t1, res, s, 0,                         \
                    r->u.launch.kernel = name))                                                                  \
    }
HOST_FUNC(cuLaunchHostFunc)
HOST_FUNC(cuLaunchHostFunc_ptsz)

/* ---- copies and memsets ---- */

#define COPY_RECORD(sym, op, s, nbytes, elem, flags)                                                              \
    RECORD(h, l, TG_API_##sym, TG_KIND_COPY, op, t0, t1, res, s, flags,                                             \
           (r->u.copy.bytes = (uint64_t)(nbytes), r->u.copy.element_size = (elem)))

#define COPY_SYNC(sym, op, params, args, bytes)                                                                  \
    TG_EXPORT CUresult sym params { WRAP_BLOCKING(sym, args, COPY_RECORD(sym, op, NULL, bytes, 0, TG_F_BLOCKING)) }
#define COPY_ASYNC(sym, op, params, args, bytes)                                                                 \
    TG_EXPORT CUresult sym params { WRAP_WORK(sym, s, 0, args, COPY_RECORD(sym, op, s, bytes, 0, TG_F_ASYNC)) }

COPY_SYNC(cuMemcpy, TG_OP_ANY, (CUdeviceptr d, CUdeviceptr src, size_t n), (d, src, n), n)
COPY_SYNC(cuMemcpy_ptds, TG_OP_ANY, (CUdeviceptr d, CUdeviceptr src, size_t n), (d, src, n), n)
COPY_SYNC(cuMemcpyHtoD_v2, TG_OP_HTOD, (CUdeviceptr d, const void *src, size_t n), (d, src, n), n)
COPY_SYNC(cuMemcpyHtoD_v2_ptds, TG_OP_HTOD, (CUdeviceptr d, const void *src, size_t n), (d, src, n), n)
COPY_SYNC(cuMemcpyDtoH_v2, TG_OP_DTOH, (void *d, CUdeviceptr src, size_t n), (d, src, n), n)
COPY_SYNC(cuMemcpyDtoH_v2_ptds, TG_OP_DTOH, (void *d, CUdeviceptr src, size_t n), (d, src, n), n)
COPY_SYNC(cuMemcpyDtoD_v2, TG_OP_DTOD, (CUdeviceptr d, CUdeviceptr src, size_t n), (d, src, n), n)
COPY_SYNC(cuMemcpyDtoD_v2_ptds, TG_OP_DTOD, (CUdeviceptr d, CUdeviceptr src, size_t n), (d, src, n), n)
COPY_SYNC(cuMemcpyPeer, TG_OP_PEER, (CUdeviceptr d, CUcontext dc, CUdeviceptr src, CUcontext sc, size_t n),
          (d, dc, src, sc, n), n)
COPY_SYNC(cuMemcpyPeer_ptds, TG_OP_PEER, (CUdeviceptr d, CUcontext dc, CUdeviceptr src, CUcontext sc, size_t n),
          (d, dc, src, sc, n), n)
COPY_ASYNC(cuMemcpyAsync, TG_OP_ANY, (CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s), (d, src, n, s), n)
COPY_ASYNC(cuMemcpyAsync_ptsz, TG_OP_ANY, (CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s), (d, src, n, s), n)
COPY_ASYNC(cuMemcpyHtoDAsync_v2, TG_OP_HTOD, (CUdeviceptr d, const void *src, size_t n, CUstream s), (d, src, n, s), n)
COPY_ASYNC(cuMemcpyHtoDAsync_v2_ptsz, TG_OP_HTOD, (CUdeviceptr d, const void *src, size_t n, CUstream s),
           (d, src, n, s), n)
COPY_ASYNC(cuMemcpyDtoHAsync_v2, TG_OP_DTOH, (void *d, CUdeviceptr src, size_t n, CUstream s), (d, src, n, s), n)
COPY_ASYNC(cuMemcpyDtoHAsync_v2_ptsz, TG_OP_DTOH, (void *d, CUdeviceptr src, size_t n, CUstream s), (d, src, n, s), n)
COPY_ASYNC(cuMemcpyDtoDAsync_v2, TG_OP_DTOD, (CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s), (d, src, n, s), n)
COPY_ASYNC(cuMemcpyDtoDAsync_v2_ptsz, TG_OP_DTOD, (CUdeviceptr d, CUdeviceptr src, size_t n, CUstream s),
           (d, src, n, s), n)
COPY_ASYNC(cuMemcpyPeerAsync, TG_OP_PEER,
           (CUdeviceptr d, CUcontext dc, CUdeviceptr src, CUcontext sc, size_t n, CUstream s), (d, dc, src, sc, n, s), n)
COPY_ASYNC(cuMemcpyPeerAsync_ptsz, TG_OP_PEER,
           (CUdeviceptr d, CUcontext dc, CUdeviceptr src, CUcontext sc, size_t n, CUstream s), (d, dc, src, sc, n, s), n)

/* 2D/3D copies: the direction comes from the memory types of the descriptor. */
static int copy_direction(CUmemorytype src, CUmemorytype dst) {
    int src_host = src == CU_MEMORYTYPE_HOST, dst_host = dst == CU_MEMORYTYPE_HOST;
    if (src == CU_MEMORYTYPE_UNIFIED || dst == CU_MEMORYTYPE_UNIFIED) return TG_OP_ANY;
    if (src_host && dst_host) return TG_OP_HTOH;
    return src_host ? TG_OP_HTOD : dst_host ? TG_OP_DTOH : TG_OP_DTOD;
}
#define ASYNC_COPY(sym, s, args, record) WRAP_WORK(sym, s, 0, args, record)
#define BLOCKING_COPY(sym, s, args, record) WRAP_BLOCKING(sym, args, record)
#define COPY_2D(sym, stream_param, stream_arg, s, flags, wrapper)                                                \
    TG_EXPORT CUresult sym(const CUDA_MEMCPY2D *c stream_param) {                                               \
        wrapper(sym, s, (c stream_arg),                                                                          \
             COPY_RECORD(sym, c ? copy_direction(c->srcMemoryType, c->dstMemoryType) : TG_OP_ANY, s,              \
                         c ? (uint64_t)c->WidthInBytes * c->Height : 0, 0, flags))                               \
    }
#define COPY_3D(sym, stream_param, stream_arg, s, flags, wrapper)                                                \
    TG_EXPORT CUresult sym(const CUDA_MEMCPY3D *c stream_param) {                                               \
        wrapper(sym, s, (c stream_arg),                                                                          \
             COPY_RECORD(sym, c ? copy_direction(c->srcMemoryType, c->dstMemoryType) : TG_OP_ANY, s,              \
                         c ? (uint64_t)c->WidthInBytes * c->Height * c->Depth : 0, 0, flags))                    \
    }
#define NO_STREAM
#define STREAM_PARAM , CUstream s
#define STREAM_ARG , s
COPY_2D(cuMemcpy2D_v2, NO_STREAM, NO_STREAM, NULL, TG_F_BLOCKING, BLOCKING_COPY)
COPY_2D(cuMemcpy2D_v2_ptds, NO_STREAM, NO_STREAM, NULL, TG_F_BLOCKING, BLOCKING_COPY)
COPY_2D(cuMemcpy2DAsync_v2, STREAM_PARAM, STREAM_ARG, s, TG_F_ASYNC, ASYNC_COPY)
COPY_2D(cuMemcpy2DAsync_v2_ptsz, STREAM_PARAM, STREAM_ARG, s, TG_F_ASYNC, ASYNC_COPY)
COPY_3D(cuMemcpy3D_v2, NO_STREAM, NO_STREAM, NULL, TG_F_BLOCKING, BLOCKING_COPY)
COPY_3D(cuMemcpy3D_v2_ptds, NO_STREAM, NO_STREAM, NULL, TG_F_BLOCKING, BLOCKING_COPY)
COPY_3D(cuMemcpy3DAsync_v2, STREAM_PARAM, STREAM_ARG, s, TG_F_ASYNC, ASYNC_COPY)
COPY_3D(cuMemcpy3DAsync_v2_ptsz, STREAM_PARAM, STREAM_ARG, s, TG_F_ASYNC, ASYNC_COPY)

#define MEMSET(sym, type, elem)                                                                                  \
    TG_EXPORT CUresult sym(CUdeviceptr d, type v, size_t n) {                                                   \
        WRAP_BLOCKING(sym, (d, v, n), COPY_RECORD(sym, TG_OP_MEMSET, NULL, n * (elem), elem, TG_F_BLOCKING))     \
    }
#define MEMSET_ASYNC(sym, type, elem)                                                                            \
    TG_EXPORT CUresult sym(CUdeviceptr d, type v, size_t n, CUstream s) {                                       \
        WRAP_WORK(sym, s, 0, (d, v, n, s), COPY_RECORD(sym, TG_OP_MEMSET, s, n * (elem), elem, TG_F_ASYNC))      \
    }
#define MEMSET_2D_ASYNC(sym, type, elem)                                                                         \
    TG_EXPORT CUresult sym(CUdeviceptr d, size_t pitch, type v, size_t w, size_t ht, CUstream s) {              \
        WRAP_WORK(sym, s, 0, (d, pitch, v, w, ht, s),                                                            \
                  COPY_RECORD(sym, TG_OP_MEMSET, s, w * ht * (elem), elem, TG_F_ASYNC))                          \
    }
MEMSET(cuMemsetD8_v2, unsigned char, 1)
MEMSET(cuMemsetD8_v2_ptds, unsigned char, 1)
MEMSET(cuMemsetD16_v2, unsigned short, 2)
MEMSET(cuMemsetD16_v2_ptds, unsigned short, 2)
MEMSET(cuMemsetD32_v2, unsigned int, 4)
MEMSET(cuMemsetD32_v2_ptds, unsigned int, 4)
MEMSET_ASYNC(cuMemsetD8Async, unsigned char, 1)
MEMSET_ASYNC(cuMemsetD8Async_ptsz, unsigned char, 1)
MEMSET_ASYNC(cuMemsetD16Async, unsigned short, 2)
MEMSET_ASYNC(cuMemsetD16Async_ptsz, unsigned short, 2)
MEMSET_ASYNC(cuMemsetD32Async, unsigned int, 4)
MEMSET_ASYNC(cuMemsetD32Async_ptsz, unsigned int, 4)
MEMSET_2D_ASYNC(cuMemsetD2D8Async, unsigned char, 1)
MEMSET_2D_ASYNC(cuMemsetD2D8Async_ptsz, unsigned char, 1)
MEMSET_2D_ASYNC(cuMemsetD2D16Async, unsigned short, 2)
MEMSET_2D_ASYNC(cuMemsetD2D16Async_ptsz, unsigned short, 2)
MEMSET_2D_ASYNC(cuMemsetD2D32Async, unsigned int, 4)
MEMSET_2D_ASYNC(cuMemsetD2D32Async_ptsz, unsigned int, 4)

/* ---- waiting, events, streams ---- */

#define STREAM_SYNC(sym)                                                                                         \
    TG_EXPORT CUresult sym(CUstream s) {                                                                        \
        WRAP_WAIT(sym, TG_SYNC_STREAM, s, (s),                                                                   \
                  RECORD(h, l, TG_API_##sym, TG_KIND_SYNC, TG_OP_SYNC_STREAM, t0, t1, res, s, TG_F_BLOCKING, ))  \
    }
STREAM_SYNC(cuStreamSynchronize)
STREAM_SYNC(cuStreamSynchronize_ptsz)

TG_EXPORT CUresult cuCtxSynchronize(void) {
    WRAP_WAIT(cuCtxSynchronize, TG_SYNC_ALL, NULL, (),
         RECORD(h, l, TG_API_cuCtxSynchronize, TG_KIND_SYNC, TG_OP_SYNC_DEVICE, t0, t1, res, NULL, TG_F_BLOCKING, ))
}

TG_EXPORT CUresult cuEventSynchronize(CUevent e) {
    TG_WRAP_HOOKED(CUresult, NO_DRIVER, cuEventSynchronize, (tg_event_gpu_time(e), tg_sched_sync_enter()),
                   tg_event_synced(e, res == CUDA_SUCCESS), (e),
         RECORD(h, l, TG_API_cuEventSynchronize, TG_KIND_SYNC, TG_OP_SYNC_EVENT, t0, t1, res, NULL, TG_F_BLOCKING,
                r->u.sync.object = (uint64_t)(uintptr_t)e))
}

/* Polling instead of waiting: a query that finds the work done ends the request window like a sync does. Queries are
 * not recorded (programs poll in loops); they only inform the scheduler. */
#define STREAM_QUERY(sym)                                                                                        \
    TG_EXPORT CUresult sym(CUstream s) {                                                                        \
        tg_pfn_##sym real = (tg_pfn_##sym)tg_real_get(TG_API_##sym);                                            \
        if (TG_UNLIKELY(!real)) return NO_DRIVER;                                                               \
        if (tg_hot.state > 0) tg_gpu_time_sync(TG_SYNC_STREAM, TG_KEY(sym, s));                                \
        CUresult res = real(s);                                                                                 \
        if (tg_hot.state > 0) tg_sched_polled(TG_KEY(sym, s), res == CUDA_SUCCESS);                          \
        return res;                                                                                             \
    }
STREAM_QUERY(cuStreamQuery)
STREAM_QUERY(cuStreamQuery_ptsz)

TG_EXPORT CUresult cuEventQuery(CUevent e) {
    tg_pfn_cuEventQuery real = (tg_pfn_cuEventQuery)tg_real_get(TG_API_cuEventQuery);
    if (TG_UNLIKELY(!real)) return NO_DRIVER;
    if (tg_hot.state > 0) tg_event_gpu_time(e);
    CUresult res = real(e);
    if (tg_hot.state > 0) tg_event_polled(e, res == CUDA_SUCCESS);
    return res;
}

#define STREAM_WAIT(sym)                                                                                         \
    TG_EXPORT CUresult sym(CUstream s, CUevent e, unsigned flags) {                                             \
        WRAP(sym, (s, e, flags), RECORD(h, l, TG_API_##sym, TG_KIND_WAIT, TG_OP_NONE, t0, t1, res, s, 0,            \
                                        r->u.event.event = (uint64_t)(uintptr_t)e))                              \
    }
STREAM_WAIT(cuStreamWaitEvent)
STREAM_WAIT(cuStreamWaitEvent_ptsz)

#define EVENT_RECORD(sym)                                                                                        \
    TG_EXPORT CUresult sym(CUevent e, CUstream s) {                                                             \
        TG_WRAP_HOOKED(CUresult, NO_DRIVER, sym, ,                                                               \
                       if (res == CUDA_SUCCESS) tg_sched_event_recorded((uint64_t)(uintptr_t)e, TG_KEY(sym, s)),  \
                       (e, s), RECORD(h, l, TG_API_##sym, TG_KIND_EVENT, TG_OP_NONE, t0, t1, res, s, 0,          \
                                 r->u.event.event = (uint64_t)(uintptr_t)e))                                     \
    }
EVENT_RECORD(cuEventRecord)
EVENT_RECORD(cuEventRecord_ptsz)

#define CREATED(ps) ((res == CUDA_SUCCESS && (ps)) ? *(ps) : NULL)
TG_EXPORT CUresult cuStreamCreate(CUstream *ps, unsigned flags) {
    WRAP(cuStreamCreate, (ps, flags),
         RECORD(h, l, TG_API_cuStreamCreate, TG_KIND_STREAM, TG_OP_CREATE, t0, t1, res, CREATED(ps), 0,
                r->u.stream_info.flags = flags))
}
TG_EXPORT CUresult cuStreamCreateWithPriority(CUstream *ps, unsigned flags, int priority) {
    WRAP(cuStreamCreateWithPriority, (ps, flags, priority),
         RECORD(h, l, TG_API_cuStreamCreateWithPriority, TG_KIND_STREAM, TG_OP_CREATE, t0, t1, res, CREATED(ps), 0,
                (r->u.stream_info.flags = flags, r->u.stream_info.priority = priority)))
}
TG_EXPORT CUresult cuStreamDestroy_v2(CUstream s) {
    WRAP(cuStreamDestroy_v2, (s),
         RECORD(h, l, TG_API_cuStreamDestroy_v2, TG_KIND_STREAM, TG_OP_DESTROY, t0, t1, res, s, 0, ))
}

#define BEGIN_CAPTURE(sym)                                                                                       \
    TG_EXPORT CUresult sym(CUstream s, CUstreamCaptureMode mode) {                                              \
        WRAP(sym, (s, mode), if (res == CUDA_SUCCESS) tg_capture_begin(s);                                          \
             RECORD(h, l, TG_API_##sym, TG_KIND_STREAM, TG_OP_CAPTURE_BEGIN, t0, t1, res, s, 0, ))                  \
    }
BEGIN_CAPTURE(cuStreamBeginCapture_v2)
BEGIN_CAPTURE(cuStreamBeginCapture_v2_ptsz)

#define END_CAPTURE(sym)                                                                                         \
    TG_EXPORT CUresult sym(CUstream s, CUgraph *g) {                                                            \
        WRAP(sym, (s, g), tg_capture_end(s);                                                                        \
             RECORD(h, l, TG_API_##sym, TG_KIND_STREAM, TG_OP_CAPTURE_END, t0, t1, res, s, 0, ))                    \
    }
END_CAPTURE(cuStreamEndCapture)
END_CAPTURE(cuStreamEndCapture_ptsz)

/* ---- cuGetProcAddress: the CUDA runtime's door to every entry point ---- */

/* Replaces the pointer the driver found with the shim's wrapper of the same entry point and ABI version. */
static void wrap_proc(const char *symbol, void **pfn, int version, cuuint64_t flags) {
    if (!symbol || !pfn || !*pfn) return;
    int api = tg_api_by_gpa(symbol, (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) ? 1 : 0);
    if (api == TG_API_NONE) return;
    if (!strcmp(symbol, "cuGetProcAddress")) api = version >= 12000 ? TG_API_cuGetProcAddress_v2 : TG_API_cuGetProcAddress;
    if (version < tg_apis[api].min_version) return; /* an older ABI than the wrapper's: leave it untouched */
    if (*pfn == tg_apis[api].wrapper) return;
    void *expected = NULL;
    if (!atomic_compare_exchange_strong(&tg_real[api], &expected, *pfn) && expected != *pfn) {
        static atomic_int noted;
        if (!atomic_exchange(&noted, 1))
            tg_debug("cuGetProcAddress(%s) returned %p, another path gave %p; keeping the first", symbol, *pfn,
                     expected);
    }
    *pfn = tg_apis[api].wrapper;
    tg_mark_path(TG_PATH_CUDA_GPA);
}

TG_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                                       CUdriverProcAddressQueryResult *status) {
    tg_pfn_cuGetProcAddress_v2 real = REAL(cuGetProcAddress_v2);
    if (!real) return NO_DRIVER;
    CUresult res = real(symbol, pfn, version, flags, status);
    if (res == CUDA_SUCCESS && tg_ring_wanted) wrap_proc(symbol, pfn, version, flags);
    return res;
}

TG_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags) {
    tg_pfn_cuGetProcAddress real = REAL(cuGetProcAddress);
    if (!real) return NO_DRIVER;
    CUresult res = real(symbol, pfn, version, flags);
    if (res == CUDA_SUCCESS && tg_ring_wanted) wrap_proc(symbol, pfn, version, flags);
    return res;
}
