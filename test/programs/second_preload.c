/* A second LD_PRELOAD library that wraps puts() and finds the real one with dlsym(RTLD_NEXT): the shim's dlsym hook
 * must keep RTLD_NEXT relative to this library, or the lookup finds this very function and recurses forever. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int puts(const char *s) {
    int (*real)(const char *) = (int (*)(const char *))dlsym(RTLD_NEXT, "puts");
    if (!real || real == puts) return -1;
    fputs("[second] ", stdout);
    return real(s);
}
