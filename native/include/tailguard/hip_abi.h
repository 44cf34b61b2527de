/* The subset of the HIP runtime ABI (ROCm, libamdhip64) that tailguard uses, declared here so that building needs no
 * ROCm installation. test/abi-conformance proves every declaration against the real hip_runtime_api.h.
 *
 * Never include this together with the real HIP headers: the names are the same on purpose (the shim exports them). */
#ifndef TAILGUARD_HIP_ABI_H
#define TAILGUARD_HIP_ABI_H
#ifdef HIP_INCLUDE_HIP_HIP_RUNTIME_API_H
#error "tailguard/hip_abi.h declares the HIP ABI itself; do not include it next to <hip/hip_runtime_api.h>"
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int hipError_t; /* an enum in HIP; same size and values */
typedef int hipDevice_t;
typedef void *hipDeviceptr_t;
typedef struct ihipStream_t *hipStream_t;
typedef struct ihipModule_t *hipModule_t;
typedef struct ihipModuleSymbol_t *hipFunction_t;
typedef struct ihipEvent_t *hipEvent_t;
typedef struct ihipGraph *hipGraph_t;
typedef struct hipGraphExec *hipGraphExec_t;
typedef struct hipGraphNode *hipGraphNode_t;
typedef void (*hipHostFn_t)(void *userData);
typedef int hipMemcpyKind;
typedef int hipStreamCaptureMode;

typedef struct hipUUID_t { char bytes[16]; } hipUUID;
typedef struct dim3 { uint32_t x, y, z; } dim3;

enum {
    hipSuccess = 0,
    hipErrorInvalidValue = 1,
    hipErrorOutOfMemory = 2,
    hipErrorNotInitialized = 3,
    hipErrorNoDevice = 100,
    hipErrorInvalidDevice = 101,
    hipErrorInvalidHandle = 400,
    hipErrorNotFound = 500,
    hipErrorNotReady = 600,
    hipErrorNotSupported = 801,
    hipErrorUnknown = 999
};

enum {
    hipMemcpyHostToHost = 0,
    hipMemcpyHostToDevice = 1,
    hipMemcpyDeviceToHost = 2,
    hipMemcpyDeviceToDevice = 3,
    hipMemcpyDefault = 4,
    hipStreamDefault = 0x0,
    hipStreamNonBlocking = 0x1
};

#define hipStreamPerThread ((hipStream_t)2)

