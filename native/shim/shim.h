/* Internal interfaces of the shim (libtailguard.so). Everything here is hidden; only the intercepted entry points
 * and dlsym are exported. */
#ifndef TAILGUARD_SHIM_H
#define TAILGUARD_SHIM_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tailguard/control.h"
#include "tailguard/options.h"
#include "tailguard/record.h"

#define TG_EXPORT __attribute__((visibility("default")))
#define TG_LIKELY(x) __builtin_expect(!!(x), 1)
#define TG_UNLIKELY(x) __builtin_expect(!!(x), 0)

#ifndef TG_VERSION
#define TG_VERSION "dev"
#endif

/* clock.c: CLOCK_MONOTONIC ns, interpolated from the TSC where the kernel itself uses it (see clock.c). */
extern int tg_tsc_usable;
extern uint64_t tg_tsc_scale, tg_tsc_refresh;
extern __thread uint64_t tg_clk_tsc __attribute__((tls_model("initial-exec")));
extern __thread uint64_t tg_clk_mono __attribute__((tls_model("initial-exec")));
void tg_clock_init(void);
uint64_t tg_now_refresh(uint64_t tsc);
void tg_clock_anchor(uint64_t *realtime_ns, uint64_t *monotonic_ns);

static inline uint64_t tg_clock_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t tg_rdtsc(void) {
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#else
    return 0;
#endif
}
static inline uint64_t tg_now(void) {
    if (TG_UNLIKELY(!tg_tsc_usable)) return tg_clock_monotonic();
    uint64_t t = tg_rdtsc(), d = t - tg_clk_tsc;
    if (TG_UNLIKELY(d >= tg_tsc_refresh)) return tg_now_refresh(t);
    return tg_clk_mono + ((d * tg_tsc_scale) >> 32);
}

/* process.c: the process's ring, created at load (or lazily in a forked child). */
extern tg_ring_header *tg_ring;  /* NULL: not recording (disabled, no room, or not yet created after fork) */
extern int tg_ring_wanted;       /* 0 when TAILGUARD_DISABLE=1 or the ring cannot be created */
extern int tg_dir_unusable;      /* TAILGUARD_DIR may not be trusted or written: already said at load */
tg_ring_header *tg_ring_slow(void); /* creates the ring of a forked child on its first record */
static inline tg_ring_header *tg_ring_get(void) {
    tg_ring_header *r = tg_ring;
    return TG_LIKELY(r != 0) ? r : (tg_ring_wanted ? tg_ring_slow() : 0);
}
uint32_t tg_tid_slow(void);
extern __thread uint32_t tg_tid_cache __attribute__((tls_model("initial-exec")));
static inline uint32_t tg_tid(void) { return TG_LIKELY(tg_tid_cache != 0) ? tg_tid_cache : tg_tid_slow(); }
void tg_mark_path(unsigned path_bit);

/* ring.c: the calling thread's lane (claimed on its first record), and records in it. The common case -- the thread
 * owns its lane and there is room in reserved memory -- is inline and takes no locked instruction; the shared lane,
 * a full lane and memory reservation are in ring.c. */
extern __thread tg_lane *tg_lane_tls __attribute__((tls_model("initial-exec")));
extern __thread tg_record *tg_lane_slots_tls __attribute__((tls_model("initial-exec")));
extern __thread uint32_t tg_lane_cap __attribute__((tls_model("initial-exec"))); /* capacity of this thread's lane */
extern __thread int tg_lane_exclusive __attribute__((tls_model("initial-exec")));
/* The position up to which this thread's lane is known to have room (consumer head seen + capacity): the consumer's
 * line is read again only when that runs out, not on every record. */
extern __thread uint64_t tg_lane_limit __attribute__((tls_model("initial-exec")));
tg_lane *tg_lane_claim(tg_ring_header *h);
void tg_lane_drop(tg_lane *l, int is_launch);
tg_record *tg_claim_slow(tg_ring_header *h, tg_lane *l, uint64_t *pos_out, int is_launch);
void tg_lanes_after_fork(void);

