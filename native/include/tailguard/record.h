/* The one definition of what the shim writes and the agent reads: the per-process ring file and its 64-byte records.
 * agent/src/record.ts mirrors it; test/unit/record-layout.test.ts proves the two agree field by field.
 *
 * Ring file ($TAILGUARD_DIR/<pid>.<start ticks>.<exec generation>.ring), created and then renamed into place:
 *   [0, 4096)                       tg_ring_header: process descriptor, clock anchor
 *   [4096, 8192)                    TG_LANES tg_lane control blocks
 *   [names_offset, +names_size)     kernel-name table: tg_name_entry, appended, published by names_used
 *   [records_offset, ...)           TG_LANES - 1 lanes of lane_capacity tg_record slots, then the shared lane of
 *                                   TG_SHARED_LANE_FACTOR * lane_capacity
 * Memory is reserved in chunks as lanes fill (records_ready, names_ready), so a process that records little costs
 * little; nothing beyond those marks is ever touched, by a producer or a consumer.
 *
 * Liveness: the writer holds an open-file-description write lock on byte 0 of the file from its creation until it
 * exits or execs (tailguard/ring_files.h); a reader in any PID namespace tells a live ring from a stale one by it.
 *
 * Lanes: each launching thread claims a lane of its own (owner_tid) and is its only producer, so recording takes no
 * locked instruction and threads never contend; threads beyond the first TG_LANES - 1 share the last lane, whose
 * producers claim positions with a CAS. A thread's records stay in order within its lane.
 *
 * Queue protocol of a lane (bounded; up to two consumers, each reading every record): position p lives in slot
 * p % lane_capacity. A producer takes p while p is less than lane_capacity past the oldest position a consumer still
 * needs (otherwise the lane is full and the record is dropped and counted, never waited for), fills the slot, stores
 * seq = p + 1 (release), and advances tail. A consumer reads slot[pos % cap] once its seq is pos + 1 (acquire; a seq
 * lane_capacity or more further on means the slot was reused before this consumer got to it: the record is lost and
 * counted) and publishes its position as it goes. The consumers are the agent (head, consumer_pid) and the ring's
 * recording session, `tailguard run --record` (session_head, session_consumer_pid): a ring without a session keeps
 * its records for the agent from the start (a restarted agent loses nothing still in it); a ring with one keeps them
 * for the session's recorder while it lives, and for the agent from when it starts draining. Consumers never write a
 * slot, so a slot's cache line moves one way only, from producer to consumers.
 *
 * Everything in the file can be changed by its owner's other processes at any moment: a consumer copies the geometry
 * (capacity, offsets) once it has validated it against the file's size, keeps its own positions, and takes nothing
 * it reads later on trust (tailguard/guard.h for a file that shrinks). */
#ifndef TAILGUARD_RECORD_H
#define TAILGUARD_RECORD_H
#include <stdint.h>

#define TG_RING_MAGIC "TGRING\0\0"
#define TG_LAYOUT_VERSION 2u
#define TG_RECORD_SIZE 64u
#define TG_HEADER_SIZE 4096u
#define TG_LANES 16u
#define TG_SHARED_LANE (TG_LANES - 1)
#define TG_SHARED_LANE_FACTOR 4u /* several threads share the last lane: it holds this many times a thread's lane */
#define TG_LANE_SIZE 256u
#define TG_LANES_OFFSET TG_HEADER_SIZE
#define TG_NAMES_OFFSET (TG_LANES_OFFSET + TG_LANES * TG_LANE_SIZE)
#define TG_NAMES_SIZE (1u << 20)
#define TG_NAME_MAX 1024u
#define TG_CMDLINE_MAX 2048u

