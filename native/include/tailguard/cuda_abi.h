/* The subset of the CUDA driver ABI that tailguard uses, declared here so that building the shim and the simulated
 * GPU needs no CUDA installation. test/abi-conformance proves every declaration against the real cuda.h.
 *
 * Never include this together with the real <cuda.h>: the names are the same on purpose (the shim exports them). */
#ifndef TAILGUARD_CUDA_ABI_H
#define TAILGUARD_CUDA_ABI_H
#ifdef __cuda_cuda_h__
#error "tailguard/cuda_abi.h declares the CUDA driver ABI itself; do not include it next to <cuda.h>"
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int CUresult; /* an enum in cuda.h; same size and values */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef uint64_t cuuint64_t;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUevent_st *CUevent;
typedef struct CUstream_st *CUstream;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;
typedef struct CUarray_st *CUarray;
typedef void (*CUhostFn)(void *userData);
typedef int CUdevice_attribute;
typedef int CUstreamCaptureMode;
typedef int CUdriverProcAddressQueryResult;
typedef int CUmemorytype;
typedef int CUlaunchAttributeID;

typedef struct CUuuid_st { char bytes[16]; } CUuuid;

typedef union CUlaunchAttributeValue_union { char pad[64]; unsigned long long align_; } CUlaunchAttributeValue;
typedef struct CUlaunchAttribute_st {
    CUlaunchAttributeID id;
    char pad[8 - sizeof(CUlaunchAttributeID)];
    CUlaunchAttributeValue value;
} CUlaunchAttribute;

typedef struct CUlaunchConfig_st {
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    CUstream hStream;
    CUlaunchAttribute *attrs;
    unsigned int numAttrs;
} CUlaunchConfig;

typedef struct CUDA_MEMCPY2D_st {
    size_t srcXInBytes, srcY;
    CUmemorytype srcMemoryType;
    const void *srcHost;
    CUdeviceptr srcDevice;
    CUarray srcArray;
    size_t srcPitch;
    size_t dstXInBytes, dstY;
    CUmemorytype dstMemoryType;
    void *dstHost;
    CUdeviceptr dstDevice;
    CUarray dstArray;
    size_t dstPitch;
    size_t WidthInBytes;
    size_t Height;
} CUDA_MEMCPY2D;

typedef struct CUDA_MEMCPY3D_st {
    size_t srcXInBytes, srcY, srcZ, srcLOD;
    CUmemorytype srcMemoryType;
    const void *srcHost;
    CUdeviceptr srcDevice;
    CUarray srcArray;
    void *reserved0;
    size_t srcPitch, srcHeight;
    size_t dstXInBytes, dstY, dstZ, dstLOD;
    CUmemorytype dstMemoryType;
    void *dstHost;
    CUdeviceptr dstDevice;
    CUarray dstArray;
    void *reserved1;
    size_t dstPitch, dstHeight;
    size_t WidthInBytes, Height, Depth;
} CUDA_MEMCPY3D;

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
    CUDA_ERROR_UNKNOWN = 999
};

enum {
    CU_GET_PROC_ADDRESS_DEFAULT = 0,
    CU_GET_PROC_ADDRESS_LEGACY_STREAM = 1 << 0,
    CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM = 1 << 1,
    CU_GET_PROC_ADDRESS_SUCCESS = 0,
    CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND = 1,
    CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT = 2,
    CU_STREAM_DEFAULT = 0x0,
    CU_STREAM_NON_BLOCKING = 0x1,
    CU_MEMORYTYPE_HOST = 0x01,
    CU_MEMORYTYPE_DEVICE = 0x02,
    CU_MEMORYTYPE_ARRAY = 0x03,
    CU_MEMORYTYPE_UNIFIED = 0x04,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
    CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_STREAM_CAPTURE_MODE_GLOBAL = 0,
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    CU_STREAM_CAPTURE_MODE_RELAXED = 2
};

#define CU_STREAM_LEGACY ((CUstream)0x1)
#define CU_STREAM_PER_THREAD ((CUstream)0x2)
#define CU_LAUNCH_PARAM_END ((void *)0x00)
#define CU_LAUNCH_PARAM_BUFFER_POINTER ((void *)0x01)
#define CU_LAUNCH_PARAM_BUFFER_SIZE ((void *)0x02)

/* Every driver entry point tailguard declares: X(return type, exported symbol, parameter list).
 * Per-thread-default-stream variants (_ptsz, _ptds) share their default variant's parameters. */
