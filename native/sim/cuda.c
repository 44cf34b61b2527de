/* The simulated GPU's CUDA driver face (libcuda.so.1): every entry point of TG_CUDA_FUNCTIONS over the engine.
 * Entry points never call each other (a shim in front would see the call twice): shared work lives in static helpers.
 * _ptsz/_ptds variants differ only in what a NULL stream means (the calling thread's per-thread default stream). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "tailguard/cuda_abi.h"

#define CTX_MAGIC 0x43747821u
#define CUDA_ERROR_ILLEGAL_STATE 401
#define CUDA_ERROR_NOT_PERMITTED 800

struct CUctx_st {
    uint32_t magic;
    int primary;
};

static _Atomic int initialized;
static struct CUctx_st primary_ctx = {CTX_MAGIC, 1};
static __thread CUcontext current_ctx;

#define REQUIRE_INIT()                                                                                                 \
    do {                                                                                                               \
        if (!atomic_load_explicit(&initialized, memory_order_relaxed)) return CUDA_ERROR_NOT_INITIALIZED;             \
    } while (0)
#define REQUIRE_DEVICE(dev)                                                                                            \
    do {                                                                                                               \
        if ((dev) != 0) return CUDA_ERROR_INVALID_DEVICE;                                                              \
    } while (0)
#define GET_STREAM(var, handle, ptds)                                                                                  \
    struct sim_stream *var = sim_stream_get((handle), (ptds));                                                         \
    if (!var) return CUDA_ERROR_INVALID_HANDLE

/* ---- initialisation, errors, versions ------------------------------------------------------------------------- */

CUresult cuInit(unsigned int flags) {
    if (flags) return CUDA_ERROR_INVALID_VALUE;
    sim_init();
    sim_control_open(); /* the context's channel group gets its timeslice, as CUDA does on real hardware */
    atomic_store(&initialized, 1);
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = SIM_CUDA_DRIVER_VERSION;
    return CUDA_SUCCESS;
}

static const struct {
    CUresult code;
    const char *name, *text;
} errors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
     "operation not permitted when stream is capturing"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

static CUresult error_text(CUresult error, const char **str, int name) {
    if (!str) return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == error) {
            *str = name ? errors[i].name : errors[i].text;
            return CUDA_SUCCESS;
        }
    *str = NULL;
    return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char **str) { return error_text(error, str, 0); }
CUresult cuGetErrorName(CUresult error, const char **str) { return error_text(error, str, 1); }

/* ---- cuGetProcAddress ---------------------------------------------------------------------------------------- */

/* Base name → the export the real driver hands out for a requested cudaVersion (rows of one name: newest first), and
 * its per-thread-default-stream variant. A base name whose every row is newer than the request is "version not
 * sufficient" (the older exports are not part of this ABI). */
