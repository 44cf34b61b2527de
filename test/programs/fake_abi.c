/* A stand-in for the shim's C ABI (native/include/tailguard/tailguard.h), preloaded by the Python helper's unit tests
 * (test/python/test_helper.py): it exports the four functions, keeps each thread's requests as a stack like the shim,
 * and writes every call to the file $TG_FAKE_ABI_LOG, one line each:
 *   begin <thread> <depth after> <traceparent|-> <name|->   end <thread> <depth after or -1>   process <traceparent|-> */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static __thread int depth;

static void logline(const char *fmt, const char *a, const char *b, int n) {
    const char *path = getenv("TG_FAKE_ABI_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f) return;
    fprintf(f, fmt, (long)syscall(SYS_gettid), n, a ? a : "-", b ? b : "-");
    fclose(f);
}

/* the shape only: 55 characters of version 00; the Python side checks the rest first */
static int valid(const char *tp) { return strlen(tp) == 55 && tp[2] == '-' && tp[35] == '-' && tp[52] == '-'; }

int tailguard_abi_version(void) { return 1; }

int tailguard_request_begin(const char *traceparent, const char *name) {
    if (traceparent && !valid(traceparent)) return -EINVAL;
    if (depth == 8) return -EOVERFLOW; /* TAILGUARD_MAX_DEPTH */
    depth++;
    logline("begin %ld %d %s %s\n", traceparent, name, depth);
    return 0;
}

int tailguard_request_end(void) {
    if (depth == 0) {
        logline("end %ld %d%s%s\n", "", "", -1);
        return -ENOENT;
    }
    depth--;
    logline("end %ld %d%s%s\n", "", "", depth);
    return 0;
}

int tailguard_set_process_context(const char *traceparent) {
    if (traceparent && *traceparent && !valid(traceparent)) return -EINVAL;
    logline("process %ld %d %s%s\n", traceparent, "", 0);
    return 0;
}
