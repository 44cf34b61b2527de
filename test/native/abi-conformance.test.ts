// The project declares the CUDA and HIP ABI it uses itself (native/include/tailguard/*_abi.h), so it builds without
// CUDA or ROCm. Against the real headers, these units prove every declaration: each function's arity and parameter
// sizes/kinds, each struct's layout, each constant's value. HIP's are a Debian package the suite needs (a test without
// them fails, saying so); CUDA's come only with a CUDA toolkit, so without one that unit is skipped, with the reason.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { requireComponent } from "../support/components.js";
import { root } from "../support/native.js";

const cudaInclude = ["/usr/local/cuda/include", "/opt/cuda/include"].find((d) => existsSync(path.join(d, "cuda.h")));
/** CUPTI's headers: in the toolkit's include directory (CUDA 12 and later), or its extras/CUPTI/include */
const cuptiInclude = cudaInclude && [cudaInclude, path.join(cudaInclude, "../extras/CUPTI/include")]
  .find((d) => existsSync(path.join(d, "cupti_activity.h")));

function compileAndRun(unit: string, flags: string[]): string {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "tg-abi-")), "unit");
  execFileSync("g++", ["-std=c++17", "-Wall", "-Werror", ...flags, `-I${path.join(root, "native/include")}`,
    "-o", out, path.join(root, "test/abi", unit)], { stdio: "pipe" });
  return execFileSync(out, { encoding: "utf8" });
}

describe("ABI conformance", () => {
  it("cuda_abi.h matches the installed cuda.h", (ctx) => {
    ctx.skip(!cudaInclude, "no CUDA toolkit headers (/usr/local/cuda/include/cuda.h): cuda_abi.h was not checked");
    const out = compileAndRun("cuda_conformance.cc", ["-D__CUDA_API_VERSION_INTERNAL", `-I${cudaInclude}`]);
    expect(out).toMatch(/^cuda functions=(\d+)$/m);
    expect(Number(/functions=(\d+)/.exec(out)![1])).toBeGreaterThan(100);
  });

  it("cupti_abi.h matches the installed cupti_activity.h and cupti_result.h", (ctx) => {
    ctx.skip(!cuptiInclude, "no CUPTI headers (a CUDA toolkit's cupti_activity.h): cupti_abi.h was not checked");
    const out = compileAndRun("cupti_conformance.cc", [`-I${cuptiInclude}`, `-I${cudaInclude}`]);
    expect(Number(/cupti functions=(\d+)/.exec(out)![1])).toBeGreaterThanOrEqual(12);
  });

  it("hip_abi.h matches the installed HIP headers (libamdhip64-dev)", () => {
    const hipInclude = requireComponent("hip-headers");
    const out = compileAndRun("hip_conformance.cc", [`-I${hipInclude}`]);
    expect(Number(/hip functions=(\d+)/.exec(out)![1])).toBeGreaterThan(60);
  });

  it("the comparison itself catches a wrong declaration", () => {
    // a deliberately wrong parameter size must fail to compile
    const bad = path.join(mkdtempSync(path.join(tmpdir(), "tg-abi-bad-")), "bad.cc");
    const src = `#include "${path.join(root, "test/abi/abi_compare.hpp")}"
      #include <cstddef>
      static_assert(abi::same_fn<int (*)(void*, size_t), int (*)(void*, unsigned)>::value, "must fail");
      int main() { return 0; }`;
    writeFileSync(bad, src);
    expect(() => execFileSync("g++", ["-std=c++17", "-fsyntax-only", bad], { stdio: "pipe" })).toThrow(/must fail/);
  });
});