enum tg_kind {
    TG_KIND_PROCESS = 1, /* op: start | exit | exec; payload process */
    TG_KIND_LAUNCH = 2,  /* op: kernel | graph | host_func; payload launch (graph: payload graph) */
    TG_KIND_COPY = 3,    /* op: direction or memset; payload copy */
    TG_KIND_SYNC = 4,    /* op: what was waited for; payload sync */
    TG_KIND_WAIT = 5,    /* a stream made to wait for an event; payload event */
    TG_KIND_EVENT = 6,   /* an event recorded on a stream; payload event */
    TG_KIND_STREAM = 7,  /* op: create | destroy | capture_begin | capture_end; payload stream */
    TG_KIND_HOLD = 8,    /* a call the scheduler held: t_start = when it arrived, dur = how long; payload hold */
    TG_KIND_WINDOW = 9,  /* op: begin | end of a request window (first work after idle .. known complete) */
    TG_KIND_CONTEXT = 10, /* op: enum tg_context_op; payload context (a W3C trace context); stream: name id */
    TG_KIND_RANGE = 11,   /* op: enum tg_range_op; payload range (an NVTX range or mark) */
    TG_KIND_GPU_TIME = 12, /* op: enum tg_gpu_time_op; payload gpu_time (device times of a request window) */
    TG_KIND_KERNEL_TIME = 13, /* op: enum tg_kernel_time_op; payload kernel_time (CUPTI: one kernel's device times) */
};

/* CONTEXT records: where a thread's or the process's trace context begins and ends. trace_id and span_id are the
 * W3C traceparent's (the parent the agent's request span gets); TG_F_SAMPLED is its sampled flag. `stream` holds the
 * interned name (name table id, 0: none) of the request in its low 32 bits, and in its high 32 bits, for a PROCESS
 * record, the interned TRACESTATE (0: none). A REQUEST_END repeats its begin's context: the agent pairs
 * them per thread. A PROCESS record with an all-zero trace id clears the process default. */
enum tg_context_op {
    TG_OP_CONTEXT_PROCESS = 1,  /* the process's default context from now on (TRACEPARENT at attach, or the ABI) */
    TG_OP_REQUEST_BEGIN = 2,    /* the calling thread's work belongs to this request until its REQUEST_END */
    TG_OP_REQUEST_END = 3,
};

/* RANGE records: NVTX push/pop and start/end ranges and marks. Messages and domain names are interned in the name
 * table like kernel names. */
enum tg_range_op {
    TG_OP_RANGE_PUSH = 1, /* payload: message, domain, depth = nesting level after the push (1 = outermost) */
    TG_OP_RANGE_POP = 2,  /* depth = nesting level before the pop */
    TG_OP_RANGE_START = 3, /* id = the nvtxRangeId_t returned, which its END carries; may end on another thread */
    TG_OP_RANGE_END = 4,
    TG_OP_RANGE_MARK = 5,  /* an instant */
};

/* GPU_TIME records: when the device started and finished a request window's work, on the host's CLOCK_MONOTONIC. */
enum tg_gpu_time_op {
    TG_OP_GPU_WINDOW = 1,  /* payload: window seq, gpu_start, gpu_end */
    TG_OP_GPU_MISSING = 2, /* the window's device times could not be had; result: enum tg_gpu_missing */
};
enum tg_gpu_missing {
    TG_GPU_MISSING_NO_TIMING = 1, /* the driver answered no event timing */
    TG_GPU_MISSING_POOL = 2,      /* the event pool was full */
    TG_GPU_MISSING_STREAM = 3,    /* a stream of the window was destroyed or captured before its times were read */
    TG_GPU_MISSING_FORK = 4,      /* events of the parent process, after fork */
};

/* KERNEL_TIME records (kernel_timing.c, TAILGUARD_KERNEL_TIMING): when the device ran one kernel, copy or memset,
 * as CUPTI measured it, on the host's CLOCK_MONOTONIC. The key of the shim's record of the call that submitted it
 * (LAUNCH or COPY) is `tid` and `u.kernel_time.launch`, that record's tid and t_start; a graph launch has one
 * KERNEL_TIME per kernel of the graph. t_start is when this record was written (CUPTI hands records over in batches,
 * up to TAILGUARD's flush period later). `stream`: the kernel's interned name (name table id; 0: unknown, or a copy). */
