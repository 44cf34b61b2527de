/* Per-kernel device time through CUPTI (TAILGUARD_KERNEL_TIMING=sampled|all; docs/gpu-time.md, "Per-kernel device
 * time (CUPTI)"). Off by default, and then CUPTI is never loaded: the launch path pays one load of tg_kt_mode.
 *
 * At the process's first CUDA launch or copy (before it is timed) the shim loads CUPTI (dlopen, every entry point
 * through dlsym: no link dependency) and enables the activity kinds CONCURRENT_KERNEL (never KERNEL, which serialises
 * kernels), MEMCPY, MEMSET, EXTERNAL_CORRELATION, and the records of the CUDA calls that launch and copy (CUPTI writes
 * external correlations only beside such records; only those calls where CUPTI can be told which, 12.x and later).
 * A device record is tied to the shim's record of its launch in one of two ways:
 *  - by the launch's key, pushed as an external correlation id around each timed launch: the launching thread's tid
 *    (22 bits, Linux's PID_MAX_LIMIT) and the low 42 bits of the launch record's t_start (73 minutes of ns); CUPTI ties
 *    it to the driver call's correlation id, which the kernel record carries. Exact, for driver-API launches;
 *  - by the call (TG_F_KT_CALL), for work submitted through the CUDA runtime, whose call encloses the shim's wrapper
 *    and so carries no id of the shim's: CUPTI's record of that call gives its thread (pthread_self(), mapped to the
 *    tid by a table the launching threads fill) and when it began and ended; the agent finds the launch record.
 * In the buffers CUPTI hands back (on its own thread, every FLUSH_MS, and at exit) each device record becomes one
 * KERNEL_TIME ring record; records of calls, correlations and devices may come in different buffers in either order,
 * so device records wait a little (PENDING_NS) for theirs. With `sampled`, CUPTI still records every kernel (it
 * cannot be told which): the unsampled ones are dropped here, unwritten (runtime calls: one in N by correlation id).
 *
 * Times: CUPTI stamps activities with a timestamp callback of the shim's that reads CLOCK_MONOTONIC, so its
 * GPU-to-CPU interpolation lands on the shim's own clock. A CUPTI that refuses the callback stamps CLOCK_REALTIME:
 * then the offset to CLOCK_MONOTONIC is measured at every buffer, as the narrowest of three brackets
 * (monotonic, cuptiGetTimestamp, monotonic), whose half-width (well under a microsecond) is its error.
 *
 * Never harmful: a library missing, a symbol or a call failing, another profiler owning CUPTI: one message, kernel
 * timing off for the process, every launch passing through as before. CUPTI's callbacks never wait on the ring (a
 * full lane drops and counts), and its buffers are bounded (BUFFERS of BUFFER_SIZE; without a free one, CUPTI drops
 * records and counts them: a DROPPED record says how many). A forked child of a process with CUPTI running has
 * kernel timing off (CUPTI's thread and state are the parent's); a child forked before it began starts its own. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "shim.h"
#include "interpose/wrap.h"
#include "tailguard/cupti_abi.h"
#include "tailguard/log.h"
#include "tailguard/options.h"

/* ---- CUPTI (tailguard/cupti_abi.h) ---- */
enum {
    CUPTI_SUCCESS = TG_CUPTI_SUCCESS,
    CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED = TG_CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED,
};
enum {
    ACT_MEMCPY = TG_CUPTI_ACTIVITY_KIND_MEMCPY,
    ACT_MEMSET = TG_CUPTI_ACTIVITY_KIND_MEMSET,
    ACT_CONCURRENT_KERNEL = TG_CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
    ACT_EXTERNAL_CORRELATION = TG_CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
    ACT_DRIVER = TG_CUPTI_ACTIVITY_KIND_DRIVER,
    ACT_RUNTIME = TG_CUPTI_ACTIVITY_KIND_RUNTIME,
};
#define EXT_KIND TG_CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM2
typedef tg_cupti_result cupti_result;
typedef tg_cupti_kernel act_kernel;
typedef tg_cupti_memcpy act_memcpy;
typedef tg_cupti_memset act_memset;
typedef tg_cupti_external_correlation act_external;
typedef tg_cupti_api act_api;

