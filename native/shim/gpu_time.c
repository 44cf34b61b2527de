/* Measured GPU time: the device times of every request window (docs/gpu-time.md), from a few timing events of the
 * shim's own, recorded at the window's edges and read later without ever waiting for the GPU.
 *
 * A window's first work on each stream is preceded by a start event; a synchronisation (or query) that may end the
 * window is preceded by an end event on the streams it covers, so the end event completes when the window's last work
 * does. When the window ends its events are complete, or soon will be: they are read with the non-blocking query at
 * that call and at later ones, and one GPU_TIME record (op WINDOW, or MISSING with the reason) is written per window.
 *
 * Device times reach CLOCK_MONOTONIC through an anchor event (one of the start events) whose host time is estimated
 * from every event read since: an event cannot complete before it was recorded (host time just before the record
 * call: a lower bound), nor after the sync that saw it complete (an upper bound). The estimate is the largest lower
 * bound seen, cut down to the smallest upper bound (which loosens by DRIFT_PPM as it ages), so a device clock
 * drifting against the host's either way is followed. Its error is how late the most promptly stamped start event was
 * stamped (microseconds: one window that began while the GPU was free suffices), or, for a device clock running
 * ahead, how late the latest sync returned after the work completed.
 *
 * Locking: the begin/stream/end hooks are called under sched.c's lock; everything here is under `lock` (taken inside
 * sched.c's, never the other way round). Nothing here is on the launch path: a window's first launch pays one event
 * record, its ending sync one per stream. */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "shim.h"
#include "interpose/wrap.h"
#include "tailguard/log.h"
#include "tailguard/options.h"

#define POOL 64           /* timing events this process may own */
#define STREAMS 4         /* streams of one window timed (a window on more is timed on its first four) */
#define PENDING 16        /* ended windows whose events are not read yet */
#define ANCHOR_PERIOD_NS 1000000000ull
#define DRIFT_PPM 20 /* how fast the device clock may drift from CLOCK_MONOTONIC (ns per ms): the upper bound loosens so */
#define GIVE_UP_NS 10000000000ull /* events of an ended window still not complete after this: given up (stream) */

typedef struct {
    uint64_t key;         /* the stream (scheduler key; also a usable handle) */
    void *start, *end;    /* events (0: none) */
    uint64_t start_rec;   /* host time just before the start event was recorded */
    uint64_t end_launches;/* the process's launch count when `end` was recorded */
} timed_stream;

typedef struct {
    uint64_t seq, ended;  /* the window's number; host time its end was seen (the sync returned) */
    int n, missing;       /* streams; enum tg_gpu_missing, or 0 */
    int late;             /* its events were not all complete when it ended (an event sync covered only the app's
                           * own event): `ended` then bounds nothing */
    timed_stream s[STREAMS];
} timed_window;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const tg_gpu_ops *gpu;
static int state;         /* 0: not decided, 1: on, -1: off (TAILGUARD_GPU_TIME), -2: the driver has no timing */
static void *pool[POOL];
static int pool_free, pool_created;
static timed_window cur;  /* the open window (cur.seq != 0) */
static timed_window pending[PENDING];
static int pending_n;
static unsigned fork_dropped; /* windows of the parent process, dropped in this child: said at the next window */
static struct {
    void *event;          /* 0: none yet */
    uint64_t since;       /* host time it became the anchor */
    int64_t lower, upper; /* bounds of the host time of its device timestamp ... */
    uint64_t upper_at;    /* when the upper bound was last set */
} anchor;

void tg_gpu_time_set_ops(const tg_gpu_ops *ops) { gpu = ops; }

static int on(void) {
    if (TG_LIKELY(state != 0)) return state > 0;
    state = tg_option_bool(TG_OPT_GPU_TIME) ? 1 : -1;
    return state > 0;
}

static uint64_t launches(void) {
    tg_ring_header *h = tg_ring_get();
    uint64_t n = 0;
    if (h)
        for (unsigned i = 0; i < h->lanes_used && i < TG_LANES; i++)
            n += __atomic_load_n(&tg_lanes(h)[i].launches, __ATOMIC_RELAXED);
    return n;
}

static void emit(int op, uint64_t seq, uint64_t start, uint64_t end, int why) {
    tg_ring_header *h = tg_ring_get();
    if (!h) return;
    tg_lane *l;
    uint64_t pos;
    tg_record *r = tg_begin_own(h, &l, &pos, TG_KIND_GPU_TIME, op, tg_now());
    if (!r) return;
    r->result = (int16_t)why;
    r->u.gpu_time.seq = seq;
    r->u.gpu_time.gpu_start = start;
    r->u.gpu_time.gpu_end = end;
    tg_publish(h, l, r, pos);
}