enum tg_kernel_time_op {
    TG_OP_KT_KERNEL = 1,
    TG_OP_KT_MEMCPY = 2,
    TG_OP_KT_MEMSET = 3,
    TG_OP_KT_DROPPED = 4, /* u.kernel_time.launch: device records lost since the last DROPPED record (CUPTI had no
                           * buffer, or a record's launch could not be told); tid 0. Of them: gpu_start, those whose
                           * CUDA call's record never came; gpu_end, high 32 bits: those whose call's thread was not
                           * known, low 32 bits: those given up when too many waited; the rest are CUPTI's own */
    TG_OP_KT_STARTED = 5, /* CUPTI started for this process: KERNEL_TIME records follow; result: 1 sampled, 2 all */
};

enum tg_op {
    TG_OP_NONE = 0,
    /* process */
    TG_OP_START = 1, TG_OP_EXIT = 2, TG_OP_EXEC = 3,
    /* launch */
    TG_OP_KERNEL = 1, TG_OP_GRAPH = 2, TG_OP_HOST_FUNC = 3,
    /* copy */
    TG_OP_HTOD = 1, TG_OP_DTOH = 2, TG_OP_DTOD = 3, TG_OP_HTOH = 4, TG_OP_ANY = 5, TG_OP_PEER = 6, TG_OP_MEMSET = 7,
    /* sync */
    TG_OP_SYNC_STREAM = 1, TG_OP_SYNC_DEVICE = 2, TG_OP_SYNC_EVENT = 3,
    /* stream */
    TG_OP_CREATE = 1, TG_OP_DESTROY = 2, TG_OP_CAPTURE_BEGIN = 3, TG_OP_CAPTURE_END = 4,
    /* hold: why it was held */
    TG_OP_HOLD_PRIORITY = 1, /* a higher-priority process had work in flight */
    TG_OP_HOLD_BUDGET = 2,   /* the process's own in-flight budget was spent */
    TG_OP_HOLD_SHARE = 3,    /* a lower-priority process's guaranteed minimum share came due (TAILGUARD_MIN_SHARE) */
    /* window */
    TG_OP_BEGIN = 1, TG_OP_END = 2,
};

/* Why a hold ended (hold.released_by). */
enum tg_release {
    TG_RELEASE_IDLE = 1,      /* the process it waited for finished its work */
    TG_RELEASE_LAPSED = 2,    /* that process died, stopped or went silent past the lease */
    TG_RELEASE_MIN_SHARE = 3, /* its guaranteed minimum share of GPU time came due */
    TG_RELEASE_DRAINED = 4,   /* its own in-flight work drained below the budget */
};

enum tg_flag {
    TG_F_DUR_US = 1 << 0,     /* dur is in microseconds (the call took longer than 2^32 ns) */
    TG_F_CAPTURED = 1 << 1,   /* issued to a stream under graph capture: recorded, not executed */
    TG_F_ASYNC = 1 << 2,      /* asynchronous copy or memset */
    TG_F_BLOCKING = 1 << 3,   /* the call waited for the device (sync, synchronous copy) */
    TG_F_PER_THREAD = 1 << 4, /* per-thread default stream variant (_ptsz, _ptds, _spt) */
    TG_F_UNTIMED = 1 << 5,    /* only the start was timestamped: launch durations are sampled (1 in 8 per thread) */
    TG_F_SAMPLED = 1 << 6,    /* CONTEXT: the W3C traceparent's sampled flag */
    TG_F_KT_CALL = 1 << 7,    /* KERNEL_TIME keyed by the CUDA call that submitted it (below), not by its launch */
};
/* A KERNEL_TIME record with TG_F_KT_CALL (work submitted through the CUDA runtime, whose calls carry no id of the
 * shim's): `u.kernel_time.launch` is when the CUDA call that submitted it began, as CUPTI saw it, and `dur` how long
 * it took (ns). Its launch (or copy) record is thread `tid`'s latest made before that call ended, if it was made no
 * earlier than TG_KT_CALL_SLACK_NS before the call began (a driver call begins inside the shim's wrapper). */
#define TG_KT_CALL_SLACK_NS 20000

typedef enum {
    TG_API_NONE = 0,
#define TG_API(sym, family, kind, gpa, per_thread, min_version) TG_API_##sym,
#include "tailguard/apis.def"
#undef TG_API
    TG_API_COUNT
} tg_api;

