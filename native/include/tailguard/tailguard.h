/* tailguard's application ABI: tell the shim which request (W3C trace context) the calling thread's GPU work belongs
 * to, so that the agent's request spans join the application's own traces (docs/tracing.md).
 *
 * Stable and versioned, in the spirit of NVTX v3: the shim (libtailguard.so, LD_PRELOAD) exports the functions below;
 * an application includes this header only (no library to link, C or C++) and calls the tailguard_* wrappers, which find
 * the shim's functions with dlsym(RTLD_DEFAULT, ...) on first use. Without the shim that costs one failed lookup, once
 * per process, and every call after it returns TAILGUARD_ABSENT at once. Link with -ldl on glibc older than 2.34.
 *
 *   #include "tailguard/tailguard.h"
 *   tailguard_begin(traceparent_from_http_header, "infer");  // ... launches, syncs ...
 *   tailguard_end();
 *
 * Functions the shim exports (version TAILGUARD_ABI_VERSION; later versions only add functions):
 *   int tailguard_abi_version(void)
 *       TAILGUARD_ABI_VERSION of the shim.
 *   int tailguard_request_begin(const char *traceparent, const char *name)
 *       The calling thread's GPU work belongs to this request until the matching tailguard_request_end. traceparent is a
 *       W3C traceparent ("00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>"); NULL: the thread's current
 *       context (its open request, else the process's default), a named sub-request. name (may be NULL) names the span
 *       ("request NAME"). Requests nest per thread up to TAILGUARD_MAX_DEPTH. Returns 0, -EINVAL for a traceparent
 *       that is not valid (nothing recorded, nothing opened), -EOVERFLOW when TAILGUARD_MAX_DEPTH are open already.
 *   int tailguard_request_end(void)
 *       Ends the calling thread's innermost request: 0, or -ENOENT when it has none open. A thread that exits with
 *       requests open has them ended then.
 *   int tailguard_set_process_context(const char *traceparent)
 *       The context of threads that have no request open (as TRACEPARENT at start); NULL or "" clears it. 0 or -EINVAL.
 * The wrappers below (tailguard_begin, tailguard_end, tailguard_process_context; tailguard_present) return the same,
 * or TAILGUARD_ABSENT when no shim is loaded. All are thread-safe; none blocks, and none allocates but the first time
 * a request name is seen (up to 256 distinct names per process; further ones are recorded without a name). */
#ifndef TAILGUARD_TAILGUARD_H
#define TAILGUARD_TAILGUARD_H

#define TAILGUARD_ABI_VERSION 1
#define TAILGUARD_MAX_DEPTH 8
/* What the wrappers return when no shim answers (not an errno value). */
#define TAILGUARD_ABSENT (-10000)

#ifndef TAILGUARD_NO_WRAPPERS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_DEFAULT */
#endif
#include <dlfcn.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*tailguard_abi_version_fn)(void);
typedef int (*tailguard_request_begin_fn)(const char *traceparent, const char *name);
typedef int (*tailguard_request_end_fn)(void);
typedef int (*tailguard_set_process_context_fn)(const char *traceparent);

/* The shim's entry points, found once (all NULL when no shim is loaded). */
typedef struct tailguard_api {
    int version; /* the shim's TAILGUARD_ABI_VERSION, 0 when absent */
    tailguard_request_begin_fn request_begin;
    tailguard_request_end_fn request_end;
    tailguard_set_process_context_fn set_process_context;
} tailguard_api;

#ifndef TAILGUARD_NO_WRAPPERS

/* One copy per program or library that includes the header (static inline): each looks up once. A race between
 * threads on the first call only repeats the lookup, with the same result. */
static inline const tailguard_api *tailguard_lookup(void) {
    static tailguard_api api;
    static int state; /* 0: not looked up, 1: done (release: api is filled before) */
    if (__builtin_expect(__atomic_load_n(&state, __ATOMIC_ACQUIRE), 1)) return &api;
    tailguard_api found = {0, 0, 0, 0};
    tailguard_abi_version_fn version = (tailguard_abi_version_fn)dlsym(RTLD_DEFAULT, "tailguard_abi_version");
    if (version) {
        found.version = version();
        found.request_begin = (tailguard_request_begin_fn)dlsym(RTLD_DEFAULT, "tailguard_request_begin");
        found.request_end = (tailguard_request_end_fn)dlsym(RTLD_DEFAULT, "tailguard_request_end");
        found.set_process_context = (tailguard_set_process_context_fn)dlsym(RTLD_DEFAULT, "tailguard_set_process_context");
        if (found.version < 1 || !found.request_begin || !found.request_end || !found.set_process_context) {
            found.version = 0;
            found.request_begin = 0;
            found.request_end = 0;
            found.set_process_context = 0;
        }
    }
    api = found;
    __atomic_store_n(&state, 1, __ATOMIC_RELEASE);
    return &api;
}

/* Whether a shim answers: its ABI version, or 0. */
static inline int tailguard_present(void) { return tailguard_lookup()->version; }

static inline int tailguard_begin(const char *traceparent, const char *name) {
    const tailguard_api *a = tailguard_lookup();
    return a->request_begin ? a->request_begin(traceparent, name) : TAILGUARD_ABSENT;
}
static inline int tailguard_end(void) {
    const tailguard_api *a = tailguard_lookup();
    return a->request_end ? a->request_end() : TAILGUARD_ABSENT;
}
static inline int tailguard_process_context(const char *traceparent) {
    const tailguard_api *a = tailguard_lookup();
    return a->set_process_context ? a->set_process_context(traceparent) : TAILGUARD_ABSENT;
}

#endif /* TAILGUARD_NO_WRAPPERS */

#ifdef __cplusplus
}
#endif
#endif
