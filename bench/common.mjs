// What the benchmark scripts share: the repository root, the statistics they report, and the do-nothing driver
// (bench/shim/null_driver.c) that the shim and agent benchmarks build.
import { execFileSync } from "node:child_process";
import { mkdirSync, symlinkSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const include = `-I${path.join(root, "native/include")}`;

// The one median (agent/src/stats.ts, built by `npm install`), so a bench figure and the agent's agree.
export { median } from "../agent/dist/stats.js";

/** First and third quartile (nearest rank). */
export function quartiles(values) {
  const s = [...values].sort((a, b) => a - b);
  return [s[Math.floor((s.length - 1) / 4)], s[Math.ceil((3 * (s.length - 1)) / 4)]];
}

/** Builds the do-nothing libcuda.so.1 (and its link-time name libcuda.so) in DIR; returns DIR. */
export function buildNullDriver(dir) {
  mkdirSync(dir, { recursive: true });
  execFileSync("gcc", ["-std=gnu11", "-O2", "-fPIC", "-shared", include, "-Wl,-soname,libcuda.so.1", "-o",
    path.join(dir, "libcuda.so.1"), path.join(root, "bench/shim/null_driver.c")]);
  symlinkSync("libcuda.so.1", path.join(dir, "libcuda.so"));
  return dir;
}
