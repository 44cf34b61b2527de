/* The simulated GPU's driver control device: the NVIDIA resource-manager control through which CUDA sets each
 * context's channel-group timeslice (tailguard/nvrm.h), so the shim's ioctl interposer meets the same request on
 * the simulated GPU as on real hardware.
 *
 * At cuInit the simulated driver opens its control descriptor (a memfd named TG_SIM_CONTROL_NAME, standing in for
 * /dev/nvidiactl) and asks, through ioctl(), for a timeslice of TAILGUARD_SIM_SLICE_US for its one channel group.
 * The kernel does not know the request; what the process's slice becomes is decided here, in tgsim_rm_control (the
 * simulated driver's handler), which the shim calls in place of the kernel for this descriptor and which is called
 * directly when no shim took the request. The slice applies to the process's slot on the shared device (device.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sim.h"
#include "tailguard/nvrm.h"
#include "tailguard/options.h"

#define SIM_CLIENT 0xc1d00001u /* the handles of the one client and channel group, as the driver would allocate them */
#define SIM_TSG 0x5c000001u

static int control_fd = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

__attribute__((visibility("default"))) int tgsim_rm_control(int fd, unsigned long request, void *arg) {
    if (fd < 0 || fd != control_fd || _IOC_TYPE(request) != TG_NV_IOCTL_MAGIC ||
        _IOC_NR(request) != TG_NV_ESC_RM_CONTROL || _IOC_SIZE(request) < sizeof(tg_nvos54) || !arg) {
        errno = ENOTTY;
        return -1;
    }
    tg_nvos54 *c = arg;
    if (c->hClient != SIM_CLIENT || c->hObject != SIM_TSG) {
        c->status = TG_NV_ERR_INVALID_OBJECT_HANDLE;
    } else if (c->cmd != TG_NVA06C_CTRL_CMD_SET_TIMESLICE || !c->params ||
               c->paramsSize != sizeof(tg_nva06c_timeslice)) {
        c->status = TG_NV_ERR_NOT_SUPPORTED;
    } else {
        uint64_t us = ((tg_nva06c_timeslice *)c->params)->timesliceUs;
        if (us < SIM_MIN_SLICE_US || us > SIM_MAX_SLICE_US) {
            c->status = TG_NV_ERR_INVALID_ARGUMENT;
        } else {
            sim_device_set_slice(us * 1000u);
            c->status = 0;
        }
    }
    return 0;
}

static void open_control(void) {
    control_fd = memfd_create(TG_SIM_CONTROL_NAME, MFD_CLOEXEC);
    if (control_fd < 0) return; /* the slice stays TAILGUARD_SIM_SLICE_US */
    tg_nva06c_timeslice ts = {tg_option_uint(TG_OPT_SIM_SLICE_US, SIM_MIN_SLICE_US, SIM_MAX_SLICE_US, 0)};
    tg_nvos54 c = {.hClient = SIM_CLIENT, .hObject = SIM_TSG, .cmd = TG_NVA06C_CTRL_CMD_SET_TIMESLICE,
                   .params = &ts, .paramsSize = sizeof ts};
    unsigned long request = _IOWR(TG_NV_IOCTL_MAGIC, TG_NV_ESC_RM_CONTROL, tg_nvos54);
    if (ioctl(control_fd, request, &c) != 0) tgsim_rm_control(control_fd, request, &c);
}

void sim_control_open(void) { pthread_once(&once, open_control); }
