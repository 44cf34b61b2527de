/* NVTX v3 ranges and marks as RANGE records: the shim is an NVTX injection library (NVTX loads the library named by
 * NVTX_INJECTION64_PATH, which the shim sets to itself at load when unset, and calls its InitializeInjectionNvtx2).
 * Every callback is safe from any thread, before the ring exists (records nothing), after fork, with NULL, garbage or
 * unterminated-looking arguments (read at most TG_NAME_MAX characters), and never calls NVTX or the driver. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "shim.h"
#include "tailguard/log.h"
#include "tailguard/nvtx_abi.h"

/* Registered strings and domain names, which NVTX hands back as handles: the handle is the entry's index + 1 (never
 * dereferenced, so a garbage handle is only an unknown one); the text is kept so that a forked child, whose ring has a
 * name table of its own, can intern it again. Append-only and lock-free (fork-safe). */
#define REGISTERED_MAX 16384u
#define REGISTERED_BYTES (512u * 1024u)
static struct {
    _Atomic uint64_t hash; /* 0 until the entry is filled */
    uint32_t offset, len;
} registered[REGISTERED_MAX];
static _Atomic uint32_t registered_count, registered_used;
static char registered_text[REGISTERED_BYTES];

/* A message: text (not terminated) or a registered entry, resolved to a name id only when a record is written. */
typedef struct {
    const char *s;
    size_t len;
    uint64_t hash; /* 0: not hashed yet */
} tg_text;

static uint32_t text_id(tg_text *t) {
    if (!t->s) return 0;
    if (!t->hash) t->hash = tg_text_hash(t->s, t->len) | 1;
    return tg_name_intern_text(t->s, t->len, t->hash);
}

static void text_ascii(tg_text *t, const char *s) {
    t->s = s;
    t->len = s ? strnlen(s, TG_NAME_MAX) : 0;
    t->hash = 0;
}

/* wchar_t (UTF-32 on Linux) to UTF-8 in buf (TG_NAME_MAX + 4 bytes); what is not a code point becomes U+FFFD. */
static void text_wide(tg_text *t, const wchar_t *w, char *buf) {
    size_t n = 0;
    if (w)
        for (size_t i = 0; i < TG_NAME_MAX && w[i]; i++) {
            uint32_t c = (uint32_t)w[i];
            if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
            unsigned need = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
            if (n + need > TG_NAME_MAX) break;
            if (need == 1) buf[n++] = (char)c;
            else if (need == 2) {
                buf[n++] = (char)(0xC0 | c >> 6);
                buf[n++] = (char)(0x80 | (c & 0x3F));
            } else if (need == 3) {
                buf[n++] = (char)(0xE0 | c >> 12);
                buf[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (c & 0x3F));
            } else {
                buf[n++] = (char)(0xF0 | c >> 18);
                buf[n++] = (char)(0x80 | ((c >> 12) & 0x3F));
                buf[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (c & 0x3F));
            }
        }
    t->s = w ? buf : 0;
    t->len = n;
    t->hash = 0;
}

static void text_registered(tg_text *t, const void *handle) {
    uintptr_t i = (uintptr_t)handle - 1;
    t->s = 0;
    if (i >= REGISTERED_MAX) return;
    uint64_t hash = atomic_load_explicit(&registered[i].hash, memory_order_acquire);
    if (!hash) return;
    t->s = registered_text + registered[i].offset;
    t->len = registered[i].len;
    t->hash = hash;
}

static void *register_text(const tg_text *t) {
    if (!t->s) return 0;
    uint32_t i = atomic_fetch_add_explicit(&registered_count, 1, memory_order_relaxed);
    if (i >= REGISTERED_MAX) return 0;
    uint32_t offset = atomic_fetch_add_explicit(&registered_used, (uint32_t)t->len, memory_order_relaxed);
    if (offset + t->len > REGISTERED_BYTES) return 0;
    memcpy(registered_text + offset, t->s, t->len);
    registered[i].offset = offset;
    registered[i].len = (uint32_t)t->len;
    atomic_store_explicit(&registered[i].hash, tg_text_hash(t->s, t->len) | 1, memory_order_release);
    return (void *)(uintptr_t)(i + 1);
}

