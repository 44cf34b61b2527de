/* tg-workload: a GPU workload shaped like inference or batch work, for the simulated GPU (kernels run for the
 * microseconds given as their first parameter) and for demos, scheduler tests and `tailguard bench --sim`. It reaches
 * the driver like the CUDA runtime does (dlopen("libcuda.so.1") + cuGetProcAddress), or HIP through libamdhip64.
 *
 *   tg-workload requests --rate R --count N --kernels K --kernel-us D [--jitter-us J]
 *       open loop: requests arrive at scheduled times, each K kernels then a stream sync; latency is measured from
 *       the scheduled arrival to the end of the sync. --samples FILE writes one line per request:
 *       <scheduled arrival ns> <first launch called ns> <sync returned ns> <GPU ns> (CLOCK_MONOTONIC; GPU ns: between
 *       events recorded around the request with --gpu-time 1, else -1), so the time a request's kernels took on the
 *       device can be told apart from the time the process took to wake up. --warmup W sends W untimed requests
 *       first (the process's first launches set up its worker and its place on the device).
 *       --start-ns T puts the first scheduled arrival at T (CLOCK_MONOTONIC), so that processes started one after
 *       another share one schedule; a warmup still running at T makes the first requests late, as it should.
 *       --arrivals fixed (default: every 1/R s) | poisson (exponential gaps of mean 1/R s from --seed N, drawn with
 *       splitmix64; bench/workers/torch_worker.py draws the same schedule from the same seed).
 *   tg-workload continuous --seconds S --kernels K --kernel-us D
 *       back to back: K kernels then a sync, repeated for S seconds; reports iterations per second. --samples FILE
 *       writes <iteration start ns> <iteration end ns> per iteration; --warmup W runs W untimed iterations first.
 *   common:
 *     --mix "US:COUNT,US:COUNT,..."  the kernels of one request/iteration as a duration mix (in place of --kernels
 *                                    and --kernel-us), launched interleaved: a model's layer pattern
 *     --launch-gap-us G   host time spent (busy) before each launch: a framework's per-operation CPU cost (eager)
 *     --graph 1           capture one request's kernels into a CUDA graph once, then launch the graph per request
 *     --gpu-time 1        time each request on the device with events recorded around it (CUDA)
 *     --cpus LIST         pin the process (and the threads it starts) to these CPUs, e.g. 2,3 or 4-7
 *     --sync stdio        after the warmup print "ready" and wait for "start <T ns>" on stdin (the shared start of
 *                         every worker, in place of --start-ns); continuous then runs until "stop" (or end of input)
 *                         on stdin instead of for --seconds
 *     --api cuda|hip (default cuda), --name KERNEL (default "workload_kernel"), --poll 1 (wait for the stream by
 *     querying it every 20 us instead of a blocking sync, like servers that poll events)
 * Prints one JSON object with the results. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tailguard/cuda_abi.h"
#include "tailguard/hip_abi.h"

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void die(const char *what, int code) {
    fprintf(stderr, "tg-workload: %s failed (%d)\n", what, code);
    exit(1);
}

/* The few entry points used, from either family. */
static struct {
    int hip;
    void *fn;   /* CUfunction or host function pointer */
    void *stream;
    tg_pfn_cuLaunchKernel cu_launch;
    tg_pfn_cuStreamSynchronize cu_sync;
    tg_pfn_hipLaunchKernel hip_launch;
    tg_pfn_hipStreamSynchronize hip_sync;
    tg_pfn_cuStreamQuery cu_query;
    tg_pfn_hipStreamQuery hip_query;
    tg_pfn_cuEventCreate cu_event_create;
    tg_pfn_cuEventRecord cu_event_record;
    tg_pfn_cuEventElapsedTime cu_event_elapsed;
    tg_pfn_cuStreamBeginCapture_v2 cu_capture_begin;
    tg_pfn_cuStreamEndCapture cu_capture_end;
    tg_pfn_cuGraphInstantiateWithFlags cu_graph_instantiate;
    tg_pfn_cuGraphLaunch cu_graph_launch;
    int poll; /* --poll: wait by querying the stream in a loop instead of a blocking sync */
} gpu;