static struct {
    tg_pfn_cuptiActivityRegisterCallbacks register_callbacks;
    tg_pfn_cuptiActivityEnable enable;
    tg_pfn_cuptiActivityDisable disable;
    tg_pfn_cuptiActivityGetNextRecord next_record;
    tg_pfn_cuptiActivityFlushAll flush_all;
    tg_pfn_cuptiActivityFlushPeriod flush_period;
    tg_pfn_cuptiActivityPushExternalCorrelationId push;
    tg_pfn_cuptiActivityPopExternalCorrelationId pop;
    tg_pfn_cuptiGetTimestamp get_timestamp;
    tg_pfn_cuptiActivityGetNumDroppedRecords dropped;                    /* optional */
    tg_pfn_cuptiGetResultString result_string;                           /* optional */
    tg_pfn_cuptiActivityRegisterTimestampCallback timestamp_callback;    /* optional (CUPTI 12.x and later) */
    tg_pfn_cuptiActivityEnableDriverApi enable_driver_api;               /* optional (CUPTI 12.x and later) */
    tg_pfn_cuptiActivityEnableRuntimeApi enable_runtime_api;             /* optional (CUPTI 12.x and later) */
} cupti;

/* ---- state ---- */
#define FLUSH_MS 100u         /* CUPTI hands its buffers over at least this often */
#define BUFFERS 8u            /* at most this many buffers are CUPTI's at once: 8 MiB */
#define BUFFER_SIZE (1u << 20)
#define CORRELATIONS 65536u   /* the most recent correlation ids' external ids, direct-mapped */
#define PENDING 16384u        /* device records waiting for their correlation */
#define PENDING_NS (3ull * FLUSH_MS * 1000000ull) /* ... at most this long: then they were not sampled */
#define KEY_TIME_BITS 42
#define KEY_TIME_MASK ((1ull << KEY_TIME_BITS) - 1)

int tg_kt_mode; /* 0: not decided yet, -1: off, 1: sampled, 2: all */
static unsigned sample_every = 8;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int initialising;
static __thread uint32_t copy_tick;
static const char *mode_name = "off";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* the tables below: buffer callbacks may run concurrently */
static uint8_t *buffers[BUFFERS];
static _Atomic uint32_t buffers_busy; /* bit i: buffers[i] is CUPTI's */
static int64_t clock_offset;          /* CLOCK_MONOTONIC - CUPTI's clock (0 with the timestamp callback) */
static int own_clock;                 /* CUPTI stamps with the shim's CLOCK_MONOTONIC callback */
static struct {
    uint32_t correlation;
    uint64_t external;
} correlations[CORRELATIONS];
/* CUDA calls by correlation id (CUPTI's API records): the thread that made them and when */
static struct {
    uint32_t correlation, thread;
    uint8_t runtime;
    uint64_t start, end;
} calls[CORRELATIONS];
/* Threads that launched, by the low 32 bits of their pthread_self() (CUPTI's threadId) → their kernel tid. */
#define THREADS 4096u
static struct {
    _Atomic uint32_t key;
    uint32_t tid;
} threads[THREADS];
static __thread int thread_known;
typedef struct {
    uint32_t correlation, name;
    uint8_t op;
    uint64_t start, end, since;
} pending_record;
static pending_record pending[PENDING];
static unsigned pending_head, pending_n; /* a FIFO ring */
static uint64_t lost;                   /* device records lost since the last DROPPED record, of which: */
static uint64_t lost_unmatched;         /*   no record of the CUDA call (or correlation) that made it came in time */
static uint64_t lost_thread;            /*   its CUDA call's thread is not one the shim knows */
static uint64_t lost_overflow;          /*   more records waited for their call than the shim keeps */
static struct {
    const char *p;
    uint32_t id;
} name_cache[1024];

/* ---- the launch path ---- */

static int init(void);

/* This thread's pthread_self() as CUPTI names it, tied to its tid: CUPTI's records of its calls say which thread. */
static void register_thread(void) {
    thread_known = 1;
    uint32_t key = (uint32_t)(uintptr_t)pthread_self(), tid = tg_tid();
    if (!key) return;
    for (unsigned n = 0, i = (key * 0x9E3779B1u) >> 20; n < THREADS; n++, i = (i + 1) & (THREADS - 1)) {
        uint32_t seen = atomic_load(&threads[i].key);
        if (seen == key) { /* a thread that reused a gone one's pthread_t */
            threads[i].tid = tid;
            return;
        }
        if (seen == 0) {
            threads[i].tid = tid;
            uint32_t expected = 0;
            if (atomic_compare_exchange_strong(&threads[i].key, &expected, key)) return;
        }
    }
}

