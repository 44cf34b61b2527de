/* The simulated GPU's HIP face (libamdhip64.so.6): every entry point of TG_HIP_FUNCTIONS over the engine. HIP needs no
 * explicit initialisation. Entry points never call each other (a shim in front would see the call twice).
 * _spt variants differ only in what a NULL stream means (the calling thread's per-thread default stream). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "sim.h"
#include "tailguard/hip_abi.h"

#define hipErrorInvalidConfiguration 9
#define hipErrorInvalidMemcpyDirection 21
#define hipErrorInvalidDeviceFunction 98
#define hipErrorIllegalState 401
#define hipErrorNotPermitted 800
#define hipErrorStreamCaptureUnsupported 900

#define GET_STREAM(var, handle, spt)                                                                                   \
    sim_init();                                                                                                        \
    struct sim_stream *var = sim_stream_get((handle), (spt));                                                          \
    if (!var) return hipErrorInvalidHandle

/* ---- initialisation, errors, device ------------------------------------------------------------------------- */

hipError_t hipInit(unsigned int flags) {
    if (flags) return hipErrorInvalidValue;
    sim_init();
    return hipSuccess;
}

hipError_t hipDriverGetVersion(int *version) {
    if (!version) return hipErrorInvalidValue;
    *version = SIM_HIP_VERSION;
    return hipSuccess;
}

hipError_t hipRuntimeGetVersion(int *version) {
    if (!version) return hipErrorInvalidValue;
    *version = SIM_HIP_VERSION;
    return hipSuccess;
}

const char *hipGetErrorString(hipError_t error) {
    switch (error) {
    case hipSuccess: return "no error";
    case hipErrorInvalidValue: return "invalid argument";
    case hipErrorOutOfMemory: return "out of memory";
    case hipErrorNotInitialized: return "initialization error";
    case hipErrorInvalidConfiguration: return "invalid configuration argument";
    case hipErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case hipErrorInvalidDeviceFunction: return "invalid device function";
    case hipErrorNoDevice: return "no ROCm-capable device is detected";
    case hipErrorInvalidDevice: return "invalid device ordinal";
    case hipErrorInvalidHandle: return "invalid resource handle";
    case hipErrorIllegalState: return "the operation cannot be performed in the present state";
    case hipErrorNotFound: return "named symbol not found";
    case hipErrorNotReady: return "device not ready";
    case hipErrorNotPermitted: return "operation not permitted";
    case hipErrorNotSupported: return "operation not supported";
    case hipErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    default: return "unknown error";
    }
}

hipError_t hipGetDeviceCount(int *count) {
    if (!count) return hipErrorInvalidValue;
    sim_init();
    *count = 1;
    return hipSuccess;
}

hipError_t hipSetDevice(int device) {
    sim_init();
    return device == 0 ? hipSuccess : hipErrorInvalidDevice;
}

hipError_t hipGetDevice(int *device) {
    if (!device) return hipErrorInvalidValue;
    sim_init();
    *device = 0;
    return hipSuccess;
}

hipError_t hipDeviceGetName(char *name, int len, hipDevice_t device) {
    if (!name || len <= 0) return hipErrorInvalidValue;
    if (device != 0) return hipErrorInvalidDevice;
    sim_init();
    snprintf(name, (size_t)len, "%s", SIM_DEVICE_NAME);
    return hipSuccess;
}

hipError_t hipDeviceGetUuid(hipUUID *uuid, hipDevice_t device) {
    if (!uuid) return hipErrorInvalidValue;
    if (device != 0) return hipErrorInvalidDevice;
    sim_init();
    sim_device_uuid((unsigned char *)uuid->bytes);
    return hipSuccess;
}

hipError_t hipDeviceGetPCIBusId(char *pciBusId, int len, int device) {
    if (!pciBusId || len <= 0) return hipErrorInvalidValue;
    if (device != 0) return hipErrorInvalidDevice;
    sim_init();
    snprintf(pciBusId, (size_t)len, "%s", SIM_PCI_BUS_ID);
    return hipSuccess;
}

