// Proves native/include/tailguard/cuda_abi.h against the real cuda.h. Compiled by test/native/abi-conformance.test.ts
// with -D__CUDA_API_VERSION_INTERNAL so that every versioned and per-thread symbol is declared under its own name.
#include <cuda.h>
#include "abi_compare.hpp"

// Values of the constants we redeclare, captured before our header redefines the names as macros.
#define CUDA_CONSTANTS(X)                                                                                           \
    X(CU_GET_PROC_ADDRESS_DEFAULT) X(CU_GET_PROC_ADDRESS_LEGACY_STREAM)                                            \
    X(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) X(CU_GET_PROC_ADDRESS_SUCCESS)                                \
    X(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND) X(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT)                          \
    X(CU_STREAM_DEFAULT) X(CU_STREAM_NON_BLOCKING) X(CU_MEMORYTYPE_HOST) X(CU_MEMORYTYPE_DEVICE)                   \
    X(CU_MEMORYTYPE_ARRAY) X(CU_MEMORYTYPE_UNIFIED) X(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)                    \
    X(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID) X(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID)                                         \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)                \
    X(CU_STREAM_CAPTURE_MODE_GLOBAL) X(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) X(CU_STREAM_CAPTURE_MODE_RELAXED)     \
    X(CUDA_SUCCESS) X(CUDA_ERROR_INVALID_VALUE) X(CUDA_ERROR_OUT_OF_MEMORY) X(CUDA_ERROR_NOT_INITIALIZED)          \
    X(CUDA_ERROR_NO_DEVICE) X(CUDA_ERROR_INVALID_DEVICE) X(CUDA_ERROR_INVALID_CONTEXT) X(CUDA_ERROR_INVALID_HANDLE) \
    X(CUDA_ERROR_NOT_FOUND) X(CUDA_ERROR_NOT_READY) X(CUDA_ERROR_NOT_SUPPORTED)                                    \
    X(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) X(CUDA_ERROR_UNKNOWN)
#define CAPTURE(name) constexpr long long real_##name = (long long)(name);
CUDA_CONSTANTS(CAPTURE)
const unsigned long long real_handles[] = {(unsigned long long)CU_STREAM_LEGACY,
    (unsigned long long)CU_STREAM_PER_THREAD, (unsigned long long)CU_LAUNCH_PARAM_END,
    (unsigned long long)CU_LAUNCH_PARAM_BUFFER_POINTER, (unsigned long long)CU_LAUNCH_PARAM_BUFFER_SIZE};
#undef CU_STREAM_LEGACY
#undef CU_STREAM_PER_THREAD
#undef CU_LAUNCH_PARAM_END
#undef CU_LAUNCH_PARAM_BUFFER_POINTER
#undef CU_LAUNCH_PARAM_BUFFER_SIZE
#undef CU_STREAM_DEFAULT
#undef CU_STREAM_NON_BLOCKING
#undef __cuda_cuda_h__

#define TG_ABI_NO_PROTOTYPES 1
namespace tg {
#include "tailguard/cuda_abi.h"
}
using namespace tg;  // our enumerators (CUDA_SUCCESS...) are found in tg, the real ones stay global

#define COMPARE(name) static_assert(real_##name == (long long)(tg::name), "constant " #name);
CUDA_CONSTANTS(COMPARE)
const unsigned long long our_handles[] = {(unsigned long long)CU_STREAM_LEGACY,
    (unsigned long long)CU_STREAM_PER_THREAD, (unsigned long long)CU_LAUNCH_PARAM_END,
    (unsigned long long)CU_LAUNCH_PARAM_BUFFER_POINTER, (unsigned long long)CU_LAUNCH_PARAM_BUFFER_SIZE};

#define CHECK_FUNCTION(ret, name, params) \
    static_assert(abi::same_fn<decltype(&::name), tg::tg_pfn_##name>::value, "signature of " #name);
TG_CUDA_FUNCTIONS(CHECK_FUNCTION)

ABI_SAME_STRUCT(::CUuuid, tg::CUuuid);
ABI_SAME_STRUCT(::CUlaunchAttribute, tg::CUlaunchAttribute);
ABI_SAME_FIELD(::CUlaunchAttribute, tg::CUlaunchAttribute, id);
ABI_SAME_FIELD(::CUlaunchAttribute, tg::CUlaunchAttribute, value);
#define CONFIG_FIELDS(X) X(gridDimX) X(gridDimY) X(gridDimZ) X(blockDimX) X(blockDimY) X(blockDimZ) \
    X(sharedMemBytes) X(hStream) X(attrs) X(numAttrs)
#define CONFIG_FIELD(f) ABI_SAME_FIELD(::CUlaunchConfig, tg::CUlaunchConfig, f);
ABI_SAME_STRUCT(::CUlaunchConfig, tg::CUlaunchConfig);
CONFIG_FIELDS(CONFIG_FIELD)
#define COPY2D_FIELDS(X) X(srcXInBytes) X(srcY) X(srcMemoryType) X(srcHost) X(srcDevice) X(srcArray) X(srcPitch) \
    X(dstXInBytes) X(dstY) X(dstMemoryType) X(dstHost) X(dstDevice) X(dstArray) X(dstPitch) X(WidthInBytes) X(Height)
#define COPY2D_FIELD(f) ABI_SAME_FIELD(::CUDA_MEMCPY2D, tg::CUDA_MEMCPY2D, f);
ABI_SAME_STRUCT(::CUDA_MEMCPY2D, tg::CUDA_MEMCPY2D);
COPY2D_FIELDS(COPY2D_FIELD)
#define COPY3D_FIELDS(X) X(srcXInBytes) X(srcY) X(srcZ) X(srcLOD) X(srcMemoryType) X(srcHost) X(srcDevice) \
    X(srcArray) X(reserved0) X(srcPitch) X(srcHeight) X(dstXInBytes) X(dstY) X(dstZ) X(dstLOD) X(dstMemoryType) \
    X(dstHost) X(dstDevice) X(dstArray) X(reserved1) X(dstPitch) X(dstHeight) X(WidthInBytes) X(Height) X(Depth)
#define COPY3D_FIELD(f) ABI_SAME_FIELD(::CUDA_MEMCPY3D, tg::CUDA_MEMCPY3D, f);
ABI_SAME_STRUCT(::CUDA_MEMCPY3D, tg::CUDA_MEMCPY3D);
COPY3D_FIELDS(COPY3D_FIELD)

#include <cstdio>
#include <cstring>
// Prints how many declarations were proven, so the test can tell a real pass from an empty unit.
#define COUNT(ret, name, params) +1
int main() {
    if (std::memcmp(real_handles, our_handles, sizeof real_handles) != 0) { std::puts("handle constants differ"); return 1; }
    std::printf("cuda functions=%d\n", 0 TG_CUDA_FUNCTIONS(COUNT));
    return 0;
}