static uint32_t tid_of_thread(uint32_t key) {
    for (unsigned n = 0, i = (key * 0x9E3779B1u) >> 20; n < THREADS; n++, i = (i + 1) & (THREADS - 1)) {
        uint32_t seen = atomic_load(&threads[i].key);
        if (seen == key) return threads[i].tid;
        if (seen == 0) break;
    }
    return 0;
}

void tg_kt_start(void) {
    if (!initialising) init();
}

int tg_kt_push(int is_launch, uint64_t t0) {
    if (tg_kt_mode <= 0) return 0; /* off, or being started by this thread (CUPTI's own calls) */
    if (TG_UNLIKELY(!thread_known)) register_thread();
    if (tg_kt_mode == 1) {
        uint32_t tick = is_launch ? tg_launch_tick : ++copy_tick;
        if (tick % sample_every != 0) return 0;
    }
    uint64_t key = ((uint64_t)tg_tid() << KEY_TIME_BITS) | (t0 & KEY_TIME_MASK);
    return cupti.push(EXT_KIND, key) == CUPTI_SUCCESS;
}

void tg_kt_pop(void) {
    uint64_t id;
    cupti.pop(EXT_KIND, &id);
}

/* ---- CUPTI's callbacks ---- */

static void buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *buffer = 0;
    *size = 0;
    *max_records = 0;
    uint32_t busy = atomic_load(&buffers_busy);
    for (unsigned i = 0; i < BUFFERS; i++) {
        if (busy & (1u << i)) continue;
        if (!(atomic_fetch_or(&buffers_busy, 1u << i) & (1u << i))) {
            if (!buffers[i]) buffers[i] = aligned_alloc(8, BUFFER_SIZE);
            if (!buffers[i]) {
                atomic_fetch_and(&buffers_busy, ~(1u << i));
                return; /* no memory: CUPTI drops records and counts them */
            }
            *buffer = buffers[i];
            *size = BUFFER_SIZE;
            return;
        }
    }
    /* all BUFFERS are CUPTI's: it drops records and counts them, rather than the process's memory growing */
}

static void give_back(uint8_t *buffer) {
    for (unsigned i = 0; i < BUFFERS; i++)
        if (buffers[i] == buffer) atomic_fetch_and(&buffers_busy, ~(1u << i));
}

/* A KERNEL_TIME record, written by whichever thread CUPTI hands a buffer to: never waits (a full lane drops it). */
static void emit(int op, uint64_t external, uint64_t start, uint64_t end, uint32_t name) {
    tg_ring_header *h = tg_ring_get();
    if (!h) return;
    tg_lane *l;
    uint64_t pos, now = tg_now();
    tg_record *r = tg_begin_own(h, &l, &pos, TG_KIND_KERNEL_TIME, op, now);
    if (!r) return;
    r->stream = name;
    if (op == TG_OP_KT_DROPPED) {
        r->tid = 0;
        r->u.kernel_time.launch = external;
        r->u.kernel_time.gpu_start = start; /* of which: unmatched */
        r->u.kernel_time.gpu_end = end;     /* thread << 32 | overflow */
    } else {
        /* the launch happened before now, and less than 2^42 ns before: its full t_start from the low bits */
        uint64_t low = external & KEY_TIME_MASK;
        r->tid = (uint32_t)(external >> KEY_TIME_BITS);
        r->u.kernel_time.launch = now - ((now - low) & KEY_TIME_MASK);
        r->u.kernel_time.gpu_start = (uint64_t)((int64_t)start + clock_offset);
        r->u.kernel_time.gpu_end = (uint64_t)((int64_t)end + clock_offset);
    }
    tg_publish(h, l, r, pos);
}

