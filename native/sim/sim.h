/* The simulated GPU's internal interfaces, shared by its two faces (cuda.c → libcuda.so.1, hip.c → libamdhip64.so.6).
 *
 *   device.c  the one simulated device shared by every process on the machine (a shared-memory file): who may execute
 *             now, time slices, round-robin hand-off, recovery from owners that died or were stopped.
 *   engine.c  this process's side: streams, the bounded submission queue, the worker thread that executes it,
 *             events, synchronisation, graph capture and replay.
 *   module.c  modules, functions and kernel names.
 *   trace.c   the optional per-process kernel trace (TAILGUARD_SIM_TRACE).
 *
 * Every status below has the same number in CUDA (CUresult) and HIP (hipError_t), so the faces pass them through. */
#ifndef TAILGUARD_SIM_H
#define TAILGUARD_SIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIM_HIDDEN __attribute__((visibility("hidden")))
#define SIM_MIN_SLICE_US 50u
#define SIM_MAX_SLICE_US 1000000u

enum {
    SIM_OK = 0,
    SIM_EINVAL = 1,
    SIM_ENOMEM = 2,
    SIM_ENOINIT = 3,
    SIM_EDEVICE = 101,
    SIM_EHANDLE = 400,
    SIM_ESTATE = 401,      /* CUDA_ERROR_ILLEGAL_STATE / hipErrorIllegalState: e.g. ending a capture never begun */
    SIM_ENOTFOUND = 500,
    SIM_ENOTREADY = 600,
    SIM_ENOTSUP = 801,
    SIM_ECAPTURE = 900,    /* ..._STREAM_CAPTURE_UNSUPPORTED: an operation not allowed while a stream captures */
};

/* control.c: the driver control descriptor through which the CUDA face sets its channel group's timeslice. */
SIM_HIDDEN void sim_control_open(void);

/* What the simulated device says about itself (both faces). */
#define SIM_DEVICE_NAME "tailguard simulated GPU"
#define SIM_PCI_BUS_ID "0000:00:00.0"
#define SIM_TOTAL_MEM (80ull << 30)
#define SIM_SM_COUNT 132
#define SIM_CC_MAJOR 9
#define SIM_CC_MINOR 0
#define SIM_CUDA_DRIVER_VERSION 13000
#define SIM_HIP_VERSION 60400000

static inline uint64_t sim_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* ---- device.c: the shared device ------------------------------------------------------------------------------ */

/* Timeline rules. Kernels run on a device timeline in CLOCK_MONOTONIC nanoseconds: a kernel starts where the previous
 * work of the device ended (or at its submission), never more than SIM_LAG_NS before the moment the worker gets to it.
 * A real GPU does not wait for the host's CPU, so the worker's wake-up latency (~50 µs per sleep, milliseconds on a
 * loaded machine) must not stretch simulated kernels; the bound keeps a long stall (a stopped process) from being
 * replayed as work done long ago. Processes never overlap on the timeline: grants start at the previous release. */
#define SIM_LAG_NS 10000000ull
/* An owner that has not handed the device on this long after its slice ended is preempted by a waiting process
 * (it is stopped, dead, or not being scheduled): this bounds what a SIGSTOP or SIGKILL can cost everyone else. */
#define SIM_GRACE_NS 2000000ull

SIM_HIDDEN void sim_device_open(void);
SIM_HIDDEN void sim_device_uuid(unsigned char out[16]);
/* Worker only. Returns owning the device. *ptime: where this process's next work can start on the device timeline
 * (its submission, or the end of its previous work); raised to the start of the grant if that is later. */
SIM_HIDDEN void sim_device_acquire(uint64_t *ptime);
SIM_HIDDEN uint64_t sim_device_deadline(void); /* end of the current slice, while owning */
/* At a slice boundary at timeline time t with work left: hand over to the next waiting process, or start a new slice. */
SIM_HIDDEN void sim_device_slice_end(uint64_t t);
/* Nothing left to execute: give the device to the next waiting process (or leave it free) at timeline time t. */
SIM_HIDDEN void sim_device_release(uint64_t t);
SIM_HIDDEN void sim_device_account(uint64_t ns);
/* While owning: this process's queued work runs out at timeline time idle_at (0: more is queued). */
SIM_HIDDEN void sim_device_committed(uint64_t idle_at);
/* A submitter queued more work: if this process owns the device, its tenure goes on; if not and it is a kernel, the
 * device learns at once that this process is waiting (the doorbell). */
SIM_HIDDEN void sim_device_more_work(int kernel);
SIM_HIDDEN void sim_device_set_slice(uint64_t ns); /* this process's slice (its channel group's timeslice) */
SIM_HIDDEN void sim_device_leave(void);      /* process exit */
SIM_HIDDEN void sim_device_after_fork(void); /* in the child: it must take a slot of its own */

/* ---- module.c: modules, functions, names ---------------------------------------------------------------------- */

struct sim_function {
    uint32_t magic;
    struct sim_function *next; /* in its module */
    struct sim_module *module;
    char name[];
};
struct sim_module {
    uint32_t magic;
    struct sim_function *functions;
};
#define SIM_MODULE_MAGIC 0x4d6f644cu
#define SIM_FUNCTION_MAGIC 0x46754e63u

