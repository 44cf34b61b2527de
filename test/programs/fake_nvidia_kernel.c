/* A stand-in for the NVIDIA kernel driver, preloaded after the shim (LD_PRELOAD="libtailguard.so THIS"): the shim's
 * "real" ioctl is this one. It logs every ioctl it receives to $TG_FAKE_KERNEL_LOG, one line each:
 *   fd=<fd> type=<c> nr=<n> cmd=<rm control cmd, hex> client=<hex> object=<hex> us=<timeslice or -1>
 * and answers NVIDIA resource-manager controls on descriptors >= 900 (which its fstat reports as character devices of
 * major 195, like /dev/nvidiactl): status 0, or NV_ERR_INVALID_ARGUMENT for a timeslice below
 * $TG_FAKE_KERNEL_MIN_US. Everything else goes to the C library's ioctl. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tailguard/nvrm.h"

#define FAKE_FD_MIN 900

static void log_line(int fd, unsigned long request, const tg_nvos54 *c) {
    const char *path = getenv("TG_FAKE_KERNEL_LOG");
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    long us = -1;
    if (c && c->cmd == TG_NVA06C_CTRL_CMD_SET_TIMESLICE && c->params && c->paramsSize >= 8)
        us = (long)((const tg_nva06c_timeslice *)c->params)->timesliceUs;
    fprintf(f, "fd=%d type=%c nr=%u cmd=%#x client=%#x object=%#x us=%ld\n", fd, (char)_IOC_TYPE(request),
            (unsigned)_IOC_NR(request), c ? c->cmd : 0, c ? c->hClient : 0, c ? c->hObject : 0, us);
    fclose(f);
}

int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    tg_nvos54 *c = 0;
    if (_IOC_TYPE(request) == TG_NV_IOCTL_MAGIC && arg) {
        if (_IOC_NR(request) == TG_NV_ESC_RM_CONTROL) c = arg;
        else if (_IOC_NR(request) == TG_NV_ESC_IOCTL_XFER && ((tg_nv_ioctl_xfer *)arg)->cmd == TG_NV_ESC_RM_CONTROL)
            c = ((tg_nv_ioctl_xfer *)arg)->ptr;
    }
    log_line(fd, request, c);
    if (fd >= FAKE_FD_MIN && c) {
        const char *min = getenv("TG_FAKE_KERNEL_MIN_US");
        long us = c->params && c->paramsSize >= 8 ? (long)((tg_nva06c_timeslice *)c->params)->timesliceUs : 0;
        c->status = min && c->cmd == TG_NVA06C_CTRL_CMD_SET_TIMESLICE && us < atol(min) ? TG_NV_ERR_INVALID_ARGUMENT : 0;
        return 0;
    }
    int (*next)(int, unsigned long, ...) = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    return next(fd, request, arg);
}

int fstat(int fd, struct stat *st) {
    int (*next)(int, struct stat *) = (int (*)(int, struct stat *))dlsym(RTLD_NEXT, "fstat");
    int r = next(fd, st);
    if (r == 0 && fd >= FAKE_FD_MIN) {
        st->st_mode = S_IFCHR | 0666;
        st->st_rdev = makedev(TG_NV_CTL_MAJOR, 255);
    }
    return r;
}
