/* Trace context: which request (a W3C traceparent) a thread's GPU work belongs to. The process's default comes from
 * TRACEPARENT/TRACESTATE at attach or tailguard_set_process_context; each thread keeps a stack of open requests
 * (tailguard_request_begin/end, the ABI of tailguard/tailguard.h). Every change is a CONTEXT record in the calling
 * thread's lane, so the agent places the thread's launches, which follow in the same lane, by it. Nothing here runs,
 * and nothing is recorded, unless the application (or its environment) gives a context. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "tailguard/log.h"
#define TAILGUARD_NO_WRAPPERS
#include "tailguard/tailguard.h"

#define NAME_SLOTS 512u /* open addressing, at most half full: 256 distinct request names per process */
#define NAME_MAX_KEPT 256u

typedef struct {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t sampled;
    uint8_t set; /* 0: no context (a named request with none to inherit) */
    const char *name_key; /* the interned copy the id was made from: a forked child re-interns it into its own ring */
    uint64_t t;           /* when its request began */
} tg_ctx;

static __thread tg_ctx stack[TAILGUARD_MAX_DEPTH] __attribute__((tls_model("initial-exec")));
static __thread int depth __attribute__((tls_model("initial-exec")));
/* A thread that exits with requests open ends them (thread_exit): its kernel thread id may serve another thread next,
 * which must not inherit them. The key is set once per thread, at its first request. */
static __thread int exit_hook __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t process_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_ctx process_ctx;     /* under process_lock */
static const char *tracestate; /* TRACESTATE at attach (interned copy), carried with the process's context */

/* ---- W3C traceparent ---- */

static int hex_nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10; /* lowercase only, as the specification writes it */
    return -1;
}

static int hex_bytes(const char *s, uint8_t *out, unsigned n) {
    unsigned any = 0;
    for (unsigned i = 0; i < n; i++) {
        int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
        any |= out[i];
    }
    return any ? 0 : -1; /* all zeros: an invalid id */
}

/* "vv-<32 hex>-<16 hex>-ff": version 00 exactly so; version ff is invalid; a later version may append "-..." after
 * the first 55 characters, which are read as version 00's (W3C Trace Context, "versioning of traceparent"). */
static int tg_traceparent_parse(const char *s, tg_ctx *out) {
    if (!s) return -1;
    size_t len = strnlen(s, 4096);
    if (len < 55 || hex_nibble(s[0]) < 0 || hex_nibble(s[1]) < 0) return -1;
    uint8_t version = (uint8_t)(hex_nibble(s[0]) << 4 | hex_nibble(s[1])), flags;
    if (version == 0xff || (version == 0 && len != 55) || (version != 0 && len > 55 && s[55] != '-')) return -1;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') return -1;
    if (hex_bytes(s + 3, out->trace_id, 16) != 0 || hex_bytes(s + 36, out->span_id, 8) != 0) return -1;
    if (hex_nibble(s[53]) < 0 || hex_nibble(s[54]) < 0) return -1;
    flags = (uint8_t)(hex_nibble(s[53]) << 4 | hex_nibble(s[54]));
    out->sampled = flags & 1;
    out->set = 1;
    return 0;
}

/* ---- request names: interned by content (the name table's ids are by key; the key here is our own copy) ---- */

static struct {
    _Atomic(const char *) key;
    uint32_t hash;
} names[NAME_SLOTS];
static unsigned names_kept;
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t fnv(const char *s, size_t *len) {
    uint32_t h = 2166136261u;
    size_t n = 0;
    for (; s[n] && n < TG_NAME_MAX; n++) h = (h ^ (unsigned char)s[n]) * 16777619u;
    *len = n;
    return h;
}

/* The interned copy of a request name (NULL: none, or too many distinct names). */
static const char *name_key(const char *name) {
    if (!name || !name[0]) return 0;
    size_t len;
    uint32_t h = fnv(name, &len);
    for (int locked = 0;; locked = 1) {
        for (uint32_t i = h & (NAME_SLOTS - 1), n = 0; n < NAME_SLOTS; n++, i = (i + 1) & (NAME_SLOTS - 1)) {
            const char *k = atomic_load_explicit(&names[i].key, memory_order_acquire);
            if (!k) {
                if (!locked) break; /* not there: look again under the lock, then add it */
                if (names_kept >= NAME_MAX_KEPT) {
                    pthread_mutex_unlock(&names_lock);
                    return 0;
                }
                char *copy = malloc(len + 1);
                if (!copy) {
                    pthread_mutex_unlock(&names_lock);
                    return 0;
                }
                memcpy(copy, name, len);
                copy[len] = 0;
                names[i].hash = h;
                atomic_store_explicit(&names[i].key, copy, memory_order_release);
                names_kept++;
                pthread_mutex_unlock(&names_lock);
                return copy;
            }
            if (names[i].hash == h && strncmp(k, name, len) == 0 && k[len] == 0) {
                if (locked) pthread_mutex_unlock(&names_lock);
                return k;
            }
        }
        if (locked) {
            pthread_mutex_unlock(&names_lock);
            return 0;
        }
        pthread_mutex_lock(&names_lock);
    }
}

