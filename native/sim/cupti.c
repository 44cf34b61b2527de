/* The simulated GPU's CUPTI (build/sim/libcupti.so.13): the part of CUPTI's Activity API that the shim's kernel timing
 * uses (native/shim/kernel_timing.c), answered with the simulated device's own kernel start and end times. It learns
 * of each kernel, copy and fill through the hooks the simulated libcuda takes (activity.h), so it works only beside
 * the simulated GPU (elsewhere, enabling an activity fails with CUPTI_ERROR_NOT_INITIALIZED).
 *
 * Like the real one: records go into the client's buffers (cuptiActivityRegisterCallbacks), EXTERNAL_CORRELATION
 * records (one per external id pushed on the submitting thread) into a buffer of their own, kernels, copies and fills
 * into another; buffers are handed back on a thread of CUPTI's when full, every flush period
 * (cuptiActivityFlushPeriod; device records before correlations, the order a client must cope with), and at
 * cuptiActivityFlushAll on the calling thread. Without a buffer, records are dropped and counted
 * (cuptiActivityGetNumDroppedRecords). Timestamps are CLOCK_REALTIME ns, or the client's timestamp callback's.
 *
 * Records of the CUDA calls (CUpti_ActivityAPI, kinds DRIVER and RUNTIME) where asked for, one per submission, and
 * EXTERNAL_CORRELATION records only beside them, as the real one writes them.
 *
 * Switch TAILGUARD_SIM_CUPTI_FAULT: subscribers (enabling fails with MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED, as when
 * another profiler owns CUPTI), clock (the timestamp callback is refused, as by a CUPTI without one), runtime (each
 * submission is recorded as a CUDA runtime call begun before the driver's, with no external ids: a program that
 * launches through the CUDA runtime), noapi (as runtime, but the records of those calls never come: what the
 * shim counts as lost, unmatched). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "activity.h"
#include "tailguard/cupti_abi.h"
#include "tailguard/log.h"
#include "tailguard/options.h"

#define EXPORT __attribute__((visibility("default")))

enum {
    OK = TG_CUPTI_SUCCESS,
    E_INVALID_PARAMETER = TG_CUPTI_ERROR_INVALID_PARAMETER,
    E_MAX_LIMIT_REACHED = TG_CUPTI_ERROR_MAX_LIMIT_REACHED,
    E_NOT_INITIALIZED = TG_CUPTI_ERROR_NOT_INITIALIZED,
    E_QUEUE_EMPTY = TG_CUPTI_ERROR_QUEUE_EMPTY,
    E_INVALID_KIND = TG_CUPTI_ERROR_INVALID_KIND,
    E_NOT_SUPPORTED = TG_CUPTI_ERROR_NOT_SUPPORTED,
    E_MULTIPLE_SUBSCRIBERS = TG_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED,
};
enum {
    K_MEMCPY = TG_CUPTI_ACTIVITY_KIND_MEMCPY,
    K_MEMSET = TG_CUPTI_ACTIVITY_KIND_MEMSET,
    K_KERNEL = TG_CUPTI_ACTIVITY_KIND_KERNEL,
    K_CONCURRENT_KERNEL = TG_CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
    K_EXTERNAL_CORRELATION = TG_CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
    K_DRIVER = TG_CUPTI_ACTIVITY_KIND_DRIVER,
    K_RUNTIME = TG_CUPTI_ACTIVITY_KIND_RUNTIME,
};

/* The records, laid out as cupti_activity.h (CUDA 13) lays out CUpti_ActivityKernel10, Memcpy6, Memset4 and
 * ExternalCorrelation, up to the fields the simulation fills. */
#define PACKED __attribute__((packed, aligned(8)))
typedef struct PACKED {
    uint32_t kind;
    uint8_t cache_config, shared_config;
    uint16_t registers;
    uint32_t pgc_requested, pgc_executed;
    uint64_t start, end, completed;
    uint32_t device, context, stream;
    int32_t grid[3], block[3], static_shared, dynamic_shared;
    uint32_t local_per_thread, local_total, correlation;
    int64_t grid_id;
    const char *name;
    void *reserved0;
} rec_kernel;
typedef struct PACKED {
    uint32_t kind;
    uint8_t copy_kind, src_kind, dst_kind, flags;
    uint64_t bytes, start, end;
    uint32_t device, context, stream, correlation, runtime_correlation, pad;
    void *reserved0;
} rec_memcpy;
typedef struct PACKED {
    uint32_t kind, value;
    uint64_t bytes, start, end;
    uint32_t device, context, stream, correlation;
    uint16_t flags, memory_kind;
    uint32_t pad;
    void *reserved0;
} rec_memset;
typedef struct PACKED {
    uint32_t kind, external_kind;
    uint64_t external_id;
    uint32_t correlation, reserved;
} rec_external;