typedef struct tg_record tg_record;
struct tg_record {
    uint64_t seq;     /*  0 queue sequence (see above); not part of the event */
    uint8_t kind;     /*  8 enum tg_kind */
    uint8_t op;       /*  9 enum tg_op, by kind */
    uint16_t api;     /* 10 tg_api: the entry point called */
    uint32_t tid;     /* 12 kernel thread id of the caller */
    uint64_t t_start; /* 16 CLOCK_MONOTONIC ns when the call entered the shim */
    uint32_t dur;     /* 24 ns until it returned (µs with TG_F_DUR_US) */
    uint16_t flags;   /* 28 enum tg_flag */
    int16_t result;   /* 30 the driver's return code */
    uint64_t stream;  /* 32 stream handle as the app passed it (0: default stream) */
    union {           /* 40 */
        struct {
            uint32_t kernel;     /* 40 interned kernel name id (0: unknown) */
            uint32_t grid[3];    /* 44 */
            uint16_t block[3];   /* 56 */
            uint16_t shared_kib; /* 62 dynamic shared memory, KiB rounded up, saturating */
        } launch;
        struct {
            uint64_t exec; /* 40 executable graph handle */
            uint64_t reserved[2];
        } graph;
        struct {
            uint64_t bytes;        /* 40 bytes copied or set */
            uint32_t element_size; /* 48 memset element size (1, 2, 4); 0 for copies */
            uint32_t reserved[3];
        } copy;
        struct {
            uint64_t object; /* 40 event handle (SYNC_EVENT), else 0 */
            uint64_t reserved[2];
        } sync;
        struct {
            uint64_t event; /* 40 */
            uint64_t reserved[2];
        } event;
        struct {
            int32_t priority; /* 40 stream priority given at creation */
            uint32_t flags;   /* 44 stream flags given at creation */
            uint64_t reserved[2];
        } stream_info;
        struct {
            uint32_t pid, ppid; /* 40 */
            int32_t priority;   /* 48 */
            uint32_t reserved[3];
        } process;
        struct {
            uint64_t cause_window;   /* 40 the request window (of cause_pid) that caused the hold */
            uint32_t cause_pid;      /* 48 the process waited for (0 for a window hold) */
            int32_t cause_priority;  /* 52 its priority */
            uint32_t released_by;    /* 56 enum tg_release */
            int32_t priority;        /* 60 the held process's priority */
        } hold;
        struct {
            uint64_t seq;            /* 40 the process's request window number */
            uint32_t launches;       /* 48 launches in it (at end) */
            uint32_t streams;        /* 52 distinct streams it used (at end) */
            uint64_t reserved;
        } window;
        struct {
            uint8_t trace_id[16]; /* 40 */
            uint8_t span_id[8];   /* 56 */
        } context;
        struct {
            uint64_t id;       /* 40 START/END: the range id; PUSH/POP/MARK: 0 */
            uint32_t message;  /* 48 interned message (0: none, or not ASCII/Unicode text) */
            uint32_t domain;   /* 52 interned domain name (0: the default domain) */
            uint32_t depth;    /* 56 PUSH/POP nesting level */
            uint32_t category; /* 60 NVTX category (0: none) */
        } range;
        struct {
            uint64_t seq;       /* 40 the request window (as in its WINDOW records) */
            uint64_t gpu_start; /* 48 CLOCK_MONOTONIC ns the device began the window's first work */
            uint64_t gpu_end;   /* 56 ... and finished its last */
        } gpu_time;
        struct {
            uint64_t launch;    /* 40 t_start of the launch (or copy) record of thread `tid` that submitted it */
            uint64_t gpu_start; /* 48 CLOCK_MONOTONIC ns the device began it */
            uint64_t gpu_end;   /* 56 ... and finished it */
        } kernel_time;
    } u;
};

enum tg_ring_state { TG_STATE_RUNNING = 1, TG_STATE_EXITED = 2, TG_STATE_EXECED = 3 };
/* Which interception paths have seen traffic (attach_paths bits). */
enum tg_path {
    TG_PATH_CUDA_SYMBOL = 1 << 0, /* the app called the shim's exported cu* symbols */
    TG_PATH_CUDA_GPA = 1 << 1,    /* wrapped pointers handed out by cuGetProcAddress */
    TG_PATH_CUDA_DLSYM = 1 << 2,  /* wrapped pointers handed out by dlsym("cu...") */
    TG_PATH_HIP_SYMBOL = 1 << 3,
    TG_PATH_HIP_DLSYM = 1 << 4,
};

