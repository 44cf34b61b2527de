/* This process's side of the simulated GPU: streams, the bounded submission queue, the worker thread that executes
 * it, events, synchronisation, and graphs (captured operation lists replayed on a stream).
 *
 * One worker per process executes every operation of every stream in submission order: a documented simplification of
 * concurrent streams that keeps each stream's order and makes waits on events trivially satisfied. Submitting costs
 * one uncontended mutex, a clock read and a store into the ring; the worker is woken by a syscall only when it sleeps. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <unistd.h>

#include "activity.h"
#include "sim.h"
#include "tailguard/log.h"
#include "tailguard/options.h"

#define QUEUE_CAP 1024             /* pending operations per process; a launch blocks when they are all in use */
#define IDLE_SPIN_NS 20000u        /* the worker looks for more work this long before sleeping */
#define SYNC_SPIN_NS 10000u        /* a synchronising thread looks this long before sleeping */
#define BIG_TRANSFER (1u << 20)    /* copies this large leave the device to others while the CPU does them */
#define STREAM_MAGIC 0x5374724du
#define EVENT_MAGIC 0x4576744eu
#define GRAPH_MAGIC 0x47726148u
#define EXEC_MAGIC 0x47457865u
#define DEAD_MAGIC 0xdeadd00du

enum { OP_KERNEL = 1, OP_COPY, OP_FILL, OP_RECORD, OP_HOST };
enum { STREAM_USER, STREAM_LEGACY, STREAM_PER_THREAD };

struct sim_op {
    uint8_t kind, elem;         /* elem: fill element size */
    uint32_t value;             /* fill value */
    struct sim_stream *stream;  /* NULL in graphs */
    uint64_t submit_ns;
    uint64_t seq;               /* kernels: sequence number within the stream (trace) */
    uint32_t correlation;       /* the simulated CUPTI's id for it (activity.h; 0: none) */
    union {
        struct {
            const char *name;
            const void *host_fn;
            uint64_t ns;
        } k;
        struct sim_copy c;
        struct sim_event *ev;
        struct {
            void (*fn)(void *);
            void *arg;
        } host;
    } u;
};

struct sim_stream {
    uint32_t magic, kind;
    unsigned flags;
    int priority;
    uint64_t kernels;          /* kernels submitted so far: the next one's sequence number (under q.lock) */
    _Atomic uint64_t last_pos; /* queue position of the stream's latest operation */
    struct sim_graph *capture; /* the graph this stream records into, or NULL (under q.lock) */
    struct sim_stream *next_dead;
};

struct sim_event {
    uint32_t magic;
    unsigned flags;
    _Atomic int refs;            /* the handle, pending record operations, graph nodes */
    _Atomic uint64_t record_pos; /* queue position of the latest record; 0: never recorded */
    _Atomic uint64_t time_ns;    /* device-timeline time the latest executed record was reached */
    uint64_t capture_id;         /* recorded into the capture with this id, 0 if not (under q.lock) */
};

struct sim_graph {
    uint32_t magic;
    int capturing;
    uint64_t capture_id; /* unique per capture, so that a stale event never matches a recycled graph */
    struct sim_op *ops;
    size_t n, cap;
    struct sim_stream *origin;
    struct sim_stream *members[32]; /* streams that joined the capture through an event */
    int nmembers;
    struct sim_graph *next_capturing;
};

struct sim_graph_exec {
    uint32_t magic;
    struct sim_op *ops;
    size_t n;
};

/* The submission queue: submitters (any thread) write under `lock`; the worker reads without it. */
static struct {
    pthread_mutex_t lock;
    _Atomic uint64_t tail;        /* operations submitted */
    uint64_t seen_done;           /* submitters' last look at `done` (under lock) */
    _Atomic int worker_state;     /* 0 not started, 1 running, -1 could not start */
    _Atomic int worker_sleeping;
    _Atomic uint32_t worker_futex;
    struct sim_graph *capturing;  /* graphs being captured (under lock) */
    uint64_t captures;            /* captures begun (under lock) */
    _Alignas(64) _Atomic uint64_t done;  /* operations executed (worker) */
    _Atomic uint64_t wake_target;        /* smallest `done` a synchronising thread sleeps for */
    _Atomic uint32_t done_futex;
    _Alignas(64) struct sim_op ring[QUEUE_CAP];
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake_target = UINT64_MAX};

static struct sim_stream legacy = {.magic = STREAM_MAGIC, .kind = STREAM_LEGACY};
static __thread struct sim_stream *thread_stream;
static pthread_key_t thread_stream_key;
static pthread_t worker;
static uint64_t ptime; /* worker: where this process's work has got to on the device timeline */
static _Atomic int exiting;
static _Atomic int ready;
static pthread_once_t once = PTHREAD_ONCE_INIT, worker_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t dead_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sim_stream *dead_streams; /* destroyed with work still pending; freed by the worker (dead_lock) */
static _Atomic int have_dead;

/* Handles are never given back to malloc: a destroyed one stays readable, its magic says dead, so using it again is an
 * invalid handle rather than a read of freed memory. Its memory serves the next handle of its kind. */