/* The message of event attributes; what is not ASCII, Unicode or registered text (or a structure too short to hold
 * a message) has none. */
static void text_of(tg_text *t, const nvtxEventAttributes_t *a, char *buf, uint32_t *category) {
    t->s = 0;
    *category = 0;
    if (!a || a->size < 8) return;
    *category = a->category;
    if (a->size < sizeof *a) return;
    switch (a->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII: text_ascii(t, a->message.ascii); break;
    case NVTX_MESSAGE_TYPE_UNICODE: text_wide(t, a->message.unicode, buf); break;
    case NVTX_MESSAGE_TYPE_REGISTERED: text_registered(t, a->message.registered); break;
    }
}

/* ---- records ---- */

static void emit_range(int op, uint64_t id, tg_text *msg, const void *domain, uint32_t depth, uint32_t category) {
    tg_ring_header *h = tg_ring_get();
    if (!h) return;
    uint64_t pos, t = tg_now();
    tg_text d;
    text_registered(&d, domain);
    uint32_t message = msg ? text_id(msg) : 0, dom = domain ? text_id(&d) : 0;
    tg_lane *l;
    tg_record *r = tg_begin_own(h, &l, &pos, TG_KIND_RANGE, op, t);
    if (!r) return;
    r->u.range.id = id;
    r->u.range.message = message;
    r->u.range.domain = dom;
    r->u.range.depth = depth;
    r->u.range.category = category;
    tg_publish(h, l, r, pos);
}

/* A W3C traceparent as a range's message: the range is a request of that trace for its duration. */
typedef struct {
    uint8_t trace_id[16], span_id[8];
    uint8_t sampled;
} tg_trace_context;

static int hex_byte(const char *s, uint8_t *out) {
    int v = 0;
    for (int i = 0; i < 2; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | d;
    }
    *out = (uint8_t)v;
    return 1;
}