typedef struct tg_ring_header {
    /* immutable after creation (covered by checksum) */
    char magic[8];            /*    0 TG_RING_MAGIC */
    uint32_t layout_version;  /*    8 TG_LAYOUT_VERSION */
    uint32_t header_size;     /*   12 TG_HEADER_SIZE */
    uint16_t record_size;     /*   16 TG_RECORD_SIZE */
    uint16_t lane_count;      /*   18 TG_LANES */
    uint32_t lane_capacity;   /*   20 records per lane, a power of two */
    uint64_t names_offset;    /*   24 TG_NAMES_OFFSET */
    uint64_t names_size;      /*   32 */
    uint64_t records_offset;  /*   40 */
    uint64_t file_size;       /*   48 */
    uint32_t pid, ppid;       /*   56 */
    uint64_t start_ticks;     /*   64 process start time (/proc/PID/stat field 22): pid + this names a process */
    uint32_t uid;             /*   72 */
    uint32_t exec_generation; /*   76 0 for a new process, n after its n-th exec with the shim loaded */
    uint64_t anchor_realtime; /*   80 CLOCK_REALTIME ns ... */
    uint64_t anchor_monotonic;/*   88 ... at this CLOCK_MONOTONIC ns (epoch ns = realtime + (t - monotonic)) */
    char session[32];         /*   96 TAILGUARD_SESSION */
    char shim_version[16];    /*  128 */
    uint32_t cmdline_len;     /*  144 bytes used in cmdline */
    uint32_t checksum;        /*  148 FNV-1a of bytes [0, 148) and cmdline */
    char cmdline[TG_CMDLINE_MAX]; /* 152 argv, NUL-separated, truncated */
    /* mutable */
    int32_t priority;         /* 2200 effective scheduling priority */
    uint32_t attach_paths;    /* 2204 enum tg_path bits */
    uint32_t state;           /* 2208 enum tg_ring_state */
    uint32_t gpu_known;       /* 2212 1 once the gpu_* fields are filled (written last, release) */
    uint64_t exit_monotonic;  /* 2216 */
    int32_t gpu_ordinal;      /* 2224 */
    uint8_t gpu_uuid[16];     /* 2228 */
    char gpu_name[96];        /* 2244 */
    char gpu_pci[32];         /* 2340 */
    uint32_t names_used;      /* 2372 bytes of the name table published (release) */
    uint32_t names_count;     /* 2376 */
    uint32_t names_dropped;   /* 2380 names that did not fit (records carry their id, the name is missing) */
    uint32_t consumer_pid;    /* 2384 the process draining this ring (0: none) */
    uint32_t names_ready;     /* 2388 bytes of the name table backed by reserved memory */
    uint64_t consumer_heartbeat; /* 2392 CLOCK_MONOTONIC ns of the consumer's last pass */
    uint32_t lanes_used;      /* 2400 lanes ever claimed are below this index (the shared lane counts as the last) */
    uint32_t session_consumer_pid; /* 2404 the session's recorder draining this ring (0: none yet) */
    uint8_t pad0[TG_HEADER_SIZE - 2408];
} tg_ring_header;

/* One lane's control block: the producer's cache line, then the consumer's. */
typedef struct tg_lane {
    uint64_t tail;             /*   0 the next position a producer fills */
    uint64_t launches;         /*   8 launch records produced, dropped ones included */
    uint64_t dropped;          /*  16 records lost because the lane was full or its memory could not be reserved */
    uint64_t dropped_launches; /*  24 of which launches */
    uint32_t records_ready;    /*  32 slots backed by reserved memory; grows in chunks up to lane_capacity */
    uint32_t owner_tid;        /*  36 the thread producing into this lane (0: free; always 0 for the shared lane) */
    uint8_t pad0[64 - 40];
    uint64_t head;             /*  64 the agent's position */
    uint8_t pad1[128 - 72];
    uint64_t session_head;     /* 128 the recording session's position */
    uint8_t pad2[TG_LANE_SIZE - 136]; /* one more line: no false sharing with the next lane, even prefetched in pairs */
} tg_lane;

