/* dlsym interposition: how the CUDA runtime (and so PyTorch) reaches the driver. libcudart dlopens libcuda.so.1 and
 * asks dlsym for cuGetProcAddress_v2; we hand back our cuGetProcAddress, which wraps every entry point it returns.
 *
 * glibc resolves RTLD_NEXT relative to the object that called dlsym, found from the return address. An ordinary C
 * hook would make every library's dlsym(RTLD_NEXT, ...) resolve relative to the shim, breaking other interposers. So
 * the exported dlsym is a trampoline: names the shim does not intercept are passed on by a tail jump, which leaves the
 * original caller's return address in place. Only intercepted names (cu*, hip* entry points) enter C. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

#include "../shim.h"
#include "tailguard/log.h"

void *(*tg_real_dlsym)(void *, const char *) __attribute__((visibility("hidden")));

void tg_dlsym_init(void) {
    if (tg_real_dlsym) return;
    void *p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!p) p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    __atomic_store_n(&tg_real_dlsym, (void *(*)(void *, const char *))p, __ATOMIC_RELEASE);
}

/* Called by the trampoline for every dlsym: nonzero when `name` is an entry point the shim intercepts. */
__attribute__((visibility("hidden"))) int tg_dlsym_wants(const char *name) {
    if (!tg_real_dlsym) tg_dlsym_init();
    if (!name || !((name[0] == 'c' && name[1] == 'u') || (name[0] == 'h' && name[1] == 'i' && name[2] == 'p')))
        return 0;
    int id;
    return tg_api_by_symbol(name, &id) != NULL;
}

void *tg_next_symbol(const char *name) { return tg_real_dlsym ? tg_real_dlsym(RTLD_NEXT, name) : NULL; }

/* An intercepted name: find the real definition the caller would have got, remember it, return our wrapper. */
__attribute__((visibility("hidden"))) void *tg_dlsym_intercept(void *handle, const char *name) {
    int id;
    const tg_api_info *a = tg_api_by_symbol(name, &id);
    void *real = (handle == RTLD_DEFAULT || handle == RTLD_NEXT) ? tg_next_symbol(name) : tg_real_dlsym(handle, name);
    if (real == a->wrapper) real = tg_next_symbol(name); /* the handle's scope reached the shim itself */
    if (!real) return NULL;                               /* absent stays absent: no driver, no wrapper */
    void *expected = NULL;
    atomic_compare_exchange_strong(&tg_real[id], &expected, real);
    tg_mark_path(a->family == TG_FAMILY_CUDA ? TG_PATH_CUDA_DLSYM : TG_PATH_HIP_DLSYM);
    return a->wrapper;
}

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl dlsym\n"
        ".type dlsym, @function\n"
        "dlsym:\n"
        "    .cfi_startproc\n"
        "    push %rdi\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    push %rsi\n"
        "    .cfi_adjust_cfa_offset 8\n"
        "    sub $8, %rsp\n" /* keep the stack 16-byte aligned for the call */
        "    .cfi_adjust_cfa_offset 8\n"
        "    mov %rsi, %rdi\n"
        "    call tg_dlsym_wants\n"
        "    add $8, %rsp\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    pop %rsi\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    pop %rdi\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    test %eax, %eax\n"
        "    jnz 1f\n"
        "    jmp *tg_real_dlsym(%rip)\n"
        "1:  jmp tg_dlsym_intercept\n"
        "    .cfi_endproc\n"
        ".size dlsym, .-dlsym\n");
#else
/* Other architectures: rely on the compiler's tail call for the pass-through (checked by test/dlsym.test.ts). */
TG_EXPORT void *dlsym(void *handle, const char *name) {
    if (tg_dlsym_wants(name)) return tg_dlsym_intercept(handle, name);
    return tg_real_dlsym(handle, name);
}
#endif
