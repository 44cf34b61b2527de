/* What every wrapper does, for both API families: resolve the real entry point, pass through when not recording,
 * time the real call, and append one record. */
#ifndef TAILGUARD_WRAP_H
#define TAILGUARD_WRAP_H
#include "../shim.h"

/* Streams under graph capture (capture.c): launches issued to them are recorded with TG_F_CAPTURED. */
extern atomic_int tg_capture_count;
int tg_capturing_slow(const void *stream);
void tg_capture_begin(const void *stream);
void tg_capture_end(const void *stream);
static inline int tg_capturing(const void *stream) {
    return TG_UNLIKELY(atomic_load_explicit(&tg_capture_count, memory_order_relaxed) != 0) &&
           tg_capturing_slow(stream);
}

/* Known at compile time for each wrapper (tg_apis, in apis.c, is not visible to the compiler here). */
static const unsigned char tg_api_per_thread[TG_API_COUNT] = {
#define TG_API(sym, family, kind, gpa, per_thread, min_version) [TG_API_##sym] = per_thread,
#include "tailguard/apis.def"
#undef TG_API
};
static const unsigned char tg_api_launches[TG_API_COUNT] = {
#define TG_API(sym, family, kind, gpa, per_thread, min_version) [TG_API_##sym] = TG_KIND_##kind == TG_KIND_LAUNCH,
#define TG_KIND_NONE 0
#include "tailguard/apis.def"
#undef TG_KIND_NONE
#undef TG_API
};