/* ---- records ---- */

/* t: the record's time (0: now) */
static void emit(tg_ring_header *h, int op, const tg_ctx *c, const char *key, const char *state, uint64_t t) {
    if (!h) return;
    uint32_t id = key ? tg_name_intern(key) : 0, state_id = state ? tg_name_intern(state) : 0;
    uint64_t pos;
    tg_lane *l;
    tg_record *r = tg_begin_own(h, &l, &pos, TG_KIND_CONTEXT, op, t ? t : tg_now());
    if (!r) return;
    if (c && c->set) {
        memcpy(r->u.context.trace_id, c->trace_id, 16);
        memcpy(r->u.context.span_id, c->span_id, 8);
        if (c->sampled) r->flags |= TG_F_SAMPLED;
    }
    r->stream = (uint64_t)id | (uint64_t)state_id << 32;
    tg_publish(h, l, r, pos);
}

/* A ring was just created (at attach, or a forked child's first record): it starts with the process's context, and in
 * a forked child with the requests its one thread had open. */
void tg_context_ring_created(tg_ring_header *h) {
    pthread_mutex_lock(&process_lock);
    tg_ctx p = process_ctx;
    const char *state = tracestate;
    pthread_mutex_unlock(&process_lock);
    if (p.set) emit(h, TG_OP_CONTEXT_PROCESS, &p, 0, state, 0);
    /* at their begin times: the record that made this ring was timed before it existed */
    for (int i = 0; i < depth; i++) emit(h, TG_OP_REQUEST_BEGIN, &stack[i], stack[i].name_key, 0, stack[i].t);
}

/* At attach: TRACEPARENT (and TRACESTATE) from the environment, the OpenTelemetry convention for a child process. */
void tg_context_init(void) {
    const char *tp = getenv("TRACEPARENT");
    if (!tp || !tp[0]) return;
    tg_ctx c = {0};
    if (tg_traceparent_parse(tp, &c) != 0) {
        tg_warn("TRACEPARENT=\"%.80s\" is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>, ids not all zeros): "
                "ignored, this process's requests start traces of their own", tp);
        return;
    }
    process_ctx = c;
    const char *ts = getenv("TRACESTATE");
    if (ts && ts[0]) tracestate = name_key(ts);
}

void tg_context_after_fork(void) {
    pthread_mutex_init(&process_lock, 0);
    pthread_mutex_init(&names_lock, 0);
}

static void thread_exit(void *unused) {
    (void)unused;
    while (depth > 0) {
        tg_ctx c = stack[--depth];
        emit(tg_ring_get(), TG_OP_REQUEST_END, &c, c.name_key, 0, 0);
    }
}
static void make_exit_key(void) { pthread_key_create(&exit_key, thread_exit); }

/* ---- the ABI (tailguard/tailguard.h) ---- */

TG_EXPORT int tailguard_abi_version(void) { return TAILGUARD_ABI_VERSION; }

TG_EXPORT int tailguard_request_begin(const char *traceparent, const char *name) {
    tg_ctx c = {0};
    if (traceparent) {
        if (tg_traceparent_parse(traceparent, &c) != 0) return -EINVAL;
    } else if (depth > 0) {
        c = stack[depth - 1];
    } else {
        pthread_mutex_lock(&process_lock);
        c = process_ctx;
        pthread_mutex_unlock(&process_lock);
    }
    if (depth >= TAILGUARD_MAX_DEPTH) return -EOVERFLOW;
    if (TG_UNLIKELY(!exit_hook)) {
        pthread_once(&exit_once, make_exit_key);
        pthread_setspecific(exit_key, &exit_hook); /* any non-NULL value: the destructor runs */
        exit_hook = 1;
    }
    c.name_key = name_key(name);
    c.t = tg_now();
    stack[depth++] = c;
    emit(tg_ring_get(), TG_OP_REQUEST_BEGIN, &c, c.name_key, 0, c.t);
    return 0;
}

TG_EXPORT int tailguard_request_end(void) {
    if (depth <= 0) return -ENOENT;
    tg_ctx c = stack[--depth];
    emit(tg_ring_get(), TG_OP_REQUEST_END, &c, c.name_key, 0, 0);
    return 0;
}

TG_EXPORT int tailguard_set_process_context(const char *traceparent) {
    tg_ctx c = {0};
    if (traceparent && traceparent[0] && tg_traceparent_parse(traceparent, &c) != 0) return -EINVAL;
    pthread_mutex_lock(&process_lock);
    process_ctx = c;
    tracestate = 0; /* TRACESTATE went with the environment's context */
    pthread_mutex_unlock(&process_lock);
    emit(tg_ring_get(), TG_OP_CONTEXT_PROCESS, &c, 0, 0, 0);
    return 0;
}