/* The records as written are the records as read: the prefixes of tailguard/cupti_abi.h. */
#define SAME(a, b, fa, fb) _Static_assert(__builtin_offsetof(a, fa) == __builtin_offsetof(b, fb), #a "." #fa)
SAME(rec_kernel, tg_cupti_kernel, start, start);
SAME(rec_kernel, tg_cupti_kernel, end, end);
SAME(rec_kernel, tg_cupti_kernel, correlation, correlationId);
SAME(rec_kernel, tg_cupti_kernel, name, name);
SAME(rec_memcpy, tg_cupti_memcpy, start, start);
SAME(rec_memcpy, tg_cupti_memcpy, correlation, correlationId);
SAME(rec_memset, tg_cupti_memset, start, start);
SAME(rec_memset, tg_cupti_memset, correlation, correlationId);
SAME(rec_external, tg_cupti_external_correlation, external_id, externalId);
SAME(rec_external, tg_cupti_external_correlation, correlation, correlationId);

typedef tg_cupti_buffer_requested requested_fn;
typedef tg_cupti_buffer_completed completed_fn;

typedef struct {
    uint8_t *buf;
    size_t size, used;
} buffer;
#define DONE_MAX 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;    /* everything below */
static pthread_mutex_t deliver = PTHREAD_MUTEX_INITIALIZER; /* one hand-over at a time, outside `lock` */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static requested_fn requested;
static completed_fn completed;
static uint64_t (*timestamp_cb)(void);
static uint64_t enabled; /* bit 1 << kind */
static buffer device_buf, global_buf;
static buffer done[DONE_MAX];
static unsigned done_n;
static size_t dropped;
static uint32_t period_ms;
static int flusher_started, hooked;
static _Atomic uint32_t correlation_next;
#define STACK 16
static __thread struct {
    uint64_t ids[STACK];
    unsigned n;
} pushed[8];

static uint64_t clock_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
/* CUPTI's clock: the client's callback, else CLOCK_REALTIME. */
static uint64_t cupti_now(void) { return timestamp_cb ? timestamp_cb() : clock_ns(CLOCK_REALTIME); }

static const char *fault(void) {
    static char v[32];
    if (!v[0]) tg_option_string(TG_OPT_SIM_CUPTI_FAULT, v, sizeof v);
    return v;
}
/* How long before the driver's work a CUDA runtime call begins (TAILGUARD_SIM_CUPTI_FAULT=runtime). */
#define RUNTIME_CALL_NS 1000000 /* wide: a loaded machine may deschedule the caller between the shim and the simulated GPU */
static int driver_api_on, runtime_api_on; /* cuptiActivityEnable{Driver,Runtime}Api for some call */
static uint32_t pid; /* getpid() is a system call: once, and again in a forked child */

/* Under lock: room for n bytes in b, handing a full buffer over and asking for a new one; NULL: dropped. */
static void *room(buffer *b, size_t n) {
    if (b->buf && b->used + n > b->size) {
        if (done_n < DONE_MAX) done[done_n++] = *b;
        else dropped += 1; /* cannot happen with the shim's 8 buffers */
        memset(b, 0, sizeof *b);
        pthread_cond_signal(&wake);
    }
    if (!b->buf && requested) {
        size_t max = 0;
        requested(&b->buf, &b->size, &max);
        b->used = 0;
        if (b->buf && b->size < n) b->buf = NULL;
    }
    if (!b->buf) {
        dropped++;
        return NULL;
    }
    void *p = b->buf + b->used;
    b->used += (n + 7) & ~(size_t)7;
    memset(p, 0, n);
    return p;
}