static int parse_traceparent(const tg_text *t, tg_trace_context *c) {
    const char *s = t->s;
    if (!s || t->len != 55 || s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-') return 0;
    uint8_t flags, any = 0;
    for (int i = 0; i < 16; i++) {
        if (!hex_byte(s + 3 + 2 * i, &c->trace_id[i])) return 0;
        any |= c->trace_id[i];
    }
    if (!any) return 0;
    any = 0;
    for (int i = 0; i < 8; i++) {
        if (!hex_byte(s + 36 + 2 * i, &c->span_id[i])) return 0;
        any |= c->span_id[i];
    }
    if (!any || !hex_byte(s + 53, &flags)) return 0;
    c->sampled = flags & 1;
    return 1;
}

/* The traceparent a range's message carries: the whole message (1), or "NAME traceparent", its last 55 characters
 * after a space (2: then `msg` is cut to NAME, the range's and the request's name, so one range serves as both the
 * application's NVTX range and its request: one NVTX call instead of two calls). 0: none. */
static int message_context(tg_text *msg, tg_trace_context *c) {
    if (!msg || !msg->s || msg->len < 55) return 0;
    if (msg->len == 55) return parse_traceparent(msg, c);
    if (msg->len < 57 || msg->s[msg->len - 56] != ' ') return 0;
    tg_text tail = {msg->s + msg->len - 55, 55, 0};
    if (!parse_traceparent(&tail, c)) return 0;
    msg->len -= 56;
    msg->hash = 0;
    return 2;
}

static void emit_context(int op, const tg_trace_context *c, uint32_t name) {
    tg_ring_header *h = tg_ring_get();
    if (!h) return;
    uint64_t pos, t = tg_now();
    tg_lane *l;
    tg_record *r = tg_begin_own(h, &l, &pos, TG_KIND_CONTEXT, op, t);
    if (!r) return;
    r->stream = name; /* the request's name (name table id), 0: none */
    if (c->sampled) r->flags |= TG_F_SAMPLED;
    memcpy(r->u.context.trace_id, c->trace_id, 16);
    memcpy(r->u.context.span_id, c->span_id, 8);
    tg_publish(h, l, r, pos);
}

/* ---- push / pop: per thread, per domain (domains share 16 counters: a collision only blurs the depth) ---- */

#define DEPTH_SLOTS 16u
#define CONTEXT_NEST 8u
static __thread uint32_t depth_of[DEPTH_SLOTS] __attribute__((tls_model("initial-exec")));
/* the thread's open push ranges whose message was a traceparent: their slot, depth and context */
static __thread struct {
    uint32_t slot, depth, name;
    tg_trace_context context;
} pushed_context[CONTEXT_NEST];
static __thread uint32_t pushed_contexts;

static inline uint32_t depth_slot(const void *domain) {
    return domain ? 1 + (uint32_t)((uintptr_t)domain % (DEPTH_SLOTS - 1)) : 0;
}

static int push(const void *domain, tg_text *msg, uint32_t category) {
    uint32_t slot = depth_slot(domain), depth = ++depth_of[slot];
    tg_trace_context c;
    int carried = message_context(msg, &c);
    emit_range(TG_OP_RANGE_PUSH, 0, msg, domain, depth, category);
    if (carried && pushed_contexts < CONTEXT_NEST) {
        uint32_t name = carried == 2 ? text_id(msg) : 0;
        pushed_context[pushed_contexts].slot = slot;
        pushed_context[pushed_contexts].depth = depth;
        pushed_context[pushed_contexts].name = name;
        pushed_context[pushed_contexts].context = c;
        pushed_contexts++;
        emit_context(TG_OP_REQUEST_BEGIN, &c, name);
    }
    return (int)depth - 1;
}

static int pop(const void *domain) {
    uint32_t slot = depth_slot(domain), depth = depth_of[slot];
    if (depth == 0) return -1; /* unbalanced: nothing was pushed */
    depth_of[slot] = depth - 1;
    emit_range(TG_OP_RANGE_POP, 0, 0, domain, depth, 0);
    if (TG_UNLIKELY(pushed_contexts)) {
        for (uint32_t i = pushed_contexts; i-- > 0;)
            if (pushed_context[i].slot == slot && pushed_context[i].depth >= depth) {
                emit_context(TG_OP_REQUEST_END, &pushed_context[i].context, pushed_context[i].name);
                pushed_context[i] = pushed_context[--pushed_contexts];
            }
    }
    return (int)depth - 1;
}

/* ---- start / end: ids unique in the process; bit 0 marks a range whose message was a traceparent ---- */

static _Atomic uint64_t last_range_id;
#define STARTED_CONTEXTS 64u
static struct {
    _Atomic uint64_t id; /* 0: free; 1: being filled */
    tg_trace_context context;
    uint32_t name;
} started_context[STARTED_CONTEXTS];

static uint64_t start(const void *domain, tg_text *msg, uint32_t category) {
    uint64_t id = (atomic_fetch_add_explicit(&last_range_id, 1, memory_order_relaxed) + 1) << 1;
    tg_trace_context c;
    int carried = message_context(msg, &c);
    uint32_t name = carried == 2 ? text_id(msg) : 0;
    if (carried) {
        for (uint32_t i = 0; i < STARTED_CONTEXTS; i++) {
            uint64_t free_slot = 0;
            if (atomic_compare_exchange_strong(&started_context[i].id, &free_slot, 1)) {
                started_context[i].context = c;
                started_context[i].name = name;
                id |= 1;
                atomic_store_explicit(&started_context[i].id, id, memory_order_release);
                break;
            }
        }
    }
    emit_range(TG_OP_RANGE_START, id, msg, domain, 0, category);
    if (id & 1) emit_context(TG_OP_REQUEST_BEGIN, &c, name);
    return id;
}

static void end(const void *domain, uint64_t id) {
    /* 0, or an id never handed out (garbage): nothing to end */
    if (id < 2 || id >> 1 > atomic_load_explicit(&last_range_id, memory_order_relaxed)) return;
    emit_range(TG_OP_RANGE_END, id, 0, domain, 0, 0);
    if (!(id & 1) || id == 1) return;
    for (uint32_t i = 0; i < STARTED_CONTEXTS; i++) {
        uint64_t seen = id;
        if (atomic_load_explicit(&started_context[i].id, memory_order_acquire) == id) {
            tg_trace_context c = started_context[i].context;
            uint32_t name = started_context[i].name;
            if (atomic_compare_exchange_strong(&started_context[i].id, &seen, 0)) emit_context(TG_OP_REQUEST_END, &c, name);
            return;
        }
    }
}

/* ---- the callbacks NVTX calls ---- */

#define ATTRS(a)                                                                                                      \
    tg_text msg;                                                                                                      \
    uint32_t category;                                                                                                \
    char wide[TG_NAME_MAX + 4];                                                                                       \
    text_of(&msg, a, wide, &category)

static void mark_ex(const nvtxEventAttributes_t *a) {
    ATTRS(a);
    emit_range(TG_OP_RANGE_MARK, 0, &msg, 0, 0, category);
}
static void mark_a(const char *s) {
    tg_text msg;
    text_ascii(&msg, s);
    emit_range(TG_OP_RANGE_MARK, 0, &msg, 0, 0, 0);
}
static void mark_w(const wchar_t *s) {
    tg_text msg;
    char wide[TG_NAME_MAX + 4];
    text_wide(&msg, s, wide);
    emit_range(TG_OP_RANGE_MARK, 0, &msg, 0, 0, 0);
}
static nvtxRangeId_t start_ex(const nvtxEventAttributes_t *a) {
    ATTRS(a);
    return start(0, &msg, category);
}
static nvtxRangeId_t start_a(const char *s) {
    tg_text msg;
    text_ascii(&msg, s);
    return start(0, &msg, 0);
}
static nvtxRangeId_t start_w(const wchar_t *s) {
    tg_text msg;
    char wide[TG_NAME_MAX + 4];
    text_wide(&msg, s, wide);
    return start(0, &msg, 0);
}
static void end_(nvtxRangeId_t id) { end(0, id); }
static int push_ex(const nvtxEventAttributes_t *a) {
    ATTRS(a);
    return push(0, &msg, category);
}
static int push_a(const char *s) {
    tg_text msg;
    text_ascii(&msg, s);
    return push(0, &msg, 0);
}
static int push_w(const wchar_t *s) {
    tg_text msg;
    char wide[TG_NAME_MAX + 4];
    text_wide(&msg, s, wide);
    return push(0, &msg, 0);
}
static int pop_(void) { return pop(0); }

static void domain_mark_ex(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a) {
    ATTRS(a);
    emit_range(TG_OP_RANGE_MARK, 0, &msg, d, 0, category);
}
static nvtxRangeId_t domain_start_ex(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a) {
    ATTRS(a);
    return start(d, &msg, category);
}
static void domain_end(nvtxDomainHandle_t d, nvtxRangeId_t id) { end(d, id); }
static int domain_push_ex(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a) {
    ATTRS(a);
    return push(d, &msg, category);
}
static int domain_pop(nvtxDomainHandle_t d) { return pop(d); }
static nvtxStringHandle_t register_a(nvtxDomainHandle_t d, const char *s) {
    (void)d;
    tg_text t;
    text_ascii(&t, s);
    return register_text(&t);
}
static nvtxStringHandle_t register_w(nvtxDomainHandle_t d, const wchar_t *s) {
    (void)d;
    tg_text t;
    char wide[TG_NAME_MAX + 4];
    text_wide(&t, s, wide);
    return register_text(&t);
}
static nvtxDomainHandle_t domain_create_a(const char *name) {
    tg_text t;
    text_ascii(&t, name);
    return register_text(&t);
}
static nvtxDomainHandle_t domain_create_w(const wchar_t *name) {
    tg_text t;
    char wide[TG_NAME_MAX + 4];
    text_wide(&t, name, wide);
    return register_text(&t);
}
static void domain_destroy(nvtxDomainHandle_t d) { (void)d; /* its handle stays valid: entries are never reused */ }

static void fill(NvtxGetExportTableFunc_t get, int module, const void *const *fns, unsigned count) {
    const NvtxExportTableCallbacks *cb = get(NVTX_ETID_CALLBACKS);
    NvtxFunctionTable table = 0;
    unsigned size = 0;
    if (!cb || cb->struct_size < sizeof *cb || !cb->GetModuleFunctionTable ||
        !cb->GetModuleFunctionTable(module, &table, &size) || !table)
        return;
    for (unsigned id = 1; id < count && id <= size; id++)
        if (fns[id] && table[id]) *table[id] = (NvtxFunctionPointer)fns[id];
}

TG_EXPORT int InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get) {
    if (!get || tg_option_bool(TG_OPT_DISABLE)) return 0;
    static const void *const core[] = {
        [NVTX_CBID_CORE_MarkEx] = mark_ex,         [NVTX_CBID_CORE_MarkA] = mark_a,
        [NVTX_CBID_CORE_MarkW] = mark_w,           [NVTX_CBID_CORE_RangeStartEx] = start_ex,
        [NVTX_CBID_CORE_RangeStartA] = start_a,    [NVTX_CBID_CORE_RangeStartW] = start_w,
        [NVTX_CBID_CORE_RangeEnd] = end_,          [NVTX_CBID_CORE_RangePushEx] = push_ex,
        [NVTX_CBID_CORE_RangePushA] = push_a,      [NVTX_CBID_CORE_RangePushW] = push_w,
        [NVTX_CBID_CORE_RangePop] = pop_,
    };
    static const void *const core2[] = {
        [NVTX_CBID_CORE2_DomainMarkEx] = domain_mark_ex,
        [NVTX_CBID_CORE2_DomainRangeStartEx] = domain_start_ex,
        [NVTX_CBID_CORE2_DomainRangeEnd] = domain_end,
        [NVTX_CBID_CORE2_DomainRangePushEx] = domain_push_ex,
        [NVTX_CBID_CORE2_DomainRangePop] = domain_pop,
        [NVTX_CBID_CORE2_DomainRegisterStringA] = register_a,
        [NVTX_CBID_CORE2_DomainRegisterStringW] = register_w,
        [NVTX_CBID_CORE2_DomainCreateA] = domain_create_a,
        [NVTX_CBID_CORE2_DomainCreateW] = domain_create_w,
        [NVTX_CBID_CORE2_DomainDestroy] = domain_destroy,
    };
    fill(get, NVTX_CB_MODULE_CORE, core, sizeof core / sizeof *core);
    fill(get, NVTX_CB_MODULE_CORE2, core2, sizeof core2 / sizeof *core2);
    const NvtxExportTableVersionInfo *v = get(NVTX_ETID_VERSIONINFO);
    if (v && v->struct_size >= sizeof *v && v->SetInjectionNvtxVersion) v->SetInjectionNvtxVersion(3);
    return 1;
}

/* LD_PRELOAD alone is enough: the process's NVTX (and its children's) loads the shim as its tool. A tool the user chose
 * (Nsight Systems sets the variable) is left in place. */
__attribute__((constructor)) static void tg_nvtx_init(void) {
    if (tg_option_bool(TG_OPT_DISABLE)) return;
    Dl_info info;
    char self[PATH_MAX], other[PATH_MAX];
    if (!dladdr((void *)InitializeInjectionNvtx2, &info) || !info.dli_fname || !realpath(info.dli_fname, self)) return;
    const char *set = getenv("NVTX_INJECTION64_PATH");
    if (!set || !*set) setenv("NVTX_INJECTION64_PATH", self, 1);
    else if (strcmp(set, self) != 0 && (!realpath(set, other) || strcmp(other, self) != 0))
        tg_info("NVTX_INJECTION64_PATH names another tool (%s): left as it is, NVTX ranges go there, not to tailguard",
                set);
}