/* A KERNEL_TIME record keyed by the CUDA call that submitted the work (TG_F_KT_CALL, record.h). */
static void emit_call(int op, uint32_t tid, uint64_t call_start, uint64_t call_end, uint64_t start, uint64_t end,
                      uint32_t name) {
    tg_ring_header *h = tg_ring_get();
    if (!h) return;
    tg_lane *l;
    uint64_t pos, took = call_end > call_start ? call_end - call_start : 0;
    tg_record *r = tg_begin_own(h, &l, &pos, TG_KIND_KERNEL_TIME, op, tg_now());
    if (!r) return;
    r->tid = tid;
    r->flags = TG_F_KT_CALL;
    r->dur = took > 0xffffffffu ? 0xffffffffu : (uint32_t)took;
    r->stream = name;
    r->u.kernel_time.launch = (uint64_t)((int64_t)call_start + clock_offset);
    r->u.kernel_time.gpu_start = (uint64_t)((int64_t)start + clock_offset);
    r->u.kernel_time.gpu_end = (uint64_t)((int64_t)end + clock_offset);
    tg_publish(h, l, r, pos);
}

static uint32_t name_id(const char *name) {
    if (!name) return 0;
    unsigned i = (unsigned)(((uintptr_t)name >> 3) * 0x9E3779B1u >> 22) & 1023u;
    if (name_cache[i].p == name) return name_cache[i].id;
    size_t len = strnlen(name, TG_NAME_MAX);
    uint32_t id = tg_name_intern_text(name, len, tg_text_hash(name, len));
    name_cache[i].p = name;
    name_cache[i].id = id;
    return id;
}

static int external_of(uint32_t correlation, uint64_t *external) {
    unsigned i = correlation & (CORRELATIONS - 1);
    if (correlation == 0 || correlations[i].correlation != correlation) return 0;
    *external = correlations[i].external;
    return 1;
}

/* Under lock. Whether the device record of correlation id `correlation` can be written now (1: written or to be
 * dropped as unsampled, 0: its call or correlation may still come). The launch is known exactly where the shim's id
 * was pushed around the driver call that made it; else the CUDA call that made it is known (its API record: a call
 * of the CUDA runtime, whose records carry no id of the shim's). */
static int resolve(int op, uint32_t correlation, uint64_t start, uint64_t end, uint32_t name) {
    uint64_t ext;
    if (external_of(correlation, &ext)) {
        emit(op, ext, start, end, name);
        return 1;
    }
    unsigned i = correlation & (CORRELATIONS - 1);
    if (correlation == 0 || calls[i].correlation != correlation) return 0;
    /* sampled: a driver call without the shim's id was not sampled; a runtime call is sampled by its id */
    if (tg_kt_mode == 1 && (!calls[i].runtime || correlation % sample_every != 0)) return 1;
    uint32_t tid = tid_of_thread(calls[i].thread);
    if (!tid) tid = calls[i].thread < (1u << 22) ? calls[i].thread : 0; /* a CUPTI naming threads by their tid */
    if (tid) emit_call(op, tid, calls[i].start, calls[i].end, start, end, name);
    else if (tg_kt_mode == 2) lost++, lost_thread++;
    return 1;
}

/* Under lock. A device record: written at once when its launch is known, else kept a while. */
static void device_record(int op, uint32_t correlation, uint64_t start, uint64_t end, const char *name, uint64_t now) {
    uint32_t id = op == TG_OP_KT_KERNEL ? name_id(name) : 0;
    if (resolve(op, correlation, start, end, id)) return;
    if (pending_n == PENDING) { /* the oldest is given up */
        if (tg_kt_mode == 2) lost++, lost_overflow++;
        pending_head = (pending_head + 1) % PENDING;
        pending_n--;
    }
    pending_record *p = &pending[(pending_head + pending_n++) % PENDING];
    p->correlation = correlation;
    p->op = (uint8_t)op;
    p->start = start;
    p->end = end;
    p->since = now;
    p->name = id;
}

/* Under lock: pending records whose correlation came since; those waiting too long were not sampled (or, with
 * `all`, their launch was not seen by the shim: counted as lost). */
static void settle(uint64_t now) {
    unsigned n = pending_n, kept = 0;
    pending_record keep;
    for (unsigned k = 0; k < n; k++) {
        pending_record *p = &pending[(pending_head + k) % PENDING];
        if (resolve(p->op, p->correlation, p->start, p->end, p->name)) {
        } else if (now - p->since > PENDING_NS) {
            if (tg_kt_mode == 2) lost++, lost_unmatched++;
        } else {
            keep = *p;
            pending[(pending_head + kept++) % PENDING] = keep;
        }
    }
    pending_n = kept;
}

/* Under lock: a DROPPED record of what was lost since the last one, with the reasons, so that a run on a new GPU,
 * driver or CUPTI says why its records found no launch. */
