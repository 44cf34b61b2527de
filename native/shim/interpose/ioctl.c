/* ioctl interposition: the NVIDIA driver's channel-group timeslice (docs/scheduling.md, "How the shims arbitrate").
 *
 * CUDA gives each context's channel group (TSG) a timeslice through one resource-manager control on /dev/nvidiactl:
 * NVA06C_CTRL_CMD_SET_TIMESLICE (2048 us with driver 580). The GPU time-slices the channel groups of different
 * processes, so a high-priority request waits for up to one slice of whatever lower-priority work is queued. In a
 * process that is not the highest priority on its GPU, the shim rewrites that request to TAILGUARD_TIMESLICE_US, and
 * remembers the channel group (descriptor, client and object handles) so the scheduler can set it again when the
 * process's rank changes (tg_timeslice_update). Only the process's own channel groups are touched; they go away with
 * its contexts, so nothing outlives the process.
 *
 * Every other ioctl of the process passes through at the cost of one comparison (the request type); NVIDIA escapes
 * other than the one control pay a few more loads. The descriptor is checked last (an NVIDIA control device: a
 * character device of major 195, or the simulated GPU's control descriptor), and the verdict is cached per descriptor
 * and inode (looked at only for that one control). A control the driver refuses is reported once, retried with the
 * value the driver asked for, and the lever is left alone from then on. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../shim.h"
#include "tailguard/log.h"
#include "tailguard/nvrm.h"
#include "tailguard/options.h"

typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef int (*sim_control_fn)(int, unsigned long, void *);
static ioctl_fn real_ioctl;
static sim_control_fn sim_control; /* the simulated GPU's driver (tgsim_rm_control), once one of its fds is seen */

static ioctl_fn real(void) {
    ioctl_fn f = __atomic_load_n(&real_ioctl, __ATOMIC_ACQUIRE);
    if (TG_LIKELY(f)) return f;
    tg_dlsym_init();
    f = (ioctl_fn)tg_real_dlsym(RTLD_NEXT, "ioctl");
    __atomic_store_n(&real_ioctl, f, __ATOMIC_RELEASE);
    return f;
}

/* ---- which descriptors are NVIDIA control devices ---- */

enum { FD_OTHER = 1, FD_NVIDIA = 2, FD_SIM = 3 };
#define FD_CACHE 1024
static struct {
    uint64_t ino;
    int kind;
} fd_cache[FD_CACHE];

static int fd_kind(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return FD_OTHER;
    if (fd >= 0 && fd < FD_CACHE && fd_cache[fd].kind && fd_cache[fd].ino == (uint64_t)st.st_ino)
        return fd_cache[fd].kind;
    int kind = FD_OTHER;
    if (S_ISCHR(st.st_mode) && major(st.st_rdev) == TG_NV_CTL_MAJOR) {
        kind = FD_NVIDIA;
    } else if (S_ISREG(st.st_mode)) {
        char link[64], target[128];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        if (!strcmp(target, "/memfd:" TG_SIM_CONTROL_NAME " (deleted)")) kind = FD_SIM;
    }
    if (kind == FD_SIM && !sim_control) {
        void *f = tg_next_symbol("tgsim_rm_control");
        if (!f) {
            void *h = dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY);
            if (h) {
                f = tg_real_dlsym(h, "tgsim_rm_control");
                dlclose(h);
            }
        }
        if (!f) kind = FD_OTHER; /* a descriptor named like the simulator's, without the simulator */
        __atomic_store_n(&sim_control, (sim_control_fn)f, __ATOMIC_RELEASE);
    }
    if (fd >= 0 && fd < FD_CACHE) {
        fd_cache[fd].ino = (uint64_t)st.st_ino;
        fd_cache[fd].kind = kind;
    }
    return kind;
}

/* To the driver: the kernel's, or the simulated GPU's for its own descriptor. */
static int forward(int kind, int fd, unsigned long request, void *arg) {
    if (kind == FD_SIM) return sim_control(fd, request, arg);
    return real()(fd, request, arg);
}

/* ---- the channel groups of this process ---- */

#define GROUPS 64
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct group {
    int fd, kind;
    uint32_t client, object;
    uint32_t requested; /* what the driver asked for */
    uint32_t applied;   /* what the channel group has now */
} groups[GROUPS];
static int groups_n;
static int rank = -1;   /* -1 not known yet, 0 the highest priority on the GPU, 1 below another process */
static int broken;      /* a control failed: the lever is left alone */
static uint32_t low_us, high_us; /* TAILGUARD_TIMESLICE_US, TAILGUARD_HIGH_TIMESLICE_US (0: the driver's value) */
static int options_read;

static void read_options(void) {
    if (options_read) return;
    low_us = tg_option_uint(TG_OPT_TIMESLICE_US, 0, 1000000, 0);
    high_us = tg_option_uint(TG_OPT_HIGH_TIMESLICE_US, 0, 1000000, 0);
    options_read = 1;
}

static uint32_t wanted(const struct group *g) {
    if (broken || rank < 0) return g->requested;
    if (rank == 1) return low_us ? low_us : g->requested;
    return high_us ? high_us : g->requested;
}

