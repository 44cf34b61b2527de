/* CHECK(call): a driver call of a test program that must succeed; otherwise it says which and exits 2. */
#ifndef TG_TEST_CUDA_CHECK_H
#define TG_TEST_CUDA_CHECK_H
#include <stdio.h>
#include <stdlib.h>

#include "tailguard/cuda_abi.h"

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        CUresult rc_ = (call);                                                                                         \
        if (rc_ != CUDA_SUCCESS) {                                                                                     \
            fprintf(stderr, "%s failed: %d\n", #call, rc_);                                                            \
            exit(2);                                                                                                   \
        }                                                                                                              \
    } while (0)

#endif
