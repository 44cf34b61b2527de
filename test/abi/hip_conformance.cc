// Proves native/include/tailguard/hip_abi.h against the real HIP headers (Debian's libamdhip64-dev).
#define __HIP_PLATFORM_AMD__ 1
#define __HIP_DISABLE_CPP_FUNCTIONS__ 1 /* the C++ overloads (hipMalloc<T>) would make &hipMalloc ambiguous */
#include <hip/hip_runtime_api.h>
// hip_ext.h's launch template names a helper that only hipcc's headers define; declaring it lets g++ parse the file.
template <unsigned N, class Tuple> void pArgs(const Tuple&, void**);
#include <hip/hip_ext.h>
#include "abi_compare.hpp"

#define HIP_CONSTANTS(X)                                                                                            \
    X(hipSuccess) X(hipErrorInvalidValue) X(hipErrorOutOfMemory) X(hipErrorNotInitialized) X(hipErrorNoDevice)    \
    X(hipErrorInvalidDevice) X(hipErrorInvalidHandle) X(hipErrorNotFound) X(hipErrorNotReady)                     \
    X(hipErrorNotSupported) X(hipErrorUnknown) X(hipMemcpyHostToHost) X(hipMemcpyHostToDevice)                    \
    X(hipMemcpyDeviceToHost) X(hipMemcpyDeviceToDevice) X(hipMemcpyDefault) X(hipStreamDefault)                   \
    X(hipStreamNonBlocking)
#define CAPTURE(name) constexpr long long real_##name = (long long)(name);
HIP_CONSTANTS(CAPTURE)
#undef hipStreamDefault
#undef hipStreamNonBlocking
#undef hipStreamPerThread
#undef HIP_INCLUDE_HIP_HIP_RUNTIME_API_H

#define TG_ABI_NO_PROTOTYPES 1
namespace tg {
#include "tailguard/hip_abi.h"
}
#define COMPARE(name) static_assert(real_##name == (long long)(tg::name), "constant " #name);
HIP_CONSTANTS(COMPARE)

#define CHECK_FUNCTION(ret, name, params) \
    static_assert(abi::same_fn<decltype(&::name), tg::tg_pfn_##name>::value, "signature of " #name);
TG_HIP_FUNCTIONS(CHECK_FUNCTION)

ABI_SAME_STRUCT(::hipUUID, tg::hipUUID);
ABI_SAME_STRUCT(::dim3, tg::dim3);
ABI_SAME_FIELD(::dim3, tg::dim3, x);
ABI_SAME_FIELD(::dim3, tg::dim3, y);
ABI_SAME_FIELD(::dim3, tg::dim3, z);

#include <cstdio>
#define COUNT(ret, name, params) +1
int main() { std::printf("hip functions=%d\n", 0 TG_HIP_FUNCTIONS(COUNT)); return 0; }