hipError_t hipDeviceSynchronize(void) {
    sim_init();
    return sim_ctx_sync();
}

/* ---- memory ----------------------------------------------------------------------------------------------- */

hipError_t hipMalloc(void **ptr, size_t size) {
    if (!ptr) return hipErrorInvalidValue;
    sim_init();
    *ptr = NULL;
    return size ? sim_mem_alloc(ptr, size) : hipSuccess;
}

hipError_t hipFree(void *ptr) {
    sim_init();
    return ptr ? sim_mem_free(ptr) : hipSuccess;
}

/* ---- modules and names ------------------------------------------------------------------------------------- */

hipError_t hipModuleLoadData(hipModule_t *module, const void *image) {
    sim_init();
    return sim_module_load((struct sim_module **)module, image);
}

hipError_t hipModuleGetFunction(hipFunction_t *function, hipModule_t module, const char *kname) {
    sim_init();
    return sim_module_function((struct sim_function **)function, (struct sim_module *)module, kname);
}

hipError_t hipModuleUnload(hipModule_t module) {
    sim_init();
    return sim_module_unload((struct sim_module *)module);
}

const char *hipKernelNameRef(const hipFunction_t f) {
    struct sim_function *fn = sim_function_get(f);
    return fn ? fn->name : NULL;
}

const char *hipKernelNameRefByPtr(const void *hostFunction, hipStream_t stream) {
    return sim_host_kernel_name(hostFunction);
}

/* ---- streams and events ------------------------------------------------------------------------------------ */

static hipError_t stream_create(hipStream_t *stream, unsigned flags, int priority) {
    if (!stream || (flags & ~(unsigned)hipStreamNonBlocking)) return hipErrorInvalidValue;
    sim_init();
    return sim_stream_create((struct sim_stream **)stream, flags, priority);
}

hipError_t hipStreamCreate(hipStream_t *stream) { return stream_create(stream, 0, 0); }
hipError_t hipStreamCreateWithFlags(hipStream_t *stream, unsigned int flags) { return stream_create(stream, flags, 0); }
hipError_t hipStreamCreateWithPriority(hipStream_t *stream, unsigned int flags, int priority) {
    return stream_create(stream, flags, priority);
}

hipError_t hipStreamDestroy(hipStream_t stream) {
    sim_init();
    return sim_stream_destroy(stream);
}

hipError_t hipStreamQuery(hipStream_t stream) {
    GET_STREAM(s, stream, 0);
    return sim_stream_query(s);
}

static hipError_t stream_sync(hipStream_t stream, int spt) {
    GET_STREAM(s, stream, spt);
    return sim_stream_sync(s);
}

hipError_t hipStreamSynchronize(hipStream_t stream) { return stream_sync(stream, 0); }
hipError_t hipStreamSynchronize_spt(hipStream_t stream) { return stream_sync(stream, 1); }

static hipError_t stream_wait_event(hipStream_t stream, hipEvent_t event, int spt) {
    GET_STREAM(s, stream, spt);
    struct sim_event *e = sim_event_get(event);
    if (!e) return hipErrorInvalidHandle;
    return sim_stream_wait_event(s, e);
}

hipError_t hipStreamWaitEvent(hipStream_t stream, hipEvent_t event, unsigned int flags) {
    return stream_wait_event(stream, event, 0);
}
hipError_t hipStreamWaitEvent_spt(hipStream_t stream, hipEvent_t event, unsigned int flags) {
    return stream_wait_event(stream, event, 1);
}

hipError_t hipStreamBeginCapture(hipStream_t stream, hipStreamCaptureMode mode) {
    GET_STREAM(s, stream, 0);
    return sim_capture_begin(s, mode);
}

hipError_t hipStreamEndCapture(hipStream_t stream, hipGraph_t *pGraph) {
    if (!pGraph) return hipErrorInvalidValue;
    GET_STREAM(s, stream, 0);
    return sim_capture_end(s, (struct sim_graph **)pGraph);
}

