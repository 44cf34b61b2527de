// Proves native/include/tailguard/cupti_abi.h against the real cupti_activity.h and cupti_result.h (a CUDA toolkit's
// include directory, or its extras/CUPTI/include). Compiled by test/native/abi-conformance.test.ts.
#include <cupti_activity.h>
#include <cupti_driver_cbid.h>
#include <cupti_result.h>
#include <cupti_runtime_cbid.h>
#include "abi_compare.hpp"

#include "tailguard/cupti_abi.h"

#define CONSTANTS(X)                                                                                                \
    X(CUPTI_SUCCESS) X(CUPTI_ERROR_INVALID_PARAMETER) X(CUPTI_ERROR_MAX_LIMIT_REACHED) X(CUPTI_ERROR_NOT_INITIALIZED) \
    X(CUPTI_ERROR_QUEUE_EMPTY) X(CUPTI_ERROR_INVALID_KIND) X(CUPTI_ERROR_NOT_SUPPORTED)                            \
    X(CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) X(CUPTI_ACTIVITY_KIND_MEMCPY) X(CUPTI_ACTIVITY_KIND_MEMSET)   \
    X(CUPTI_ACTIVITY_KIND_KERNEL) X(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)                                          \
    X(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) X(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM2)                          \
    X(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED) X(CUPTI_ACTIVITY_KIND_DRIVER) X(CUPTI_ACTIVITY_KIND_RUNTIME)
#define COMPARE(name) static_assert((long long)(name) == (long long)(TG_##name), "constant " #name);
CONSTANTS(COMPARE)

// the prefix of each record that is read: same offsets and sizes
#define PREFIX(real, ours, field) \
    static_assert(offsetof(real, field) == offsetof(ours, field) && sizeof(real::field) == sizeof(ours::field), #real "." #field);
#define KERNEL_FIELDS(X) X(kind) X(start) X(end) X(completed) X(deviceId) X(contextId) X(streamId) X(gridX) X(blockZ) \
    X(dynamicSharedMemory) X(localMemoryTotal) X(correlationId) X(gridId) X(name)
#define KERNEL(f) PREFIX(CUpti_ActivityKernel10, tg_cupti_kernel, f)
KERNEL_FIELDS(KERNEL)
#define KERNEL9(f) PREFIX(CUpti_ActivityKernel9, tg_cupti_kernel, f)
KERNEL_FIELDS(KERNEL9) // CUPTI 12's record: the same prefix
#define MEMCPY_FIELDS(X) X(kind) X(copyKind) X(bytes) X(start) X(end) X(deviceId) X(contextId) X(streamId) X(correlationId)
#define MEMCPY(f) PREFIX(CUpti_ActivityMemcpy6, tg_cupti_memcpy, f)
MEMCPY_FIELDS(MEMCPY)
#define MEMSET_FIELDS(X) X(kind) X(value) X(bytes) X(start) X(end) X(deviceId) X(contextId) X(streamId) X(correlationId)
#define MEMSET(f) PREFIX(CUpti_ActivityMemset4, tg_cupti_memset, f)
MEMSET_FIELDS(MEMSET)
#define EXTERNAL_FIELDS(X) X(kind) X(externalKind) X(externalId) X(correlationId) X(reserved)
#define EXTERNAL(f) PREFIX(CUpti_ActivityExternalCorrelation, tg_cupti_external_correlation, f)
EXTERNAL_FIELDS(EXTERNAL)
static_assert(sizeof(CUpti_ActivityExternalCorrelation) == sizeof(tg_cupti_external_correlation), "external correlation size");
#define API_FIELDS(X) X(kind) X(cbid) X(start) X(end) X(processId) X(threadId) X(correlationId) X(returnValue)
#define API(f) PREFIX(CUpti_ActivityAPI, tg_cupti_api, f)
API_FIELDS(API)
static_assert(sizeof(CUpti_ActivityAPI) == sizeof(tg_cupti_api), "API record size");

// the callback ids of the calls whose API records are asked for
#define DRIVER_CBID(name, value) static_assert(CUPTI_DRIVER_TRACE_CBID_##name == value, "driver cbid " #name);
TG_CUPTI_DRIVER_CBIDS(DRIVER_CBID)
#define RUNTIME_CBID(name, value) static_assert(CUPTI_RUNTIME_TRACE_CBID_##name == value, "runtime cbid " #name);
TG_CUPTI_RUNTIME_CBIDS(RUNTIME_CBID)

// the callbacks and every entry point: same arity, and each parameter of the same size and kind
static_assert(abi::same_fn<CUpti_BuffersCallbackRequestFunc, tg_cupti_buffer_requested>::value, "buffer requested callback");
static_assert(abi::same_fn<CUpti_BuffersCallbackCompleteFunc, tg_cupti_buffer_completed>::value, "buffer completed callback");
static_assert(abi::same_fn<CUpti_TimestampCallbackFunc, tg_cupti_timestamp_fn>::value, "timestamp callback");
#define CHECK_FUNCTION(ret, name, params) \
    static_assert(abi::same_fn<decltype(&::name), tg_pfn_##name>::value, "signature of " #name);
TG_CUPTI_FUNCTIONS(CHECK_FUNCTION)

#include <cstdio>
#define COUNT(ret, name, params) +1
int main() {
    std::printf("cupti functions=%d\n", 0 TG_CUPTI_FUNCTIONS(COUNT));
    return 0;
}