struct recycled {
    uint64_t magic_word; /* every handle begins with its 32-bit magic: left alone */
    struct recycled *next;
};
static pthread_mutex_t recycle_lock = PTHREAD_MUTEX_INITIALIZER;
static struct recycled *free_streams, *free_events, *free_graphs, *free_execs;

static void *handle_new(struct recycled **list, size_t size) {
    pthread_mutex_lock(&recycle_lock);
    struct recycled *r = *list;
    if (r) *list = r->next;
    pthread_mutex_unlock(&recycle_lock);
    if (!r) return calloc(1, size);
    memset(r, 0, size);
    return r;
}

/* The caller has already marked the handle dead. */
static void handle_free(struct recycled **list, void *p) {
    struct recycled *r = p;
    pthread_mutex_lock(&recycle_lock);
    r->next = *list;
    *list = r;
    pthread_mutex_unlock(&recycle_lock);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long futex_private(_Atomic uint32_t *w, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t *)w, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

/* ---- completion ------------------------------------------------------------------------------------------- */

/* Blocks until the worker has executed the first `target` operations. */
static void wait_done(uint64_t target) {
    if (atomic_load(&q.done) >= target) return;
    uint64_t until = sim_now() + SYNC_SPIN_NS;
    do {
        for (int i = 0; i < 32; i++) cpu_relax();
        if (atomic_load(&q.done) >= target) return;
    } while (sim_now() < until);
    for (;;) {
        /* Read the futex word first: a completion between here and the sleep changes it, so no wake is lost. */
        uint32_t f = atomic_load(&q.done_futex);
        uint64_t cur = atomic_load(&q.wake_target);
        while (cur > target && !atomic_compare_exchange_weak(&q.wake_target, &cur, target)) {
        }
        if (atomic_load(&q.done) >= target) return;
        futex_private(&q.done_futex, FUTEX_WAIT, f);
    }
}

static void complete(uint64_t pos) {
    atomic_store(&q.done, pos);
    if (atomic_load(&q.wake_target) <= pos) {
        atomic_store(&q.wake_target, UINT64_MAX);
        atomic_fetch_add(&q.done_futex, 1);
        futex_private(&q.done_futex, FUTEX_WAKE, INT_MAX);
    }
}

static int on_worker(void) {
    return atomic_load_explicit(&q.worker_state, memory_order_relaxed) == 1 && pthread_equal(pthread_self(), worker);
}

/* ---- the worker --------------------------------------------------------------------------------------------- */

static void event_unref(struct sim_event *e) {
    if (atomic_fetch_sub(&e->refs, 1) == 1) handle_free(&free_events, e);
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void park(void) {
    for (;;) pause(); /* the process is exiting; the device has been left */
}

/* The simulated CUPTI's hooks (activity.h), NULL while it is not collecting. */
static _Atomic(const sim_activity_hooks *) activity;

__attribute__((visibility("default"))) void tailguard_sim_activity(const sim_activity_hooks *hooks) {
    atomic_store(&activity, hooks);
}

static uintptr_t stream_id(const struct sim_stream *s) {
    return !s || s->kind == STREAM_LEGACY ? 0 : (uintptr_t)s;
}

/* Returns when the kernel first started on the device timeline. */
static uint64_t run_kernel(struct sim_op *op, int last) {
    uint64_t rem = op->u.k.ns, used = 0, first = 0;
    for (;;) {
        if (atomic_load_explicit(&exiting, memory_order_relaxed)) park();
        sim_device_acquire(&ptime);
        uint64_t now = sim_now(), start = ptime;
        if (now > SIM_LAG_NS && start < now - SIM_LAG_NS) start = now - SIM_LAG_NS;
        uint64_t dl = sim_device_deadline();
        if (start >= dl) { /* the slice ran out before this kernel could start */
            ptime = start;
            sim_device_slice_end(start);
            continue;
        }
        if (!first) first = start;
        uint64_t end = rem < dl - start ? start + rem : dl;
        /* the last queued work, finishing in this segment: others may move on at `end` even if we are slow to */
        sim_device_committed(last && end == start + rem ? end : 0);
        if (end > now) sleep_until(end);
        /* If a waiter took the device meanwhile, it did so only after our slice ended: [start, end] was ours. */
        used += end - start;
        rem -= end - start;
        ptime = end;
        sim_device_account(end - start);
        if (!rem) break;
        sim_device_slice_end(end);
    }
    if (sim_trace_enabled) {
        const char *name = op->u.k.name ? op->u.k.name : sim_host_kernel_name(op->u.k.host_fn);
        uintptr_t id = op->stream->kind == STREAM_LEGACY ? 0 : (uintptr_t)op->stream;
        sim_trace_kernel(id, op->seq, name, first, ptime, used);
    }
    return first;
}

static void do_copy(const struct sim_copy *c) {
    for (size_t z = 0; z < c->depth; z++)
        for (size_t y = 0; y < c->height; y++)
            memmove(c->dst + z * c->dslice + y * c->dpitch, c->src + z * c->sslice + y * c->spitch, c->width);
}

static void do_fill(const struct sim_copy *c, unsigned elem, uint32_t value) {
    uint16_t v16 = (uint16_t)value;
    for (size_t z = 0; z < c->depth; z++)
        for (size_t y = 0; y < c->height; y++) {
            unsigned char *row = c->dst + z * c->dslice + y * c->dpitch;
            if (elem == 1) {
                memset(row, (int)(value & 0xff), c->width);
            } else {
                for (size_t i = 0; i < c->width; i++) memcpy(row + i * elem, elem == 2 ? (void *)&v16 : &value, elem);
            }
        }
}

static size_t copy_bytes(const struct sim_copy *c, size_t elem) { return c->width * elem * c->height * c->depth; }

static void execute(struct sim_op *op, int last) {
    uint64_t now = sim_now();
    if (ptime < op->submit_ns) ptime = op->submit_ns;
    if (now > SIM_LAG_NS && ptime < now - SIM_LAG_NS) ptime = now - SIM_LAG_NS;
    const sim_activity_hooks *act = op->correlation ? atomic_load(&activity) : NULL;
    switch (op->kind) {
    case OP_KERNEL: {
        uint64_t first = run_kernel(op, last);
        if (act)
            act->executed(SIM_ACT_KERNEL, op->correlation,
                          op->u.k.name ? op->u.k.name : sim_host_kernel_name(op->u.k.host_fn), first, ptime, 0,
                          stream_id(op->stream));
        break;
    }
    case OP_COPY:
        if (copy_bytes(&op->u.c, 1) >= BIG_TRANSFER) sim_device_release(ptime);
        do_copy(&op->u.c);
        if (act) act->executed(SIM_ACT_COPY, op->correlation, NULL, ptime, ptime, copy_bytes(&op->u.c, 1), stream_id(op->stream));
        break;
    case OP_FILL:
        if (copy_bytes(&op->u.c, op->elem) >= BIG_TRANSFER) sim_device_release(ptime);
        do_fill(&op->u.c, op->elem, op->value);
        if (act)
            act->executed(SIM_ACT_FILL, op->correlation, NULL, ptime, ptime, copy_bytes(&op->u.c, op->elem),
                          stream_id(op->stream));
        break;
    case OP_RECORD:
        /* A real GPU stamps an event when it processes this context's work: while another process's kernels hold
         * the device, a record waits for this process's turn like a kernel does (an event recorded in front of a
         * kernel measures how long that kernel queued). */
        sim_device_acquire(&ptime);
        atomic_store(&op->u.ev->time_ns, ptime);
        event_unref(op->u.ev);
        break;
    case OP_HOST:
        sim_device_release(ptime); /* the stream waits for the host; the device serves others meanwhile */
        op->u.host.fn(op->u.host.arg);
        now = sim_now();
        if (ptime < now) ptime = now;
        break;
    }
}

static void retire_streams(uint64_t done) {
    if (!atomic_load_explicit(&have_dead, memory_order_relaxed)) return;
    pthread_mutex_lock(&dead_lock);
    struct sim_stream **pp = &dead_streams;
    while (*pp) {
        struct sim_stream *s = *pp;
        if (atomic_load(&s->last_pos) <= done) {
            *pp = s->next_dead;
            handle_free(&free_streams, s);
        } else {
            pp = &s->next_dead;
        }
    }
    atomic_store(&have_dead, dead_streams != NULL);
    pthread_mutex_unlock(&dead_lock);
}

static void idle(uint64_t head) {
    sim_device_release(ptime); /* a process whose queue is empty gives the device up at once */
    uint64_t until = sim_now() + IDLE_SPIN_NS;
    do {
        for (int i = 0; i < 64; i++) cpu_relax();
        if (atomic_load_explicit(&q.tail, memory_order_acquire) != head) return;
    } while (sim_now() < until);
    retire_streams(head);
    sim_trace_flush();
    uint32_t f = atomic_load(&q.worker_futex);
    atomic_store(&q.worker_sleeping, 1);
    if (atomic_load(&q.tail) == head) futex_private(&q.worker_futex, FUTEX_WAIT, f);
    atomic_store(&q.worker_sleeping, 0);
}

static void *worker_main(void *arg) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are for the application's threads */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    pthread_setname_np(pthread_self(), "tailguard-sim");
    uint64_t head = atomic_load(&q.done);
    for (;;) {
        if (atomic_load_explicit(&exiting, memory_order_relaxed)) park();
        if (atomic_load_explicit(&q.tail, memory_order_acquire) == head) {
            idle(head);
            continue;
        }
        execute(&q.ring[head % QUEUE_CAP], atomic_load_explicit(&q.tail, memory_order_acquire) == head + 1);
        complete(++head);
    }
    return arg;
}

/* The worker runs code of this library until the process ends: never let it be unloaded. */
static void pin_library(void) {
    Dl_info info;
    if (dladdr((void *)pin_library, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static void start_worker(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    int rc = pthread_create(&worker, &attr, worker_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        tg_error("simulated GPU: cannot start the worker thread (%s); each call now executes its work before it "
                 "returns",
                 strerror(rc));
    atomic_store(&q.worker_state, rc == 0 ? 1 : -1);
}

/* Without a worker thread, the submitting threads execute the queue themselves (launches become synchronous). */
static void drain_inline(void) {
    static pthread_mutex_t drain = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&drain);
    uint64_t head = atomic_load(&q.done);
    while (head != atomic_load_explicit(&q.tail, memory_order_acquire)) {
        execute(&q.ring[head % QUEUE_CAP], atomic_load_explicit(&q.tail, memory_order_acquire) == head + 1);
        complete(++head);
    }
    sim_device_release(ptime);
    pthread_mutex_unlock(&drain);
}

/* ---- submission ------------------------------------------------------------------------------------------- */

/* After a submission, outside q.lock: start the worker on first use, wake it if it sleeps. */
static void wake_worker_if_asleep(void) {
    atomic_thread_fence(memory_order_seq_cst);
    /* Only the first submitter to find it asleep pays the syscall, even while the woken worker waits for a CPU. */
    if (atomic_load_explicit(&q.worker_sleeping, memory_order_relaxed) && atomic_exchange(&q.worker_sleeping, 0)) {
        atomic_fetch_add(&q.worker_futex, 1);
        futex_private(&q.worker_futex, FUTEX_WAKE, 1);
    }
    int state = atomic_load_explicit(&q.worker_state, memory_order_acquire);
    if (__builtin_expect(state != 1, 0)) {
        if (state == 0) pthread_once(&worker_once, start_worker);
        if (atomic_load(&q.worker_state) < 0) drain_inline();
    }
}

/* Under q.lock: room for one more operation on s, in the queue or, while s captures, in its graph. Blocks while the
 * queue is full, like a real push buffer. */
static struct sim_op *op_slot(struct sim_stream *s) {
    struct sim_graph *g = s->capture;
    if (g) {
        if (g->n == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 16;
            struct sim_op *ops = realloc(g->ops, cap * sizeof *ops);
            if (!ops) return NULL;
            g->ops = ops;
            g->cap = cap;
        }
        return &g->ops[g->n];
    }
    uint64_t t = atomic_load_explicit(&q.tail, memory_order_relaxed);
    if (t - q.seen_done >= QUEUE_CAP) {
        q.seen_done = atomic_load(&q.done);
        if (t - q.seen_done >= QUEUE_CAP) {
            wake_worker_if_asleep();
            wait_done(t - QUEUE_CAP + 1);
            q.seen_done = atomic_load(&q.done);
        }
    }
    return &q.ring[t % QUEUE_CAP];
}

/* Under q.lock: makes the operation written into op_slot(s) visible (to the worker, or to the graph). */
static int op_push(struct sim_stream *s, struct sim_op *op) {
    struct sim_graph *g = s->capture;
    if (g) {
        op->stream = NULL;
        if (op->kind == OP_RECORD) op->u.ev->capture_id = g->capture_id;
        g->n++;
        return SIM_OK;
    }
    op->stream = s;
    op->submit_ns = sim_now();
    if (op->kind == OP_KERNEL) op->seq = s->kernels++;
    const sim_activity_hooks *act = atomic_load(&activity);
    op->correlation = 0;
    if (act && (op->kind == OP_KERNEL || op->kind == OP_COPY || op->kind == OP_FILL))
        op->correlation = act->submitted(op->kind == OP_KERNEL ? SIM_ACT_KERNEL : op->kind == OP_COPY ? SIM_ACT_COPY : SIM_ACT_FILL);
    uint64_t pos = atomic_load_explicit(&q.tail, memory_order_relaxed) + 1;
    atomic_store_explicit(&s->last_pos, pos, memory_order_relaxed);
    if (op->kind == OP_RECORD) {
        op->u.ev->capture_id = 0;
        atomic_store_explicit(&op->u.ev->record_pos, pos, memory_order_release);
    }
    atomic_store_explicit(&q.tail, pos, memory_order_release);
    sim_device_more_work(op->kind == OP_KERNEL);
    return SIM_OK;
}

/* Under q.lock. */
static int push_record(struct sim_stream *s, struct sim_event *e) {
    struct sim_op *op = op_slot(s);
    if (!op) return SIM_ENOMEM;
    op->kind = OP_RECORD;
    op->u.ev = e;
    atomic_fetch_add(&e->refs, 1);
    int rc = op_push(s, op);
    if (rc != SIM_OK) atomic_fetch_sub(&e->refs, 1);
    return rc;
}

int sim_launch(struct sim_stream *s, const char *name, const void *host_fn, uint32_t us, struct sim_event *start,
               struct sim_event *stop) {
    int rc = SIM_OK;
    pthread_mutex_lock(&q.lock);
    if (start) rc = push_record(s, start);
    struct sim_op *op = rc == SIM_OK ? op_slot(s) : NULL;
    if (op) {
        op->kind = OP_KERNEL;
        op->u.k.name = name;
        op->u.k.host_fn = host_fn;
        op->u.k.ns = us * 1000ull;
        rc = op_push(s, op);
    } else if (rc == SIM_OK) {
        rc = SIM_ENOMEM;
    }
    if (stop && rc == SIM_OK) rc = push_record(s, stop);
    pthread_mutex_unlock(&q.lock);
    wake_worker_if_asleep();
    return rc;
}

uint32_t sim_kernel_us(void **params, void **extra) {
    uint32_t us = 0;
    if (params) {
        if (params[0]) memcpy(&us, params[0], sizeof us);
        return us;
    }
    if (!extra) return 0;
    const void *buf = NULL;
    size_t size = sizeof us;
    /* CU_LAUNCH_PARAM_END is 0, HIP_LAUNCH_PARAM_END is 3; BUFFER_POINTER 1 and BUFFER_SIZE 2 in both. */
    for (int i = 0; i < 16 && extra[i] != (void *)0 && extra[i] != (void *)3; i += 2) {
        if (extra[i] == (void *)1) buf = extra[i + 1];
        else if (extra[i] == (void *)2 && extra[i + 1]) size = *(const size_t *)extra[i + 1];
        else break;
    }
    if (buf && size >= sizeof us) memcpy(&us, buf, sizeof us);
    return us;
}

static int submit_block(struct sim_stream *s, int kind, const struct sim_copy *c, unsigned elem, uint32_t value) {
    pthread_mutex_lock(&q.lock);
    struct sim_op *op = op_slot(s);
    int rc = SIM_ENOMEM;
    if (op) {
        op->kind = (uint8_t)kind;
        op->elem = (uint8_t)elem;
        op->value = value;
        op->u.c = *c;
        rc = op_push(s, op);
    }
    pthread_mutex_unlock(&q.lock);
    wake_worker_if_asleep();
    return rc;
}

static int capturing(struct sim_stream *s) {
    pthread_mutex_lock(&q.lock);
    int c = s->capture != NULL;
    pthread_mutex_unlock(&q.lock);
    return c;
}

/* Everything submitted so far, by any thread to any stream. */
static int wait_all(void) {
    if (on_worker()) return 800; /* CUDA_ERROR_NOT_PERMITTED: synchronising inside a host function */
    wait_done(atomic_load(&q.tail));
    sim_trace_flush();
    return SIM_OK;
}

int sim_copy_async(struct sim_stream *s, const struct sim_copy *c) { return submit_block(s, OP_COPY, c, 1, 0); }

/* A synchronous copy or fill, done by the calling thread: the simulated CUPTI sees it as instantaneous. */
static void sync_activity(struct sim_stream *s, int kind, uint64_t bytes) {
    const sim_activity_hooks *act = atomic_load(&activity);
    if (!act) return;
    uint32_t correlation = act->submitted(kind);
    uint64_t now = sim_now();
    if (correlation) act->executed(kind, correlation, NULL, now, now, bytes, stream_id(s));
}

int sim_copy_sync(struct sim_stream *s, const struct sim_copy *c) {
    if (capturing(s)) return SIM_ECAPTURE;
    int rc = wait_all();
    if (rc == SIM_OK) do_copy(c);
    if (rc == SIM_OK) sync_activity(s, SIM_ACT_COPY, copy_bytes(c, 1));
    return rc;
}

int sim_fill_async(struct sim_stream *s, const struct sim_copy *c, unsigned elem, uint32_t value) {
    return submit_block(s, OP_FILL, c, elem, value);
}

int sim_fill_sync(struct sim_stream *s, const struct sim_copy *c, unsigned elem, uint32_t value) {
    if (capturing(s)) return SIM_ECAPTURE;
    int rc = wait_all();
    if (rc == SIM_OK) do_fill(c, elem, value);
    if (rc == SIM_OK) sync_activity(s, SIM_ACT_FILL, copy_bytes(c, elem));
    return rc;
}

int sim_host_func(struct sim_stream *s, void (*fn)(void *), void *arg) {
    pthread_mutex_lock(&q.lock);
    struct sim_op *op = op_slot(s);
    int rc = SIM_ENOMEM;
    if (op) {
        op->kind = OP_HOST;
        op->u.host.fn = fn;
        op->u.host.arg = arg;
        rc = op_push(s, op);
    }
    pthread_mutex_unlock(&q.lock);
    wake_worker_if_asleep();
    return rc;
}

/* ---- streams ------------------------------------------------------------------------------------------------ */

static void ops_unref(struct sim_op *ops, size_t n);

/* Under q.lock: a stream that goes away leaves its capture; if it began the capture, the capture is abandoned (the real
 * driver invalidates it) and the streams that joined it stop capturing. */
static void leave_capture(struct sim_stream *s) {
    struct sim_graph *g = s->capture;
    if (!g) return;
    s->capture = NULL;
    if (g->origin != s) {
        for (int i = 0; i < g->nmembers; i++)
            if (g->members[i] == s) g->members[i] = g->members[--g->nmembers];
        return;
    }
    for (int i = 0; i < g->nmembers; i++) g->members[i]->capture = NULL;
    for (struct sim_graph **pp = &q.capturing; *pp; pp = &(*pp)->next_capturing)
        if (*pp == g) {
            *pp = g->next_capturing;
            break;
        }
    ops_unref(g->ops, g->n);
    free(g->ops);
    g->magic = DEAD_MAGIC;
    handle_free(&free_graphs, g);
}

/* Under q.lock. Frees a stream now, or once the worker has executed its last operation. */
static void retire_stream(struct sim_stream *s) {
    leave_capture(s);
    s->magic = DEAD_MAGIC;
    if (atomic_load(&s->last_pos) <= atomic_load(&q.done)) {
        handle_free(&free_streams, s);
        return;
    }
    pthread_mutex_lock(&dead_lock);
    s->next_dead = dead_streams;
    dead_streams = s;
    atomic_store(&have_dead, 1);
    pthread_mutex_unlock(&dead_lock);
}

static void thread_stream_exit(void *p) {
    pthread_mutex_lock(&q.lock);
    retire_stream(p);
    pthread_mutex_unlock(&q.lock);
}

static struct sim_stream *per_thread_stream(void) {
    struct sim_stream *s = thread_stream;
    if (s) return s;
    s = handle_new(&free_streams, sizeof *s);
    if (!s) return NULL;
    s->magic = STREAM_MAGIC;
    s->kind = STREAM_PER_THREAD;
    thread_stream = s;
    pthread_setspecific(thread_stream_key, s);
    return s;
}

struct sim_stream *sim_stream_get(const void *handle, int per_thread) {
    if (!handle) return per_thread ? per_thread_stream() : &legacy;
    if (handle == (const void *)1) return &legacy;
    if (handle == (const void *)2) return per_thread_stream();
    struct sim_stream *s = (struct sim_stream *)handle;
    return s->magic == STREAM_MAGIC ? s : NULL;
}

int sim_stream_create(struct sim_stream **out, unsigned flags, int priority) {
    struct sim_stream *s = handle_new(&free_streams, sizeof *s);
    if (!s) return SIM_ENOMEM;
    s->magic = STREAM_MAGIC;
    s->kind = STREAM_USER;
    s->flags = flags;
    s->priority = priority;
    *out = s;
    return SIM_OK;
}

int sim_stream_destroy(const void *handle) {
    struct sim_stream *s = handle && handle != (const void *)1 && handle != (const void *)2
                               ? sim_stream_get(handle, 0) : NULL;
    if (!s || s->kind != STREAM_USER) return SIM_EHANDLE;
    pthread_mutex_lock(&q.lock);
    retire_stream(s);
    pthread_mutex_unlock(&q.lock);
    return SIM_OK;
}

int sim_stream_query(struct sim_stream *s) {
    return atomic_load(&s->last_pos) <= atomic_load(&q.done) ? SIM_OK : SIM_ENOTREADY;
}

int sim_stream_sync(struct sim_stream *s) {
    if (capturing(s)) return SIM_ECAPTURE;
    if (on_worker()) return 800;
    wait_done(atomic_load(&s->last_pos));
    sim_trace_flush();
    return SIM_OK;
}

int sim_ctx_sync(void) { return wait_all(); }

/* ---- events --------------------------------------------------------------------------------------------------- */

struct sim_event *sim_event_get(const void *handle) {
    struct sim_event *e = (struct sim_event *)handle;
    return e && e->magic == EVENT_MAGIC ? e : NULL;
}

int sim_event_create(struct sim_event **out, unsigned flags) {
    struct sim_event *e = handle_new(&free_events, sizeof *e);
    if (!e) return SIM_ENOMEM;
    e->magic = EVENT_MAGIC;
    e->flags = flags;
    atomic_store(&e->refs, 1);
    *out = e;
    return SIM_OK;
}

int sim_event_record(struct sim_event *e, struct sim_stream *s) {
    pthread_mutex_lock(&q.lock);
    int rc = push_record(s, e);
    pthread_mutex_unlock(&q.lock);
    wake_worker_if_asleep();
    return rc;
}

/* TAILGUARD_SIM_EVENT_LAG_US: an event completed at time_ns shows as complete to queries only this much later. */
static int lagging(struct sim_event *e) {
    static int64_t lag_ns = -1;
    if (lag_ns < 0) lag_ns = (int64_t)tg_option_uint(TG_OPT_SIM_EVENT_LAG_US, 0, 100000000, 0) * 1000;
    return lag_ns && sim_now() < atomic_load(&e->time_ns) + (uint64_t)lag_ns;
}

int sim_event_query(struct sim_event *e) {
    uint64_t pos = atomic_load(&e->record_pos);
    return pos <= atomic_load(&q.done) && !lagging(e) ? SIM_OK : SIM_ENOTREADY;
}

int sim_event_sync(struct sim_event *e) {
    uint64_t pos = atomic_load(&e->record_pos);
    if (pos > atomic_load(&q.done) && on_worker()) return 800;
    wait_done(pos);
    sim_trace_flush();
    return SIM_OK;
}

int sim_event_elapsed(float *ms, struct sim_event *a, struct sim_event *b) {
    if ((a->flags | b->flags) & SIM_EVENT_DISABLE_TIMING) return SIM_EHANDLE;
    static int timing = -1; /* TAILGUARD_SIM_EVENT_TIMING=0: a driver without event timing */
    if (timing < 0) timing = tg_option_bool(TG_OPT_SIM_EVENT_TIMING);
    if (!timing) return SIM_ENOTSUP;
    uint64_t pa = atomic_load(&a->record_pos), pb = atomic_load(&b->record_pos);
    if (!pa || !pb) return SIM_EHANDLE; /* never recorded */
    uint64_t done = atomic_load(&q.done);
    if (pa > done || pb > done || lagging(a) || lagging(b)) return SIM_ENOTREADY;
    int64_t ns = (int64_t)(atomic_load(&b->time_ns) - atomic_load(&a->time_ns));
    *ms = (float)((double)ns / 1e6);
    return SIM_OK;
}

int sim_event_destroy(struct sim_event *e) {
    e->magic = DEAD_MAGIC; /* the memory lives on while a pending record or a graph still refers to it */
    event_unref(e);
    return SIM_OK;
}

/* Under q.lock: the graph capture `id` records into, if it still does. */
static struct sim_graph *capture_by_id(uint64_t id) {
    struct sim_graph *c = q.capturing;
    while (id && c && c->capture_id != id) c = c->next_capturing;
    return id ? c : NULL;
}

int sim_stream_wait_event(struct sim_stream *s, struct sim_event *e) {
    /* One worker executes everything in submission order, so the event's record has always run before any later
     * work: nothing to wait for. What remains is capture: waiting on an event recorded into a capture makes the
     * stream join that capture (the fork/join pattern of multi-stream graph capture). */
    int rc = SIM_OK;
    pthread_mutex_lock(&q.lock);
    struct sim_graph *g = capture_by_id(e->capture_id);
    if (g && !s->capture) {
        if (s->kind == STREAM_LEGACY) rc = SIM_ECAPTURE;
        else if (g->nmembers == (int)(sizeof g->members / sizeof g->members[0])) rc = SIM_ENOTSUP;
        else {
            g->members[g->nmembers++] = s;
            s->capture = g;
        }
    }
    pthread_mutex_unlock(&q.lock);
    return rc;
}

/* ---- graphs ------------------------------------------------------------------------------------------------ */

int sim_capture_begin(struct sim_stream *s, int mode) {
    if (mode < 0 || mode > 2) return SIM_EINVAL;
    if (s->kind == STREAM_LEGACY) return SIM_ECAPTURE; /* the legacy stream cannot be captured */
    struct sim_graph *g = handle_new(&free_graphs, sizeof *g);
    if (!g) return SIM_ENOMEM;
    g->magic = GRAPH_MAGIC;
    g->capturing = 1;
    g->origin = s;
    pthread_mutex_lock(&q.lock);
    if (s->capture) {
        pthread_mutex_unlock(&q.lock);
        g->magic = DEAD_MAGIC;
        handle_free(&free_graphs, g);
        return SIM_ESTATE;
    }
    s->capture = g;
    g->capture_id = ++q.captures;
    g->next_capturing = q.capturing;
    q.capturing = g;
    pthread_mutex_unlock(&q.lock);
    return SIM_OK;
}

int sim_capture_end(struct sim_stream *s, struct sim_graph **out) {
    pthread_mutex_lock(&q.lock);
    struct sim_graph *g = s->capture;
    if (!g || g->origin != s) {
        pthread_mutex_unlock(&q.lock);
        return SIM_ESTATE;
    }
    s->capture = NULL;
    for (int i = 0; i < g->nmembers; i++) g->members[i]->capture = NULL;
    g->capturing = 0;
    for (struct sim_graph **pp = &q.capturing; *pp; pp = &(*pp)->next_capturing)
        if (*pp == g) {
            *pp = g->next_capturing;
            break;
        }
    pthread_mutex_unlock(&q.lock);
    *out = g;
    return SIM_OK;
}

static void ops_unref(struct sim_op *ops, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == OP_RECORD) event_unref(ops[i].u.ev);
}

int sim_graph_instantiate(struct sim_graph_exec **out, const void *graph) {
    const struct sim_graph *g = graph;
    if (!g || g->magic != GRAPH_MAGIC) return SIM_EHANDLE;
    if (g->capturing) return SIM_ESTATE;
    struct sim_graph_exec *x = handle_new(&free_execs, sizeof *x);
    if (!x) return SIM_ENOMEM;
    x->ops = malloc((g->n ? g->n : 1) * sizeof *x->ops);
    if (!x->ops) {
        x->magic = DEAD_MAGIC;
        handle_free(&free_execs, x);
        return SIM_ENOMEM;
    }
    memcpy(x->ops, g->ops, g->n * sizeof *x->ops);
    x->n = g->n;
    for (size_t i = 0; i < x->n; i++)
        if (x->ops[i].kind == OP_RECORD) atomic_fetch_add(&x->ops[i].u.ev->refs, 1);
    x->magic = EXEC_MAGIC;
    *out = x;
    return SIM_OK;
}

int sim_graph_launch(const void *exec, struct sim_stream *s) {
    const struct sim_graph_exec *x = exec;
    if (!x || x->magic != EXEC_MAGIC) return SIM_EHANDLE;
    int rc = SIM_OK;
    pthread_mutex_lock(&q.lock);
    for (size_t i = 0; i < x->n && rc == SIM_OK; i++) {
        struct sim_op *op = op_slot(s);
        if (!op) {
            rc = SIM_ENOMEM;
            break;
        }
        *op = x->ops[i];
        if (op->kind == OP_RECORD) atomic_fetch_add(&op->u.ev->refs, 1);
        rc = op_push(s, op);
        if (rc != SIM_OK && op->kind == OP_RECORD) atomic_fetch_sub(&op->u.ev->refs, 1);
    }
    pthread_mutex_unlock(&q.lock);
    wake_worker_if_asleep();
    return rc;
}

int sim_graph_exec_destroy(const void *exec) {
    struct sim_graph_exec *x = (struct sim_graph_exec *)exec;
    if (!x || x->magic != EXEC_MAGIC) return SIM_EHANDLE;
    x->magic = DEAD_MAGIC;
    ops_unref(x->ops, x->n); /* queued copies hold their own event references */
    free(x->ops);
    handle_free(&free_execs, x);
    return SIM_OK;
}

int sim_graph_destroy(const void *graph) {
    struct sim_graph *g = (struct sim_graph *)graph;
    if (!g || g->magic != GRAPH_MAGIC || g->capturing) return SIM_EHANDLE;
    g->magic = DEAD_MAGIC;
    ops_unref(g->ops, g->n);
    free(g->ops);
    handle_free(&free_graphs, g);
    return SIM_OK;
}

/* ---- memory ------------------------------------------------------------------------------------------------- */

#define MEM_ALIGN 256u
static void *allocations; /* tsearch tree of the live blocks: frees of anything else are refused */
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;

static int ptr_cmp(const void *a, const void *b) {
    return (uintptr_t)a < (uintptr_t)b ? -1 : (uintptr_t)a > (uintptr_t)b;
}

int sim_mem_alloc(void **out, size_t bytes) {
    if (!bytes) return SIM_EINVAL;
    if (bytes > SIM_TOTAL_MEM) return SIM_ENOMEM;
    void *p = aligned_alloc(MEM_ALIGN, (bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN);
    if (!p) return SIM_ENOMEM;
    pthread_mutex_lock(&mem_lock);
    void *node = tsearch(p, &allocations, ptr_cmp);
    pthread_mutex_unlock(&mem_lock);
    if (!node) {
        free(p);
        return SIM_ENOMEM;
    }
    *out = p;
    return SIM_OK;
}

int sim_mem_free(void *p) {
    pthread_mutex_lock(&mem_lock);
    int live = tfind(p, &allocations, ptr_cmp) != NULL;
    if (live) tdelete(p, &allocations, ptr_cmp);
    pthread_mutex_unlock(&mem_lock);
    if (!live) return SIM_EINVAL;
    if (!on_worker()) wait_done(atomic_load(&q.tail)); /* pending copies may still use it, as cuMemFree waits */
    free(p);
    return SIM_OK;
}

/* ---- process life ----------------------------------------------------------------------------------------- */

static void after_fork_child(void) {
    /* The worker does not exist in the child, and the parent's slot is not ours: start afresh, dropping whatever the
     * parent had pending (the parent executes it). */
    pthread_mutex_init(&q.lock, NULL);
    pthread_mutex_init(&dead_lock, NULL);
    pthread_mutex_init(&recycle_lock, NULL);
    pthread_mutex_init(&mem_lock, NULL);
    atomic_store(&q.worker_state, 0);
    worker_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    atomic_store(&q.worker_sleeping, 0);
    uint64_t t = atomic_load(&q.tail);
    atomic_store(&q.done, t);
    q.seen_done = t;
    atomic_store(&q.wake_target, UINT64_MAX);
    ptime = 0;
    sim_device_after_fork();
    sim_trace_after_fork();
}

static void init_once(void) {
    tg_log_set_component("tailguard-sim");
    pthread_key_create(&thread_stream_key, thread_stream_exit);
    pin_library();
    sim_device_open();
    sim_trace_open();
    pthread_atfork(NULL, NULL, after_fork_child);
    atomic_store(&ready, 1);
}

void sim_init(void) {
    if (!atomic_load_explicit(&ready, memory_order_acquire)) pthread_once(&once, init_once);
}

__attribute__((constructor)) static void sim_load(void) { tg_log_set_component("tailguard-sim"); }

__attribute__((destructor)) static void sim_unload(void) {
    if (!atomic_load(&ready)) return;
    atomic_store(&exiting, 1);
    sim_trace_flush();
    sim_device_leave();
}