static const struct proc_row {
    const char *name;
    int since;
    void *fn, *ptds;
} procs[] = {
#define ROW(name, since, fn, ptds) {name, since, (void *)(fn), (void *)(ptds)}
    ROW("cuInit", 0, cuInit, NULL),
    ROW("cuDriverGetVersion", 0, cuDriverGetVersion, NULL),
    ROW("cuGetErrorString", 0, cuGetErrorString, NULL),
    ROW("cuGetErrorName", 0, cuGetErrorName, NULL),
    ROW("cuGetProcAddress", 12000, cuGetProcAddress_v2, NULL),
    ROW("cuGetProcAddress", 0, cuGetProcAddress, NULL),
    ROW("cuDeviceGet", 0, cuDeviceGet, NULL),
    ROW("cuDeviceGetCount", 0, cuDeviceGetCount, NULL),
    ROW("cuDeviceGetName", 0, cuDeviceGetName, NULL),
    ROW("cuDeviceGetUuid", 11040, cuDeviceGetUuid_v2, NULL),
    ROW("cuDeviceGetUuid", 0, cuDeviceGetUuid, NULL),
    ROW("cuDeviceGetPCIBusId", 0, cuDeviceGetPCIBusId, NULL),
    ROW("cuDeviceGetAttribute", 0, cuDeviceGetAttribute, NULL),
    ROW("cuDeviceTotalMem", 3020, cuDeviceTotalMem_v2, NULL),
    ROW("cuDevicePrimaryCtxRetain", 0, cuDevicePrimaryCtxRetain, NULL),
    ROW("cuDevicePrimaryCtxRelease", 11000, cuDevicePrimaryCtxRelease_v2, NULL),
    ROW("cuCtxCreate", 3020, cuCtxCreate_v2, NULL),
    ROW("cuCtxDestroy", 4000, cuCtxDestroy_v2, NULL),
    ROW("cuCtxSetCurrent", 0, cuCtxSetCurrent, NULL),
    ROW("cuCtxGetCurrent", 0, cuCtxGetCurrent, NULL),
    ROW("cuCtxGetDevice", 0, cuCtxGetDevice, NULL),
    ROW("cuCtxSynchronize", 0, cuCtxSynchronize, NULL),
    ROW("cuModuleLoadData", 0, cuModuleLoadData, NULL),
    ROW("cuModuleGetFunction", 0, cuModuleGetFunction, NULL),
    ROW("cuModuleUnload", 0, cuModuleUnload, NULL),
    ROW("cuFuncGetName", 0, cuFuncGetName, NULL),
    ROW("cuMemAlloc", 3020, cuMemAlloc_v2, NULL),
    ROW("cuMemFree", 3020, cuMemFree_v2, NULL),
    ROW("cuStreamCreate", 0, cuStreamCreate, NULL),
    ROW("cuStreamCreateWithPriority", 0, cuStreamCreateWithPriority, NULL),
    ROW("cuStreamDestroy", 4000, cuStreamDestroy_v2, NULL),
    ROW("cuStreamQuery", 0, cuStreamQuery, cuStreamQuery_ptsz),
    ROW("cuStreamSynchronize", 0, cuStreamSynchronize, cuStreamSynchronize_ptsz),
    ROW("cuStreamWaitEvent", 0, cuStreamWaitEvent, cuStreamWaitEvent_ptsz),
    ROW("cuStreamBeginCapture", 10010, cuStreamBeginCapture_v2, cuStreamBeginCapture_v2_ptsz),
    ROW("cuStreamEndCapture", 0, cuStreamEndCapture, cuStreamEndCapture_ptsz),
    ROW("cuEventCreate", 0, cuEventCreate, NULL),
    ROW("cuEventRecord", 0, cuEventRecord, cuEventRecord_ptsz),
    ROW("cuEventQuery", 0, cuEventQuery, NULL),
    ROW("cuEventSynchronize", 0, cuEventSynchronize, NULL),
    ROW("cuEventElapsedTime", 0, cuEventElapsedTime, NULL),
    ROW("cuEventDestroy", 4000, cuEventDestroy_v2, NULL),
    ROW("cuLaunchKernel", 0, cuLaunchKernel, cuLaunchKernel_ptsz),
    ROW("cuLaunchKernelEx", 0, cuLaunchKernelEx, cuLaunchKernelEx_ptsz),
    ROW("cuLaunchCooperativeKernel", 0, cuLaunchCooperativeKernel, cuLaunchCooperativeKernel_ptsz),
    ROW("cuLaunchHostFunc", 0, cuLaunchHostFunc, cuLaunchHostFunc_ptsz),
    ROW("cuGraphInstantiate", 12000, cuGraphInstantiateWithFlags, NULL),
    ROW("cuGraphInstantiateWithFlags", 0, cuGraphInstantiateWithFlags, NULL),
    ROW("cuGraphLaunch", 0, cuGraphLaunch, cuGraphLaunch_ptsz),
    ROW("cuGraphExecDestroy", 0, cuGraphExecDestroy, NULL),
    ROW("cuGraphDestroy", 0, cuGraphDestroy, NULL),
    ROW("cuMemcpy", 0, cuMemcpy, cuMemcpy_ptds),
    ROW("cuMemcpyAsync", 0, cuMemcpyAsync, cuMemcpyAsync_ptsz),
    ROW("cuMemcpyHtoD", 3020, cuMemcpyHtoD_v2, cuMemcpyHtoD_v2_ptds),
    ROW("cuMemcpyDtoH", 3020, cuMemcpyDtoH_v2, cuMemcpyDtoH_v2_ptds),
    ROW("cuMemcpyDtoD", 3020, cuMemcpyDtoD_v2, cuMemcpyDtoD_v2_ptds),
    ROW("cuMemcpyHtoDAsync", 3020, cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2_ptsz),
    ROW("cuMemcpyDtoHAsync", 3020, cuMemcpyDtoHAsync_v2, cuMemcpyDtoHAsync_v2_ptsz),
    ROW("cuMemcpyDtoDAsync", 3020, cuMemcpyDtoDAsync_v2, cuMemcpyDtoDAsync_v2_ptsz),
    ROW("cuMemcpy2D", 3020, cuMemcpy2D_v2, cuMemcpy2D_v2_ptds),
    ROW("cuMemcpy2DAsync", 3020, cuMemcpy2DAsync_v2, cuMemcpy2DAsync_v2_ptsz),
    ROW("cuMemcpy3D", 3020, cuMemcpy3D_v2, cuMemcpy3D_v2_ptds),
    ROW("cuMemcpy3DAsync", 3020, cuMemcpy3DAsync_v2, cuMemcpy3DAsync_v2_ptsz),
    ROW("cuMemcpyPeer", 0, cuMemcpyPeer, cuMemcpyPeer_ptds),
    ROW("cuMemcpyPeerAsync", 0, cuMemcpyPeerAsync, cuMemcpyPeerAsync_ptsz),
    ROW("cuMemsetD8", 3020, cuMemsetD8_v2, cuMemsetD8_v2_ptds),
    ROW("cuMemsetD16", 3020, cuMemsetD16_v2, cuMemsetD16_v2_ptds),
    ROW("cuMemsetD32", 3020, cuMemsetD32_v2, cuMemsetD32_v2_ptds),
    ROW("cuMemsetD8Async", 0, cuMemsetD8Async, cuMemsetD8Async_ptsz),
    ROW("cuMemsetD16Async", 0, cuMemsetD16Async, cuMemsetD16Async_ptsz),
    ROW("cuMemsetD32Async", 0, cuMemsetD32Async, cuMemsetD32Async_ptsz),
    ROW("cuMemsetD2D8Async", 0, cuMemsetD2D8Async, cuMemsetD2D8Async_ptsz),
    ROW("cuMemsetD2D16Async", 0, cuMemsetD2D16Async, cuMemsetD2D16Async_ptsz),
    ROW("cuMemsetD2D32Async", 0, cuMemsetD2D32Async, cuMemsetD2D32Async_ptsz),
#undef ROW
};

