/* The table of intercepted entry points (tailguard/apis.def) and the real implementations behind the wrappers:
 * one pointer per exported symbol, so the default and per-thread-stream variants never share one. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../shim.h"
#include "tailguard/cuda_abi.h"
#include "tailguard/hip_abi.h"
#include "tailguard/log.h"

const tg_api_info tg_apis[TG_API_COUNT] = {
#define TG_API(sym, family, kind, gpa, per_thread, min_version) \
    [TG_API_##sym] = {#sym, gpa, (void *)sym, TG_FAMILY_##family, TG_KIND_##kind, per_thread, min_version},
#define TG_KIND_NONE 0
#include "tailguard/apis.def"
#undef TG_API
};

_Atomic(void *) tg_real[TG_API_COUNT];

static int sorted[TG_API_COUNT - 1]; /* indexes ordered by symbol, for lookups from dlsym */
static pthread_once_t sorted_once = PTHREAD_ONCE_INIT;

static int by_symbol(const void *a, const void *b) {
    return strcmp(tg_apis[*(const int *)a].symbol, tg_apis[*(const int *)b].symbol);
}
static void sort_symbols(void) {
    for (int i = 1; i < TG_API_COUNT; i++) sorted[i - 1] = i;
    qsort(sorted, TG_API_COUNT - 1, sizeof sorted[0], by_symbol);
}

const tg_api_info *tg_api_by_symbol(const char *symbol, int *id) {
    pthread_once(&sorted_once, sort_symbols);
    int lo = 0, hi = TG_API_COUNT - 2;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(symbol, tg_apis[sorted[mid]].symbol);
        if (c == 0) {
            *id = sorted[mid];
            return &tg_apis[*id];
        }
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

int tg_api_by_gpa(const char *base, int per_thread) {
    int fallback = TG_API_NONE;
    for (int i = 1; i < TG_API_COUNT; i++) {
        if (tg_apis[i].family != TG_FAMILY_CUDA || strcmp(tg_apis[i].gpa, base) != 0) continue;
        if (tg_apis[i].per_thread == per_thread) return i;
        if (!tg_apis[i].per_thread) fallback = i; /* no per-thread variant: the driver returns the default one */
    }
    return per_thread ? fallback : TG_API_NONE;
}

void *tg_real_resolve(int api) {
    void *p = tg_next_symbol(tg_apis[api].symbol);
    if (!p) {
        static atomic_int warned;
        if (!atomic_exchange(&warned, 1))
            tg_warn("%s was called but no library after the shim defines it; returning an error", tg_apis[api].symbol);
        return NULL;
    }
    void *expected = NULL;
    if (!atomic_compare_exchange_strong(&tg_real[api], &expected, p)) return expected;
    /* first resolution through the exported symbol: the app is linked to the driver directly */
    tg_mark_path(tg_apis[api].family == TG_FAMILY_CUDA ? TG_PATH_CUDA_SYMBOL : TG_PATH_HIP_SYMBOL);
    return p;
}