static hipError_t event_create(hipEvent_t *event, unsigned flags) {
    if (!event || flags > 0xf) return hipErrorInvalidValue;
    sim_init();
    return sim_event_create((struct sim_event **)event, flags);
}

hipError_t hipEventCreate(hipEvent_t *event) { return event_create(event, 0); }
hipError_t hipEventCreateWithFlags(hipEvent_t *event, unsigned flags) { return event_create(event, flags); }

hipError_t hipEventRecord(hipEvent_t event, hipStream_t stream) {
    GET_STREAM(s, stream, 0);
    struct sim_event *e = sim_event_get(event);
    return e ? sim_event_record(e, s) : hipErrorInvalidHandle;
}

hipError_t hipEventQuery(hipEvent_t event) {
    struct sim_event *e = sim_event_get(event);
    return e ? sim_event_query(e) : hipErrorInvalidHandle;
}

hipError_t hipEventSynchronize(hipEvent_t event) {
    struct sim_event *e = sim_event_get(event);
    return e ? sim_event_sync(e) : hipErrorInvalidHandle;
}

hipError_t hipEventElapsedTime(float *ms, hipEvent_t start, hipEvent_t stop) {
    if (!ms) return hipErrorInvalidValue;
    struct sim_event *a = sim_event_get(start), *b = sim_event_get(stop);
    if (!a || !b) return hipErrorInvalidHandle;
    return sim_event_elapsed(ms, a, b);
}

hipError_t hipEventDestroy(hipEvent_t event) {
    struct sim_event *e = sim_event_get(event);
    return e ? sim_event_destroy(e) : hipErrorInvalidHandle;
}

/* ---- launches ---------------------------------------------------------------------------------------------- */

/* Optional start/stop events of the hipExt* launches. */
static int ext_events(hipEvent_t start, hipEvent_t stop, struct sim_event **a, struct sim_event **b) {
    *a = start ? sim_event_get(start) : NULL;
    *b = stop ? sim_event_get(stop) : NULL;
    return (start && !*a) || (stop && !*b);
}

static inline hipError_t launch_host_fn(const void *fn, dim3 grid, dim3 block, void **args, hipStream_t stream,
                                        int spt, hipEvent_t start, hipEvent_t stop) {
    GET_STREAM(s, stream, spt);
    if (!fn) return hipErrorInvalidDeviceFunction;
    if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z ||
        (uint64_t)block.x * block.y * block.z > 1024)
        return hipErrorInvalidConfiguration;
    struct sim_event *a, *b;
    if (ext_events(start, stop, &a, &b)) return hipErrorInvalidHandle;
    return sim_launch(s, NULL, fn, sim_kernel_us(args, NULL), a, b);
}

hipError_t hipLaunchKernel(const void *function_address, dim3 numBlocks, dim3 dimBlocks, void **args,
                           size_t sharedMemBytes, hipStream_t stream) {
    return launch_host_fn(function_address, numBlocks, dimBlocks, args, stream, 0, NULL, NULL);
}

hipError_t hipLaunchKernel_spt(const void *function_address, dim3 numBlocks, dim3 dimBlocks, void **args,
                               size_t sharedMemBytes, hipStream_t stream) {
    return launch_host_fn(function_address, numBlocks, dimBlocks, args, stream, 1, NULL, NULL);
}

hipError_t hipExtLaunchKernel(const void *function_address, dim3 numBlocks, dim3 dimBlocks, void **args,
                              size_t sharedMemBytes, hipStream_t stream, hipEvent_t startEvent, hipEvent_t stopEvent,
                              int flags) {
    return launch_host_fn(function_address, numBlocks, dimBlocks, args, stream, 0, startEvent, stopEvent);
}