static void report_lost(void) {
    if (lost) emit(TG_OP_KT_DROPPED, lost, lost_unmatched, lost_thread << 32 | (lost_overflow & 0xffffffffu), 0);
    lost = lost_unmatched = lost_thread = lost_overflow = 0;
}

/* CUPTI's clock against CLOCK_MONOTONIC, when it does not stamp with the shim's callback. */
static void measure_offset(void) {
    if (own_clock) return;
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 3; i++) {
        uint64_t ts = 0, m0 = tg_clock_monotonic();
        if (cupti.get_timestamp(&ts) != CUPTI_SUCCESS) return;
        uint64_t m1 = tg_clock_monotonic();
        if (m1 - m0 < best) {
            best = m1 - m0;
            clock_offset = (int64_t)(m0 + (m1 - m0) / 2) - (int64_t)ts;
        }
    }
}

static void buffer_completed(void *ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    pthread_mutex_lock(&lock);
    uint64_t now = tg_clock_monotonic();
    measure_offset();
    void *rec = 0;
    /* correlations first: a device record in the same buffer as its correlation is written at once */
    while (valid && cupti.next_record(buffer, valid, &rec) == CUPTI_SUCCESS) {
        const act_external *x = rec;
        if (x->kind == ACT_EXTERNAL_CORRELATION && x->externalKind == EXT_KIND) {
            unsigned i = x->correlationId & (CORRELATIONS - 1);
            correlations[i].correlation = x->correlationId;
            correlations[i].external = x->externalId;
        } else if (x->kind == ACT_DRIVER || x->kind == ACT_RUNTIME) {
            const act_api *a = rec;
            unsigned i = a->correlationId & (CORRELATIONS - 1);
            calls[i].correlation = a->correlationId;
            calls[i].thread = a->threadId;
            calls[i].runtime = a->kind == ACT_RUNTIME;
            calls[i].start = a->start;
            calls[i].end = a->end;
        }
    }
    settle(now);
    rec = 0;
    while (valid && cupti.next_record(buffer, valid, &rec) == CUPTI_SUCCESS) {
        uint32_t kind = *(const uint32_t *)rec;
        if (kind == ACT_CONCURRENT_KERNEL) {
            const act_kernel *k = rec;
            if (k->end >= k->start && k->start) device_record(TG_OP_KT_KERNEL, k->correlationId, k->start, k->end, k->name, now);
        } else if (kind == ACT_MEMCPY) {
            const act_memcpy *c = rec;
            if (c->end >= c->start && c->start) device_record(TG_OP_KT_MEMCPY, c->correlationId, c->start, c->end, 0, now);
        } else if (kind == ACT_MEMSET) {
            const act_memset *c = rec;
            if (c->end >= c->start && c->start) device_record(TG_OP_KT_MEMSET, c->correlationId, c->start, c->end, 0, now);
        }
    }
    size_t dropped = 0;
    if (cupti.dropped && cupti.dropped(ctx, stream, &dropped) == CUPTI_SUCCESS) lost += dropped;
    report_lost();
    pthread_mutex_unlock(&lock);
    give_back(buffer);
}

/* Said in the ring, by the thread whose launch started CUPTI: the agent then knows that device times will follow. */
static void emit_started(int mode) {
    tg_ring_header *h = tg_ring_get();
    if (!h) return;
    tg_lane *l;
    uint64_t pos;
    tg_record *r = tg_begin_own(h, &l, &pos, TG_KIND_KERNEL_TIME, TG_OP_KT_STARTED, tg_now());
    if (!r) return;
    r->result = (int16_t)mode;
    tg_publish(h, l, r, pos);
}

static uint64_t monotonic_timestamp(void) { return tg_clock_monotonic(); }

static void flush_at_exit(void) {
    if (tg_kt_mode > 0 && cupti.flush_all) cupti.flush_all(TG_CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    /* what still waits for its CUDA call will not see it now: counted (with `all`), so a short run says so too */
    pthread_mutex_lock(&lock);
    if (tg_kt_mode == 2 && pending_n) {
        settle(UINT64_MAX / 2);
        report_lost();
    }
    pthread_mutex_unlock(&lock);
}

/* ---- loading CUPTI ---- */

static const char *const sonames[] = {"libcupti.so.13", "libcupti.so.12", "libcupti.so"};

static void *open_in(const char *dir, char *tried, size_t tried_len) {
    for (unsigned i = 0; i < sizeof sonames / sizeof *sonames; i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, sonames[i]) >= (int)sizeof path) continue;
        if (access(path, R_OK) != 0) continue;
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        size_t n = strlen(tried);
        snprintf(tried + n, tried_len - n, "%s%s (%s)", n ? ", " : "", path, dlerror());
    }
    return 0;
}