/* The driver has no event timing: say so once, stop trying for this process. */
static void no_timing(const char *what) {
    if (state > 0)
        tg_info("GPU time: %s failed (the driver gives no event timing); request windows of this process have no "
                "device times (TAILGUARD_GPU_TIME=off silences this)",
                what);
    state = -2;
}

static void *take_event(void) {
    if (pool_free) return pool[--pool_free];
    if (pool_created == POOL || state < 0) return 0;
    void *e = 0;
    if (gpu->event_create(&e) != 0 || !e) {
        no_timing("creating a timing event");
        return 0;
    }
    pool_created++;
    return e;
}
static void give_event(void *e) {
    if (e && pool_free < POOL) pool[pool_free++] = e;
}
static void give_window(timed_window *w) {
    for (int i = 0; i < w->n; i++) {
        if (w->s[i].start != anchor.event) give_event(w->s[i].start);
        give_event(w->s[i].end);
    }
    w->n = 0;
}

/* An event where the stream's work has got to; 0 when none may be recorded (capture) or none could be had. */
static void *record_on(timed_window *w, uint64_t key) {
    /* never on a stream under capture, nor anywhere while a capture is active: a record on the legacy stream would
     * invalidate another stream's capture */
    if (atomic_load_explicit(&tg_capture_count, memory_order_relaxed) != 0) {
        if (!w->missing) w->missing = TG_GPU_MISSING_STREAM;
        return 0;
    }
    void *e = take_event();
    if (!e) {
        if (!w->missing) w->missing = state < 0 ? TG_GPU_MISSING_NO_TIMING : TG_GPU_MISSING_POOL;
        return 0;
    }
    if (gpu->event_record(e, (void *)(uintptr_t)key) != 0) { /* the app destroyed the stream */
        give_event(e);
        if (!w->missing) w->missing = TG_GPU_MISSING_STREAM;
        return 0;
    }
    return e;
}

/* ---- hooks (sched.c, under its lock) ---- */

void tg_gpu_time_window_begin(uint64_t seq) {
    if (!gpu || !on()) return;
    pthread_mutex_lock(&lock);
    if (fork_dropped) {
        for (unsigned i = 0; i < fork_dropped; i++) emit(TG_OP_GPU_MISSING, 0, 0, 0, TG_GPU_MISSING_FORK);
        fork_dropped = 0;
    }
    give_window(&cur); /* a window that never ended (cannot happen: windows end before the next begins) */
    memset(&cur, 0, sizeof cur);
    cur.seq = seq;
    pthread_mutex_unlock(&lock);
}

/* The window's first work on `key` is about to be submitted. */
void tg_gpu_time_stream(uint64_t key) {
    if (!gpu || state <= 0) return;
    pthread_mutex_lock(&lock);
    /* a captured stream's work does not run now: nothing to time there */
    if (cur.seq && cur.n < STREAMS && !tg_capturing((const void *)(uintptr_t)key)) {
        timed_stream *t = &cur.s[cur.n];
        memset(t, 0, sizeof *t);
        t->key = key;
        t->start_rec = tg_now();
        t->start = record_on(&cur, key);
        if (t->start) cur.n++;
    }
    pthread_mutex_unlock(&lock);
}

/* A synchronisation (scope TG_SYNC_ALL, or one stream) or a query on `key` may end the window: end events first, on
 * the streams it covers that had work since their last one. */
void tg_gpu_time_sync(int scope, uint64_t key) {
    if (!gpu || state <= 0 || !cur.seq) return;
    pthread_mutex_lock(&lock);
    uint64_t n = launches();
    for (int i = 0; i < cur.n && cur.seq; i++) {
        timed_stream *t = &cur.s[i];
        if (scope != TG_SYNC_ALL && t->key != key) continue;
        if (t->end && t->end_launches == n) continue; /* nothing launched since: it still marks the end */
        void *e = record_on(&cur, t->key);
        if (!e) continue;
        give_event(t->end);
        t->end = e;
        t->end_launches = n;
    }
    pthread_mutex_unlock(&lock);
}

/* ---- reading ---- */

/* Signed ns from a to b; 0 on success, 1 not ready, -1 no timing. */
static int elapsed(void *a, void *b, int64_t *ns) {
    if (a == b) {
        *ns = 0;
        return 0;
    }
    return gpu->elapsed_signed_ns(a, b, ns);
}