static inline hipError_t launch_module(hipFunction_t f, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t bx,
                                       uint32_t by, uint32_t bz, hipStream_t stream, void **params, void **extra,
                                       hipEvent_t start, hipEvent_t stop) {
    GET_STREAM(s, stream, 0);
    struct sim_function *fn = sim_function_get(f);
    if (!fn) return hipErrorInvalidHandle;
    if (!gx || !gy || !gz || !bx || !by || !bz || (uint64_t)bx * by * bz > 1024) return hipErrorInvalidConfiguration;
    if (params && extra) return hipErrorInvalidValue;
    struct sim_event *a, *b;
    if (ext_events(start, stop, &a, &b)) return hipErrorInvalidHandle;
    return sim_launch(s, fn->name, NULL, sim_kernel_us(params, extra), a, b);
}

hipError_t hipModuleLaunchKernel(hipFunction_t f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                 unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                 unsigned int sharedMemBytes, hipStream_t stream, void **kernelParams, void **extra) {
    return launch_module(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, stream, kernelParams, extra,
                         NULL, NULL);
}

/* Global work sizes count threads (HIP's OpenCL-style launch), so the grid is global / local. */
hipError_t hipExtModuleLaunchKernel(hipFunction_t f, uint32_t globalWorkSizeX, uint32_t globalWorkSizeY,
                                    uint32_t globalWorkSizeZ, uint32_t localWorkSizeX, uint32_t localWorkSizeY,
                                    uint32_t localWorkSizeZ, size_t sharedMemBytes, hipStream_t hStream,
                                    void **kernelParams, void **extra, hipEvent_t startEvent, hipEvent_t stopEvent,
                                    uint32_t flags) {
    return launch_module(f, globalWorkSizeX, globalWorkSizeY, globalWorkSizeZ, localWorkSizeX, localWorkSizeY,
                         localWorkSizeZ, hStream, kernelParams, extra, startEvent, stopEvent);
}

hipError_t hipLaunchHostFunc(hipStream_t stream, hipHostFn_t fn, void *userData) {
    GET_STREAM(s, stream, 0);
    if (!fn) return hipErrorInvalidValue;
    return sim_host_func(s, fn, userData);
}

/* ---- graphs ---------------------------------------------------------------------------------------------- */

hipError_t hipGraphInstantiate(hipGraphExec_t *pGraphExec, hipGraph_t graph, hipGraphNode_t *pErrorNode,
                               char *pLogBuffer, size_t bufferSize) {
    if (!pGraphExec) return hipErrorInvalidValue;
    sim_init();
    if (pErrorNode) *pErrorNode = NULL;
    if (pLogBuffer && bufferSize) pLogBuffer[0] = 0;
    return sim_graph_instantiate((struct sim_graph_exec **)pGraphExec, graph);
}

hipError_t hipGraphLaunch(hipGraphExec_t graphExec, hipStream_t stream) {
    GET_STREAM(s, stream, 0);
    return sim_graph_launch(graphExec, s);
}

hipError_t hipGraphExecDestroy(hipGraphExec_t graphExec) {
    sim_init();
    return sim_graph_exec_destroy(graphExec);
}

hipError_t hipGraphDestroy(hipGraph_t graph) {
    sim_init();
    return sim_graph_destroy(graph);
}

/* ---- copies and fills ------------------------------------------------------------------------------------------ */

static hipError_t copy(void *dst, const void *src, size_t bytes, int kind, int async, hipStream_t stream, int spt) {
    GET_STREAM(s, stream, spt);
    if (kind < hipMemcpyHostToHost || kind > hipMemcpyDefault) return hipErrorInvalidMemcpyDirection;
    if (!bytes) return hipSuccess;
    if (!dst || !src) return hipErrorInvalidValue;
    struct sim_copy c = {dst, src, bytes, 1, 1, bytes, bytes, bytes, bytes};
    return async ? sim_copy_async(s, &c) : sim_copy_sync(s, &c);
}

