/* An application instrumented with NVTX v3 (the CUDA toolkit's header-only nvtx3/nvToolsExt.h), run with the shim
 * preloaded and nothing else: NVTX must find the shim by itself (test/e2e/nvtx.test.ts).
 * Usage: nvtx_ranges spans    three request windows inside ranges: nested push/pop with an ASCII and a Unicode
 *                             message; a domain's push with a registered string, and a mark; a start/end range
 *                             ended by another thread
 *        nvtx_ranges garbage  unbalanced pops, NULL and garbage handles and attributes, a 1 MiB message, 20 000
 *                             distinct messages
 *        nvtx_ranges traceparent  ranges whose message is a W3C traceparent (valid, and not quite)
 *        nvtx_ranges fork     a child forked with a range open uses its parent's domain and registered string
 * Prints NVTX_INJECTION64_PATH as the program sees it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nvtx3/nvToolsExt.h>

#include "cuda_check.h"

static CUcontext ctx;
static CUfunction fn;

static void launch(CUstream s, uint32_t us, unsigned tag) {
    void *p[] = {&us};
    CHECK(cuLaunchKernel(fn, tag, 1, 1, 1, 1, 1, 0, s, p, NULL));
}

static nvtxRangeId_t cross_id;
static void *other_thread(void *arg) {
    CUstream s;
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    launch(s, 300, 7);
    CHECK(cuStreamSynchronize(s));
    nvtxRangeEnd(cross_id); /* started by the main thread */
    return arg;
}

static nvtxEventAttributes_t attributes(int type) {
    nvtxEventAttributes_t a;
    memset(&a, 0, sizeof a);
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = type;
    return a;
}

static void spans(CUstream s) {
    /* window 1: serve > preprocess, serve > 推理 inference (Unicode) */
    nvtxRangePushA("serve");
    nvtxRangePushA("preprocess");
    launch(s, 500, 1);
    nvtxRangePop();
    nvtxRangePushW(L"推理 inference");
    launch(s, 500, 2);
    launch(s, 500, 3);
    nvtxRangePop();
    CHECK(cuStreamSynchronize(s));
    nvtxRangePop();

    /* window 2: a domain, a registered string, a category, a mark */
    nvtxDomainHandle_t domain = nvtxDomainCreateA("tailguard-test");
    nvtxStringHandle_t conv = nvtxDomainRegisterStringA(domain, "layer.conv1");
    nvtxEventAttributes_t a = attributes(NVTX_MESSAGE_TYPE_REGISTERED);
    a.message.registered = conv;
    a.category = 3;
    nvtxDomainRangePushEx(domain, &a);
    launch(s, 500, 4);
    nvtxMarkA("checkpoint");
    launch(s, 500, 5);
    CHECK(cuStreamSynchronize(s));
    nvtxDomainRangePop(domain);

    /* window 3: a start/end range that another thread ends */
    cross_id = nvtxRangeStartA("cross-thread");
    launch(s, 500, 6);
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    CHECK(cuCtxSynchronize());
}

static void garbage(CUstream s) {
    printf("pop=%d\n", nvtxRangePop()); /* nothing pushed */
    printf("domain-pop=%d\n", nvtxDomainRangePop((nvtxDomainHandle_t)0x7));
    nvtxRangeEnd(0);
    nvtxRangeEnd(0xdeadbeefdeadbeefull);
    nvtxRangePushA(NULL);
    nvtxRangePushW(NULL);
    nvtxMarkEx(NULL);
    nvtxRangePushEx(NULL);
    nvtxEventAttributes_t a = attributes(NVTX_MESSAGE_TYPE_REGISTERED);
    a.message.registered = (nvtxStringHandle_t)0x123456789;
    nvtxDomainRangePushEx((nvtxDomainHandle_t)0xdeadbeef, &a);
    a = attributes(NVTX_MESSAGE_TYPE_ASCII);
    a.size = 8; /* too short to hold a message */
    a.message.ascii = "never read";
    nvtxRangePushEx(&a);
    a = attributes(99);
    nvtxRangePushEx(&a);
    size_t n = 1 << 20;
    char *huge = malloc(n + 1);
    memset(huge, 'x', n);
    huge[n] = 0;
    nvtxRangePushA(huge);
    for (int i = 0; i < 20000; i++) { /* a counter in the message: more distinct texts than the name table holds */
        char step[32];
        snprintf(step, sizeof step, "step %d", i);
        nvtxMarkA(step);
    }
    launch(s, 200, 1); /* its kernel is named for the first time after them */
    CHECK(cuStreamSynchronize(s));
    for (int i = 0; i < 10; i++) nvtxRangePop();
    printf("pop-after=%d\n", nvtxRangePop());
    free(huge);
}

static void traceparents(void) {
    nvtxRangePushA("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    nvtxRangeId_t id = nvtxRangeStartW(L"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    nvtxRangeEnd(id);
    nvtxRangePop();
    nvtxRangePushA("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"); /* upper case: not a traceparent */
    nvtxRangePop();
    nvtxRangePushA("00-00000000000000000000000000000000-00f067aa0ba902b7-01"); /* an all-zero trace id is invalid */
    nvtxRangePop();
}

static void forked(void) {
    nvtxDomainHandle_t domain = nvtxDomainCreateA("parent-domain");
    nvtxStringHandle_t registered = nvtxDomainRegisterStringA(domain, "registered-before-fork");
    nvtxRangePushA("parent-open");
    pid_t pid = fork();
    if (pid == 0) { /* a ring of its own, whose name table starts empty: the handles must still name their text */
        nvtxEventAttributes_t a = attributes(NVTX_MESSAGE_TYPE_REGISTERED);
        a.message.registered = registered;
        nvtxDomainRangePushEx(domain, &a);
        nvtxDomainRangePop(domain);
        printf("child-pop=%d\n", nvtxRangePop()); /* the push its thread inherited */
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0) exit(3);
    printf("parent-pop=%d\n", nvtxRangePop());
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "spans";
    CUmodule mod;
    CUstream s;
    CHECK(cuInit(0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, "image"));
    CHECK(cuModuleGetFunction(&fn, mod, "nvtx_kernel"));
    CHECK(cuStreamCreate(&s, 0));
    if (!strcmp(mode, "garbage")) garbage(s);
    else if (!strcmp(mode, "fork")) forked();
    else if (!strcmp(mode, "traceparent")) traceparents();
    else spans(s);
    const char *path = getenv("NVTX_INJECTION64_PATH");
    printf("NVTX_INJECTION64_PATH=%s\n", path ? path : "(unset)");
    return 0;
}
