/* The part of CUPTI's Activity API that kernel timing uses (native/shim/kernel_timing.c) and the simulated CUPTI
 * implements (native/sim/cupti.c), declared here so that neither needs CUPTI to build: the shim loads CUPTI with
 * dlopen and finds every entry point with dlsym. Names follow cupti_activity.h and cupti_result.h (CUDA 13) with a
 * tg_ prefix; test/abi/cupti_conformance.cc proves every declaration against the real headers.
 *
 * Records: only the prefix of each record that is read (the simulated CUPTI writes them whole: TG_CUPTI_*_SIZE).
 * CUpti_ActivityKernel4 to 10, Memcpy5 and 6 and Memset4 share these prefixes, so CUPTI 12 reads the same. */
#ifndef TAILGUARD_CUPTI_ABI_H
#define TAILGUARD_CUPTI_ABI_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int tg_cupti_result; /* CUptiResult */
enum {
    TG_CUPTI_SUCCESS = 0,
    TG_CUPTI_ERROR_INVALID_PARAMETER = 1,
    TG_CUPTI_ERROR_MAX_LIMIT_REACHED = 12,
    TG_CUPTI_ERROR_NOT_INITIALIZED = 15,
    TG_CUPTI_ERROR_QUEUE_EMPTY = 18,
    TG_CUPTI_ERROR_INVALID_KIND = 21,
    TG_CUPTI_ERROR_NOT_SUPPORTED = 27,
    TG_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED = 39,
};
/* CUpti_ActivityKind */
enum {
    TG_CUPTI_ACTIVITY_KIND_MEMCPY = 1,
    TG_CUPTI_ACTIVITY_KIND_MEMSET = 2,
    TG_CUPTI_ACTIVITY_KIND_KERNEL = 3,
    TG_CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL = 10,
    TG_CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION = 39,
};
/* CUpti_ActivityKind, the records of CUDA API calls (CUpti_ActivityAPI) */
enum { TG_CUPTI_ACTIVITY_KIND_DRIVER = 4, TG_CUPTI_ACTIVITY_KIND_RUNTIME = 5 };
/* CUpti_ExternalCorrelationKind: kernel timing's ids are CUSTOM2 (PyTorch's profiler, Kineto, uses CUSTOM0 and 1) */
enum { TG_CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM2 = 5 };
#define TG_CUPTI_ACTIVITY_FLAG_FLUSH_FORCED 1u /* CUpti_ActivityFlag */

#define TG_CUPTI_PACKED __attribute__((packed, aligned(8))) /* cupti_activity.h's PACKED_ALIGNMENT */
typedef struct TG_CUPTI_PACKED {
    uint32_t kind;
    uint8_t cacheConfig, sharedMemoryConfig;
    uint16_t registersPerThread;
    uint32_t partitionedGlobalCacheRequested, partitionedGlobalCacheExecuted;
    uint64_t start, end, completed;
    uint32_t deviceId, contextId, streamId;
    int32_t gridX, gridY, gridZ, blockX, blockY, blockZ, staticSharedMemory, dynamicSharedMemory;
    uint32_t localMemoryPerThread, localMemoryTotal, correlationId;
    int64_t gridId;
    const char *name;
} tg_cupti_kernel; /* CUpti_ActivityKernel10, up to name */
typedef struct TG_CUPTI_PACKED {
    uint32_t kind;
    uint8_t copyKind, srcKind, dstKind, flags;
    uint64_t bytes, start, end;
    uint32_t deviceId, contextId, streamId, correlationId;
} tg_cupti_memcpy; /* CUpti_ActivityMemcpy6, up to correlationId */
typedef struct TG_CUPTI_PACKED {
    uint32_t kind, value;
    uint64_t bytes, start, end;
    uint32_t deviceId, contextId, streamId, correlationId;
} tg_cupti_memset; /* CUpti_ActivityMemset4, up to correlationId */
typedef struct TG_CUPTI_PACKED {
    uint32_t kind, externalKind;
    uint64_t externalId;
    uint32_t correlationId, reserved;
} tg_cupti_external_correlation; /* CUpti_ActivityExternalCorrelation, whole */