static inline tg_lane *tg_lane_get(tg_ring_header *h) {
    tg_lane *l = tg_lane_tls;
    return TG_LIKELY(l != 0) ? l : tg_lane_claim(h);
}
/* The oldest position of the lane a consumer still needs (record.h: the agent's, the session's, or the older). */
uint64_t tg_lane_consumed(const tg_ring_header *h, const tg_lane *l);
/* Checked before a call is timed: a record that cannot be written is not worth a timestamp. */
static inline int tg_lane_full(const tg_ring_header *h, const tg_lane *l) {
    uint64_t tail = __atomic_load_n(&l->tail, __ATOMIC_RELAXED);
    if (TG_LIKELY(tg_lane_exclusive && tail < tg_lane_limit)) return 0;
    /* without a recording session the agent's position is the one that counts: no call for it */
    uint64_t head = TG_LIKELY(!h->session[0]) ? __atomic_load_n(&l->head, __ATOMIC_ACQUIRE) : tg_lane_consumed(h, l);
    if (tg_lane_exclusive) tg_lane_limit = head + tg_lane_cap;
    /* the shared lane's tail may be older than what the consumers have read since: not full */
    return TG_UNLIKELY(tail >= head && tail - head >= tg_lane_cap);
}
static inline tg_record *tg_claim(tg_ring_header *h, tg_lane *l, uint64_t *pos_out, int is_launch) {
    if (TG_LIKELY(tg_lane_exclusive)) {
        uint64_t pos = l->tail; /* only this thread writes it */
        uint32_t idx = (uint32_t)(pos & (tg_lane_cap - 1));
        if (TG_LIKELY(pos < tg_lane_limit && idx < __atomic_load_n(&l->records_ready, __ATOMIC_RELAXED))) {
            if (is_launch) __atomic_store_n(&l->launches, l->launches + 1, __ATOMIC_RELAXED);
            *pos_out = pos;
            return tg_lane_slots_tls + idx;
        }
    }
    return tg_claim_slow(h, l, pos_out, is_launch);
}
static inline void tg_publish(tg_ring_header *h, tg_lane *l, tg_record *slot, uint64_t pos) {
    __atomic_store_n(&slot->seq, tg_seq_published(pos), __ATOMIC_RELEASE);
    if (TG_LIKELY(tg_lane_exclusive)) {
        __atomic_store_n(&l->tail, pos + 1, __ATOMIC_RELEASE);
        /* Own the next slot's line before the next call writes it: the consumer read that line on another core a lap
         * ago, and a store that misses holds up the application's own stores behind it. */
        __builtin_prefetch(tg_lane_slots_tls + ((pos + 1) & (tg_lane_cap - 1)), 1, 3);
    }
}
int tg_ring_grow_names(tg_ring_header *h, uint32_t need); /* 0 when no more memory can be reserved */
int tg_ring_create(const char *tmp_path, uint32_t lane_capacity, tg_ring_header **out, char *err, unsigned err_len);

/* names.c: kernel names, resolved once per function handle and interned into the ring's name table. */
typedef const char *(*tg_name_resolver)(const void *key, char *buf, unsigned len);
uint32_t tg_name_id_slow(const void *key, tg_name_resolver resolve);
uint32_t tg_name_lookup(const void *key); /* 0 when the key has no id yet */
static inline uint32_t tg_name_id(const void *key, tg_name_resolver resolve) {
    uint32_t id = tg_name_lookup(key);
    return TG_LIKELY(id != 0) ? id : tg_name_id_slow(key, resolve);
}
uint32_t tg_name_intern(const char *name); /* a fixed name (no handle), e.g. for host functions */
/* Text keyed by its content (hash: tg_text_hash of its len bytes): the same text gets the same id wherever it lives. */
uint32_t tg_name_intern_text(const char *text, size_t len, uint64_t hash);
static inline uint64_t tg_text_hash(const char *s, size_t len) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        __builtin_memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    __builtin_memcpy(&w, s + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}
void tg_names_after_fork(void);
void tg_names_forget(void);