/* CUDA launches and copies: their device work is timed by CUPTI when TAILGUARD_KERNEL_TIMING is on (kernel_timing.c). */
static const unsigned char tg_api_device_work[TG_API_COUNT] = {
#define TG_API(sym, family, kind, gpa, per_thread, min_version)                                                      \
    [TG_API_##sym] = TG_FAMILY_##family == TG_FAMILY_CUDA && (TG_KIND_##kind == TG_KIND_LAUNCH || TG_KIND_##kind == TG_KIND_COPY),
#define TG_KIND_NONE 0
#include "tailguard/apis.def"
#undef TG_KIND_NONE
#undef TG_API
};

/* Every call is timestamped when it enters. Its end is timestamped too, except for 7 launches in 8 per thread: a TSC
 * read costs 10-25 ns, a sizeable part of the shim's cost per launch, and 1 in 8 gives launch-time distributions
 * their shape. Waits, copies and everything else are always timed. */
extern __thread uint32_t tg_launch_tick __attribute__((tls_model("initial-exec")));
static inline int tg_timed(int api) { return !tg_api_launches[api] || (++tg_launch_tick & 7) == 0; }

static inline uint16_t tg_common_flags(int api, const void *stream) {
    return (uint16_t)((tg_api_per_thread[api] ? TG_F_PER_THREAD : 0) | (tg_capturing(stream) ? TG_F_CAPTURED : 0));
}

static inline void tg_record_launch(tg_ring_header *h, tg_lane *l, int api, uint64_t t0, uint64_t t1, int res, uint32_t kernel,
                                    unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                                    size_t shared, const void *s) {
    uint64_t pos;
    tg_record *r = tg_claim(h, l, &pos, 1);
    if (!r) return;
    /* every field is written (no memset): the slot still holds the previous lap's record */
    r->kind = TG_KIND_LAUNCH;
    r->op = TG_OP_KERNEL;
    r->api = (uint16_t)api;
    tg_set_time(r, t0, t1);
    r->flags |= tg_common_flags(api, s);
    r->result = (int16_t)res;
    r->stream = (uint64_t)(uintptr_t)s;
    r->u.launch.kernel = kernel;
    r->u.launch.grid[0] = gx;
    r->u.launch.grid[1] = gy;
    r->u.launch.grid[2] = gz;
    r->u.launch.block[0] = (uint16_t)bx;
    r->u.launch.block[1] = (uint16_t)by;
    r->u.launch.block[2] = (uint16_t)bz;
    size_t kib = (shared + 1023) / 1024;
    r->u.launch.shared_kib = (uint16_t)(kib > 0xffff ? 0xffff : kib);
    tg_publish(h, l, r, pos);
}

/* Any other record: the common fields, then the caller's `fill` statement (which may use `r`). */
#define TG_RECORD(h, l, api_, kind_, op_, t0, t1, res, s, extra_flags, fill)                                         \
    do {                                                                                                         \
        uint64_t pos_;                                                                                           \
        tg_record *r = tg_begin(h, l, &pos_, kind_, (kind_) == TG_KIND_LAUNCH);                                     \
        if (r) {                                                                                                 \
            tg_set_time(r, t0, t1);                                                                              \
            r->op = (uint8_t)(op_);                                                                              \
            r->api = (uint16_t)(api_);                                                                           \
            r->flags |= (uint16_t)(tg_common_flags(api_, s) | (extra_flags));                                    \
            r->result = (int16_t)(res);                                                                          \
            r->stream = (uint64_t)(uintptr_t)(s);                                                                \
            fill;                                                                                                \
            tg_publish(h, l, r, pos_);                                                                         \
        }                                                                                                        \
    } while (0)

/* The body of a wrapper returning `type`; `no_driver` is returned when no library after the shim defines `sym`.
 * `before` runs first (the scheduler: it may hold a launch), `after` once the call returned (`res` is its result).
 * A call whose record could not be written (the thread's lane is full) is counted and passed through untimed. */
#define TG_WRAP_HOOKED(type, no_driver, sym, before, after, call_args, record_stmt)                              \
    tg_pfn_##sym real = (tg_pfn_##sym)tg_real_get(TG_API_##sym);                                                \
    if (TG_UNLIKELY(!real)) return no_driver;                                                                   \
    before;                                                                                                     \
    type res;                                                                                                   \
    tg_ring_header *h = tg_ring_get();                                                                          \
    tg_lane *l = h ? tg_lane_get(h) : 0;                                                                        \
    if (TG_UNLIKELY(!h) || tg_lane_full(h, l)) {                                                                \
        if (h) tg_lane_drop(l, tg_api_launches[TG_API_##sym]);                                                  \
        res = real call_args;                                                                                   \
        after;                                                                                                  \
        return res;                                                                                             \
    }                                                                                                           \
    /* kernel timing starts (CUPTI loads) at the first launch or copy, before it is timed */                    \
    if (tg_api_device_work[TG_API_##sym] && TG_UNLIKELY(tg_kt_mode == 0)) tg_kt_start();                        \
    uint64_t t0 = tg_now();                                                                                     \
    int timed_ = tg_timed(TG_API_##sym);                                                                        \
    int kt_ = tg_api_device_work[TG_API_##sym] && TG_UNLIKELY(tg_kt_mode >= 0)                                  \
                  ? tg_kt_push(tg_api_launches[TG_API_##sym], t0) : 0;                                          \
    res = real call_args;                                                                                       \
    if (TG_UNLIKELY(kt_)) tg_kt_pop();                                                                          \
    uint64_t t1 = timed_ ? tg_now() : 0;                                                                        \
    after;                                                                                                      \
    record_stmt;                                                                                                \
    return res;

#define TG_WRAP(type, no_driver, sym, call_args, record_stmt)                                                    \
    TG_WRAP_HOOKED(type, no_driver, sym, , , call_args, record_stmt)

/* The scheduler's key for a stream: the legacy default stream is 0, a thread's per-thread default stream 2. */
static inline uint64_t tg_stream_key(const void *s, int per_thread) {
    uintptr_t v = (uintptr_t)s;
    if (v == 0) return per_thread ? 2 : 0;
    return v == 1 ? 0 : v;
}
#define TG_KEY(sym, s) tg_stream_key((const void *)(s), tg_api_per_thread[TG_API_##sym])

/* An event sync returned, or a query found the event done (`ok`): that ends the request window when the event was
 * recorded on the only stream the window used. */
static inline void tg_event_synced(const void *event, int ok) {
    int known;
    uint64_t stream = tg_sched_event_stream((uint64_t)(uintptr_t)event, &known);
    tg_sched_sync_exit(TG_SYNC_STREAM, stream, ok && known);
}
static inline void tg_event_polled(const void *event, int ok) {
    int known;
    uint64_t stream = tg_sched_event_stream((uint64_t)(uintptr_t)event, &known);
    tg_sched_polled(stream, ok && known);
}

/* Before a sync or query of an event: the window's end event goes in front of it when the event was recorded on the
 * only stream the window used, after its last launch (gpu_time.c). */
static inline void tg_event_gpu_time(const void *event) {
    int known;
    uint64_t stream = tg_sched_event_stream((uint64_t)(uintptr_t)event, &known);
    if (known) tg_gpu_time_sync(TG_SYNC_STREAM, stream);
}

/* Host callbacks are named after their symbol when the program exports one. */
const char *tg_host_function_name(const void *fn, char *buf, unsigned len);

#endif
