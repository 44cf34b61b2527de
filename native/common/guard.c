/* Guarded mappings (tailguard/guard.h): a SIGBUS on a registered range turns it into zero-filled private memory. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tailguard/guard.h"

#define RANGES 4096 /* the agent maps one per process; the table costs nothing until used */

/* Read by the handler, which may run on any thread at any moment: entries are published with atomics, and a range is
 * only ever made larger than zero once (start written last) and zeroed when removed. */
static struct range {
    uintptr_t start, len;
    int lost;
} ranges[RANGES];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous; /* the program's handler, called for every SIGBUS that is not ours */
static int installed;
static unsigned absorbed;

static void handler(int sig, siginfo_t *info, void *ctx) {
    uintptr_t a = (uintptr_t)info->si_addr;
    if (info->si_code > 0) /* raised by a fault, not sent by kill(): si_addr means something */
        for (int i = 0; i < RANGES; i++) {
            uintptr_t start = __atomic_load_n(&ranges[i].start, __ATOMIC_ACQUIRE);
            uintptr_t len = __atomic_load_n(&ranges[i].len, __ATOMIC_RELAXED);
            if (!start || a < start || a - start >= len) continue;
            /* mmap is a plain system call: safe here. Another thread faulting at once maps zeros again: harmless. */
            mmap((void *)start, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            __atomic_store_n(&ranges[i].lost, 1, __ATOMIC_RELEASE);
            __atomic_fetch_add(&absorbed, 1, __ATOMIC_RELAXED);
            return; /* the faulting access runs again, against the zeros */
        }
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) previous.sa_sigaction(sig, info, ctx);
        return;
    }
    if (previous.sa_handler == SIG_IGN) return;
    if (previous.sa_handler != SIG_DFL && previous.sa_handler) {
        previous.sa_handler(sig);
        return;
    }
    /* the default action, as if we had never been here: a fault repeats when we return, a sent signal is re-raised */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGBUS, &dfl, 0);
    if (info->si_code <= 0) raise(SIGBUS);
}

static void install(void) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &old) != 0) return;
    if (old.sa_sigaction != handler) previous = old;
    installed = 1;
}

int tg_guard_add(void *addr, size_t len) {
    pthread_mutex_lock(&lock);
    if (!installed) install();
    int slot = -1;
    for (int i = 0; i < RANGES && slot < 0; i++)
        if (!ranges[i].start) slot = i;
    if (slot >= 0) {
        ranges[slot].lost = 0;
        __atomic_store_n(&ranges[slot].len, (uintptr_t)len, __ATOMIC_RELAXED);
        __atomic_store_n(&ranges[slot].start, (uintptr_t)addr, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&lock);
    return slot >= 0 ? 0 : -1;
}

void tg_guard_remove(void *addr) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < RANGES; i++)
        if (ranges[i].start == (uintptr_t)addr) {
            __atomic_store_n(&ranges[i].start, 0, __ATOMIC_RELEASE);
            ranges[i].len = 0;
        }
    pthread_mutex_unlock(&lock);
}

int tg_guard_lost(const void *addr) {
    for (int i = 0; i < RANGES; i++)
        if (__atomic_load_n(&ranges[i].start, __ATOMIC_ACQUIRE) == (uintptr_t)addr)
            return __atomic_load_n(&ranges[i].lost, __ATOMIC_ACQUIRE);
    return 0;
}

void tg_guard_keep(void) {
    if (!__atomic_load_n(&installed, __ATOMIC_ACQUIRE)) return;
    struct sigaction cur;
    if (sigaction(SIGBUS, 0, &cur) != 0 || ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == handler)) return;
    pthread_mutex_lock(&lock);
    install(); /* the program's new handler becomes the one we chain to */
    pthread_mutex_unlock(&lock);
}

unsigned tg_guard_absorbed(void) { return __atomic_load_n(&absorbed, __ATOMIC_RELAXED); }
