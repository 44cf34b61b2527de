// Compile-time ABI comparison used by the conformance units: two function pointer types agree when they take the
// same number of parameters and each parameter (and the result) has the same size, alignment and kind.
#pragma once
#include <cstddef>
#include <type_traits>

namespace abi {
enum Kind { Void, Pointer, Float, Integer, Record, Other };

template <class T> constexpr Kind kind_of() {
    if constexpr (std::is_void_v<T>) return Void;
    else if constexpr (std::is_pointer_v<T>) return Pointer;
    else if constexpr (std::is_floating_point_v<T>) return Float;
    else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) return Integer;
    else if constexpr (std::is_class_v<T> || std::is_union_v<T>) return Record;
    else return Other;
}
template <class T> constexpr std::size_t size_of() { if constexpr (std::is_void_v<T>) return 0; else return sizeof(T); }
template <class T> constexpr std::size_t align_of() { if constexpr (std::is_void_v<T>) return 0; else return alignof(T); }
// Signedness matters for integers passed by value, except for enums (their underlying type is the compiler's choice).
template <class T> constexpr int sign_of() {
    if constexpr (std::is_integral_v<T>) return std::is_signed_v<T> ? 1 : 2; else return 0;
}
template <class A, class B> constexpr bool same_value() {
    constexpr bool sign_ok = sign_of<A>() == 0 || sign_of<B>() == 0 || sign_of<A>() == sign_of<B>();
    return kind_of<A>() == kind_of<B>() && size_of<A>() == size_of<B>() && align_of<A>() == align_of<B>() && sign_ok;
}
template <class F, class G> struct same_fn : std::false_type {};
template <class R1, class... A1, class R2, class... A2>
struct same_fn<R1 (*)(A1...), R2 (*)(A2...)> {
    static constexpr bool value = sizeof...(A1) == sizeof...(A2) && same_value<R1, R2>() && (same_value<A1, A2>() && ...);
};
}  // namespace abi

#define ABI_SAME_STRUCT(real, ours) \
    static_assert(sizeof(real) == sizeof(ours) && alignof(real) == alignof(ours), "size/alignment of " #real)
#define ABI_SAME_FIELD(real, ours, field) \
    static_assert(offsetof(real, field) == offsetof(ours, field) && sizeof(real::field) == sizeof(ours::field), #real "." #field)