#define TG_CUDA_FUNCTIONS(X)                                                                                          \
    X(CUresult, cuInit, (unsigned int flags))                                                                        \
    X(CUresult, cuDriverGetVersion, (int *version))                                                                  \
    X(CUresult, cuGetErrorString, (CUresult error, const char **str))                                                \
    X(CUresult, cuGetErrorName, (CUresult error, const char **str))                                                  \
    X(CUresult, cuGetProcAddress, (const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags))               \
    X(CUresult, cuGetProcAddress_v2,                                                                                 \
      (const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags, CUdriverProcAddressQueryResult *status))   \
    X(CUresult, cuDeviceGet, (CUdevice *device, int ordinal))                                                        \
    X(CUresult, cuDeviceGetCount, (int *count))                                                                      \
    X(CUresult, cuDeviceGetName, (char *name, int len, CUdevice dev))                                                \
    X(CUresult, cuDeviceGetUuid, (CUuuid *uuid, CUdevice dev))                                                       \
    X(CUresult, cuDeviceGetUuid_v2, (CUuuid *uuid, CUdevice dev))                                                    \
    X(CUresult, cuDeviceGetPCIBusId, (char *pciBusId, int len, CUdevice dev))                                        \
    X(CUresult, cuDeviceGetAttribute, (int *pi, CUdevice_attribute attrib, CUdevice dev))                            \
    X(CUresult, cuDeviceTotalMem_v2, (size_t *bytes, CUdevice dev))                                                  \
    X(CUresult, cuDevicePrimaryCtxRetain, (CUcontext * pctx, CUdevice dev))                                          \
    X(CUresult, cuDevicePrimaryCtxRelease_v2, (CUdevice dev))                                                        \
    X(CUresult, cuCtxCreate_v2, (CUcontext * pctx, unsigned int flags, CUdevice dev))                                \
    X(CUresult, cuCtxDestroy_v2, (CUcontext ctx))                                                                    \
    X(CUresult, cuCtxSetCurrent, (CUcontext ctx))                                                                    \
    X(CUresult, cuCtxGetCurrent, (CUcontext * pctx))                                                                 \
    X(CUresult, cuCtxGetDevice, (CUdevice * device))                                                                 \
    X(CUresult, cuCtxSynchronize, (void))                                                                            \
    X(CUresult, cuModuleLoadData, (CUmodule * module, const void *image))                                            \
    X(CUresult, cuModuleGetFunction, (CUfunction * hfunc, CUmodule hmod, const char *name))                          \
    X(CUresult, cuModuleUnload, (CUmodule hmod))                                                                     \
    X(CUresult, cuFuncGetName, (const char **name, CUfunction hfunc))                                                \
    X(CUresult, cuMemAlloc_v2, (CUdeviceptr * dptr, size_t bytesize))                                                \
    X(CUresult, cuMemFree_v2, (CUdeviceptr dptr))                                                                    \
    X(CUresult, cuStreamCreate, (CUstream * phStream, unsigned int flags))                                           \
    X(CUresult, cuStreamCreateWithPriority, (CUstream * phStream, unsigned int flags, int priority))                 \
    X(CUresult, cuStreamDestroy_v2, (CUstream hStream))                                                              \
    X(CUresult, cuStreamQuery, (CUstream hStream))                                                                   \
    X(CUresult, cuStreamQuery_ptsz, (CUstream hStream))                                                              \
    X(CUresult, cuStreamSynchronize, (CUstream hStream))                                                             \
    X(CUresult, cuStreamSynchronize_ptsz, (CUstream hStream))                                                        \
    X(CUresult, cuStreamWaitEvent, (CUstream hStream, CUevent hEvent, unsigned int flags))                           \
    X(CUresult, cuStreamWaitEvent_ptsz, (CUstream hStream, CUevent hEvent, unsigned int flags))                      \
    X(CUresult, cuStreamBeginCapture_v2, (CUstream hStream, CUstreamCaptureMode mode))                               \
    X(CUresult, cuStreamBeginCapture_v2_ptsz, (CUstream hStream, CUstreamCaptureMode mode))                          \
    X(CUresult, cuStreamEndCapture, (CUstream hStream, CUgraph * phGraph))                                           \
    X(CUresult, cuStreamEndCapture_ptsz, (CUstream hStream, CUgraph * phGraph))                                      \
    X(CUresult, cuEventCreate, (CUevent * phEvent, unsigned int flags))                                              \
    X(CUresult, cuEventRecord, (CUevent hEvent, CUstream hStream))                                                   \
    X(CUresult, cuEventRecord_ptsz, (CUevent hEvent, CUstream hStream))                                              \
    X(CUresult, cuEventQuery, (CUevent hEvent))                                                                      \
    X(CUresult, cuEventSynchronize, (CUevent hEvent))                                                                \
    X(CUresult, cuEventElapsedTime, (float *ms, CUevent hStart, CUevent hEnd))                                       \
    X(CUresult, cuEventDestroy_v2, (CUevent hEvent))                                                                 \
    X(CUresult, cuLaunchKernel,                                                                                      \
      (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX,    \
       unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,                \
       void **kernelParams, void **extra))                                                                           \
    X(CUresult, cuLaunchKernel_ptsz,                                                                                 \
      (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX,    \
       unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,                \
       void **kernelParams, void **extra))                                                                           \
    X(CUresult, cuLaunchKernelEx, (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra))    \
    X(CUresult, cuLaunchKernelEx_ptsz,                                                                               \
      (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra))                               \
    X(CUresult, cuLaunchCooperativeKernel,                                                                           \
      (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX,    \
       unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,                \
       void **kernelParams))                                                                                         \
    X(CUresult, cuLaunchCooperativeKernel_ptsz,                                                                      \
      (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX,    \
       unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,                \
       void **kernelParams))                                                                                         \
    X(CUresult, cuLaunchHostFunc, (CUstream hStream, CUhostFn fn, void *userData))                                   \
    X(CUresult, cuLaunchHostFunc_ptsz, (CUstream hStream, CUhostFn fn, void *userData))                              \
    X(CUresult, cuGraphInstantiateWithFlags, (CUgraphExec * phGraphExec, CUgraph hGraph, unsigned long long flags))  \
    X(CUresult, cuGraphLaunch, (CUgraphExec hGraphExec, CUstream hStream))                                           \
    X(CUresult, cuGraphLaunch_ptsz, (CUgraphExec hGraphExec, CUstream hStream))                                      \
    X(CUresult, cuGraphExecDestroy, (CUgraphExec hGraphExec))                                                        \
    X(CUresult, cuGraphDestroy, (CUgraph hGraph))                                                                    \
    X(CUresult, cuMemcpy, (CUdeviceptr dst, CUdeviceptr src, size_t bytes))                                         \
    X(CUresult, cuMemcpy_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t bytes))                                    \
    X(CUresult, cuMemcpyAsync, (CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hStream))                   \
    X(CUresult, cuMemcpyAsync_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hStream))              \
    X(CUresult, cuMemcpyHtoD_v2, (CUdeviceptr dst, const void *src, size_t bytes))                                   \
    X(CUresult, cuMemcpyHtoD_v2_ptds, (CUdeviceptr dst, const void *src, size_t bytes))                              \
    X(CUresult, cuMemcpyDtoH_v2, (void *dst, CUdeviceptr src, size_t bytes))                                         \
    X(CUresult, cuMemcpyDtoH_v2_ptds, (void *dst, CUdeviceptr src, size_t bytes))                                    \
    X(CUresult, cuMemcpyDtoD_v2, (CUdeviceptr dst, CUdeviceptr src, size_t bytes))                                   \
    X(CUresult, cuMemcpyDtoD_v2_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t bytes))                              \
    X(CUresult, cuMemcpyHtoDAsync_v2, (CUdeviceptr dst, const void *src, size_t bytes, CUstream hStream))            \
    X(CUresult, cuMemcpyHtoDAsync_v2_ptsz, (CUdeviceptr dst, const void *src, size_t bytes, CUstream hStream))       \
    X(CUresult, cuMemcpyDtoHAsync_v2, (void *dst, CUdeviceptr src, size_t bytes, CUstream hStream))                  \
    X(CUresult, cuMemcpyDtoHAsync_v2_ptsz, (void *dst, CUdeviceptr src, size_t bytes, CUstream hStream))             \
    X(CUresult, cuMemcpyDtoDAsync_v2, (CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hStream))            \
    X(CUresult, cuMemcpyDtoDAsync_v2_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hStream))       \
    X(CUresult, cuMemcpy2D_v2, (const CUDA_MEMCPY2D *copy))                                                         \
    X(CUresult, cuMemcpy2D_v2_ptds, (const CUDA_MEMCPY2D *copy))                                                    \
    X(CUresult, cuMemcpy2DAsync_v2, (const CUDA_MEMCPY2D *copy, CUstream hStream))                                  \
    X(CUresult, cuMemcpy2DAsync_v2_ptsz, (const CUDA_MEMCPY2D *copy, CUstream hStream))                             \
    X(CUresult, cuMemcpy3D_v2, (const CUDA_MEMCPY3D *copy))                                                         \
    X(CUresult, cuMemcpy3D_v2_ptds, (const CUDA_MEMCPY3D *copy))                                                    \
    X(CUresult, cuMemcpy3DAsync_v2, (const CUDA_MEMCPY3D *copy, CUstream hStream))                                  \
    X(CUresult, cuMemcpy3DAsync_v2_ptsz, (const CUDA_MEMCPY3D *copy, CUstream hStream))                             \
    X(CUresult, cuMemcpyPeer,                                                                                        \
      (CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t bytes))                          \
    X(CUresult, cuMemcpyPeer_ptds,                                                                                   \
      (CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t bytes))                          \
    X(CUresult, cuMemcpyPeerAsync,                                                                                   \
      (CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t bytes, CUstream hStream))        \
    X(CUresult, cuMemcpyPeerAsync_ptsz,                                                                              \
      (CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t bytes, CUstream hStream))        \
    X(CUresult, cuMemsetD8_v2, (CUdeviceptr dst, unsigned char value, size_t n))                                     \
    X(CUresult, cuMemsetD8_v2_ptds, (CUdeviceptr dst, unsigned char value, size_t n))                                \
    X(CUresult, cuMemsetD16_v2, (CUdeviceptr dst, unsigned short value, size_t n))                                   \
    X(CUresult, cuMemsetD16_v2_ptds, (CUdeviceptr dst, unsigned short value, size_t n))                              \
    X(CUresult, cuMemsetD32_v2, (CUdeviceptr dst, unsigned int value, size_t n))                                     \
    X(CUresult, cuMemsetD32_v2_ptds, (CUdeviceptr dst, unsigned int value, size_t n))                                \
    X(CUresult, cuMemsetD8Async, (CUdeviceptr dst, unsigned char value, size_t n, CUstream hStream))                 \
    X(CUresult, cuMemsetD8Async_ptsz, (CUdeviceptr dst, unsigned char value, size_t n, CUstream hStream))            \
    X(CUresult, cuMemsetD16Async, (CUdeviceptr dst, unsigned short value, size_t n, CUstream hStream))               \
    X(CUresult, cuMemsetD16Async_ptsz, (CUdeviceptr dst, unsigned short value, size_t n, CUstream hStream))          \
    X(CUresult, cuMemsetD32Async, (CUdeviceptr dst, unsigned int value, size_t n, CUstream hStream))                 \
    X(CUresult, cuMemsetD32Async_ptsz, (CUdeviceptr dst, unsigned int value, size_t n, CUstream hStream))            \
    X(CUresult, cuMemsetD2D8Async,                                                                                   \
      (CUdeviceptr dst, size_t pitch, unsigned char value, size_t width, size_t height, CUstream hStream))           \
    X(CUresult, cuMemsetD2D8Async_ptsz,                                                                              \
      (CUdeviceptr dst, size_t pitch, unsigned char value, size_t width, size_t height, CUstream hStream))           \
    X(CUresult, cuMemsetD2D16Async,                                                                                  \
      (CUdeviceptr dst, size_t pitch, unsigned short value, size_t width, size_t height, CUstream hStream))          \
    X(CUresult, cuMemsetD2D16Async_ptsz,                                                                             \
      (CUdeviceptr dst, size_t pitch, unsigned short value, size_t width, size_t height, CUstream hStream))          \
    X(CUresult, cuMemsetD2D32Async,                                                                                  \
      (CUdeviceptr dst, size_t pitch, unsigned int value, size_t width, size_t height, CUstream hStream))            \
    X(CUresult, cuMemsetD2D32Async_ptsz,                                                                             \
      (CUdeviceptr dst, size_t pitch, unsigned int value, size_t width, size_t height, CUstream hStream))

#ifndef TG_ABI_EXPORT
#define TG_ABI_EXPORT __attribute__((visibility("default")))
#endif
#define TG_CUDA_DECLARE(ret, name, params) TG_ABI_EXPORT ret name params;
#define TG_CUDA_PFN(ret, name, params) typedef ret(*tg_pfn_##name) params;
TG_CUDA_FUNCTIONS(TG_CUDA_PFN)
/* Prototypes for programs and libraries that define or call these entry points; the conformance units, which
 * compare against the real headers, set TG_ABI_NO_PROTOTYPES. */
#ifndef TG_ABI_NO_PROTOTYPES
TG_CUDA_FUNCTIONS(TG_CUDA_DECLARE)
#endif

#ifdef __cplusplus
}
#endif
#endif
