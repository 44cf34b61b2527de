/* The in-flight budget: while a process of higher priority is attached, this process keeps at most
 * TAILGUARD_BUDGET_US of estimated GPU time in flight (sched.c decides when; this file keeps the count and waits).
 *
 * What a process already submitted runs before (or time-sliced with) higher-priority work that arrives, so the budget
 * bounds how long that work can wait behind it. Completion is seen through the process's own events, recorded after a
 * batch of launches worth about half the budget (never after every launch: an event per launch costs far more than
 * it is worth). The GPU time of a launch is learned from the time between consecutive events of a stream, over
 * intervals during which the stream never ran dry. (Formerly the "in-flight window": a window is now only ever a
 * request window.) */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "shim.h"
#include "tailguard/options.h"
#include "interpose/wrap.h"

#define CHECKPOINTS 64
#define STREAMS 8
static const tg_gpu_ops *gpu;
static uint64_t budget_ns;            /* TAILGUARD_BUDGET_US, in ns */
static uint64_t est_ns[2];            /* learned GPU time per launch: kernels, graphs */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct checkpoint {
    void *event;
    int stream;         /* index in streams[] */
    uint32_t launches;
    uint64_t est;
    int graphs;         /* graph launches among them */
    int continuous;     /* the stream's previous checkpoint had not completed when this one was recorded */
    int done;
} cp[CHECKPOINTS];
static unsigned cp_count;             /* pending checkpoints, oldest first */
static struct stream_state {
    void *stream;
    uint64_t key, pending_est;
    uint32_t pending_launches, pending_graphs;
    void *last_event;                 /* its most recently recorded checkpoint (pending or done) */
    void *done_event;                 /* its most recently completed checkpoint: the start of the next interval */
    int last_pending;
} streams[STREAMS];
static int streams_n;
static void *pool[CHECKPOINTS + STREAMS * 2];
static int pool_n;

void tg_budget_set_ops(const tg_gpu_ops *ops) { gpu = ops; }

void tg_budget_configure(void) { budget_ns = tg_option_uint(TG_OPT_BUDGET_US, 0, 1000000, 0) * 1000ull; }

int tg_budget_usable(void) { return budget_ns && gpu; }

static void *take_event(void) {
    if (pool_n) return pool[--pool_n];
    void *e = 0;
    return gpu->event_create(&e) == 0 ? e : 0;
}
static void give_event(void *e) {
    if (e && pool_n < (int)(sizeof pool / sizeof *pool)) pool[pool_n++] = e;
}

static struct stream_state *stream_of(void *stream, uint64_t key) {
    for (int i = 0; i < streams_n; i++)
        if (streams[i].key == key) return &streams[i];
    if (streams_n == STREAMS) return 0; /* more streams than tracked: their work counts only through holds */
    struct stream_state *st = &streams[streams_n++];
    memset(st, 0, sizeof *st);
    st->stream = stream;
    st->key = key;
    return st;
}

/* A checkpoint completed: learn from it, and let go of the event that started its interval. */
static void completed(struct checkpoint *c) {
    struct stream_state *st = &streams[c->stream];
    uint64_t ns;
    int kind = c->graphs == 0 ? 0 : c->graphs == (int)c->launches ? 1 : -1;
    if (c->continuous && st->done_event && kind >= 0 && c->launches &&
        gpu->elapsed_ns(st->done_event, c->event, &ns) == 0) {
        uint64_t per = ns / c->launches;
        est_ns[kind] = est_ns[kind] ? (3 * est_ns[kind] + per) / 4 : per;
    }
    give_event(st->done_event);
    st->done_event = c->event;
    if (st->last_event == c->event) st->last_pending = 0;
    c->done = 1;
}

static uint64_t in_flight(int poll) {
    uint64_t sum = 0;
    unsigned keep = 0;
    for (unsigned i = 0; i < cp_count; i++) {
        if (!cp[i].done && poll && gpu->event_query(cp[i].event) != 1) completed(&cp[i]);
        if (cp[i].done) continue;
        sum += cp[i].est;
        cp[keep++] = cp[i];
    }
    cp_count = keep;
    for (int i = 0; i < streams_n; i++) sum += streams[i].pending_est;
    return sum;
}

static void checkpoint(struct stream_state *st) {
    if (cp_count == CHECKPOINTS) return;
    void *e = take_event();
    if (!e || gpu->event_record(e, st->stream) != 0) {
        give_event(e);
        return;
    }
    struct checkpoint *c = &cp[cp_count++];
    c->event = e;
    c->stream = (int)(st - streams);
    c->launches = st->pending_launches;
    c->graphs = (int)st->pending_graphs;
    c->est = st->pending_est;
    c->continuous = st->last_event && st->last_pending && gpu->event_query(st->last_event) == 1;
    c->done = 0;
    st->last_event = e;
    st->last_pending = 1;
    st->pending_est = 0;
    st->pending_launches = st->pending_graphs = 0;
}

static int is_graph(int api) {
    return api == TG_API_cuGraphLaunch || api == TG_API_cuGraphLaunch_ptsz || api == TG_API_hipGraphLaunch;
}

void tg_budget_wait(int api, uint64_t key) {
    int graph = is_graph(api);
    pthread_mutex_lock(&lock);
    uint64_t next = est_ns[graph] ? est_ns[graph] : budget_ns / 2, t0 = 0;
    uint64_t flying = in_flight(1);
    while (flying && flying + next > budget_ns) {
        if (!t0) t0 = tg_now();
        /* nothing recorded yet covers the pending work: record a checkpoint to wait for */
        if (cp_count == 0)
            for (int i = 0; i < streams_n; i++)
                if (streams[i].pending_launches) checkpoint(&streams[i]);
        if (cp_count == 0) break;
        gpu->event_sync(cp[0].event);
        flying = in_flight(1);
    }
    pthread_mutex_unlock(&lock);
    if (t0) {
        tg_record u;
        memset(&u, 0, sizeof u);
        u.u.hold.priority = tg_my_priority();
        u.u.hold.released_by = TG_RELEASE_DRAINED;
        tg_sched_held(TG_OP_HOLD_BUDGET, api, t0, tg_now(), key, &u.u);
    }
}

void tg_budget_count(int api, uint64_t key) {
    /* the key is also a usable handle: 0 the legacy default stream, 2 the thread's per-thread default stream */
    void *stream = (void *)(uintptr_t)key;
    int graph = is_graph(api);
    if (tg_capturing(stream)) return; /* captured launches do not run now */
    pthread_mutex_lock(&lock);
    struct stream_state *st = stream_of(stream, key);
    if (st) {
        st->pending_est += est_ns[graph] ? est_ns[graph] : budget_ns / 2;
        st->pending_launches++;
        st->pending_graphs += (uint32_t)graph;
        if (st->pending_est >= budget_ns / 2) checkpoint(st);
    }
    pthread_mutex_unlock(&lock);
}

void tg_budget_after_fork(void) {
    /* the parent's events are not the child's: forget them (the child is a new CUDA process anyway) */
    cp_count = 0;
    streams_n = 0;
    pool_n = 0;
    pthread_mutex_init(&lock, 0);
}
