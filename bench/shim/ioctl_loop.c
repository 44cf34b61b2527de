/* Ioctl-cost loop for `npm run bench:ioctl`: what the shim's exported ioctl interposer adds to an ioctl that has
 * nothing to do with a GPU. Opens a pipe with a few bytes in it, then times M calls per round, R rounds, and prints
 * the median ns per call over the rounds as JSON. Two cases:
 *   fionread: ioctl(pipe, FIONREAD, &n), an ordinary request (not NVIDIA's type): the interposer's one comparison
 *   nvidia:   ioctl(pipe, _IOWR('F', 0x2A, 32-byte struct), &zeroed), NVIDIA's control escape with a command other
 *             than the timeslice control: the interposer decodes the escape, then passes it on (the kernel answers
 *             ENOTTY for a pipe)
 * The JSON also names the library the program's ioctl resolved to (the shim's when it is preloaded).
 * Usage: ioctl_loop fionread|nvidia [M] [R] */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "../timing.h"

struct escape32 { /* the size of NVOS54_PARAMETERS */
    uint32_t words[4];
    void *ptr __attribute__((aligned(8)));
    uint32_t size, status;
};
_Static_assert(sizeof(struct escape32) == 32, "32-byte argument");


int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "fionread") && strcmp(argv[1], "nvidia"))) {
        fprintf(stderr, "usage: ioctl_loop fionread|nvidia [M] [R]\n");
        return 2;
    }
    int nvidia = !strcmp(argv[1], "nvidia");
    int m = argc > 2 ? atoi(argv[2]) : 200000, rounds = argc > 3 ? atoi(argv[3]) : 25;
    int fds[2];
    if (pipe(fds) || write(fds[1], "tailguard", 9) != 9) return 1;
    int n = 0;
    struct escape32 esc;
    memset(&esc, 0, sizeof esc);
    unsigned long req = nvidia ? _IOWR('F', 0x2A, struct escape32) : FIONREAD;
    void *arg = nvidia ? (void *)&esc : (void *)&n;
    /* what one call does, checked once: FIONREAD sees the 9 bytes, the escape is refused by the pipe */
    int r = ioctl(fds[0], req, arg);
    if (nvidia ? !(r == -1 && errno == ENOTTY) : (r != 0 || n != 9)) {
        fprintf(stderr, "ioctl_loop: unexpected result %d (errno %d, n %d)\n", r, errno, n);
        return 1;
    }
    double *ns = malloc(sizeof(double) * (size_t)rounds);
    for (int rd = -2; rd < rounds; rd++) { /* two warm-up rounds */
        double t0 = now_ns();
        for (int i = 0; i < m; i++) ioctl(fds[0], req, arg);
        double t1 = now_ns();
        if (rd >= 0) ns[rd] = (t1 - t0) / m;
    }
    qsort(ns, (size_t)rounds, sizeof *ns, cmp_double);
    double med = rounds % 2 ? ns[rounds / 2] : (ns[rounds / 2 - 1] + ns[rounds / 2]) / 2;
    Dl_info info;
    const char *from = dladdr((void *)ioctl, &info) && info.dli_fname ? info.dli_fname : "?";
    printf("{\"case\":\"%s\",\"ioctl_from\":\"%s\",\"calls_per_round\":%d,\"rounds\":%d,\"median_ns\":%.2f,\"min_ns\":%.2f,\"max_ns\":%.2f}\n",
           argv[1], from, m, rounds, med, ns[0], ns[rounds - 1]);
    return 0;
}