typedef struct TG_CUPTI_PACKED {
    uint32_t kind, cbid;
    uint64_t start, end;
    uint32_t processId, threadId, correlationId, returnValue;
} tg_cupti_api; /* CUpti_ActivityAPI, whole: threadId is the low 32 bits of the caller's pthread_self() */

/* The CUDA calls whose API records kernel timing asks for (cuptiActivityEnableDriverApi, ...RuntimeApi): the
 * driver's launches and copies the shim intercepts (apis.def; CUPTI_DRIVER_TRACE_CBID_<name>), and the runtime's
 * that make them (CUPTI_RUNTIME_TRACE_CBID_<name>). X(name, callback id). */
#define TG_CUPTI_DRIVER_CBIDS(X)                                                                                     \
    X(cuLaunchKernel, 307) X(cuLaunchKernel_ptsz, 442) X(cuLaunchKernelEx, 652) X(cuLaunchKernelEx_ptsz, 653)       \
    X(cuLaunchCooperativeKernel, 477) X(cuLaunchCooperativeKernel_ptsz, 478) X(cuGraphLaunch, 514)                  \
    X(cuGraphLaunch_ptsz, 515) X(cuMemcpy, 305) X(cuMemcpy_ptds, 408) X(cuMemcpyAsync, 306)                         \
    X(cuMemcpyAsync_ptsz, 418) X(cuMemcpyHtoD_v2, 276) X(cuMemcpyHtoD_v2_ptds, 397) X(cuMemcpyDtoH_v2, 278)         \
    X(cuMemcpyDtoH_v2_ptds, 398) X(cuMemcpyDtoD_v2, 280) X(cuMemcpyDtoD_v2_ptds, 399)                               \
    X(cuMemcpyHtoDAsync_v2, 277) X(cuMemcpyHtoDAsync_v2_ptsz, 421) X(cuMemcpyDtoHAsync_v2, 279)                     \
    X(cuMemcpyDtoHAsync_v2_ptsz, 422) X(cuMemcpyDtoDAsync_v2, 281) X(cuMemcpyDtoDAsync_v2_ptsz, 423)                \
    X(cuMemcpy2D_v2, 287) X(cuMemcpy2D_v2_ptds, 405) X(cuMemcpy2DAsync_v2, 289) X(cuMemcpy2DAsync_v2_ptsz, 424)     \
    X(cuMemcpy3D_v2, 290) X(cuMemcpy3D_v2_ptds, 407) X(cuMemcpy3DAsync_v2, 291) X(cuMemcpy3DAsync_v2_ptsz, 425)     \
    X(cuMemcpyPeer, 318) X(cuMemcpyPeer_ptds, 409) X(cuMemcpyPeerAsync, 319) X(cuMemcpyPeerAsync_ptsz, 426)         \
    X(cuMemsetD8_v2, 249) X(cuMemsetD8_v2_ptds, 411) X(cuMemsetD16_v2, 250) X(cuMemsetD16_v2_ptds, 412)             \
    X(cuMemsetD32_v2, 251) X(cuMemsetD32_v2_ptds, 413) X(cuMemsetD8Async, 216) X(cuMemsetD8Async_ptsz, 428)         \
    X(cuMemsetD16Async, 218) X(cuMemsetD16Async_ptsz, 429) X(cuMemsetD32Async, 220)                                 \
    X(cuMemsetD32Async_ptsz, 430) X(cuMemsetD2D8Async, 222) X(cuMemsetD2D8Async_ptsz, 431)                          \
    X(cuMemsetD2D16Async, 224) X(cuMemsetD2D16Async_ptsz, 432) X(cuMemsetD2D32Async, 226)                           \
    X(cuMemsetD2D32Async_ptsz, 433)