/* Hands over what is full, and with `all` what is being filled too (device records first). */
static void hand_over(int all) {
    pthread_mutex_lock(&deliver);
    pthread_mutex_lock(&lock);
    if (all) {
        if (device_buf.buf && device_buf.used && done_n < DONE_MAX) {
            done[done_n++] = device_buf;
            memset(&device_buf, 0, sizeof device_buf);
        }
        if (global_buf.buf && global_buf.used && done_n < DONE_MAX) {
            done[done_n++] = global_buf;
            memset(&global_buf, 0, sizeof global_buf);
        }
    }
    buffer out[DONE_MAX];
    unsigned n = done_n;
    memcpy(out, done, n * sizeof *out);
    done_n = 0;
    completed_fn cb = completed;
    pthread_mutex_unlock(&lock);
    for (unsigned i = 0; i < n; i++)
        if (cb) cb(NULL, 0, out[i].buf, out[i].size, out[i].used);
    pthread_mutex_unlock(&deliver);
}

static void *flusher(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        uint32_t ms = period_ms ? period_ms : 1000;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int timed_out = done_n == 0 ? pthread_cond_timedwait(&wake, &lock, &until) != 0 : 0;
        int all = timed_out && period_ms != 0;
        pthread_mutex_unlock(&lock);
        hand_over(all);
    }
    return NULL;
}

/* ---- the hooks the simulated GPU calls (activity.h) ---- */

static uint32_t on_submitted(int kind) {
    (void)kind;
    uint32_t c = atomic_fetch_add(&correlation_next, 1) + 1;
    int noapi = !strcasecmp(fault(), "noapi"), runtime = noapi || !strcasecmp(fault(), "runtime");
    uint64_t now = cupti_now();
    pthread_mutex_lock(&lock);
    /* the record of the CUDA call that submitted it, and before it (as CUPTI writes them only beside such records)
     * one EXTERNAL_CORRELATION record per kind of external id pushed on this thread; a runtime call was entered
     * before the shim pushed its id */
    if (!noapi && (runtime ? (enabled & (1ull << K_RUNTIME)) || runtime_api_on : (enabled & (1ull << K_DRIVER)) || driver_api_on)) {
        for (unsigned k = 0; k < 8 && !runtime; k++) {
            if (!pushed[k].n || !(enabled & (1ull << K_EXTERNAL_CORRELATION))) continue;
            rec_external *r = room(&global_buf, sizeof *r);
            if (r) {
                r->kind = K_EXTERNAL_CORRELATION;
                r->external_kind = k;
                r->external_id = pushed[k].ids[pushed[k].n - 1];
                r->correlation = c;
            }
        }
        tg_cupti_api *a = room(&global_buf, sizeof *a);
        if (a) {
            a->kind = runtime ? K_RUNTIME : K_DRIVER;
            a->start = runtime ? now - RUNTIME_CALL_NS : now;
            a->end = now;
            a->processId = pid;
            a->threadId = (uint32_t)(uintptr_t)pthread_self();
            a->correlationId = c;
        }
    }
    pthread_mutex_unlock(&lock);
    return c;
}

static void on_executed(int kind, uint32_t correlation, const char *name, uint64_t start, uint64_t end, uint64_t bytes,
                        uintptr_t stream) {
    /* the device timeline is CLOCK_MONOTONIC: CUPTI reports it on its own clock */
    int64_t shift = (int64_t)cupti_now() - (int64_t)clock_ns(CLOCK_MONOTONIC);
    pthread_mutex_lock(&lock);
    if (kind == SIM_ACT_KERNEL && (enabled & (1ull << K_CONCURRENT_KERNEL | 1ull << K_KERNEL))) {
        rec_kernel *r = room(&device_buf, sizeof *r);
        if (r) {
            r->kind = enabled & (1ull << K_CONCURRENT_KERNEL) ? K_CONCURRENT_KERNEL : K_KERNEL;
            r->start = (uint64_t)((int64_t)start + shift);
            r->end = r->completed = (uint64_t)((int64_t)end + shift);
            r->stream = (uint32_t)(stream >> 4);
            r->grid[0] = r->grid[1] = r->grid[2] = r->block[0] = r->block[1] = r->block[2] = 1;
            r->correlation = correlation;
            r->name = name;
        }
    } else if (kind == SIM_ACT_COPY && (enabled & (1ull << K_MEMCPY))) {
        rec_memcpy *r = room(&device_buf, sizeof *r);
        if (r) {
            r->kind = K_MEMCPY;
            r->bytes = bytes;
            r->start = (uint64_t)((int64_t)start + shift);
            r->end = (uint64_t)((int64_t)end + shift);
            r->stream = (uint32_t)(stream >> 4);
            r->correlation = correlation;
        }
    } else if (kind == SIM_ACT_FILL && (enabled & (1ull << K_MEMSET))) {
        rec_memset *r = room(&device_buf, sizeof *r);
        if (r) {
            r->kind = K_MEMSET;
            r->bytes = bytes;
            r->start = (uint64_t)((int64_t)start + shift);
            r->end = (uint64_t)((int64_t)end + shift);
            r->stream = (uint32_t)(stream >> 4);
            r->correlation = correlation;
        }
    }
    pthread_mutex_unlock(&lock);
}