static CUresult get_proc(const char *symbol, void **pfn, int version, cuuint64_t flags,
                         CUdriverProcAddressQueryResult *status) {
    if (pfn) *pfn = NULL;
    if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
    int known = 0;
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        const struct proc_row *r = &procs[i];
        if (strcmp(r->name, symbol) != 0) continue;
        known = 1;
        if (version < r->since) continue;
        *pfn = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && r->ptds ? r->ptds : r->fn;
        if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
        return CUDA_SUCCESS;
    }
    if (status) *status = known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags) {
    return get_proc(symbol, pfn, cudaVersion, flags, NULL);
}

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *status) {
    return get_proc(symbol, pfn, cudaVersion, flags, status);
}

/* ---- device ------------------------------------------------------------------------------------------------- */

CUresult cuDeviceGet(CUdevice *device, int ordinal) {
    REQUIRE_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    REQUIRE_DEVICE(ordinal);
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
    REQUIRE_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
    REQUIRE_INIT();
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    REQUIRE_DEVICE(dev);
    snprintf(name, (size_t)len, "%s", SIM_DEVICE_NAME);
    return CUDA_SUCCESS;
}

static CUresult get_uuid(CUuuid *uuid, CUdevice dev) {
    REQUIRE_INIT();
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    REQUIRE_DEVICE(dev);
    sim_device_uuid((unsigned char *)uuid->bytes);
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev) { return get_uuid(uuid, dev); }
CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return get_uuid(uuid, dev); }

CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev) {
    REQUIRE_INIT();
    if (!pciBusId || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    REQUIRE_DEVICE(dev);
    snprintf(pciBusId, (size_t)len, "%s", SIM_PCI_BUS_ID);
    return CUDA_SUCCESS;
}

/* Attributes of an H100 SXM that programs commonly ask for; others in the driver's range read 0. */
static const struct {
    int attrib, value;
} attributes[] = {
    {1, 1024},        /* MAX_THREADS_PER_BLOCK */
    {2, 1024},        /* MAX_BLOCK_DIM_X */
    {3, 1024},        /* MAX_BLOCK_DIM_Y */
    {4, 64},          /* MAX_BLOCK_DIM_Z */
    {5, 2147483647},  /* MAX_GRID_DIM_X */
    {6, 65535},       /* MAX_GRID_DIM_Y */
    {7, 65535},       /* MAX_GRID_DIM_Z */
    {8, 49152},       /* MAX_SHARED_MEMORY_PER_BLOCK */
    {9, 65536},       /* TOTAL_CONSTANT_MEMORY */
    {10, 32},         /* WARP_SIZE */
    {11, 2147483647}, /* MAX_PITCH */
    {12, 65536},      /* MAX_REGISTERS_PER_BLOCK */
    {13, 1980000},    /* CLOCK_RATE (kHz) */
    {14, 512},        /* TEXTURE_ALIGNMENT */
    {15, 1},          /* GPU_OVERLAP */
    {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, SIM_SM_COUNT},
    {19, 1},          /* CAN_MAP_HOST_MEMORY */
    {31, 1},          /* CONCURRENT_KERNELS */
    {CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 0},
    {CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, 0},
    {36, 2619000},    /* MEMORY_CLOCK_RATE (kHz) */
    {37, 5120},       /* GLOBAL_MEMORY_BUS_WIDTH */
    {38, 52428800},   /* L2_CACHE_SIZE */
    {39, 2048},       /* MAX_THREADS_PER_MULTIPROCESSOR */
    {40, 3},          /* ASYNC_ENGINE_COUNT */
    {41, 1},          /* UNIFIED_ADDRESSING */
    {50, 0},          /* PCI_DOMAIN_ID */
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, SIM_CC_MAJOR},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, SIM_CC_MINOR},
    {81, 233472},     /* MAX_SHARED_MEMORY_PER_MULTIPROCESSOR */
    {82, 65536},      /* MAX_REGISTERS_PER_MULTIPROCESSOR */
    {83, 1},          /* MANAGED_MEMORY */
    {95, 1},          /* COOPERATIVE_LAUNCH */
    {97, 232448},     /* MAX_SHARED_MEMORY_PER_BLOCK_OPTIN */
    {106, 32},        /* MAX_BLOCKS_PER_MULTIPROCESSOR */
};

CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev) {
    REQUIRE_INIT();
    if (!pi || attrib <= 0 || attrib > 200) return CUDA_ERROR_INVALID_VALUE;
    REQUIRE_DEVICE(dev);
    *pi = 0;
    for (size_t i = 0; i < sizeof attributes / sizeof attributes[0]; i++)
        if (attributes[i].attrib == attrib) *pi = attributes[i].value;
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
    REQUIRE_INIT();
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    REQUIRE_DEVICE(dev);
    *bytes = (size_t)SIM_TOTAL_MEM;
    return CUDA_SUCCESS;
}

/* ---- contexts: bookkeeping only; all contexts of the process share its one engine ----------------------------- */

static int ctx_valid(CUcontext ctx) { return ctx && ctx->magic == CTX_MAGIC; }

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
    REQUIRE_INIT();
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    REQUIRE_DEVICE(dev);
    *pctx = &primary_ctx;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
    REQUIRE_INIT();
    REQUIRE_DEVICE(dev);
    return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev) {
    REQUIRE_INIT();
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    REQUIRE_DEVICE(dev);
    CUcontext ctx = calloc(1, sizeof *ctx);
    if (!ctx) return CUDA_ERROR_OUT_OF_MEMORY;
    ctx->magic = CTX_MAGIC;
    current_ctx = ctx;
    *pctx = ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxDestroy_v2(CUcontext ctx) {
    REQUIRE_INIT();
    if (!ctx_valid(ctx) || ctx->primary) return CUDA_ERROR_INVALID_CONTEXT;
    if (current_ctx == ctx) current_ctx = NULL;
    ctx->magic = 0; /* kept allocated (a few bytes): a stale handle reads as invalid, never as freed memory */
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
    REQUIRE_INIT();
    if (ctx && !ctx_valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    current_ctx = ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx) {
    REQUIRE_INIT();
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    *pctx = current_ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *device) {
    REQUIRE_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
    REQUIRE_INIT();
    return sim_ctx_sync();
}

/* ---- modules ------------------------------------------------------------------------------------------------ */

CUresult cuModuleLoadData(CUmodule *module, const void *image) {
    REQUIRE_INIT();
    return sim_module_load((struct sim_module **)module, image);
}

CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name) {
    REQUIRE_INIT();
    return sim_module_function((struct sim_function **)hfunc, (struct sim_module *)hmod, name);
}

CUresult cuModuleUnload(CUmodule hmod) {
    REQUIRE_INIT();
    return sim_module_unload((struct sim_module *)hmod);
}

CUresult cuFuncGetName(const char **name, CUfunction hfunc) {
    REQUIRE_INIT();
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    struct sim_function *f = sim_function_get(hfunc);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    *name = f->name;
    return CUDA_SUCCESS;
}

/* ---- memory ------------------------------------------------------------------------------------------------- */

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
    REQUIRE_INIT();
    if (!dptr) return CUDA_ERROR_INVALID_VALUE;
    void *p;
    CUresult rc = sim_mem_alloc(&p, bytesize);
    if (rc == CUDA_SUCCESS) *dptr = (CUdeviceptr)(uintptr_t)p;
    return rc;
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
    REQUIRE_INIT();
    if (!dptr) return CUDA_SUCCESS;
    return sim_mem_free((void *)(uintptr_t)dptr);
}

/* ---- streams and events ------------------------------------------------------------------------------------- */

static CUresult stream_create(CUstream *ph, unsigned flags, int priority) {
    REQUIRE_INIT();
    if (!ph || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
    return sim_stream_create((struct sim_stream **)ph, flags, priority);
}

CUresult cuStreamCreate(CUstream *phStream, unsigned int flags) { return stream_create(phStream, flags, 0); }

CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority) {
    return stream_create(phStream, flags, priority);
}