#define TG_CUPTI_RUNTIME_CBIDS(X)                                                                                    \
    X(cudaLaunchKernel_v7000, 211) X(cudaLaunchKernel_ptsz_v7000, 214) X(cudaLaunchKernelExC_v11060, 430)           \
    X(cudaLaunchKernelExC_ptsz_v11060, 431) X(cudaLaunchCooperativeKernel_v9000, 269)                               \
    X(cudaLaunchCooperativeKernel_ptsz_v9000, 270) X(cudaGraphLaunch_v10000, 311)                                   \
    X(cudaGraphLaunch_ptsz_v10000, 312) X(cudaMemcpy_v3020, 31) X(cudaMemcpy_ptds_v7000, 215)                       \
    X(cudaMemcpyAsync_v3020, 41) X(cudaMemcpyAsync_ptsz_v7000, 225) X(cudaMemcpy2D_v3020, 32)                       \
    X(cudaMemcpy2D_ptds_v7000, 216) X(cudaMemcpy2DAsync_v3020, 44) X(cudaMemcpy2DAsync_ptsz_v7000, 228)             \
    X(cudaMemcpy3D_v3020, 144) X(cudaMemcpy3D_ptds_v7000, 245) X(cudaMemcpy3DAsync_v3020, 145)                      \
    X(cudaMemcpy3DAsync_ptsz_v7000, 246) X(cudaMemcpyPeer_v4000, 160) X(cudaMemcpyPeerAsync_v4000, 161)             \
    X(cudaMemset_v3020, 49) X(cudaMemset_ptds_v7000, 233) X(cudaMemsetAsync_v3020, 51)                              \
    X(cudaMemsetAsync_ptsz_v7000, 235)

typedef void (*tg_cupti_buffer_requested)(uint8_t **buffer, size_t *size, size_t *maxNumRecords);
typedef void (*tg_cupti_buffer_completed)(void *context, uint32_t streamId, uint8_t *buffer, size_t size,
                                          size_t validSize);
typedef uint64_t (*tg_cupti_timestamp_fn)(void);

/* X(return type, name, parameters): every entry point used. */
#define TG_CUPTI_FUNCTIONS(X)                                                                                        \
    X(tg_cupti_result, cuptiActivityRegisterCallbacks,                                                               \
      (tg_cupti_buffer_requested funcBufferRequested, tg_cupti_buffer_completed funcBufferCompleted))               \
    X(tg_cupti_result, cuptiActivityEnable, (int kind))                                                              \
    X(tg_cupti_result, cuptiActivityDisable, (int kind))                                                             \
    X(tg_cupti_result, cuptiActivityGetNextRecord, (uint8_t * buffer, size_t validBufferSizeBytes, void **record))   \
    X(tg_cupti_result, cuptiActivityFlushAll, (uint32_t flag))                                                       \
    X(tg_cupti_result, cuptiActivityFlushPeriod, (uint32_t time))                                                    \
    X(tg_cupti_result, cuptiActivityPushExternalCorrelationId, (int kind, uint64_t id))                              \
    X(tg_cupti_result, cuptiActivityPopExternalCorrelationId, (int kind, uint64_t *lastId))                          \
    X(tg_cupti_result, cuptiGetTimestamp, (uint64_t * timestamp))                                                    \
    X(tg_cupti_result, cuptiActivityGetNumDroppedRecords, (void *context, uint32_t streamId, size_t *dropped))       \
    X(tg_cupti_result, cuptiGetResultString, (tg_cupti_result result, const char **str))                             \
    X(tg_cupti_result, cuptiActivityRegisterTimestampCallback, (tg_cupti_timestamp_fn funcTimestamp))                \
    X(tg_cupti_result, cuptiActivityEnableDriverApi, (uint32_t cbid, uint8_t enable))                                \
    X(tg_cupti_result, cuptiActivityEnableRuntimeApi, (uint32_t cbid, uint8_t enable))

#define TG_CUPTI_PFN(ret, name, params) typedef ret(*tg_pfn_##name) params;
TG_CUPTI_FUNCTIONS(TG_CUPTI_PFN)
#undef TG_CUPTI_PFN

#ifdef __cplusplus
}
#endif
#endif