static const sim_activity_hooks hooks = {on_submitted, on_executed};

/* ---- the API ---- */

EXPORT int cuptiGetVersion(uint32_t *version) {
    if (!version) return E_INVALID_PARAMETER;
    *version = 130001;
    return OK;
}

EXPORT int cuptiGetResultString(int result, const char **str) {
    if (!str) return E_INVALID_PARAMETER;
    switch (result) {
    case OK: *str = "CUPTI_SUCCESS"; break;
    case E_INVALID_PARAMETER: *str = "CUPTI_ERROR_INVALID_PARAMETER"; break;
    case E_MAX_LIMIT_REACHED: *str = "CUPTI_ERROR_MAX_LIMIT_REACHED"; break;
    case E_NOT_INITIALIZED: *str = "CUPTI_ERROR_NOT_INITIALIZED"; break;
    case E_QUEUE_EMPTY: *str = "CUPTI_ERROR_QUEUE_EMPTY"; break;
    case E_INVALID_KIND: *str = "CUPTI_ERROR_INVALID_KIND"; break;
    case E_NOT_SUPPORTED: *str = "CUPTI_ERROR_NOT_SUPPORTED"; break;
    case E_MULTIPLE_SUBSCRIBERS: *str = "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED"; break;
    default: *str = "CUPTI_ERROR_UNKNOWN"; return E_INVALID_PARAMETER;
    }
    return OK;
}

EXPORT int cuptiActivityRegisterCallbacks(requested_fn req, completed_fn comp) {
    if (!req || !comp) return E_INVALID_PARAMETER;
    pthread_mutex_lock(&lock);
    requested = req;
    completed = comp;
    pthread_mutex_unlock(&lock);
    return OK;
}

EXPORT int cuptiActivityRegisterTimestampCallback(uint64_t (*fn)(void)) {
    if (!fn) return E_INVALID_PARAMETER;
    if (!strcasecmp(fault(), "clock")) return E_NOT_SUPPORTED;
    timestamp_cb = fn;
    return OK;
}

EXPORT int cuptiGetTimestamp(uint64_t *ts) {
    if (!ts) return E_INVALID_PARAMETER;
    *ts = cupti_now();
    return OK;
}

EXPORT int cuptiActivityEnable(int kind) {
    if (kind != K_MEMCPY && kind != K_MEMSET && kind != K_KERNEL && kind != K_CONCURRENT_KERNEL &&
        kind != K_EXTERNAL_CORRELATION && kind != K_DRIVER && kind != K_RUNTIME)
        return E_INVALID_KIND;
    if (!strcasecmp(fault(), "subscribers")) return E_MULTIPLE_SUBSCRIBERS;
    pthread_mutex_lock(&lock);
    if (!hooked) {
        /* libcuda may have been loaded RTLD_LOCAL (dlopen by the CUDA runtime): asked by name first */
        void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
        sim_activity_fn f = cuda ? (sim_activity_fn)dlsym(cuda, SIM_ACTIVITY_SYMBOL) : NULL;
        if (!f) f = (sim_activity_fn)dlsym(RTLD_DEFAULT, SIM_ACTIVITY_SYMBOL);
        if (!f) {
            pthread_mutex_unlock(&lock);
            return E_NOT_INITIALIZED; /* not beside the simulated GPU */
        }
        f(&hooks);
        hooked = 1;
    }
    enabled |= 1ull << kind;
    if (!flusher_started) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, flusher, NULL) == 0) flusher_started = 1;
        pthread_attr_destroy(&a);
    }
    pthread_mutex_unlock(&lock);
    return OK;
}

/* Which calls is not simulated: any enabled call makes every submission's record. */
EXPORT int cuptiActivityEnableDriverApi(uint32_t cbid, uint8_t enable) {
    (void)cbid;
    pthread_mutex_lock(&lock);
    if (enable) driver_api_on = 1;
    pthread_mutex_unlock(&lock);
    return OK;
}

