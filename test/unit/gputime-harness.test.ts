// bench/gpu/gputime.py (issue 16 on a GPU) without a GPU: the controller and workers on CPU-only stand-ins, then its
// analysis against a recording made here whose device times are known, so the matching of requests to windows, the
// application's clock mapping (through the sync's return) and the verdicts are held to arithmetic done here; and
// bench/gpu/window_ab.c, built against the simulated GPU, measures the shim in its path.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { root, shimLib, simDir, testDir } from "../support/native.js";

const gputime = path.join(root, "bench/gpu/gputime.py");
const hasPython = spawnSync("python3", ["--version"]).status === 0;
if (!hasPython) console.warn("gputime-harness.test.ts: python3 is not installed, so bench/gpu/gputime.py is not tested");
type Json = any;

function py(args: string[]) {
  const r = spawnSync("python3", [gputime, ...args], { cwd: root, encoding: "utf8", timeout: 120_000 });
  return r;
}

describe.runIf(hasPython)("bench/gpu/gputime.py on stand-ins", () => {
  it("accuracy: every request matched to the window that began inside it; GPU time and queue delay as recorded", () => {
    const out = testDir("gputime-py");
    const r = py(["accuracy", "--fake", "--out", out, "--reps", "3", "--seconds", "0.5", "--rate", "40", "--high-cpus", "0", "--low-cpus", "0"]);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const [head, ...rows] = readFileSync(path.join(out, "requests-priority.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)) as Json[];
    expect(rows.length).toBeGreaterThanOrEqual(3 * 15);
    // A recording of the request worker as the shim would write it: each request one window whose first launch is
    // 5 us after `submitted`, device start 50 us after that, GPU time 2 % longer than the app's; one request in ten
    // split in two windows (a poll that found the GPU idle).
    const origin = BigInt(rows[0].submitted) - 1_000_000n;
    const lines: object[] = [{ kind: "recording", origin_monotonic_ns: String(origin) }];
    let seq = 0;
    rows.forEach((q, i) => {
      const begin = q.submitted - Number(origin) + 5_000, gpuStart = begin + 50_000, gpuNs = Math.round(q.gpu_ms * 1e6 * 1.02);
      const windows = i % 10 === 3 ? [[begin, gpuStart, gpuNs / 2], [begin + 600_000, gpuStart + gpuNs / 2, gpuNs / 2]] : [[begin, gpuStart, gpuNs]];
      for (const [b, s, n] of windows) {
        seq++;
        lines.push({ kind: "window", op: "end", pid: head.request_pid, t: b, dur: 1_000_000, window: seq });
        lines.push({ kind: "gpu_time", op: "window", pid: head.request_pid, t: b, window: seq, gpu_start: s, gpu_end: s + n });
      }
    });
    lines.push({ kind: "window", op: "end", pid: head.request_pid + 1, t: 0, dur: 1, window: 1 }); // another process's
    const rec = path.join(out, "rec.jsonl");
    writeFileSync(rec, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const a = py(["analyze", "--mode", "priority", "--recording", rec, "--out", out]);
    const result = JSON.parse(readFileSync(path.join(out, "accuracy-priority.json"), "utf8")) as Json;
    expect(result.matched).toBe(rows.length);
    for (const rep of result.reps) {
      expect(rep.split).toBe(rows.filter((q, i) => q.rep === rep.rep && i % 10 === 3).length);
      // the split requests' first window is half the GPU time: the median moves little with one in ten of them
      expect(rep.gpu_ms.shim / rep.gpu_ms.app).toBeGreaterThan(0.9);
      expect(rep.queue_ms.shim).toBeCloseTo(0.05, 6); // from the window's begin, as recorded
      // The app's device times (stand-in: its first event 20 us after `submitted`, its last 10 us before `returned`)
      // go through the sync's return: every upper bound is 10 us late, so its first event reads 30 us after
      // `submitted`, and its queue delay counts from the same launch as the shim's, 5 us after `submitted`: 25 us.
      expect(rep.queue_ms.app).toBeCloseTo(0.025, 6);
      expect(rep.queue_ms.app_from_submitted).toBeCloseTo(0.03, 6);
    }
    expect(result.verdicts.gpu_ms.shim_over_app.every((x: number) => Math.abs(x - 1.02) < 0.03)).toBe(true);
    expect(result.verdicts.gpu_ms.verdict).toBe("meets");
    expect(result.verdicts.queue_ms.shim_over_app.every((x: number) => Math.abs(x - 2) < 1e-6)).toBe(true);
    expect(result.verdicts.queue_ms.verdict).toBe("fails");
    expect(a.status).toBe(1); // a verdict failed
    expect(a.stdout).toContain(`${rows.length} of ${rows.length} requests matched`);
  });

  it("cost: both settings' workers take turns; the ratios and their intervals come out", () => {
    const out = testDir("gputime-cost");
    const r = py(["cost", "--fake", "--out", out, "--rounds", "3", "--block", "0.4", "--procs", "2", "--high-cpus", "0", "--low-cpus", "0"]);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const result = JSON.parse(readFileSync(path.join(out, "cost.json"), "utf8")) as Json;
    expect(result.rounds).toHaveLength(3);
    for (const x of result.rounds) {
      expect(Math.abs(x.latency_ms.on.length - x.latency_ms.off.length)).toBeLessThanOrEqual(1);
      expect(x.iteration_ms.on.length).toBeGreaterThan(10);
    }
    expect(Object.keys(result.ratios)).toEqual(["request P50, on / off", "request P99, on / off", "batch it/s, on / off"]);
    expect(result.ratios["batch it/s, on / off"].ci).toHaveLength(2);
  });
});

describe("bench/gpu/window_ab.c on the simulated GPU", () => {
  it("builds, finds libcuda's own entry points, and sees the shim in its path only when preloaded", () => {
    const bin = path.join(testDir("window-ab"), "window_ab");
    execFileSync("gcc", ["-O2", "-Wall", "-Werror", `-I${path.join(root, "native/include")}`, "-o", bin,
      path.join(root, "bench/gpu/window_ab.c"), `-L${simDir}`, "-lcuda", "-ldl"]);
    const run = (env: NodeJS.ProcessEnv) => JSON.parse(execFileSync(bin, ["20", "6"], {
      encoding: "utf8", env: { ...process.env, LD_LIBRARY_PATH: simDir, ...env } })) as Json;
    expect(run({}).shim_in_path).toBe(false);
    const dir = testDir("window-ab-rings");
    for (const mode of ["on", "off"]) {
      const r = run({ LD_PRELOAD: shimLib, TAILGUARD_DIR: dir, TAILGUARD_GPU_TIME: mode });
      expect(r.shim_in_path).toBe(true);
      expect(r.windows_per_burst).toBe(20);
    }
  });
});
