/* Timestamps: CLOCK_MONOTONIC nanoseconds, cheaply.
 *
 * clock_gettime(CLOCK_MONOTONIC) is a vDSO call of 20-30 ns; two per launch would be most of the shim's cost. When
 * the kernel itself keeps time with the TSC (clocksource "tsc": synchronised across CPUs, constant rate), the shim
 * reads the TSC (~10 ns) and converts: each thread keeps a (tsc, monotonic) base that it re-reads from clock_gettime
 * every ~2 ms, and ticks are scaled by a rate measured over the life of the process. The result follows
 * CLOCK_MONOTONIC within a few ns (NTP slewing, at most 500 ppm, bounds the error to 1 us over a 2 ms window) and
 * never goes backwards within a thread. Anywhere else (another clocksource, another architecture, the first two
 * milliseconds of the process while the rate is measured) it is clock_gettime itself. The anchor pairs realtime with monotonic. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

int tg_tsc_usable;
uint64_t tg_tsc_scale;          /* ns per tick, 32.32 fixed point; 0 until measured */
uint64_t tg_tsc_refresh = 1u << 22; /* ticks between re-anchors (set to ~2 ms once the rate is known) */
__thread uint64_t tg_clk_tsc __attribute__((tls_model("initial-exec")));
__thread uint64_t tg_clk_mono __attribute__((tls_model("initial-exec")));

static uint64_t origin_tsc, origin_mono; /* the first measurement: the rate is measured from here */

/* The rate is first trusted over a 2 ms span (within ~20 ppm given clock_gettime's jitter, so a few tens of ns over
 * a re-anchor window) and re-measured over the whole life of the process at every re-anchor: after 100 ms it is
 * within ~1 ppm. Programs do not launch kernels within 1 ms of starting (CUDA's own initialisation takes longer). */
#define CALIBRATE_NS 2000000ull
#define REFRESH_NS 2000000ull

static uint64_t mul_scale(uint64_t ticks, uint64_t scale) {
    return (uint64_t)(((unsigned __int128)ticks * scale) >> 32);
}

/* A (tsc, monotonic) pair taken as close together as possible: the tightest of three tries (a first call into the
 * vDSO, or an interrupt in between, can take microseconds and would skew the rate). */
static void pair(uint64_t *tsc, uint64_t *mono) {
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = tg_rdtsc();
        uint64_t m = tg_clock_monotonic();
        uint64_t t1 = tg_rdtsc();
        if (t1 - t0 < best) {
            best = t1 - t0;
            *tsc = t0 + (t1 - t0) / 2;
            *mono = m;
        }
    }
}

void tg_clock_init(void) {
#if defined(__x86_64__)
    char buf[32] = "";
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = 0;
    }
    if (strncmp(buf, "tsc", 3) != 0 || (buf[3] != '\n' && buf[3] != 0)) return;
    pair(&origin_tsc, &origin_mono);
    tg_tsc_usable = 1;
#endif
}

uint64_t tg_now_refresh(uint64_t tsc) {
    uint64_t t, mono;
    pair(&t, &mono);
    uint64_t scale = __atomic_load_n(&tg_tsc_scale, __ATOMIC_RELAXED);
    if (mono - origin_mono >= CALIBRATE_NS && t > origin_tsc) {
        /* the longer the span, the better the rate: recompute it at every re-anchor */
        uint64_t s = (uint64_t)((((unsigned __int128)(mono - origin_mono)) << 32) / (t - origin_tsc));
        if (!scale) __atomic_store_n(&tg_tsc_refresh, (REFRESH_NS << 32) / s, __ATOMIC_RELAXED);
        __atomic_store_n(&tg_tsc_scale, s, __ATOMIC_RELAXED);
        scale = s;
    }
    if (!scale) return mono; /* still measuring the rate: the plain clock */
    /* keep time monotonic in this thread: never step back behind what the old base would have said */
    if (tg_clk_mono && t > tg_clk_tsc) {
        uint64_t extrapolated = tg_clk_mono + mul_scale(t - tg_clk_tsc, scale);
        if (extrapolated > mono && extrapolated - mono < 100000) mono = extrapolated;
    }
    tg_clk_tsc = t;
    tg_clk_mono = mono;
    return tsc > t ? mono + mul_scale(tsc - t, scale) : mono;
}

void tg_clock_anchor(uint64_t *realtime_ns, uint64_t *monotonic_ns) {
    /* Take the pair whose bracketing monotonic reads are closest: the realtime read sits in the middle. */
    uint64_t best_gap = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        struct timespec rt;
        uint64_t m0 = tg_clock_monotonic();
        clock_gettime(CLOCK_REALTIME, &rt);
        uint64_t m1 = tg_clock_monotonic();
        if (m1 - m0 < best_gap) {
            best_gap = m1 - m0;
            *realtime_ns = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
            *monotonic_ns = m0 + (m1 - m0) / 2;
        }
    }
}