/* interpose/dlsym.c: the real dlsym, and lookups that bypass the shim. */
extern void *(*tg_real_dlsym)(void *, const char *);
void tg_dlsym_init(void);
void *tg_next_symbol(const char *name); /* the definition after the shim in the global scope */

/* interpose/apis.c: the table of intercepted entry points and their real implementations. */
typedef struct {
    const char *symbol; /* exported name, e.g. "cuLaunchKernel_ptsz" */
    const char *gpa;    /* cuGetProcAddress base name ("" for HIP) */
    void *wrapper;      /* the shim's function of that name */
    int family;         /* TG_FAMILY_* */
    int kind;           /* tg_kind, or 0 for cuGetProcAddress itself */
    int per_thread;
    int min_version;
} tg_api_info;
enum { TG_FAMILY_CUDA = 1, TG_FAMILY_HIP = 2 };
extern const tg_api_info tg_apis[TG_API_COUNT];
extern _Atomic(void *) tg_real[TG_API_COUNT];
const tg_api_info *tg_api_by_symbol(const char *symbol, int *id);
int tg_api_by_gpa(const char *base, int per_thread); /* TG_API_NONE when not intercepted */
void *tg_real_resolve(int api);                      /* slow path: finds the real entry point after the shim */
static inline void *tg_real_get(int api) {
    void *p = atomic_load_explicit(&tg_real[api], memory_order_acquire);
    return TG_LIKELY(p != 0) ? p : tg_real_resolve(api);
}

/* Common record filling for the wrappers. */
static inline tg_record *tg_begin(tg_ring_header *h, tg_lane *l, uint64_t *pos, int kind, int is_launch) {
    tg_record *r = tg_claim(h, l, pos, is_launch);
    if (r) {
        /* a slot holds the previous lap's record: clear everything but the sequence word */
        __builtin_memset((char *)r + sizeof r->seq, 0, sizeof *r - sizeof r->seq);
        r->kind = (uint8_t)kind;
    }
    return r;
}
/* t1 == 0: the call's end was not timestamped (a launch outside the duration sample). */
static inline void tg_set_time(tg_record *r, uint64_t t0, uint64_t t1) {
    uint64_t d = t1 - t0;
    r->t_start = t0;
    if (!t1) {
        r->dur = 0;
        r->flags = TG_F_UNTIMED;
    } else if (TG_LIKELY(d <= 0xffffffffu)) {
        r->dur = (uint32_t)d;
        r->flags = 0;
    } else {
        r->dur = (uint32_t)((d / 1000) > 0xffffffffu ? 0xffffffffu : d / 1000);
        r->flags = TG_F_DUR_US;
    }
    r->tid = tg_tid();
}
/* A record of the shim's own (not a call of the application's) in the calling thread's lane of ring `h`: `kind` and
 * `op`, stamped `t` at both ends. NULL when the lane is full (the record is dropped and counted); once filled, it is
 * published with tg_publish(h, *l, r, *pos). */
static inline tg_record *tg_begin_own(tg_ring_header *h, tg_lane **l, uint64_t *pos, int kind, int op, uint64_t t) {
    *l = tg_lane_get(h);
    tg_record *r = tg_begin(h, *l, pos, kind, 0);
    if (r) {
        r->op = (uint8_t)op;
        tg_set_time(r, t, t);
    }
    return r;
}

/* context.c: trace context (TRACEPARENT, the tailguard_* ABI of tailguard/tailguard.h). */
void tg_context_init(void);                      /* at attach: TRACEPARENT and TRACESTATE */
void tg_context_ring_created(tg_ring_header *h); /* a new ring starts with the process's (and thread's) context */
void tg_context_after_fork(void);