CUresult cuStreamDestroy_v2(CUstream hStream) {
    REQUIRE_INIT();
    return sim_stream_destroy(hStream);
}

static CUresult stream_query(CUstream h, int ptds) {
    REQUIRE_INIT();
    GET_STREAM(s, h, ptds);
    return sim_stream_query(s);
}

CUresult cuStreamQuery(CUstream hStream) { return stream_query(hStream, 0); }
CUresult cuStreamQuery_ptsz(CUstream hStream) { return stream_query(hStream, 1); }

static CUresult stream_sync(CUstream h, int ptds) {
    REQUIRE_INIT();
    GET_STREAM(s, h, ptds);
    return sim_stream_sync(s);
}

CUresult cuStreamSynchronize(CUstream hStream) { return stream_sync(hStream, 0); }
CUresult cuStreamSynchronize_ptsz(CUstream hStream) { return stream_sync(hStream, 1); }

static CUresult stream_wait_event(CUstream h, CUevent ev, unsigned flags, int ptds) {
    REQUIRE_INIT();
    GET_STREAM(s, h, ptds);
    struct sim_event *e = sim_event_get(ev);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    return sim_stream_wait_event(s, e);
}

CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int flags) {
    return stream_wait_event(hStream, hEvent, flags, 0);
}
CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int flags) {
    return stream_wait_event(hStream, hEvent, flags, 1);
}

static CUresult begin_capture(CUstream h, CUstreamCaptureMode mode, int ptds) {
    REQUIRE_INIT();
    GET_STREAM(s, h, ptds);
    return sim_capture_begin(s, mode);
}

CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) { return begin_capture(hStream, mode, 0); }
CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
    return begin_capture(hStream, mode, 1);
}

static CUresult end_capture(CUstream h, CUgraph *phGraph, int ptds) {
    REQUIRE_INIT();
    if (!phGraph) return CUDA_ERROR_INVALID_VALUE;
    GET_STREAM(s, h, ptds);
    return sim_capture_end(s, (struct sim_graph **)phGraph);
}

CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph) { return end_capture(hStream, phGraph, 0); }
CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph) { return end_capture(hStream, phGraph, 1); }

CUresult cuEventCreate(CUevent *phEvent, unsigned int flags) {
    REQUIRE_INIT();
    if (!phEvent || flags > 0xf) return CUDA_ERROR_INVALID_VALUE;
    return sim_event_create((struct sim_event **)phEvent, flags);
}

static CUresult event_record(CUevent ev, CUstream h, int ptds) {
    REQUIRE_INIT();
    struct sim_event *e = sim_event_get(ev);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    GET_STREAM(s, h, ptds);
    return sim_event_record(e, s);
}

CUresult cuEventRecord(CUevent hEvent, CUstream hStream) { return event_record(hEvent, hStream, 0); }
CUresult cuEventRecord_ptsz(CUevent hEvent, CUstream hStream) { return event_record(hEvent, hStream, 1); }

CUresult cuEventQuery(CUevent hEvent) {
    REQUIRE_INIT();
    struct sim_event *e = sim_event_get(hEvent);
    return e ? sim_event_query(e) : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuEventSynchronize(CUevent hEvent) {
    REQUIRE_INIT();
    struct sim_event *e = sim_event_get(hEvent);
    return e ? sim_event_sync(e) : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuEventElapsedTime(float *ms, CUevent hStart, CUevent hEnd) {
    REQUIRE_INIT();
    if (!ms) return CUDA_ERROR_INVALID_VALUE;
    struct sim_event *a = sim_event_get(hStart), *b = sim_event_get(hEnd);
    if (!a || !b) return CUDA_ERROR_INVALID_HANDLE;
    return sim_event_elapsed(ms, a, b);
}

CUresult cuEventDestroy_v2(CUevent hEvent) {
    REQUIRE_INIT();
    struct sim_event *e = sim_event_get(hEvent);
    return e ? sim_event_destroy(e) : CUDA_ERROR_INVALID_HANDLE;
}

/* ---- launches ---------------------------------------------------------------------------------------------- */

static inline CUresult launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                              unsigned bz, CUstream h, void **params, void **extra, int ptds) {
    REQUIRE_INIT();
    struct sim_function *fn = sim_function_get(f);
    if (!fn) return CUDA_ERROR_INVALID_HANDLE;
    if (!gx || !gy || !gz || !bx || !by || !bz || (uint64_t)bx * by * bz > 1024 || (params && extra))
        return CUDA_ERROR_INVALID_VALUE;
    GET_STREAM(s, h, ptds);
    return sim_launch(s, fn->name, NULL, sim_kernel_us(params, extra), NULL, NULL);
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                        unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                        unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra) {
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, kernelParams, extra, 0);
}

CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                             unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                             unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra) {
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, kernelParams, extra, 1);
}

static CUresult launch_ex(const CUlaunchConfig *c, CUfunction f, void **params, void **extra, int ptds) {
    if (!c) return atomic_load(&initialized) ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED;
    return launch(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY, c->blockDimZ, c->hStream,
                  params, extra, ptds);
}

CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra) {
    return launch_ex(config, f, kernelParams, extra, 0);
}

CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra) {
    return launch_ex(config, f, kernelParams, extra, 1);
}

CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                   unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                   unsigned int sharedMemBytes, CUstream hStream, void **kernelParams) {
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, kernelParams, NULL, 0);
}

CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                        void **kernelParams) {
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, kernelParams, NULL, 1);
}

static CUresult host_func(CUstream h, CUhostFn fn, void *userData, int ptds) {
    REQUIRE_INIT();
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    GET_STREAM(s, h, ptds);
    return sim_host_func(s, fn, userData);
}

CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData) { return host_func(hStream, fn, userData, 0); }
CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData) {
    return host_func(hStream, fn, userData, 1);
}

/* ---- graphs ------------------------------------------------------------------------------------------------- */

CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags) {
    REQUIRE_INIT();
    if (!phGraphExec) return CUDA_ERROR_INVALID_VALUE;
    return sim_graph_instantiate((struct sim_graph_exec **)phGraphExec, hGraph);
}

static CUresult graph_launch(CUgraphExec x, CUstream h, int ptds) {
    REQUIRE_INIT();
    GET_STREAM(s, h, ptds);
    return sim_graph_launch(x, s);
}

CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) { return graph_launch(hGraphExec, hStream, 0); }
CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) { return graph_launch(hGraphExec, hStream, 1); }

CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
    REQUIRE_INIT();
    return sim_graph_exec_destroy(hGraphExec);
}

CUresult cuGraphDestroy(CUgraph hGraph) {
    REQUIRE_INIT();
    return sim_graph_destroy(hGraph);
}

/* ---- copies and fills ------------------------------------------------------------------------------------------ */

static struct sim_copy linear(CUdeviceptr dst, const void *src, size_t bytes) {
    return (struct sim_copy){(unsigned char *)(uintptr_t)dst, src, bytes, 1, 1, bytes, bytes, bytes, bytes};
}

static CUresult copy(CUdeviceptr dst, const void *src, size_t bytes, int async, CUstream h, int ptds) {
    REQUIRE_INIT();
    GET_STREAM(s, h, ptds);
    if (bytes && (!dst || !src)) return CUDA_ERROR_INVALID_VALUE;
    struct sim_copy c = linear(dst, src, bytes);
    return async ? sim_copy_async(s, &c) : sim_copy_sync(s, &c);
}

#define HOST(p) ((CUdeviceptr)(uintptr_t)(p))
#define DEV(p) ((const void *)(uintptr_t)(p))

CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t bytes) { return copy(dst, DEV(src), bytes, 0, NULL, 0); }
CUresult cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    return copy(dst, DEV(src), bytes, 0, NULL, 1);
}
CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hStream) {
    return copy(dst, DEV(src), bytes, 1, hStream, 0);
}
CUresult cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hStream) {
    return copy(dst, DEV(src), bytes, 1, hStream, 1);
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes) { return copy(dst, src, bytes, 0, NULL, 0); }
CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void *src, size_t bytes) {
    return copy(dst, src, bytes, 0, NULL, 1);
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes) {
    return copy(HOST(dst), DEV(src), bytes, 0, NULL, 0);
}
CUresult cuMemcpyDtoH_v2_ptds(void *dst, CUdeviceptr src, size_t bytes) {
    return copy(HOST(dst), DEV(src), bytes, 0, NULL, 1);
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    return copy(dst, DEV(src), bytes, 0, NULL, 0);
}
CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    return copy(dst, DEV(src), bytes, 0, NULL, 1);
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes, CUstream hStream) {
    return copy(dst, src, bytes, 1, hStream, 0);
}
CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dst, const void *src, size_t bytes, CUstream hStream) {
    return copy(dst, src, bytes, 1, hStream, 1);
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t bytes, CUstream hStream) {
    return copy(HOST(dst), DEV(src), bytes, 1, hStream, 0);
}
CUresult cuMemcpyDtoHAsync_v2_ptsz(void *dst, CUdeviceptr src, size_t bytes, CUstream hStream) {
    return copy(HOST(dst), DEV(src), bytes, 1, hStream, 1);
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hStream) {
    return copy(dst, DEV(src), bytes, 1, hStream, 0);
}
CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hStream) {
    return copy(dst, DEV(src), bytes, 1, hStream, 1);
}
CUresult cuMemcpyPeer(CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t bytes) {
    return copy(dst, DEV(src), bytes, 0, NULL, 0);
}
CUresult cuMemcpyPeer_ptds(CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t bytes) {
    return copy(dst, DEV(src), bytes, 0, NULL, 1);
}
CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t bytes,
                           CUstream hStream) {
    return copy(dst, DEV(src), bytes, 1, hStream, 0);
}
CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t bytes,
                                CUstream hStream) {
    return copy(dst, DEV(src), bytes, 1, hStream, 1);
}