EXPORT int cuptiActivityEnableRuntimeApi(uint32_t cbid, uint8_t enable) {
    (void)cbid;
    pthread_mutex_lock(&lock);
    if (enable) runtime_api_on = 1;
    pthread_mutex_unlock(&lock);
    return OK;
}

EXPORT int cuptiActivityDisable(int kind) {
    if (kind <= 0 || kind >= 64) return E_INVALID_KIND;
    pthread_mutex_lock(&lock);
    enabled &= ~(1ull << kind);
    pthread_mutex_unlock(&lock);
    return OK;
}

static size_t record_size(uint32_t kind) {
    switch (kind) {
    case K_KERNEL:
    case K_CONCURRENT_KERNEL: return (sizeof(rec_kernel) + 7) & ~(size_t)7;
    case K_MEMCPY: return (sizeof(rec_memcpy) + 7) & ~(size_t)7;
    case K_MEMSET: return (sizeof(rec_memset) + 7) & ~(size_t)7;
    case K_EXTERNAL_CORRELATION: return (sizeof(rec_external) + 7) & ~(size_t)7;
    case K_DRIVER:
    case K_RUNTIME: return (sizeof(tg_cupti_api) + 7) & ~(size_t)7;
    default: return 0;
    }
}

EXPORT int cuptiActivityGetNextRecord(uint8_t *buf, size_t valid, void **record) {
    if (!buf || !record) return E_INVALID_PARAMETER;
    size_t off = 0;
    if (*record) {
        size_t n = record_size(*(const uint32_t *)*record);
        if (!n) return E_INVALID_KIND;
        off = (size_t)((uint8_t *)*record - buf) + n;
    }
    if (off + 8 > valid) return E_MAX_LIMIT_REACHED;
    size_t n = record_size(*(const uint32_t *)(buf + off));
    if (!n || off + n > valid) return E_INVALID_KIND;
    *record = buf + off;
    return OK;
}

EXPORT int cuptiActivityFlushAll(uint32_t flag) {
    (void)flag;
    hand_over(1);
    return OK;
}

EXPORT int cuptiActivityFlushPeriod(uint32_t ms) {
    pthread_mutex_lock(&lock);
    period_ms = ms;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    return OK;
}

EXPORT int cuptiActivityPushExternalCorrelationId(int kind, uint64_t id) {
    if (kind <= 0 || kind >= 8) return E_INVALID_PARAMETER;
    if (pushed[kind].n == STACK) return E_MAX_LIMIT_REACHED;
    pushed[kind].ids[pushed[kind].n++] = id;
    return OK;
}

EXPORT int cuptiActivityPopExternalCorrelationId(int kind, uint64_t *id) {
    if (kind <= 0 || kind >= 8) return E_INVALID_PARAMETER;
    if (!pushed[kind].n) return E_QUEUE_EMPTY;
    uint64_t v = pushed[kind].ids[--pushed[kind].n];
    if (id) *id = v;
    return OK;
}

EXPORT int cuptiActivityGetNumDroppedRecords(void *ctx, uint32_t stream, size_t *n) {
    (void)ctx;
    (void)stream;
    if (!n) return E_INVALID_PARAMETER;
    pthread_mutex_lock(&lock);
    *n = dropped;
    dropped = 0;
    pthread_mutex_unlock(&lock);
    return OK;
}

/* A forked child has no flusher thread and none of the parent's buffers are its to hand over. */
static void after_fork_child(void) {
    pid = (uint32_t)getpid();
    pthread_mutex_init(&lock, NULL);
    pthread_mutex_init(&deliver, NULL);
    pthread_cond_init(&wake, NULL);
    flusher_started = 0;
    done_n = 0;
    memset(&device_buf, 0, sizeof device_buf);
    memset(&global_buf, 0, sizeof global_buf);
}

__attribute__((constructor)) static void sim_cupti_init(void) {
    tg_log_set_component("tailguard-sim-cupti");
    pid = (uint32_t)getpid();
    pthread_atfork(NULL, NULL, after_fork_child);
}

/* Every entry point has the signature cupti_abi.h declares (and the conformance test proves against CUPTI's). */
#define CHECK_SIGNATURE(ret, name, params) __attribute__((unused)) static const tg_pfn_##name check_##name = name;
TG_CUPTI_FUNCTIONS(CHECK_SIGNATURE)
