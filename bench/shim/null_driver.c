/* A do-nothing libcuda.so.1 for `npm run bench:shim`: every entry point the launch loop uses returns success at once,
 * so the difference between a run with and without the shim is exactly the time the shim adds. */
#include "tailguard/cuda_abi.h"

CUresult cuInit(unsigned int f) { return 0; }
CUresult cuDeviceGet(CUdevice *d, int o) { *d = 0; return 0; }
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { *c = (CUcontext)1; return 0; }
CUresult cuCtxSetCurrent(CUcontext c) { return 0; }
CUresult cuCtxGetDevice(CUdevice *d) { *d = 0; return 0; }
CUresult cuDeviceGetName(char *n, int len, CUdevice d) { n[0] = 0; return 0; }
CUresult cuModuleLoadData(CUmodule *m, const void *i) { *m = (CUmodule)1; return 0; }
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *n) { *f = (CUfunction)0x1000; return 0; }
CUresult cuFuncGetName(const char **n, CUfunction f) { *n = "null_kernel"; return 0; }
CUresult cuStreamCreate(CUstream *s, unsigned int f) { *s = (CUstream)0x2000; return 0; }
CUresult cuStreamSynchronize(CUstream s) { return 0; }
CUresult cuLaunchHostFunc(CUstream s, CUhostFn fn, void *user) { return 0; } /* never blocks: nothing executes */
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shm, CUstream s, void **p, void **e) {
    __asm__ volatile("" ::: "memory"); /* keep the call */
    return 0;
}