/* X(return type, exported symbol, parameter list); _spt are the per-thread-default-stream variants. */
#define TG_HIP_FUNCTIONS(X)                                                                                           \
    X(hipError_t, hipInit, (unsigned int flags))                                                                     \
    X(hipError_t, hipDriverGetVersion, (int *version))                                                               \
    X(hipError_t, hipRuntimeGetVersion, (int *version))                                                              \
    X(const char *, hipGetErrorString, (hipError_t error))                                                           \
    X(hipError_t, hipGetDeviceCount, (int *count))                                                                   \
    X(hipError_t, hipSetDevice, (int device))                                                                        \
    X(hipError_t, hipGetDevice, (int *device))                                                                       \
    X(hipError_t, hipDeviceGetName, (char *name, int len, hipDevice_t device))                                       \
    X(hipError_t, hipDeviceGetUuid, (hipUUID * uuid, hipDevice_t device))                                            \
    X(hipError_t, hipDeviceGetPCIBusId, (char *pciBusId, int len, int device))                                       \
    X(hipError_t, hipDeviceSynchronize, (void))                                                                      \
    X(hipError_t, hipMalloc, (void **ptr, size_t size))                                                              \
    X(hipError_t, hipFree, (void *ptr))                                                                              \
    X(hipError_t, hipModuleLoadData, (hipModule_t * module, const void *image))                                      \
    X(hipError_t, hipModuleGetFunction, (hipFunction_t * function, hipModule_t module, const char *kname))           \
    X(hipError_t, hipModuleUnload, (hipModule_t module))                                                             \
    X(const char *, hipKernelNameRef, (const hipFunction_t f))                                                       \
    X(const char *, hipKernelNameRefByPtr, (const void *hostFunction, hipStream_t stream))                           \
    X(hipError_t, hipStreamCreate, (hipStream_t * stream))                                                           \
    X(hipError_t, hipStreamCreateWithFlags, (hipStream_t * stream, unsigned int flags))                              \
    X(hipError_t, hipStreamCreateWithPriority, (hipStream_t * stream, unsigned int flags, int priority))             \
    X(hipError_t, hipStreamDestroy, (hipStream_t stream))                                                            \
    X(hipError_t, hipStreamQuery, (hipStream_t stream))                                                              \
    X(hipError_t, hipStreamSynchronize, (hipStream_t stream))                                                        \
    X(hipError_t, hipStreamSynchronize_spt, (hipStream_t stream))                                                    \
    X(hipError_t, hipStreamWaitEvent, (hipStream_t stream, hipEvent_t event, unsigned int flags))                    \
    X(hipError_t, hipStreamWaitEvent_spt, (hipStream_t stream, hipEvent_t event, unsigned int flags))                \
    X(hipError_t, hipStreamBeginCapture, (hipStream_t stream, hipStreamCaptureMode mode))                            \
    X(hipError_t, hipStreamEndCapture, (hipStream_t stream, hipGraph_t * pGraph))                                    \
    X(hipError_t, hipEventCreate, (hipEvent_t * event))                                                              \
    X(hipError_t, hipEventCreateWithFlags, (hipEvent_t * event, unsigned flags))                                     \
    X(hipError_t, hipEventRecord, (hipEvent_t event, hipStream_t stream))                                            \
    X(hipError_t, hipEventQuery, (hipEvent_t event))                                                                 \
    X(hipError_t, hipEventSynchronize, (hipEvent_t event))                                                           \
    X(hipError_t, hipEventElapsedTime, (float *ms, hipEvent_t start, hipEvent_t stop))                               \
    X(hipError_t, hipEventDestroy, (hipEvent_t event))                                                               \
    X(hipError_t, hipLaunchKernel,                                                                                   \
      (const void *function_address, dim3 numBlocks, dim3 dimBlocks, void **args, size_t sharedMemBytes,            \
       hipStream_t stream))                                                                                          \
    X(hipError_t, hipLaunchKernel_spt,                                                                               \
      (const void *function_address, dim3 numBlocks, dim3 dimBlocks, void **args, size_t sharedMemBytes,            \
       hipStream_t stream))                                                                                          \
    X(hipError_t, hipExtLaunchKernel,                                                                                \
      (const void *function_address, dim3 numBlocks, dim3 dimBlocks, void **args, size_t sharedMemBytes,            \
       hipStream_t stream, hipEvent_t startEvent, hipEvent_t stopEvent, int flags))                                  \
    X(hipError_t, hipModuleLaunchKernel,                                                                             \
      (hipFunction_t f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX, \
       unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, hipStream_t stream,             \
       void **kernelParams, void **extra))                                                                           \
    X(hipError_t, hipExtModuleLaunchKernel,                                                                          \
      (hipFunction_t f, uint32_t globalWorkSizeX, uint32_t globalWorkSizeY, uint32_t globalWorkSizeZ,               \
       uint32_t localWorkSizeX, uint32_t localWorkSizeY, uint32_t localWorkSizeZ, size_t sharedMemBytes,            \
       hipStream_t hStream, void **kernelParams, void **extra, hipEvent_t startEvent, hipEvent_t stopEvent,         \
       uint32_t flags))                                                                                              \
    X(hipError_t, hipLaunchHostFunc, (hipStream_t stream, hipHostFn_t fn, void *userData))                           \
    X(hipError_t, hipGraphInstantiate,                                                                               \
      (hipGraphExec_t * pGraphExec, hipGraph_t graph, hipGraphNode_t * pErrorNode, char *pLogBuffer,                \
       size_t bufferSize))                                                                                           \
    X(hipError_t, hipGraphLaunch, (hipGraphExec_t graphExec, hipStream_t stream))                                    \
    X(hipError_t, hipGraphExecDestroy, (hipGraphExec_t graphExec))                                                   \
    X(hipError_t, hipGraphDestroy, (hipGraph_t graph))                                                               \
    X(hipError_t, hipMemcpy, (void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind))                     \
    X(hipError_t, hipMemcpy_spt, (void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind))                 \
    X(hipError_t, hipMemcpyAsync,                                                                                    \
      (void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind, hipStream_t stream))                        \
    X(hipError_t, hipMemcpyAsync_spt,                                                                                \
      (void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind, hipStream_t stream))                        \
    X(hipError_t, hipMemcpyHtoD, (hipDeviceptr_t dst, void *src, size_t sizeBytes))                                  \
    X(hipError_t, hipMemcpyDtoH, (void *dst, hipDeviceptr_t src, size_t sizeBytes))                                  \
    X(hipError_t, hipMemcpyDtoD, (hipDeviceptr_t dst, hipDeviceptr_t src, size_t sizeBytes))                         \
    X(hipError_t, hipMemcpyHtoDAsync, (hipDeviceptr_t dst, void *src, size_t sizeBytes, hipStream_t stream))         \
    X(hipError_t, hipMemcpyDtoHAsync, (void *dst, hipDeviceptr_t src, size_t sizeBytes, hipStream_t stream))         \
    X(hipError_t, hipMemcpyDtoDAsync,                                                                                \
      (hipDeviceptr_t dst, hipDeviceptr_t src, size_t sizeBytes, hipStream_t stream))                                \
    X(hipError_t, hipMemset, (void *dst, int value, size_t sizeBytes))                                               \
    X(hipError_t, hipMemsetAsync, (void *dst, int value, size_t sizeBytes, hipStream_t stream))                      \
    X(hipError_t, hipMemsetD8, (hipDeviceptr_t dst, unsigned char value, size_t count))                              \
    X(hipError_t, hipMemsetD8Async, (hipDeviceptr_t dst, unsigned char value, size_t count, hipStream_t stream))     \
    X(hipError_t, hipMemsetD16, (hipDeviceptr_t dst, unsigned short value, size_t count))                            \
    X(hipError_t, hipMemsetD16Async, (hipDeviceptr_t dst, unsigned short value, size_t count, hipStream_t stream))   \
    X(hipError_t, hipMemsetD32, (hipDeviceptr_t dst, int value, size_t count))                                       \
    X(hipError_t, hipMemsetD32Async, (hipDeviceptr_t dst, int value, size_t count, hipStream_t stream))

#ifndef TG_ABI_EXPORT
#define TG_ABI_EXPORT __attribute__((visibility("default")))
#endif
#define TG_HIP_DECLARE(ret, name, params) TG_ABI_EXPORT ret name params;
#define TG_HIP_PFN(ret, name, params) typedef ret(*tg_pfn_##name) params;
TG_HIP_FUNCTIONS(TG_HIP_PFN)
/* Prototypes for programs and libraries that define or call these entry points; the conformance units, which
 * compare against the real headers, set TG_ABI_NO_PROTOTYPES. */
#ifndef TG_ABI_NO_PROTOTYPES
TG_HIP_FUNCTIONS(TG_HIP_DECLARE)
#endif

#ifdef __cplusplus
}
#endif
#endif