/* The first TG_NAMES_OFFSET bytes of a ring file: what a reader copies to see a ring at one moment. */
typedef struct tg_ring_front {
    tg_ring_header header;
    tg_lane lanes[TG_LANES];
} tg_ring_front;

static inline tg_lane *tg_lanes(const tg_ring_header *h) { return (tg_lane *)((char *)h + TG_LANES_OFFSET); }
static inline uint32_t tg_lane_capacity(const tg_ring_header *h, unsigned lane) {
    return lane == TG_SHARED_LANE ? h->lane_capacity * TG_SHARED_LANE_FACTOR : h->lane_capacity;
}
/* The file size a ring of this lane capacity has. */
static inline uint64_t tg_ring_file_size(uint32_t lane_capacity) {
    return (uint64_t)TG_NAMES_OFFSET + TG_NAMES_SIZE +
           (uint64_t)(TG_LANES - 1 + TG_SHARED_LANE_FACTOR) * lane_capacity * TG_RECORD_SIZE;
}
static inline struct tg_record *tg_lane_slots(const tg_ring_header *h, unsigned lane) {
    return (struct tg_record *)((char *)h + h->records_offset + (uint64_t)lane * h->lane_capacity * TG_RECORD_SIZE);
}

/* One kernel name in the name table; entries are 4-byte aligned. */
typedef struct tg_name_entry {
    uint32_t id;
    uint16_t len;   /* bytes of name (no NUL) */
    uint16_t flags; /* 1: truncated to TG_NAME_MAX */
    char name[];
} tg_name_entry;

#ifdef __cplusplus
#define TG_STATIC_ASSERT static_assert
#else
#define TG_STATIC_ASSERT _Static_assert
#endif
TG_STATIC_ASSERT(sizeof(tg_record) == TG_RECORD_SIZE, "record size");
TG_STATIC_ASSERT(sizeof(tg_ring_header) == TG_HEADER_SIZE, "header size");
TG_STATIC_ASSERT(sizeof(tg_lane) == TG_LANE_SIZE, "lane size");
TG_STATIC_ASSERT(sizeof(tg_ring_front) == TG_NAMES_OFFSET, "header and lanes precede the name table");
TG_STATIC_ASSERT(__builtin_offsetof(tg_ring_header, cmdline) == 152, "header layout");
TG_STATIC_ASSERT(__builtin_offsetof(tg_ring_header, priority) == 2200, "header layout");
TG_STATIC_ASSERT(__builtin_offsetof(tg_ring_header, consumer_heartbeat) == 2392, "header layout");
TG_STATIC_ASSERT(__builtin_offsetof(tg_ring_header, lanes_used) == 2400, "header layout");
TG_STATIC_ASSERT(__builtin_offsetof(tg_lane, head) == 64, "head on its own cache line");
TG_STATIC_ASSERT(__builtin_offsetof(tg_lane, session_head) == 128, "session_head on its own cache line");
TG_STATIC_ASSERT(__builtin_offsetof(tg_ring_header, session_consumer_pid) == 2404, "header layout");

/* The sequence word of a slot once the record of position pos is published in it. */
static inline uint64_t tg_seq_published(uint64_t pos) { return pos + 1; }

/* FNV-1a over the immutable part of a header: a torn or scribbled header is detected before it is trusted. */
static inline uint32_t tg_header_checksum(const tg_ring_header *h) {
    uint32_t x = 2166136261u;
    const unsigned char *p = (const unsigned char *)h;
    for (unsigned i = 0; i < __builtin_offsetof(tg_ring_header, checksum); i++) x = (x ^ p[i]) * 16777619u;
    unsigned n = h->cmdline_len < TG_CMDLINE_MAX ? h->cmdline_len : TG_CMDLINE_MAX;
    for (unsigned i = 0; i < n; i++) x = (x ^ (unsigned char)h->cmdline[i]) * 16777619u;
    return x;
}

#endif