hipError_t hipMemcpy(void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind) {
    return copy(dst, src, sizeBytes, kind, 0, NULL, 0);
}
hipError_t hipMemcpy_spt(void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind) {
    return copy(dst, src, sizeBytes, kind, 0, NULL, 1);
}
hipError_t hipMemcpyAsync(void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind, hipStream_t stream) {
    return copy(dst, src, sizeBytes, kind, 1, stream, 0);
}
hipError_t hipMemcpyAsync_spt(void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind, hipStream_t stream) {
    return copy(dst, src, sizeBytes, kind, 1, stream, 1);
}
hipError_t hipMemcpyHtoD(hipDeviceptr_t dst, void *src, size_t sizeBytes) {
    return copy(dst, src, sizeBytes, hipMemcpyHostToDevice, 0, NULL, 0);
}
hipError_t hipMemcpyDtoH(void *dst, hipDeviceptr_t src, size_t sizeBytes) {
    return copy(dst, src, sizeBytes, hipMemcpyDeviceToHost, 0, NULL, 0);
}
hipError_t hipMemcpyDtoD(hipDeviceptr_t dst, hipDeviceptr_t src, size_t sizeBytes) {
    return copy(dst, src, sizeBytes, hipMemcpyDeviceToDevice, 0, NULL, 0);
}
hipError_t hipMemcpyHtoDAsync(hipDeviceptr_t dst, void *src, size_t sizeBytes, hipStream_t stream) {
    return copy(dst, src, sizeBytes, hipMemcpyHostToDevice, 1, stream, 0);
}
hipError_t hipMemcpyDtoHAsync(void *dst, hipDeviceptr_t src, size_t sizeBytes, hipStream_t stream) {
    return copy(dst, src, sizeBytes, hipMemcpyDeviceToHost, 1, stream, 0);
}
hipError_t hipMemcpyDtoDAsync(hipDeviceptr_t dst, hipDeviceptr_t src, size_t sizeBytes, hipStream_t stream) {
    return copy(dst, src, sizeBytes, hipMemcpyDeviceToDevice, 1, stream, 0);
}

/* count is in elements of elem bytes. */
static hipError_t fill(void *dst, uint32_t value, unsigned elem, size_t count, int async, hipStream_t stream) {
    GET_STREAM(s, stream, 0);
    if (!count) return hipSuccess;
    if (!dst || (uintptr_t)dst % elem) return hipErrorInvalidValue;
    struct sim_copy c = {.dst = dst, .width = count, .height = 1, .depth = 1, .dpitch = count * elem};
    return async ? sim_fill_async(s, &c, elem, value) : sim_fill_sync(s, &c, elem, value);
}

hipError_t hipMemset(void *dst, int value, size_t sizeBytes) {
    return fill(dst, (unsigned char)value, 1, sizeBytes, 0, NULL);
}
hipError_t hipMemsetAsync(void *dst, int value, size_t sizeBytes, hipStream_t stream) {
    return fill(dst, (unsigned char)value, 1, sizeBytes, 1, stream);
}
hipError_t hipMemsetD8(hipDeviceptr_t dst, unsigned char value, size_t count) {
    return fill(dst, value, 1, count, 0, NULL);
}
hipError_t hipMemsetD8Async(hipDeviceptr_t dst, unsigned char value, size_t count, hipStream_t stream) {
    return fill(dst, value, 1, count, 1, stream);
}
hipError_t hipMemsetD16(hipDeviceptr_t dst, unsigned short value, size_t count) {
    return fill(dst, value, 2, count, 0, NULL);
}
hipError_t hipMemsetD16Async(hipDeviceptr_t dst, unsigned short value, size_t count, hipStream_t stream) {
    return fill(dst, value, 2, count, 1, stream);
}
hipError_t hipMemsetD32(hipDeviceptr_t dst, int value, size_t count) {
    return fill(dst, (uint32_t)value, 4, count, 0, NULL);
}
hipError_t hipMemsetD32Async(hipDeviceptr_t dst, int value, size_t count, hipStream_t stream) {
    return fill(dst, (uint32_t)value, 4, count, 1, stream);
}