/* Directories beside a loaded CUDA or PyTorch library that CUPTI is shipped in. */
struct search {
    char dirs[24][PATH_MAX];
    unsigned n;
};
static void add_dir(struct search *s, const char *dir, const char *rel) {
    if (s->n == sizeof s->dirs / sizeof *s->dirs) return;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s%s", dir, rel) >= (int)sizeof path) return;
    char real[PATH_MAX];
    if (!realpath(path, real)) return;
    for (unsigned i = 0; i < s->n; i++)
        if (!strcmp(s->dirs[i], real)) return;
    snprintf(s->dirs[s->n++], PATH_MAX, "%s", real);
}
static int each_library(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct search *s = arg;
    const char *path = info->dlpi_name, *base = path ? strrchr(path, '/') : 0;
    if (!base) return 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", (int)(base - path), path);
    base++;
    if (!strncmp(base, "libcudart.so", 12) || !strncmp(base, "libcuda.so", 10)) {
        add_dir(s, dir, "");                           /* the toolkit's lib64, nvidia/cu13/lib, the simulated GPU */
        add_dir(s, dir, "/../extras/CUPTI/lib64");     /* /usr/local/cuda/lib64 */
        add_dir(s, dir, "/../../../extras/CUPTI/lib64"); /* /usr/local/cuda/targets/x86_64-linux/lib */
        add_dir(s, dir, "/../../cuda_cupti/lib");      /* site-packages/nvidia/cuda_runtime/lib (CUDA 12 wheels) */
    } else if (!strncmp(base, "libtorch_cuda.so", 16) || !strncmp(base, "libtorch.so", 11)) {
        add_dir(s, dir, "/../../nvidia/cu13/lib");     /* site-packages/torch/lib: CUDA 13 wheels */
        add_dir(s, dir, "/../../nvidia/cuda_cupti/lib"); /* ... CUDA 12 wheels */
    }
    return 0;
}

static void *load(char *where, size_t where_len, char *tried, size_t tried_len) {
    char explicit_path[PATH_MAX];
    tg_option_string(TG_OPT_CUPTI_PATH, explicit_path, sizeof explicit_path);
    if (explicit_path[0]) {
        size_t n = strlen(explicit_path);
        if (n > 3 && (strstr(explicit_path + (n > 12 ? n - 12 : 0), ".so") || strstr(explicit_path, ".so."))) {
            void *h = dlopen(explicit_path, RTLD_NOW | RTLD_LOCAL);
            if (!h) snprintf(tried, tried_len, "TAILGUARD_CUPTI_PATH=%s (%s)", explicit_path, dlerror());
            else snprintf(where, where_len, "%s", explicit_path);
            return h;
        }
        void *h = open_in(explicit_path, tried, tried_len);
        if (h) snprintf(where, where_len, "%s", explicit_path);
        else if (!tried[0]) snprintf(tried, tried_len, "TAILGUARD_CUPTI_PATH=%s (no libcupti.so.13, .so.12 or .so there)", explicit_path);
        return h;
    }
    /* already loaded (PyTorch's profiler links it) */
    for (unsigned i = 0; i < sizeof sonames / sizeof *sonames; i++) {
        void *h = dlopen(sonames[i], RTLD_NOW | RTLD_NOLOAD);
        if (h) {
            snprintf(where, where_len, "%s (already loaded)", sonames[i]);
            return h;
        }
    }
    struct search *s = calloc(1, sizeof *s);
    if (!s) return 0;
    dl_iterate_phdr(each_library, s);
    void *h = 0;
    for (unsigned i = 0; i < s->n && !h; i++) {
        h = open_in(s->dirs[i], tried, tried_len);
        if (h) snprintf(where, where_len, "%s", s->dirs[i]);
    }
    if (!h) { /* the loader's own search: LD_LIBRARY_PATH, ld.so.cache */
        for (unsigned i = 0; i < sizeof sonames / sizeof *sonames && !h; i++) {
            h = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
            if (h) snprintf(where, where_len, "%s (the loader's search path)", sonames[i]);
        }
    }
    if (!h) {
        size_t n = strlen(tried);
        snprintf(tried + n, tried_len - n, "%sno libcupti.so.13, .so.12 or .so beside the loaded CUDA or PyTorch "
                 "libraries (%u places) nor on the loader's search path", n ? "; " : "", s->n);
    }
    free(s);
    return h;
}

