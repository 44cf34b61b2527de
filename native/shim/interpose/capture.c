/* Streams under graph capture, for both API families. Capture is rare and short-lived, so a small table scanned only
 * while some capture is active keeps the launch path to one relaxed load. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

#include "wrap.h"

#define SLOTS 64
static _Atomic(const void *) streams[SLOTS];
atomic_int tg_capture_count;
__thread uint32_t tg_launch_tick __attribute__((tls_model("initial-exec")));

int tg_capturing_slow(const void *s) {
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load_explicit(&streams[i], memory_order_relaxed) == s) return 1;
    return 0;
}

void tg_capture_begin(const void *s) {
    for (int i = 0; i < SLOTS; i++) {
        const void *none = NULL;
        if (atomic_compare_exchange_strong(&streams[i], &none, s)) {
            atomic_fetch_add(&tg_capture_count, 1);
            return;
        }
    }
}

void tg_capture_end(const void *s) {
    for (int i = 0; i < SLOTS; i++) {
        const void *want = s;
        if (atomic_compare_exchange_strong(&streams[i], &want, NULL)) {
            atomic_fetch_sub(&tg_capture_count, 1);
            return;
        }
    }
}

const char *tg_host_function_name(const void *fn, char *buf, unsigned len) {
    Dl_info info;
    if (dladdr(fn, &info) && info.dli_sname && info.dli_saddr == fn) return info.dli_sname;
    snprintf(buf, len, "host_func@%p", fn);
    return buf;
}