SIM_HIDDEN int sim_module_load(struct sim_module **out, const void *image);
SIM_HIDDEN int sim_module_function(struct sim_function **out, struct sim_module *m, const char *name);
SIM_HIDDEN int sim_module_unload(struct sim_module *m);
SIM_HIDDEN struct sim_function *sim_function_get(const void *handle); /* NULL unless a live function handle */
/* The name of a kernel launched by host function pointer (HIP): its symbol, else "kernel@0x<hex>"; interned. */
SIM_HIDDEN const char *sim_host_kernel_name(const void *fn);

/* ---- engine.c: this process's streams, queue and worker ------------------------------------------------------- */

struct sim_stream;
struct sim_event;
struct sim_graph;
struct sim_graph_exec;

/* A host-memory block copy or fill: depth slices of height rows of width bytes. */
struct sim_copy {
    unsigned char *dst;
    const unsigned char *src; /* NULL for fills */
    size_t width, height, depth;
    size_t dpitch, spitch, dslice, sslice;
};

/* One-time set-up of the simulator (options, log component, the shared device). Cheap to call again. */
SIM_HIDDEN void sim_init(void);

/* Stream handles: NULL and (void *)1 are the legacy default stream (NULL is the per-thread default stream in the
 * _ptsz/_ptds/_spt variants, which pass per_thread = 1); (void *)2 is the calling thread's per-thread default stream. */
SIM_HIDDEN struct sim_stream *sim_stream_get(const void *handle, int per_thread);
SIM_HIDDEN int sim_stream_create(struct sim_stream **out, unsigned flags, int priority);
SIM_HIDDEN int sim_stream_destroy(const void *handle);
SIM_HIDDEN int sim_stream_query(struct sim_stream *s);
SIM_HIDDEN int sim_stream_sync(struct sim_stream *s);
SIM_HIDDEN int sim_stream_wait_event(struct sim_stream *s, struct sim_event *e);
SIM_HIDDEN int sim_ctx_sync(void);

/* Launch: the kernel occupies the device for `us` microseconds. name is a stable string, or NULL with host_fn set
 * (named lazily). start/stop events (may be NULL) are recorded around it in stream order (hipExt*). */
SIM_HIDDEN int sim_launch(struct sim_stream *s, const char *name, const void *host_fn, uint32_t us,
                          struct sim_event *start, struct sim_event *stop);
/* The first kernel argument, a uint32_t, from kernelParams or from an `extra` array ({BUFFER_POINTER, buf,
 * BUFFER_SIZE, &size, END}); END is NULL for CUDA, and NULL or (void *)3 for HIP. */
SIM_HIDDEN uint32_t sim_kernel_us(void **params, void **extra);

SIM_HIDDEN int sim_copy_async(struct sim_stream *s, const struct sim_copy *c);
/* Waits for everything the process submitted earlier (legacy default stream semantics), then copies. */
SIM_HIDDEN int sim_copy_sync(struct sim_stream *s, const struct sim_copy *c);
/* Fills: elem is 1, 2 or 4 bytes; c->width counts elements. */
SIM_HIDDEN int sim_fill_async(struct sim_stream *s, const struct sim_copy *c, unsigned elem, uint32_t value);
SIM_HIDDEN int sim_fill_sync(struct sim_stream *s, const struct sim_copy *c, unsigned elem, uint32_t value);
SIM_HIDDEN int sim_host_func(struct sim_stream *s, void (*fn)(void *), void *arg);

#define SIM_EVENT_DISABLE_TIMING 0x2u
SIM_HIDDEN struct sim_event *sim_event_get(const void *handle);
SIM_HIDDEN int sim_event_create(struct sim_event **out, unsigned flags);
SIM_HIDDEN int sim_event_record(struct sim_event *e, struct sim_stream *s);
SIM_HIDDEN int sim_event_query(struct sim_event *e);
SIM_HIDDEN int sim_event_sync(struct sim_event *e);
SIM_HIDDEN int sim_event_elapsed(float *ms, struct sim_event *a, struct sim_event *b);
SIM_HIDDEN int sim_event_destroy(struct sim_event *e);

SIM_HIDDEN int sim_capture_begin(struct sim_stream *s, int mode);
SIM_HIDDEN int sim_capture_end(struct sim_stream *s, struct sim_graph **out);
SIM_HIDDEN int sim_graph_instantiate(struct sim_graph_exec **out, const void *graph);
SIM_HIDDEN int sim_graph_launch(const void *exec, struct sim_stream *s);
SIM_HIDDEN int sim_graph_exec_destroy(const void *exec);
SIM_HIDDEN int sim_graph_destroy(const void *graph);

/* Device memory is host memory (256-byte aligned); live blocks are tracked so that bad or double frees are refused. */
SIM_HIDDEN int sim_mem_alloc(void **out, size_t bytes);
SIM_HIDDEN int sim_mem_free(void *p);

/* ---- trace.c ------------------------------------------------------------------------------------------------ */

SIM_HIDDEN extern int sim_trace_enabled;
SIM_HIDDEN void sim_trace_open(void);
SIM_HIDDEN void sim_trace_kernel(uintptr_t stream, uint64_t seq, const char *name, uint64_t first_start,
                                 uint64_t done, uint64_t device_ns);
SIM_HIDDEN void sim_trace_flush(void);
SIM_HIDDEN void sim_trace_after_fork(void);

#endif