/* The address a CUDA_MEMCPY2D/3D side names: host and device (and unified) memory; arrays are not simulated. */
static CUresult side(CUmemorytype type, const void *host, CUdeviceptr device, CUarray array, const void **out) {
    switch (type) {
    case CU_MEMORYTYPE_HOST:
        *out = host;
        return CUDA_SUCCESS;
    case CU_MEMORYTYPE_DEVICE:
    case CU_MEMORYTYPE_UNIFIED:
        *out = DEV(device);
        return CUDA_SUCCESS;
    case CU_MEMORYTYPE_ARRAY:
        return CUDA_ERROR_NOT_SUPPORTED;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static CUresult block_copy(const CUDA_MEMCPY3D *d, int async, CUstream h, int ptds) {
    REQUIRE_INIT();
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    GET_STREAM(s, h, ptds);
    const void *src, *dst;
    CUresult rc = side(d->srcMemoryType, d->srcHost, d->srcDevice, d->srcArray, &src);
    if (rc == CUDA_SUCCESS) rc = side(d->dstMemoryType, d->dstHost, d->dstDevice, d->dstArray, &dst);
    if (rc != CUDA_SUCCESS) return rc;
    size_t w = d->WidthInBytes, ht = d->Height, dp = d->Depth;
    if (!w || !ht || !dp) return CUDA_SUCCESS;
    if (!src || !dst || d->srcLOD || d->dstLOD) return CUDA_ERROR_INVALID_VALUE;
    if ((ht > 1 || dp > 1) && (d->srcPitch < w || d->dstPitch < w)) return CUDA_ERROR_INVALID_VALUE;
    if (dp > 1 && (d->srcHeight < ht || d->dstHeight < ht)) return CUDA_ERROR_INVALID_VALUE;
    size_t sslice = d->srcPitch * d->srcHeight, dslice = d->dstPitch * d->dstHeight;
    struct sim_copy c = {
        .dst = (unsigned char *)dst + d->dstZ * dslice + d->dstY * d->dstPitch + d->dstXInBytes,
        .src = (const unsigned char *)src + d->srcZ * sslice + d->srcY * d->srcPitch + d->srcXInBytes,
        .width = w, .height = ht, .depth = dp,
        .dpitch = d->dstPitch, .spitch = d->srcPitch, .dslice = dslice, .sslice = sslice,
    };
    return async ? sim_copy_async(s, &c) : sim_copy_sync(s, &c);
}

static CUresult copy_2d(const CUDA_MEMCPY2D *c, int async, CUstream h, int ptds) {
    if (!c) return atomic_load(&initialized) ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_INITIALIZED;
    CUDA_MEMCPY3D d = {
        .srcXInBytes = c->srcXInBytes, .srcY = c->srcY, .srcMemoryType = c->srcMemoryType, .srcHost = c->srcHost,
        .srcDevice = c->srcDevice, .srcArray = c->srcArray, .srcPitch = c->srcPitch, .srcHeight = c->Height,
        .dstXInBytes = c->dstXInBytes, .dstY = c->dstY, .dstMemoryType = c->dstMemoryType, .dstHost = c->dstHost,
        .dstDevice = c->dstDevice, .dstArray = c->dstArray, .dstPitch = c->dstPitch, .dstHeight = c->Height,
        .WidthInBytes = c->WidthInBytes, .Height = c->Height, .Depth = 1,
    };
    return block_copy(&d, async, h, ptds);
}

CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *copy) { return copy_2d(copy, 0, NULL, 0); }
CUresult cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D *copy) { return copy_2d(copy, 0, NULL, 1); }
CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *copy, CUstream hStream) { return copy_2d(copy, 1, hStream, 0); }
CUresult cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D *copy, CUstream hStream) { return copy_2d(copy, 1, hStream, 1); }
CUresult cuMemcpy3D_v2(const CUDA_MEMCPY3D *copy) { return block_copy(copy, 0, NULL, 0); }
CUresult cuMemcpy3D_v2_ptds(const CUDA_MEMCPY3D *copy) { return block_copy(copy, 0, NULL, 1); }
CUresult cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *copy, CUstream hStream) { return block_copy(copy, 1, hStream, 0); }
CUresult cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D *copy, CUstream hStream) {
    return block_copy(copy, 1, hStream, 1);
}