/* The GPU of the process's first launch, captured by its API family, published in the ring header once. */
void tg_gpu_identity(int ordinal, const char *name, const unsigned char uuid[16], const char *pci);
int tg_gpu_uuid(uint8_t out[16]); /* 1 once known */

/* What the scheduler reads at every launch, in one cache line: after a real driver call (microseconds of the driver's
 * own memory traffic) every line the shim touches may cost a trip to the last-level cache. On an H200
 * (bench/gpu/revision_ab.sh) the per-user control files first cost 22-33 ns a launch more than the release before,
 * with this state spread over two files' globals; gathered here, 7-21 ns. */
typedef struct tg_sched_hot {
    int state;                 /* 0: not attached yet, 1: scheduling, -1: off */
    int npeers;                /* peers.c: control-file places in use are below this */
    int me;                    /* my slot in my own file */
    int holds_on;              /* TAILGUARD_HOLDS */
    int budget_on;             /* a higher-priority process is attached (the in-flight budget, budget.c) */
    char *peer_area;           /* peers.c: the region the control files are mapped into */
    uint64_t lease_ns;         /* TAILGUARD_LEASE_MS, in ns */
    uint64_t free_until;       /* min-share: no holds before this time */
    uint64_t levers_checked;   /* when sched.c last looked at which levers are in force */
} tg_sched_hot;
extern tg_sched_hot tg_hot;

/* peers.c: the GPU's control files as this process sees them (tailguard/control.h). File 0 is this process's own
 * user's file, and tg_hot.me its slot there; the others are mapped read-only. Each file has a fixed place in one region
 * reserved once (TG_PEER), so one that goes away turns into zeros under readers, never into an unmapped page. */
#define TG_PEERS 32
#define TG_PEER_SPAN ((sizeof(tg_ctl) + 4095) & ~(size_t)4095)
typedef struct tg_peer {
    int fd;                /* -1: nothing at this place */
    uint32_t uid, gid;     /* the file's owner, as the kernel says */
    int32_t ceiling;       /* the owner's ceiling (INT32_MIN: ignore this place) */
    unsigned alternate;    /* its name's alternate number */
    uint64_t dev, ino;     /* which file */
    int mark;              /* found again by the current pass over the directory */
} tg_peer;
extern tg_peer tg_peers[TG_PEERS];
extern int32_t tg_my_ceiling;
#define TG_PEER(f) ((tg_ctl *)(tg_hot.peer_area + (size_t)(f) * TG_PEER_SPAN))
#define TG_OWN() TG_PEER(0)
/* Finds or creates my file, follows the others, takes my slot; returns it, or -1 (with one message) to run unscheduled. */
int tg_peers_attach(const char *dir, const uint8_t uuid[16], int priority);
/* Every few milliseconds: new and gone files, the policy, the SIGBUS guard. */
void tg_peers_refresh(uint64_t now);
/* The effective priority of slot i of file f: its priority within the range and its owner's ceiling. */
static inline int tg_peer_priority(int f, int i) {
    return tg_priority_in_force(__atomic_load_n(&TG_PEER(f)->slot[i].priority, __ATOMIC_RELAXED),
                                __atomic_load_n(&tg_peers[f].ceiling, __ATOMIC_ACQUIRE));
}
int tg_peer_claim_valid(int f, int i, uint64_t now); /* slot i of f is busy, and its claim counts now */
int tg_peer_slot_alive(int f, int i, uint64_t now);  /* slot i of f belongs to a live process (cached) */
void tg_peer_clear_busy(int slot);                   /* my slot `slot` is no longer busy: wake who waits */
void tg_peers_after_fork(void);
void tg_peers_exit(void);
void tg_futex_wake(uint32_t *word);
/* My slot in my own file, and my effective priority: what my slot asks for (`tailguard priority` may change it),
 * within my ceiling. */
#define TG_OWN_SLOT() (&TG_OWN()->slot[tg_hot.me])
static inline int tg_my_priority(void) { return tg_peer_priority(0, tg_hot.me); }

