/* The subset of the NVIDIA resource manager's ioctl ABI that tailguard uses: the control escape through which the CUDA
 * driver sets each context's channel-group (TSG) timeslice. Layouts follow NVIDIA's open kernel modules
 * (nv_escape.h, nvos.h: NVOS54_PARAMETERS; ctrla06c.h: NVA06C_CTRL_TIMESLICE_PARAMS) as seen on driver 580
 * (../shared/reference/h100-probes/tsg_proto.c). The simulated GPU issues the same request on a control descriptor of
 * its own, so the shim's interposer is exercised by both. */
#ifndef TAILGUARD_NVRM_H
#define TAILGUARD_NVRM_H
#include <stdint.h>

#define TG_NV_IOCTL_MAGIC 'F'
#define TG_NV_ESC_RM_CONTROL 0x2A      /* _IOWR('F', 0x2A, NVOS54_PARAMETERS) */
#define TG_NV_ESC_IOCTL_XFER (200 + 11) /* an escape whose argument points at another escape's parameters */
#define TG_NV_CTL_MAJOR 195            /* /dev/nvidiactl and /dev/nvidia* */
#define TG_NVA06C_CTRL_CMD_SET_TIMESLICE 0xa06c0103u
#define TG_NV_DEFAULT_TIMESLICE_US 2048u /* what CUDA asks for each context (measured, driver 580) */

/* NV_STATUS values the simulated driver answers with (nvstatuscodes.h) */
#define TG_NV_ERR_INVALID_ARGUMENT 0x1fu
#define TG_NV_ERR_INVALID_OBJECT_HANDLE 0x33u
#define TG_NV_ERR_NOT_SUPPORTED 0x56u

typedef struct tg_nvos54 { /* NVOS54_PARAMETERS */
    uint32_t hClient;
    uint32_t hObject;
    uint32_t cmd;
    uint32_t flags;
    void *params __attribute__((aligned(8)));
    uint32_t paramsSize;
    uint32_t status;
} tg_nvos54;

typedef struct tg_nv_ioctl_xfer { /* nv_ioctl_xfer_t */
    uint32_t cmd;
    uint32_t size;
    void *ptr __attribute__((aligned(8)));
} tg_nv_ioctl_xfer;

typedef struct tg_nva06c_timeslice { /* NVA06C_CTRL_TIMESLICE_PARAMS */
    uint64_t timesliceUs __attribute__((aligned(8)));
} tg_nva06c_timeslice;

/* The name of the simulated GPU's control descriptor (a memfd), which the interposer accepts like /dev/nvidiactl. */
#define TG_SIM_CONTROL_NAME "tailguard-sim-nvidiactl"

#endif