/* width counts elements of elem bytes; pitch is in bytes. */
static CUresult fill(CUdeviceptr dst, size_t pitch, uint32_t value, unsigned elem, size_t width, size_t height,
                     int async, CUstream h, int ptds) {
    REQUIRE_INIT();
    GET_STREAM(s, h, ptds);
    if (!width || !height) return CUDA_SUCCESS;
    if (!dst || dst % elem || (height > 1 && pitch < width * elem)) return CUDA_ERROR_INVALID_VALUE;
    struct sim_copy c = {.dst = (unsigned char *)(uintptr_t)dst, .width = width, .height = height, .depth = 1,
                         .dpitch = pitch};
    return async ? sim_fill_async(s, &c, elem, value) : sim_fill_sync(s, &c, elem, value);
}

CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t n) { return fill(dst, n, value, 1, n, 1, 0, NULL, 0); }
CUresult cuMemsetD8_v2_ptds(CUdeviceptr dst, unsigned char value, size_t n) {
    return fill(dst, n, value, 1, n, 1, 0, NULL, 1);
}
CUresult cuMemsetD16_v2(CUdeviceptr dst, unsigned short value, size_t n) {
    return fill(dst, 2 * n, value, 2, n, 1, 0, NULL, 0);
}
CUresult cuMemsetD16_v2_ptds(CUdeviceptr dst, unsigned short value, size_t n) {
    return fill(dst, 2 * n, value, 2, n, 1, 0, NULL, 1);
}
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, size_t n) {
    return fill(dst, 4 * n, value, 4, n, 1, 0, NULL, 0);
}
CUresult cuMemsetD32_v2_ptds(CUdeviceptr dst, unsigned int value, size_t n) {
    return fill(dst, 4 * n, value, 4, n, 1, 0, NULL, 1);
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t n, CUstream hStream) {
    return fill(dst, n, value, 1, n, 1, 1, hStream, 0);
}
CUresult cuMemsetD8Async_ptsz(CUdeviceptr dst, unsigned char value, size_t n, CUstream hStream) {
    return fill(dst, n, value, 1, n, 1, 1, hStream, 1);
}
CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short value, size_t n, CUstream hStream) {
    return fill(dst, 2 * n, value, 2, n, 1, 1, hStream, 0);
}
CUresult cuMemsetD16Async_ptsz(CUdeviceptr dst, unsigned short value, size_t n, CUstream hStream) {
    return fill(dst, 2 * n, value, 2, n, 1, 1, hStream, 1);
}
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int value, size_t n, CUstream hStream) {
    return fill(dst, 4 * n, value, 4, n, 1, 1, hStream, 0);
}
CUresult cuMemsetD32Async_ptsz(CUdeviceptr dst, unsigned int value, size_t n, CUstream hStream) {
    return fill(dst, 4 * n, value, 4, n, 1, 1, hStream, 1);
}
CUresult cuMemsetD2D8Async(CUdeviceptr dst, size_t pitch, unsigned char value, size_t width, size_t height,
                           CUstream hStream) {
    return fill(dst, pitch, value, 1, width, height, 1, hStream, 0);
}
CUresult cuMemsetD2D8Async_ptsz(CUdeviceptr dst, size_t pitch, unsigned char value, size_t width, size_t height,
                                CUstream hStream) {
    return fill(dst, pitch, value, 1, width, height, 1, hStream, 1);
}
CUresult cuMemsetD2D16Async(CUdeviceptr dst, size_t pitch, unsigned short value, size_t width, size_t height,
                            CUstream hStream) {
    return fill(dst, pitch, value, 2, width, height, 1, hStream, 0);
}
CUresult cuMemsetD2D16Async_ptsz(CUdeviceptr dst, size_t pitch, unsigned short value, size_t width, size_t height,
                                 CUstream hStream) {
    return fill(dst, pitch, value, 2, width, height, 1, hStream, 1);
}
CUresult cuMemsetD2D32Async(CUdeviceptr dst, size_t pitch, unsigned int value, size_t width, size_t height,
                            CUstream hStream) {
    return fill(dst, pitch, value, 4, width, height, 1, hStream, 0);
}
CUresult cuMemsetD2D32Async_ptsz(CUdeviceptr dst, size_t pitch, unsigned int value, size_t width, size_t height,
                                 CUstream hStream) {
    return fill(dst, pitch, value, 4, width, height, 1, hStream, 1);
}