static void failed(const char *what, uint32_t us, int r, uint32_t status) {
    if (!broken)
        tg_warn("the driver refused a channel-group timeslice of %u us (%s: %s, status 0x%x): timeslices are left to "
                "the driver in this process",
                us, what, r ? strerror(errno) : "ok", status);
    broken = 1;
}

/* Sets one channel group's timeslice through the driver. 0 on success. */
static int apply(struct group *g, uint32_t us) {
    tg_nva06c_timeslice ts = {us};
    tg_nvos54 c;
    memset(&c, 0, sizeof c);
    c.hClient = g->client;
    c.hObject = g->object;
    c.cmd = TG_NVA06C_CTRL_CMD_SET_TIMESLICE;
    c.params = &ts;
    c.paramsSize = sizeof ts;
    int r = forward(g->kind, g->fd, _IOWR(TG_NV_IOCTL_MAGIC, TG_NV_ESC_RM_CONTROL, tg_nvos54), &c);
    if (r != 0 || c.status != 0) {
        failed("setting it again", us, r, c.status);
        return -1;
    }
    g->applied = us;
    tg_debug("channel group %#x: timeslice set to %u us", g->object, us);
    return 0;
}

/* The driver's own request, on its way to the driver. */
static int set_timeslice(int fd, unsigned long request, void *arg, tg_nvos54 *c) {
    tg_nva06c_timeslice *ts = c->params;
    uint32_t requested = (uint32_t)ts->timesliceUs;
    pthread_mutex_lock(&lock);
    int kind = fd_kind(fd);
    if (kind == FD_OTHER) {
        pthread_mutex_unlock(&lock);
        return real()(fd, request, arg);
    }
    read_options();
    struct group *g = 0;
    for (int i = 0; i < groups_n && !g; i++)
        if (groups[i].fd == fd && groups[i].client == c->hClient && groups[i].object == c->hObject) g = &groups[i];
    if (!g && groups_n < GROUPS) g = &groups[groups_n++];
    struct group scratch;
    if (!g) g = &scratch; /* more channel groups than remembered: still set, never set again */
    g->fd = fd;
    g->kind = kind;
    g->client = c->hClient;
    g->object = c->hObject;
    g->requested = requested;
    uint32_t us = wanted(g);
    ts->timesliceUs = us;
    int r = forward(kind, fd, request, arg);
    if (us != requested && (r != 0 || c->status != 0)) {
        failed("on context creation", us, r, c->status);
        ts->timesliceUs = requested;
        r = forward(kind, fd, request, arg);
        us = requested;
    }
    ts->timesliceUs = requested; /* the caller's memory as it gave it */
    g->applied = r == 0 && c->status == 0 ? us : 0;
    tg_debug("channel group %#x created: timeslice %u us (the driver asked for %u)", g->object, g->applied, requested);
    pthread_mutex_unlock(&lock);
    return r;
}

static int nv_ioctl(int fd, unsigned long request, void *arg) {
    tg_nvos54 *c = 0;
    unsigned nr = _IOC_NR(request);
    if (nr == TG_NV_ESC_RM_CONTROL && _IOC_SIZE(request) >= sizeof(tg_nvos54)) {
        c = arg;
    } else if (nr == TG_NV_ESC_IOCTL_XFER && _IOC_SIZE(request) >= sizeof(tg_nv_ioctl_xfer) && arg) {
        tg_nv_ioctl_xfer *x = arg;
        if (x->cmd == TG_NV_ESC_RM_CONTROL && x->size >= sizeof(tg_nvos54)) c = x->ptr;
    }
    if (!c || c->cmd != TG_NVA06C_CTRL_CMD_SET_TIMESLICE || !c->params ||
        c->paramsSize < sizeof(tg_nva06c_timeslice))
        return real()(fd, request, arg);
    return set_timeslice(fd, request, arg, c);
}

TG_EXPORT int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (TG_LIKELY(_IOC_TYPE(request) != TG_NV_IOCTL_MAGIC)) return real()(fd, request, arg);
    return nv_ioctl(fd, request, arg);
}

/* The scheduler's verdict: is another process of higher priority on this GPU? Sets every remembered channel group
 * accordingly when the verdict changes. Returns the timeslice in effect (0: no channel group seen, or left alone);
 * *shortened tells whether it is shorter than the driver's own. */
uint32_t tg_timeslice_update(int below_another, int *shortened) {
    pthread_mutex_lock(&lock);
    read_options();
    int r = below_another ? 1 : 0;
    if (r != rank) {
        rank = r;
        for (int i = 0; i < groups_n && !broken; i++) {
            uint32_t us = wanted(&groups[i]);
            if (groups[i].applied != us) apply(&groups[i], us);
        }
    }
    uint32_t in_effect = groups_n && !broken ? groups[0].applied : 0;
    *shortened = in_effect && in_effect < groups[0].requested;
    pthread_mutex_unlock(&lock);
    return in_effect;
}

void tg_timeslice_after_fork(void) {
    /* the child's channel groups are its own, created by its own contexts */
    pthread_mutex_init(&lock, 0);
    groups_n = 0;
    rank = -1;
}