/* Reads a window whose events are all complete (1), not yet (0), or cannot be (-1, w->missing says why). */
static int resolve(timed_window *w, uint64_t now) {
    if (w->missing) return -1;
    for (int i = 0; i < w->n; i++) {
        if (!w->s[i].end) {
            w->missing = TG_GPU_MISSING_STREAM; /* ended by a call that covered another stream (or a poll) */
            return -1;
        }
        int q1 = gpu->event_query(w->s[i].start), q2 = gpu->event_query(w->s[i].end);
        if (q1 < 0 || q2 < 0) {
            w->missing = TG_GPU_MISSING_STREAM;
            return -1;
        }
        if (q1 == 1 || q2 == 1) {
            w->late = 1;
            if (now - w->ended < GIVE_UP_NS) return 0;
            w->missing = TG_GPU_MISSING_STREAM;
            return -1;
        }
    }
    if (w->n == 0) {
        w->missing = TG_GPU_MISSING_STREAM;
        return -1;
    }
    /* the anchor: the first start event ever, renewed once a period (float milliseconds lose precision with age),
     * its bounds carried over */
    timed_stream *first = &w->s[0];
    if (!anchor.event || w->ended - anchor.since >= ANCHOR_PERIOD_NS) {
        int64_t d = 0;
        if (anchor.event && elapsed(anchor.event, first->start, &d) < 0) goto no_timing;
        if (anchor.event) {
            anchor.lower += d;
            if (anchor.upper != INT64_MAX) anchor.upper += d;
            give_event(anchor.event);
        } else {
            anchor.lower = INT64_MIN;
            anchor.upper = INT64_MAX;
            anchor.upper_at = w->ended;
        }
        anchor.event = first->start;
        anchor.since = w->ended;
    }
    /* The upper bound kept loosens by the drift allowed since it was set: a device clock slower than the host's
     * makes old upper bounds too low. A faster one makes old lower bounds too high, and is corrected by the fresh
     * upper bound of every window (below), so the lower bound, the tight one while windows queue, is kept as is. */
    int64_t slack = (int64_t)((w->ended - anchor.upper_at) / 1000000 * DRIFT_PPM);
    int64_t lower = anchor.lower, upper = anchor.upper == INT64_MAX ? INT64_MAX : anchor.upper + slack;
    int64_t start = INT64_MAX, end = INT64_MIN;
    for (int i = 0; i < w->n; i++) {
        int64_t ds, de;
        if (elapsed(anchor.event, w->s[i].start, &ds) < 0 || elapsed(anchor.event, w->s[i].end, &de) < 0) goto no_timing;
        if ((int64_t)w->s[i].start_rec - ds > lower) lower = (int64_t)w->s[i].start_rec - ds;
        if (!w->late && (int64_t)w->ended - de < upper) upper = (int64_t)w->ended - de;
        if (ds < start) start = ds;
        if (de > end) end = de;
    }
    if (upper < lower) lower = upper; /* the device clock ran ahead of the drift allowed: the newer bound wins */
    anchor.lower = lower;
    anchor.upper = upper;
    anchor.upper_at = w->ended;
    int64_t base = lower;
    if (end < start) end = start;
    emit(TG_OP_GPU_WINDOW, w->seq, (uint64_t)(base + start), (uint64_t)(base + end), 0);
    return 1;
no_timing:
    no_timing("reading the time between two events");
    w->missing = TG_GPU_MISSING_NO_TIMING;
    return -1;
}

static void settle_pending(uint64_t now) {
    int keep = 0;
    for (int i = 0; i < pending_n; i++) {
        timed_window *w = &pending[i];
        int rc = resolve(w, now);
        if (rc == 0) {
            pending[keep++] = *w;
            continue;
        }
        if (rc < 0) emit(TG_OP_GPU_MISSING, w->seq, 0, 0, w->missing);
        give_window(w);
    }
    pending_n = keep;
}

/* The window ended at host time `now` (the sync that showed it complete returned). */
void tg_gpu_time_window_end(uint64_t seq, uint64_t now) {
    if (!gpu || !cur.seq) return;
    pthread_mutex_lock(&lock);
    if (cur.seq == seq) {
        cur.ended = now;
        if (pending_n == PENDING) { /* the oldest is given up: its events are reused */
            emit(TG_OP_GPU_MISSING, pending[0].seq, 0, 0, TG_GPU_MISSING_POOL);
            give_window(&pending[0]);
            memmove(&pending[0], &pending[1], sizeof pending[0] * (PENDING - 1));
            pending_n--;
        }
        pending[pending_n++] = cur;
        memset(&cur, 0, sizeof cur);
    }
    settle_pending(now);
    pthread_mutex_unlock(&lock);
}

/* At later calls (a window's begin): windows whose events were not complete when they ended. */
void tg_gpu_time_poll(void) {
    if (!pending_n) return;
    pthread_mutex_lock(&lock);
    settle_pending(tg_now());
    pthread_mutex_unlock(&lock);
}

void tg_gpu_time_after_fork(void) {
    /* the parent's events are not the child's (a new CUDA process anyway): drop them, and say so at the next window */
    fork_dropped = (unsigned)pending_n + (cur.seq ? 1u : 0u);
    pending_n = 0;
    memset(&cur, 0, sizeof cur);
    memset(&anchor, 0, sizeof anchor);
    pool_free = pool_created = 0;
    if (state == -2) state = 0; /* the child may have event timing */
    pthread_mutex_init(&lock, 0);
}
