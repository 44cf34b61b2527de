/* tg-workload: a GPU workload shaped like inference or batch work, for the simulated GPU (kernels run for the
 * microseconds given as their first parameter) and for demos and scheduler tests. It reaches the driver like the
 * CUDA runtime does (dlopen("libcuda.so.1") + cuGetProcAddress), or HIP through libamdhip64.
 *
 *   tg-workload requests --rate R --count N --kernels K --kernel-us D [--jitter-us J]
 *       open loop: a request every 1/R s (scheduled times), each K kernels then a stream sync; latency is measured
 *       from the scheduled arrival to the end of the sync. --samples FILE writes one line per request:
 *       <scheduled arrival ns> <first launch called ns> <sync returned ns> (CLOCK_MONOTONIC), so the time a request's
 *       kernels took on the device can be told apart from the time the process took to wake up. --warmup W sends W
 *       untimed requests first (the process's first launches set up its worker and its place on the device).
 *       --start-ns T puts the first scheduled arrival at T (CLOCK_MONOTONIC), so that processes started one after
 *       another share one schedule; a warmup still running at T makes the first requests late, as it should.
 *   tg-workload continuous --seconds S --kernels K --kernel-us D
 *       back to back: K kernels then a sync, repeated for S seconds; reports iterations per second.
 *   common: --api cuda|hip (default cuda), --name KERNEL (default "workload_kernel"), --poll 1 (wait for the stream
 *   by querying it every 20 us instead of a blocking sync, like servers that poll events)
 * Prints one JSON object with the results. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tailguard/cuda_abi.h"
#include "tailguard/hip_abi.h"

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "requests") && strcmp(argv[1], "continuous"))) {
        fprintf(stderr, "usage: tg-workload requests|continuous [--rate R --count N | --seconds S] --kernels K "
                        "--kernel-us D [--jitter-us J] [--samples FILE] [--warmup W] [--start-ns T] [--poll 0|1] "
                        "[--api cuda|hip] [--name KERNEL]\n");
        return 2;
    }
    int requests = !strcmp(argv[1], "requests");
    double rate = 10, seconds = 1;
    int count = 10, kernels = 10, jitter = 0, warmup = 0;
    long long start_at = 0;
    unsigned kernel_us = 100;
    const char *api = "cuda", *name = "workload_kernel", *samples = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--rate")) rate = atof(v);
        else if (!strcmp(k, "--count")) count = atoi(v);
        else if (!strcmp(k, "--seconds")) seconds = atof(v);
        else if (!strcmp(k, "--kernels")) kernels = atoi(v);
        else if (!strcmp(k, "--kernel-us")) kernel_us = (unsigned)atoi(v);
        else if (!strcmp(k, "--jitter-us")) jitter = atoi(v);
        else if (!strcmp(k, "--api")) api = v;
        else if (!strcmp(k, "--name")) name = v;
        else if (!strcmp(k, "--samples")) samples = v;
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else if (!strcmp(k, "--start-ns")) start_at = atoll(v);
        else if (!strcmp(k, "--poll")) gpu.poll = atoi(v);
        else {
            fprintf(stderr, "tg-workload: unknown option %s\n", k);
            return 2;
        }
    }
    if (rate <= 0 || count <= 0 || kernels <= 0 || seconds <= 0) {
        fprintf(stderr, "tg-workload: --rate, --count, --kernels and --seconds must be positive\n");
        return 2;
    }
    setup(api, name);
    srand(12345);
    if (requests) {
        double *lat = malloc(sizeof(double) * (size_t)count);
        long long *times = malloc(sizeof(long long) * 3 * (size_t)count);
        for (int i = 0; i < warmup; i++) {
            for (int k = 0; k < kernels; k++) launch(kernel_us);
            sync_stream();
        }
        long long period = (long long)(1e9 / rate), start = start_at > 0 ? start_at : now_ns() + 10000000;
        for (int i = 0; i < count; i++) {
            long long due = start + i * period, t = now_ns();
            if (t < due) {
                struct timespec ts = {(time_t)((due - t) / 1000000000), (long)((due - t) % 1000000000)};
                clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
            }
            long long launched = now_ns();
            for (int k = 0; k < kernels; k++) launch(kernel_us + (jitter ? (unsigned)(rand() % (jitter + 1)) : 0));
            sync_stream();
            long long done = now_ns();
            lat[i] = (double)(done - due) * 1e-6;
            times[3 * i] = due;
            times[3 * i + 1] = launched;
            times[3 * i + 2] = done;
        }
        if (samples) {
            FILE *f = fopen(samples, "w");
            if (!f) die("fopen(--samples)", -1);
            for (int i = 0; i < count; i++) fprintf(f, "%lld %lld %lld\n", times[3 * i], times[3 * i + 1], times[3 * i + 2]);
            fclose(f);
        }
        qsort(lat, (size_t)count, sizeof *lat, cmp);
        printf("{\"mode\":\"requests\",\"count\":%d,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}\n",
               count, pct(lat, count, 50), pct(lat, count, 90), pct(lat, count, 99), lat[count - 1]);
    } else {
        long iters = 0;
        double t0 = now_s();
        while (now_s() - t0 < seconds) {
            for (int k = 0; k < kernels; k++) launch(kernel_us);
            sync_stream();
            iters++;
        }
        double el = now_s() - t0;
        printf("{\"mode\":\"continuous\",\"iterations\":%ld,\"seconds\":%.3f,\"iter_per_s\":%.2f}\n", iters, el,
               iters / el);
    }
    return 0;
}