static const char *say(cupti_result r) {
    const char *s = 0;
    if (cupti.result_string && cupti.result_string(r, &s) == CUPTI_SUCCESS && s) return s;
    return "unknown CUPTI error";
}

/* One message, and kernel timing stays off for the process. */
static int give_up(const char *fmt, const char *detail, cupti_result r) {
    char what[8192];
    snprintf(what, sizeof what, fmt, detail);
    if (r) {
        const char *hint = r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED
                               ? "; another profiler (Nsight Systems, PyTorch's profiler, a CUDA_INJECTION64_PATH tool) "
                                 "owns CUPTI in this process"
                               : "";
        tg_warn("kernel timing (TAILGUARD_KERNEL_TIMING=%s) is off for this process: %s: %s (CUPTI error %d)%s; every "
                "launch runs as before",
                mode_name, what, say(r), r, hint);
    } else {
        tg_warn("kernel timing (TAILGUARD_KERNEL_TIMING=%s) is off for this process: %s; every launch runs as before",
                mode_name, what);
    }
    return 0;
}

static int start(void) {
    char value[32];
    tg_option_string(TG_OPT_KERNEL_TIMING, value, sizeof value);
    if (!strcasecmp(value, "off")) return 0;
    if (!strcasecmp(value, "sampled")) mode_name = "sampled";
    else if (!strcasecmp(value, "all")) mode_name = "all";
    else {
        tg_warn("TAILGUARD_KERNEL_TIMING=\"%s\" is not valid (accepted: off|sampled|all); kernel timing is off", value);
        return 0;
    }
    sample_every = (unsigned)tg_option_uint(TG_OPT_KERNEL_SAMPLE, 1, 65536, 0);
    const char *injected = getenv("CUDA_INJECTION64_PATH");
    if (injected && *injected)
        return give_up("CUDA_INJECTION64_PATH=%s: another tool (a profiler) is injected and owns CUPTI", injected, 0);
    char where[PATH_MAX + 64] = "", tried[2048] = "";
    void *lib = load(where, sizeof where, tried, sizeof tried);
    if (!lib) return give_up("CUPTI not found: %s; set TAILGUARD_CUPTI_PATH to libcupti.so's path", tried, 0);
    static const struct {
        const char *name;
        size_t off;
        int optional;
    } syms[] = {
#define SYM(field, name, optional) {name, __builtin_offsetof(__typeof__(cupti), field), optional}
        SYM(register_callbacks, "cuptiActivityRegisterCallbacks", 0),
        SYM(enable, "cuptiActivityEnable", 0),
        SYM(disable, "cuptiActivityDisable", 0),
        SYM(next_record, "cuptiActivityGetNextRecord", 0),
        SYM(flush_all, "cuptiActivityFlushAll", 0),
        SYM(flush_period, "cuptiActivityFlushPeriod", 0),
        SYM(push, "cuptiActivityPushExternalCorrelationId", 0),
        SYM(pop, "cuptiActivityPopExternalCorrelationId", 0),
        SYM(get_timestamp, "cuptiGetTimestamp", 0),
        SYM(dropped, "cuptiActivityGetNumDroppedRecords", 1),
        SYM(result_string, "cuptiGetResultString", 1),
        SYM(timestamp_callback, "cuptiActivityRegisterTimestampCallback", 1),
        SYM(enable_driver_api, "cuptiActivityEnableDriverApi", 1),
        SYM(enable_runtime_api, "cuptiActivityEnableRuntimeApi", 1),
#undef SYM
    };
    for (unsigned i = 0; i < sizeof syms / sizeof *syms; i++) {
        void *f = tg_real_dlsym(lib, syms[i].name);
        if (!f && !syms[i].optional) {
            char detail[PATH_MAX + 200];
            snprintf(detail, sizeof detail, "%s has no %s: too old a CUPTI", where, syms[i].name);
            return give_up("%s", detail, 0);
        }
        memcpy((char *)&cupti + syms[i].off, &f, sizeof f);
    }
    cupti_result r;
    own_clock = cupti.timestamp_callback && cupti.timestamp_callback(monotonic_timestamp) == CUPTI_SUCCESS;
    if ((r = cupti.register_callbacks(buffer_requested, buffer_completed)) != CUPTI_SUCCESS)
        return give_up("registering buffers with %s", where, r);
    static const int kinds[] = {ACT_EXTERNAL_CORRELATION, ACT_CONCURRENT_KERNEL, ACT_MEMCPY, ACT_MEMSET};
    for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        if ((r = cupti.enable(kinds[i])) != CUPTI_SUCCESS) {
            for (unsigned j = 0; j < i; j++) cupti.disable(kinds[j]);
            return give_up("enabling CUPTI's activity records (%s)", where, r);
        }
    }
    /* CUPTI writes external correlations only beside the records of the CUDA calls (CUpti_ActivityAPI), and those
     * records are how work submitted through the CUDA runtime is tied to its thread: asked for the launches and
     * copies only where CUPTI can be told which calls (12.x and later), else for every call */
    int fine = 0;
    if (cupti.enable_driver_api && cupti.enable_runtime_api) {
        /* a call an older CUPTI does not know is refused alone; the others are asked for all the same */
        unsigned driver = 0, runtime = 0;
#define DRIVER_CBID(name, cbid) driver += cupti.enable_driver_api(cbid, 1) == CUPTI_SUCCESS;
#define RUNTIME_CBID(name, cbid) runtime += cupti.enable_runtime_api(cbid, 1) == CUPTI_SUCCESS;
        TG_CUPTI_DRIVER_CBIDS(DRIVER_CBID)
        TG_CUPTI_RUNTIME_CBIDS(RUNTIME_CBID)
#undef DRIVER_CBID
#undef RUNTIME_CBID
        fine = driver > 0 && runtime > 0;
    }
    r = CUPTI_SUCCESS;
    if (!fine && (r = cupti.enable(ACT_DRIVER)) == CUPTI_SUCCESS && (r = cupti.enable(ACT_RUNTIME)) != CUPTI_SUCCESS)
        cupti.disable(ACT_DRIVER);
    if (r != CUPTI_SUCCESS) {
        for (unsigned j = 0; j < sizeof kinds / sizeof *kinds; j++) cupti.disable(kinds[j]);
        return give_up("enabling CUPTI's records of CUDA calls (%s)", where, r);
    }
    cupti.flush_period(FLUSH_MS);
    measure_offset();
    atexit(flush_at_exit); /* after CUDA's own, so before it: records of the work that completed are handed over */
    tg_info("kernel timing (%s%s) with CUPTI from %s, on %s; records of %s", mode_name,
            !strcmp(mode_name, "sampled") ? ", one launch in TAILGUARD_KERNEL_SAMPLE" : "", where,
            own_clock ? "CLOCK_MONOTONIC (timestamp callback)" : "CUPTI's clock, offset measured at every buffer",
            fine ? "the launch and copy calls" : "every CUDA call (a CUPTI without cuptiActivityEnableDriverApi)");
    return !strcasecmp(mode_name, "all") ? 2 : 1;
}

/* Once, at the first CUDA launch or copy (libcudart and PyTorch are loaded by then: CUPTI is looked for beside them).
 * Returns 1 when kernel timing is on. */
static int init(void) {
    pthread_mutex_lock(&init_lock);
    if (tg_kt_mode == 0) {
        initialising = 1;
        int mode = start();
        initialising = 0;
        __atomic_store_n(&tg_kt_mode, mode ? mode : -1, __ATOMIC_RELEASE);
        if (mode) emit_started(mode);
    }
    pthread_mutex_unlock(&init_lock);
    return tg_kt_mode > 0;
}

void tg_kt_after_fork(void) {
    pthread_mutex_init(&init_lock, 0);
    pthread_mutex_init(&lock, 0);
    if (tg_kt_mode > 0) {
        /* CUPTI's thread did not survive the fork, and its state is the parent's: no kernel timing in this child */
        tg_kt_mode = -1;
        tg_info("kernel timing is off in this forked child (CUPTI was started by the parent process)");
    }
}
