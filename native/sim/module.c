/* Modules, functions and kernel names. Any image loads and any name is a function (the simulator runs no code); a
 * function handle lives as long as the process, so names stay valid for tools that resolve them late. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define DEAD_MODULE 0xdeadd00du

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int sim_module_load(struct sim_module **out, const void *image) {
    if (!out || !image) return SIM_EINVAL;
    struct sim_module *m = calloc(1, sizeof *m);
    if (!m) return SIM_ENOMEM;
    m->magic = SIM_MODULE_MAGIC;
    *out = m;
    return SIM_OK;
}

int sim_module_function(struct sim_function **out, struct sim_module *m, const char *name) {
    if (!out || !name) return SIM_EINVAL;
    if (!m || m->magic != SIM_MODULE_MAGIC) return SIM_EHANDLE;
    pthread_mutex_lock(&lock);
    struct sim_function *f = m->functions;
    while (f && strcmp(f->name, name) != 0) f = f->next;
    if (!f) { /* the same name in the same module gives the same handle, as the real driver does */
        size_t n = strlen(name);
        f = malloc(sizeof *f + n + 1);
        if (f) {
            f->magic = SIM_FUNCTION_MAGIC;
            f->module = m;
            memcpy(f->name, name, n + 1);
            f->next = m->functions;
            m->functions = f;
        }
    }
    pthread_mutex_unlock(&lock);
    if (!f) return SIM_ENOMEM;
    *out = f;
    return SIM_OK;
}

int sim_module_unload(struct sim_module *m) {
    if (!m || m->magic != SIM_MODULE_MAGIC) return SIM_EHANDLE;
    m->magic = DEAD_MODULE; /* its functions stay allocated: launches in flight and late name lookups use them */
    return SIM_OK;
}

struct sim_function *sim_function_get(const void *handle) {
    struct sim_function *f = (struct sim_function *)handle;
    return f && f->magic == SIM_FUNCTION_MAGIC ? f : NULL;
}

/* Host function pointer → interned name. */
struct host_name {
    const void *fn;
    struct host_name *next;
    char name[];
};
static struct host_name *host_names[256];

const char *sim_host_kernel_name(const void *fn) {
    if (!fn) return NULL;
    unsigned h = (unsigned)(((uintptr_t)fn >> 4) * 0x9E3779B1u) >> 24;
    pthread_mutex_lock(&lock);
    struct host_name *e = host_names[h];
    while (e && e->fn != fn) e = e->next;
    if (!e) {
        Dl_info info;
        char fallback[40];
        const char *name = fallback;
        if (dladdr(fn, &info) && info.dli_sname && info.dli_saddr == fn) name = info.dli_sname;
        else snprintf(fallback, sizeof fallback, "kernel@0x%" PRIxPTR, (uintptr_t)fn);
        size_t n = strlen(name);
        e = malloc(sizeof *e + n + 1);
        if (e) {
            e->fn = fn;
            memcpy(e->name, name, n + 1);
            e->next = host_names[h];
            host_names[h] = e;
        }
    }
    pthread_mutex_unlock(&lock);
    return e ? e->name : "kernel@?";
}
