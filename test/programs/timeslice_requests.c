/* Issues the NVIDIA driver's channel-group timeslice control the way CUDA does, on a descriptor the fake kernel
 * (fake_nvidia_kernel.c) treats as /dev/nvidiactl, plus look-alikes that must pass through untouched. Steps, from
 * argv: "create OBJ US" (SET_TIMESLICE via NV_ESC_RM_CONTROL on the NVIDIA descriptor), "xfer OBJ US" (the same
 * wrapped in NV_ESC_IOCTL_XFER), "pipe US" (the same request on a pipe), "other OBJ" (another control on the NVIDIA
 * descriptor), "short OBJ" (SET_TIMESLICE with a 4-byte parameter block), "fionread" (an unrelated ioctl on a pipe),
 * "launch" (one kernel on the simulated GPU: the scheduler attaches and reconsiders the process's rank),
 * "sleep MS". After each request it prints what the caller's memory holds and what ioctl returned. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "tailguard/cuda_abi.h"
#include "tailguard/nvrm.h"

#define NV_FD 900
#define CLIENT 0xc1000001u

static int control(int fd, int xfer, uint32_t object, uint32_t cmd, void *params, uint32_t size) {
    tg_nvos54 c = {.hClient = CLIENT, .hObject = object, .cmd = cmd, .params = params, .paramsSize = size};
    int r;
    if (xfer) {
        tg_nv_ioctl_xfer x = {.cmd = TG_NV_ESC_RM_CONTROL, .size = sizeof c, .ptr = &c};
        r = ioctl(fd, _IOWR(TG_NV_IOCTL_MAGIC, TG_NV_ESC_IOCTL_XFER, tg_nv_ioctl_xfer), &x);
    } else {
        r = ioctl(fd, _IOWR(TG_NV_IOCTL_MAGIC, TG_NV_ESC_RM_CONTROL, tg_nvos54), &c);
    }
    return r;
}

int main(int argc, char **argv) {
    int nul = open("/dev/null", O_RDWR);
    if (nul < 0 || dup2(nul, NV_FD) != NV_FD) return 1;
    int p[2];
    if (pipe(p)) return 1;
    CUmodule mod;
    CUfunction fn;
    CUcontext ctx;
    if (cuInit(0) || cuDevicePrimaryCtxRetain(&ctx, 0) || cuCtxSetCurrent(ctx) || cuModuleLoadData(&mod, "x") ||
        cuModuleGetFunction(&fn, mod, "k"))
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *step = argv[i];
        if (!strcmp(step, "launch")) {
            uint32_t us = 10;
            void *params[] = {&us};
            if (cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, 0, params, 0) || cuCtxSynchronize()) return 1;
            printf("launch\n");
        } else if (!strcmp(step, "sleep")) {
            struct timespec ts = {0, atol(argv[++i]) * 1000000L};
            nanosleep(&ts, 0);
        } else if (!strcmp(step, "create") || !strcmp(step, "xfer")) {
            uint32_t obj = (uint32_t)strtoul(argv[++i], 0, 0);
            tg_nva06c_timeslice ts = {strtoull(argv[++i], 0, 0)};
            int r = control(NV_FD, step[0] == 'x', obj, TG_NVA06C_CTRL_CMD_SET_TIMESLICE, &ts, sizeof ts);
            printf("%s r=%d caller_us=%llu\n", step, r, (unsigned long long)ts.timesliceUs);
        } else if (!strcmp(step, "pipe")) {
            tg_nva06c_timeslice ts = {strtoull(argv[++i], 0, 0)};
            int r = control(p[0], 0, 0x5c0000ffu, TG_NVA06C_CTRL_CMD_SET_TIMESLICE, &ts, sizeof ts);
            printf("pipe r=%d caller_us=%llu\n", r, (unsigned long long)ts.timesliceUs);
        } else if (!strcmp(step, "other")) {
            uint32_t obj = (uint32_t)strtoul(argv[++i], 0, 0);
            uint8_t sched[3] = {1, 0, 0};
            int r = control(NV_FD, 0, obj, 0xa06c0101u, sched, sizeof sched);
            printf("other r=%d\n", r);
        } else if (!strcmp(step, "short")) {
            uint32_t obj = (uint32_t)strtoul(argv[++i], 0, 0);
            uint32_t us = 2048;
            int r = control(NV_FD, 0, obj, TG_NVA06C_CTRL_CMD_SET_TIMESLICE, &us, sizeof us);
            printf("short r=%d caller_us=%u\n", r, us);
        } else if (!strcmp(step, "fionread")) {
            if (write(p[1], "abc", 3) != 3) return 1;
            int n = -1, r = ioctl(p[0], FIONREAD, &n);
            printf("fionread r=%d n=%d\n", r, n);
        } else {
            fprintf(stderr, "unknown step %s\n", step);
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