/* sched.c: priorities between processes (see sched.c). Streams are keys: the default stream variants are normalised
 * by the wrappers (legacy default stream 0, per-thread default stream 2). */
enum { TG_SYNC_STREAM = 1, TG_SYNC_ALL = 2 };
void tg_sched_work(int api, uint64_t stream, int is_launch); /* before work is submitted; may hold a launch */
void tg_sched_sync_enter(void);
void tg_sched_sync_exit(int scope, uint64_t stream, int ok);
/* A stream or event query on `stream` (not recorded: programs poll): done = the work was complete. */
void tg_sched_polled(uint64_t stream, int done);
void tg_sched_event_recorded(uint64_t event, uint64_t stream);
uint64_t tg_sched_event_stream(uint64_t event, int *known);
int tg_sched_priority(void);
void tg_sched_after_fork(void);
void tg_sched_exit(void);
/* A launch was held from t0 to t1: counted in my slot and recorded (payload: the hold record's union). */
void tg_sched_held(int op, int api, uint64_t t0, uint64_t t1, uint64_t stream, const void *payload);

/* Driver calls the scheduler makes itself (events, to see its own work complete), supplied by the API family of the
 * process's first launch. Results: 0 success, 1 not ready, -1 error. */
typedef struct tg_gpu_ops {
    int (*event_create)(void **event);
    int (*event_record)(void *event, void *stream);
    int (*event_query)(void *event);
    int (*event_sync)(void *event);
    int (*elapsed_ns)(void *from, void *to, uint64_t *ns);
    int (*elapsed_signed_ns)(void *from, void *to, int64_t *ns); /* 1: not ready */
} tg_gpu_ops;
/* gpu_time.c: the device times of request windows (docs/gpu-time.md). begin/stream/end/poll are called by sched.c
 * under its lock; sync by the wrappers before a synchronisation or query that may end the window. */
void tg_gpu_time_set_ops(const tg_gpu_ops *ops);
void tg_gpu_time_window_begin(uint64_t seq);
void tg_gpu_time_stream(uint64_t key);
void tg_gpu_time_sync(int scope, uint64_t key);
void tg_gpu_time_window_end(uint64_t seq, uint64_t now);
void tg_gpu_time_poll(void);
void tg_gpu_time_after_fork(void);
/* kernel_timing.c: per-kernel device time through CUPTI (TAILGUARD_KERNEL_TIMING). tg_kt_mode: 0 not decided yet,
 * -1 off, 1 sampled, 2 all. Around a CUDA launch or copy while it is not off, tg_kt_push (1: an id was pushed, pop it
 * after the call; the first call decides, loading CUPTI). */
extern int tg_kt_mode;
void tg_kt_start(void); /* decides (and loads CUPTI) once, before the first launch or copy is timed */
int tg_kt_push(int is_launch, uint64_t t0);
void tg_kt_pop(void);
void tg_kt_after_fork(void);
/* interpose/ioctl.c: the NVIDIA channel-group timeslice of this process's contexts. */
uint32_t tg_timeslice_update(int below_another, int *shortened);
void tg_timeslice_after_fork(void);

/* budget.c: the in-flight budget, in force while tg_hot.budget_on (sched.c decides when). */
void tg_budget_set_ops(const tg_gpu_ops *ops);
void tg_budget_configure(void); /* at attach: reads the option */
int tg_budget_usable(void);     /* a budget is set, and the GPU's event calls are known */
void tg_budget_wait(int api, uint64_t key); /* before a launch: a budget hold while in-flight work is too much */
void tg_budget_count(int api, uint64_t key);
void tg_budget_after_fork(void);
/* After a launch was submitted to the stream with this key: counts it against the in-flight budget. Inline: without
 * a higher-priority process, the common case, a launch pays one load for it. */
static inline void tg_budget_submitted(int api, uint64_t key) {
    if (TG_UNLIKELY(tg_hot.budget_on)) tg_budget_count(api, key);
}

#endif
