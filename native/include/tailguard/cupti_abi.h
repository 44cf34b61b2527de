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
    X(tg_cupti_result, cuptiActivityRegisterTimestampCallback, (tg_cupti_timestamp_fn funcTimestamp))

#define TG_CUPTI_PFN(ret, name, params) typedef ret(*tg_pfn_##name) params;
TG_CUPTI_FUNCTIONS(TG_CUPTI_PFN)
#undef TG_CUPTI_PFN

#ifdef __cplusplus
}
#endif
#endif