static void hip_host_kernel(void) {}

static void setup(const char *api, const char *name) {
    if (!strcmp(api, "hip")) {
        gpu.hip = 1;
        void *lib = dlopen("libamdhip64.so", RTLD_NOW);
        if (!lib) lib = dlopen("libamdhip64.so.6", RTLD_NOW);
        if (!lib) die("dlopen(libamdhip64.so)", -1);
        gpu.hip_launch = (tg_pfn_hipLaunchKernel)dlsym(lib, "hipLaunchKernel");
        gpu.hip_sync = (tg_pfn_hipStreamSynchronize)dlsym(lib, "hipStreamSynchronize");
        gpu.hip_query = (tg_pfn_hipStreamQuery)dlsym(lib, "hipStreamQuery");
        tg_pfn_hipStreamCreate create = (tg_pfn_hipStreamCreate)dlsym(lib, "hipStreamCreate");
        if (!gpu.hip_launch || !gpu.hip_sync || !create) die("dlsym(hip*)", -1);
        int r = create((hipStream_t *)&gpu.stream);
        if (r) die("hipStreamCreate", r);
        gpu.fn = (void *)hip_host_kernel;
        return;
    }
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (!lib) die("dlopen(libcuda.so.1)", -1);
    tg_pfn_cuGetProcAddress_v2 gpa = (tg_pfn_cuGetProcAddress_v2)dlsym(lib, "cuGetProcAddress_v2");
    if (!gpa) die("dlsym(cuGetProcAddress_v2)", -1);
#define GET(sym, var)                                                                                            \
    do {                                                                                                         \
        int r_ = gpa(#sym, (void **)&var, 13000, CU_GET_PROC_ADDRESS_DEFAULT, NULL);                             \
        if (r_) die("cuGetProcAddress(" #sym ")", r_);                                                           \
    } while (0)
    tg_pfn_cuInit init;
    tg_pfn_cuDeviceGet device_get;
    tg_pfn_cuDevicePrimaryCtxRetain retain;
    tg_pfn_cuCtxSetCurrent set_current;
    tg_pfn_cuModuleLoadData load;
    tg_pfn_cuModuleGetFunction get_function;
    tg_pfn_cuStreamCreate stream_create;
    GET(cuInit, init);
    GET(cuDeviceGet, device_get);
    GET(cuDevicePrimaryCtxRetain, retain);
    GET(cuCtxSetCurrent, set_current);
    GET(cuModuleLoadData, load);
    GET(cuModuleGetFunction, get_function);
    GET(cuStreamCreate, stream_create);
    GET(cuLaunchKernel, gpu.cu_launch);
    GET(cuStreamSynchronize, gpu.cu_sync);
    GET(cuStreamQuery, gpu.cu_query);
    GET(cuEventCreate, gpu.cu_event_create);
    GET(cuEventRecord, gpu.cu_event_record);
    GET(cuEventElapsedTime, gpu.cu_event_elapsed);
    GET(cuStreamBeginCapture, gpu.cu_capture_begin);
    GET(cuStreamEndCapture, gpu.cu_capture_end);
    GET(cuGraphInstantiateWithFlags, gpu.cu_graph_instantiate);
    GET(cuGraphLaunch, gpu.cu_graph_launch);
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    int r;
    if ((r = init(0)) || (r = device_get(&dev, 0)) || (r = retain(&ctx, dev)) || (r = set_current(ctx))) die("init", r);
    if ((r = load(&mod, "simulated")) || (r = get_function((CUfunction *)&gpu.fn, mod, name))) die("module", r);
    if ((r = stream_create((CUstream *)&gpu.stream, CU_STREAM_NON_BLOCKING))) die("cuStreamCreate", r);
}

static void launch(unsigned us) {
    void *params[] = {&us};
    int r;
    if (gpu.hip) {
        dim3 grid = {1, 1, 1}, block = {64, 1, 1};
        r = gpu.hip_launch(gpu.fn, grid, block, params, 0, gpu.stream);
    } else {
        r = gpu.cu_launch(gpu.fn, 1, 1, 1, 64, 1, 1, 0, gpu.stream, params, NULL);
    }
    if (r) die("launch", r);
}

static void sync_stream(void) {
    if (gpu.poll) {
        for (;;) {
            int q = gpu.hip ? gpu.hip_query(gpu.stream) : gpu.cu_query(gpu.stream);
            if (q == 0) return;
            if (q != 600) die("stream query", q); /* 600: not ready, in both APIs */
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
    int r = gpu.hip ? gpu.hip_sync(gpu.stream) : gpu.cu_sync(gpu.stream);
    if (r) die("sync", r);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double pct(double *v, int n, double p) {
    int k = (int)(p / 100.0 * (n - 1) + 0.5);
    return v[k < n ? k : n - 1];
}

static void usage_error(const char *what, const char *value) {
    fprintf(stderr, "tg-workload: %s: \"%s\"\n", what, value);
    exit(2);
}

/* ---- the kernels of one request or iteration ------------------------------------------------------------------- */

#define MAX_KERNELS 100000
static unsigned *plan; /* kernel durations (us) in launch order */
static int plan_len;

/* "US:COUNT,US:COUNT,...": the groups interleaved (one of each group in turn while any is left), the way a network's
 * convolutions, normalisations and activations alternate. */
static void plan_mix(const char *mix) {
    unsigned us[64];
    int left[64], groups = 0, total = 0;
    const char *p = mix;
    while (*p) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p || *end != ':' || d < 0 || d > 10000000) usage_error("--mix wants US:COUNT[,US:COUNT...]", mix);
        p = end + 1;
        long c = strtol(p, &end, 10);
        if (end == p || c <= 0 || (*end && *end != ',') || groups == 64 || total + c > MAX_KERNELS)
            usage_error("--mix wants US:COUNT[,US:COUNT...] (at most 64 groups, 100000 kernels)", mix);
        us[groups] = (unsigned)d;
        left[groups++] = (int)c;
        total += (int)c;
        p = *end ? end + 1 : end;
    }
    if (!groups) usage_error("--mix is empty", mix);
    plan = malloc(sizeof *plan * (size_t)total);
    while (plan_len < total)
        for (int g = 0; g < groups; g++)
            if (left[g]) {
                plan[plan_len++] = us[g];
                left[g]--;
            }
}

static void plan_uniform(int kernels, unsigned us) {
    plan = malloc(sizeof *plan * (size_t)kernels);
    for (plan_len = 0; plan_len < kernels; plan_len++) plan[plan_len] = us;
}

static int jitter_us, gap_us;
static CUgraphExec graph_exec;

static void spin_until(long long t) {
    while (now_ns() < t) {
    }
}

/* One request or iteration's launches: the graph, or each kernel after the host's per-operation time. */
static void launch_all(void) {
    if (graph_exec) {
        int r = gpu.cu_graph_launch(graph_exec, gpu.stream);
        if (r) die("cuGraphLaunch", r);
        return;
    }
    for (int k = 0; k < plan_len; k++) {
        if (gap_us) spin_until(now_ns() + gap_us * 1000ll);
        launch(plan[k] + (jitter_us ? (unsigned)(rand() % (jitter_us + 1)) : 0));
    }
}

static void capture_graph(void) {
    CUgraph g;
    int r = gpu.cu_capture_begin(gpu.stream, 0);
    if (r) die("cuStreamBeginCapture", r);
    for (int k = 0; k < plan_len; k++) launch(plan[k]);
    if ((r = gpu.cu_capture_end(gpu.stream, &g))) die("cuStreamEndCapture", r);
    if ((r = gpu.cu_graph_instantiate(&graph_exec, g, 0))) die("cuGraphInstantiate", r);
}

/* ---- device time of a request: events around it ---------------------------------------------------------------- */

static CUevent ev_begin, ev_end;

static void gpu_time_setup(void) {
    int r;
    if ((r = gpu.cu_event_create(&ev_begin, 0)) || (r = gpu.cu_event_create(&ev_end, 0))) die("cuEventCreate", r);
}
static void gpu_time_begin(void) {
    int r = gpu.cu_event_record(ev_begin, gpu.stream);
    if (r) die("cuEventRecord", r);
}
static void gpu_time_end(void) {
    int r = gpu.cu_event_record(ev_end, gpu.stream);
    if (r) die("cuEventRecord", r);
}
static long long gpu_time_ns(void) {
    float ms;
    int r = gpu.cu_event_elapsed(&ms, ev_begin, ev_end);
    if (r) die("cuEventElapsedTime", r);
    return (long long)((double)ms * 1e6);
}

/* ---- arrivals -------------------------------------------------------------------------------------------------- */

static uint64_t seed_state;
static uint64_t splitmix64(void) {
    uint64_t z = (seed_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Natural logarithm of x > 0 by exponent split and the atanh series (this program links no libm; the Python worker
 * does the same arithmetic, so both draw the same Poisson schedule from one seed). */
static double ln(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* mantissa in [1, 2) */
    double m;
    memcpy(&m, &bits, sizeof m);
    double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
    for (int k = 1; k < 60; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return 2 * sum + e * 0.69314718055994530942;
}

/* Offsets (ns) of the scheduled arrivals from the start: every 1/rate s, or exponential gaps of mean 1/rate s. */
static long long *arrivals(int count, double rate, int poisson, uint64_t seed) {
    long long *at = malloc(sizeof *at * (size_t)count);
    double t = 0;
    seed_state = seed;
    for (int i = 0; i < count; i++) {
        if (!poisson) {
            at[i] = (long long)(i * (1e9 / rate));
            continue;
        }
        if (i > 0) {
            double u = (double)(splitmix64() >> 11) * 0x1.0p-53; /* [0, 1) */
            t += -ln(1.0 - u) * (1e9 / rate);
        }
        at[i] = (long long)t;
    }
    return at;
}

/* ---- pinning and the start/stop protocol with the orchestrator ------------------------------------------------- */

static void pin(const char *list) {
    cpu_set_t set;
    CPU_ZERO(&set);
    const char *p = list;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p || a < 0 || a >= CPU_SETSIZE) usage_error("--cpus wants a list like 2,3 or 4-7", list);
        if (*end == '-') {
            p = end + 1;
            b = strtol(p, &end, 10);
            if (end == p || b < a || b >= CPU_SETSIZE) usage_error("--cpus wants a list like 2,3 or 4-7", list);
        }
        for (long c = a; c <= b; c++) CPU_SET((int)c, &set);
        if (*end && *end != ',') usage_error("--cpus wants a list like 2,3 or 4-7", list);
        p = *end ? end + 1 : end;
    }
    if (sched_setaffinity(0, sizeof set, &set)) {
        fprintf(stderr, "tg-workload: cannot pin to CPUs %s: %s\n", list, strerror(errno));
        exit(1);
    }
}

/* Reads one line from stdin into buf; 0 at end of input. */
static int read_line(char *buf, size_t n) {
    size_t k = 0;
    for (;;) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return k > 0;
        if (c == '\n') break;
        if (k + 1 < n) buf[k++] = c;
    }
    buf[k] = 0;
    return 1;
}

static long long wait_for_start(void) {
    char line[128];
    printf("ready\n");
    fflush(stdout);
    if (!read_line(line, sizeof line)) {
        fprintf(stderr, "tg-workload: stdin closed before \"start\"\n");
        exit(1);
    }
    long long t;
    if (sscanf(line, "start %lld", &t) != 1 || t <= 0) usage_error("expected \"start <ns>\" on stdin", line);
    return t;
}

/* Whether "stop" (or the end of input) is waiting on stdin; never blocks. */
static int stop_requested(void) {
    struct pollfd p = {0, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    char line[64];
    if (!read_line(line, sizeof line)) return 1;
    return !strcmp(line, "stop");
}

static double number(const char *opt, const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) usage_error(opt, v);
    return x;
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "requests") && strcmp(argv[1], "continuous"))) {
        fprintf(stderr, "usage: tg-workload requests|continuous [--rate R --count N | --seconds S] --kernels K "
                        "--kernel-us D | --mix US:COUNT,... [--jitter-us J] [--launch-gap-us G] [--graph 0|1] "
                        "[--gpu-time 0|1] [--arrivals fixed|poisson] [--seed N] [--samples FILE] [--warmup W] "
                        "[--start-ns T] [--sync stdio] [--cpus LIST] [--poll 0|1] [--api cuda|hip] [--name KERNEL]\n");
        return 2;
    }
    int requests = !strcmp(argv[1], "requests");
    double rate = 10, seconds = 1;
    int count = 10, kernels = 10, warmup = 0, use_graph = 0, gpu_time = 0, poisson = 0, stdio_sync = 0;
    long long start_at = 0;
    unsigned long long seed = 1;
    unsigned kernel_us = 100;
    const char *api = "cuda", *name = "workload_kernel", *samples = NULL, *mix = NULL, *cpus = NULL;
    for (int i = 2; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage_error("option without a value", k);
        if (!strcmp(k, "--rate")) rate = number("--rate wants a number", v);
        else if (!strcmp(k, "--count")) count = (int)number("--count wants a number", v);
        else if (!strcmp(k, "--seconds")) seconds = number("--seconds wants a number", v);
        else if (!strcmp(k, "--kernels")) kernels = (int)number("--kernels wants a number", v);
        else if (!strcmp(k, "--kernel-us")) kernel_us = (unsigned)number("--kernel-us wants a number", v);
        else if (!strcmp(k, "--jitter-us")) jitter_us = (int)number("--jitter-us wants a number", v);
        else if (!strcmp(k, "--launch-gap-us")) gap_us = (int)number("--launch-gap-us wants a number", v);
        else if (!strcmp(k, "--mix")) mix = v;
        else if (!strcmp(k, "--graph")) use_graph = (int)number("--graph wants 0 or 1", v);
        else if (!strcmp(k, "--gpu-time")) gpu_time = (int)number("--gpu-time wants 0 or 1", v);
        else if (!strcmp(k, "--seed")) seed = (unsigned long long)number("--seed wants a number", v);
        else if (!strcmp(k, "--arrivals")) {
            if (strcmp(v, "fixed") && strcmp(v, "poisson")) usage_error("--arrivals wants fixed or poisson", v);
            poisson = !strcmp(v, "poisson");
        } else if (!strcmp(k, "--sync")) {
            if (strcmp(v, "stdio")) usage_error("--sync wants stdio", v);
            stdio_sync = 1;
        } else if (!strcmp(k, "--cpus")) cpus = v;
        else if (!strcmp(k, "--api")) api = v;
        else if (!strcmp(k, "--name")) name = v;
        else if (!strcmp(k, "--samples")) samples = v;
        else if (!strcmp(k, "--warmup")) warmup = (int)number("--warmup wants a number", v);
        else if (!strcmp(k, "--start-ns")) start_at = atoll(v);
        else if (!strcmp(k, "--poll")) gpu.poll = atoi(v);
        else {
            fprintf(stderr, "tg-workload: unknown option %s\n", k);
            return 2;
        }
    }
    if (rate <= 0 || count <= 0 || kernels <= 0 || seconds <= 0 || kernels > MAX_KERNELS) {
        fprintf(stderr, "tg-workload: --rate, --count, --kernels and --seconds must be positive\n");
        return 2;
    }
    if (warmup < 0 || gap_us < 0 || jitter_us < 0) {
        fprintf(stderr, "tg-workload: --warmup, --launch-gap-us and --jitter-us must not be negative\n");
        return 2;
    }
    if ((use_graph || gpu_time) && strcmp(api, "cuda")) {
        fprintf(stderr, "tg-workload: --graph and --gpu-time need --api cuda\n");
        return 2;
    }
    if (cpus) pin(cpus); /* before setup: the simulated GPU's worker thread inherits it */
    if (mix) plan_mix(mix);
    else plan_uniform(kernels, kernel_us);
    setup(api, name);
    if (gpu_time) gpu_time_setup();
    if (use_graph) {
        if (jitter_us) fprintf(stderr, "tg-workload: --jitter-us has no effect with --graph (one captured request)\n");
        capture_graph();
    }
    srand(12345);
    for (int i = 0; i < warmup; i++) {
        launch_all();
        sync_stream();
    }
    if (stdio_sync) start_at = wait_for_start();
    FILE *out = NULL;
    if (samples && !(out = fopen(samples, "w"))) die("fopen(--samples)", -1);
    if (requests) {
        double *lat = malloc(sizeof(double) * (size_t)count);
        long long *times = malloc(sizeof(long long) * 4 * (size_t)count);
        long long *at = arrivals(count, rate, poisson, seed);
        long long start = start_at > 0 ? start_at : now_ns() + 10000000;
        for (int i = 0; i < count; i++) {
            long long due = start + at[i], t = now_ns();
            if (t < due) {
                struct timespec ts = {(time_t)((due - t) / 1000000000), (long)((due - t) % 1000000000)};
                clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
            }
            long long launched = now_ns();
            if (gpu_time) gpu_time_begin();
            launch_all();
            if (gpu_time) gpu_time_end();
            sync_stream();
            long long done = now_ns();
            lat[i] = (double)(done - due) * 1e-6;
            times[4 * i] = due;
            times[4 * i + 1] = launched;
            times[4 * i + 2] = done;
            times[4 * i + 3] = gpu_time ? gpu_time_ns() : -1;
        }
        if (out) {
            for (int i = 0; i < count; i++)
                fprintf(out, "%lld %lld %lld %lld\n", times[4 * i], times[4 * i + 1], times[4 * i + 2], times[4 * i + 3]);
            fclose(out);
        }
        qsort(lat, (size_t)count, sizeof *lat, cmp);
        printf("{\"mode\":\"requests\",\"count\":%d,\"kernels_per_request\":%d,\"graph\":%s,\"arrivals\":\"%s\","
               "\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}\n",
               count, plan_len, graph_exec ? "true" : "false", poisson ? "poisson" : "fixed", pct(lat, count, 50),
               pct(lat, count, 90), pct(lat, count, 99), lat[count - 1]);
    } else {
        long iters = 0;
        long long wait = start_at - now_ns();
        if (wait > 0) {
            struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
            clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        }
        long long t0 = now_ns(), end = stdio_sync ? 0 : t0 + (long long)(seconds * 1e9), t = t0;
        while (stdio_sync ? !stop_requested() : t < end) {
            long long begin = t;
            launch_all();
            sync_stream();
            t = now_ns();
            iters++;
            if (out) fprintf(out, "%lld %lld\n", begin, t);
        }
        if (out) fclose(out);
        double el = (double)(t - t0) * 1e-9;
        printf("{\"mode\":\"continuous\",\"iterations\":%ld,\"kernels_per_iteration\":%d,\"seconds\":%.3f,"
               "\"iter_per_s\":%.2f}\n",
               iters, plan_len, el, el > 0 ? iters / el : 0.0);
    }
    return 0;
}
