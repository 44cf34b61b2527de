/* The subset of the NVTX v3 injection ABI the shim implements (nvtx3/nvtxDetail/nvtxTypes.h and nvToolsExt.h), declared
 * here so that building the shim needs no CUDA toolkit: the tool entry point NVTX looks up in the library named by
 * NVTX_INJECTION64_PATH, the export table it hands over, the callback ids of the modules the shim fills, and the event
 * attributes those callbacks receive. Values and layouts are NVTX's documented ABI (stable since NVTX v2). */
#ifndef TAILGUARD_NVTX_ABI_H
#define TAILGUARD_NVTX_ABI_H
#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

typedef uint64_t nvtxRangeId_t;
typedef struct nvtxDomainRegistration_st *nvtxDomainHandle_t;
typedef struct nvtxStringRegistration_st *nvtxStringHandle_t;

enum { NVTX_MESSAGE_UNKNOWN = 0, NVTX_MESSAGE_TYPE_ASCII = 1, NVTX_MESSAGE_TYPE_UNICODE = 2, NVTX_MESSAGE_TYPE_REGISTERED = 3 };

typedef struct nvtxEventAttributes_v2 {
    uint16_t version;
    uint16_t size; /* bytes of this structure the caller filled */
    uint32_t category;
    int32_t colorType;
    uint32_t color;
    int32_t payloadType;
    int32_t reserved0;
    uint64_t payload;
    int32_t messageType;
    union {
        const char *ascii;
        const wchar_t *unicode;
        nvtxStringHandle_t registered;
    } message;
} nvtxEventAttributes_t;
_Static_assert(offsetof(nvtxEventAttributes_t, messageType) == 32, "NVTX event attributes layout");
_Static_assert(offsetof(nvtxEventAttributes_t, message) == 40, "NVTX event attributes layout");
_Static_assert(sizeof(nvtxEventAttributes_t) == 48, "NVTX event attributes layout");

typedef void (*NvtxFunctionPointer)(void);
typedef NvtxFunctionPointer **NvtxFunctionTable; /* entry i: where the function of callback id i is stored */
typedef const void *(*NvtxGetExportTableFunc_t)(uint32_t exportTableId);
typedef int (*NvtxInitializeInjectionNvtxFunc_t)(NvtxGetExportTableFunc_t exportTable);

enum { NVTX_ETID_CALLBACKS = 1, NVTX_ETID_VERSIONINFO = 3 };
enum { NVTX_CB_MODULE_CORE = 1, NVTX_CB_MODULE_CORE2 = 5 };

typedef struct NvtxExportTableCallbacks {
    size_t struct_size;
    int (*GetModuleFunctionTable)(int callback_module, NvtxFunctionTable *out_table, unsigned int *out_size);
} NvtxExportTableCallbacks;

typedef struct NvtxExportTableVersionInfo {
    size_t struct_size;
    uint32_t version;
    uint32_t reserved0;
    void (*SetInjectionNvtxVersion)(uint32_t version);
} NvtxExportTableVersionInfo;

enum { /* NvtxCallbackIdCore */
    NVTX_CBID_CORE_MarkEx = 1, NVTX_CBID_CORE_MarkA = 2, NVTX_CBID_CORE_MarkW = 3,
    NVTX_CBID_CORE_RangeStartEx = 4, NVTX_CBID_CORE_RangeStartA = 5, NVTX_CBID_CORE_RangeStartW = 6,
    NVTX_CBID_CORE_RangeEnd = 7,
    NVTX_CBID_CORE_RangePushEx = 8, NVTX_CBID_CORE_RangePushA = 9, NVTX_CBID_CORE_RangePushW = 10,
    NVTX_CBID_CORE_RangePop = 11,
};
enum { /* NvtxCallbackIdCore2 */
    NVTX_CBID_CORE2_DomainMarkEx = 1, NVTX_CBID_CORE2_DomainRangeStartEx = 2, NVTX_CBID_CORE2_DomainRangeEnd = 3,
    NVTX_CBID_CORE2_DomainRangePushEx = 4, NVTX_CBID_CORE2_DomainRangePop = 5,
    NVTX_CBID_CORE2_DomainRegisterStringA = 10, NVTX_CBID_CORE2_DomainRegisterStringW = 11,
    NVTX_CBID_CORE2_DomainCreateA = 12, NVTX_CBID_CORE2_DomainCreateW = 13, NVTX_CBID_CORE2_DomainDestroy = 14,
};

#endif
