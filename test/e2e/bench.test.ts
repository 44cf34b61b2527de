// `tailguard bench --sim` end to end (every mode, three repetitions, on the simulated GPU), a run whose shim cannot
// attach, bad input, and units of the bench: nearest-rank statistics, the plots (PNG rendered by resvg with a real font,
// SVG alone where it cannot be), and the Poisson schedule that tg-workload and the PyTorch worker must draw identically.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";

import { GpuSampler } from "../../agent/src/bench/gpu-sampler.js";
import { lowCpu, processCpuNs, procStatCpuNs, type RunRecord } from "../../agent/src/bench/orchestrate.js";
import { mechanismChangeLines, writePlots } from "../../agent/src/bench/output.js";
import { cdfChart, COLORS, renderPng, toSvg } from "../../agent/src/bench/plot.js";
import { median, percentile, ratio, spread, summarize, throughputOutside, windowThroughput } from "../../agent/src/bench/stats.js";
import { nativeBuild, root, simDir } from "../support/native.js";
import { decodePng, type DecodedPng } from "../support/png.js";
import { formatCpus, orchestratorCpus, parseCpus, pinProcess } from "../../agent/src/bench/workers.js";
import { cases, goalTable, medianTable, RUNS as benchRuns } from "../../bench/gpu/bench-table.mjs";
import { extract as extractFigures, publishedFigures, rawFiles, resultsRef, TABLES } from "../../bench/gpu/figures.mjs";
import { plan as leversPlan, VARIANTS as LEVER_VARIANTS } from "../../bench/gpu/levers-b8.mjs";
import { pairs as batch8Pairs, pairsTable as batch8Table } from "../../bench/gpu/pairs-b8.mjs";
import { RUNS as toggleRuns, toggleSummary } from "../../bench/gpu/experiments/toggle-summary.mjs";

const cli = path.join(root, "agent/dist/cli.js");
const MODES = ["high-alone", "low-alone", "native", "telemetry", "tailguard"];

function bench(args: string[], env: NodeJS.ProcessEnv = {}, cwd = root) {
  const e = { ...process.env, ...env };
  delete e.LD_PRELOAD;
  return spawnSync(process.execPath, [cli, "bench", ...args], { env: e, cwd, encoding: "utf8", timeout: 110_000 });
}

/** A plot's PNG as rendered from its SVG: the scene's size, every series' colour drawn, and a title set in a real
 *  font: dark text pixels in the title band, with the many grey levels of anti-aliased glyph edges that no bitmap font
 *  has (the hand-written rasterizer's 5x7 font drew one colour only). */
function expectPlotPng(png: DecodedPng, colors: readonly (readonly number[])[], what: string) {
  expect([png.width, png.height], what).toEqual([900, 560]);
  for (const c of colors) {
    let found = false;
    for (let y = 0; y < png.height && !found; y++)
      for (let x = 0; x < png.width && !found; x++) {
        const [r, g, b] = png.at(x, y);
        found = r === c[0] && g === c[1] && b === c[2];
      }
    expect(found, `${what} shows the colour ${c.join(",")}`).toBe(true);
  }
  // the title: centred, baseline at y 24, 16 px; nothing else is drawn above y 40
  let dark = 0;
  const greys = new Set<number>();
  for (let y = 0; y < 40; y++)
    for (let x = 150; x < 750; x++) {
      const [r, g, b] = png.at(x, y);
      if (r < 90 && g < 90 && b < 90) dark++;
      if (r === g && g === b && r > 60 && r < 220) greys.add(r);
    }
  expect(dark, `${what}: dark title pixels`).toBeGreaterThan(100);
  expect(greys.size, `${what}: grey levels of anti-aliased text in the title`).toBeGreaterThanOrEqual(20);
}

/** Tags of an XML document balance (a small well-formedness check: no XML parser among the dependencies). */
function expectWellFormedXml(text: string) {
  const stack: string[] = [];
  const body = text.replace(/<\?xml[^>]*\?>/, "");
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    if (m[1]) expect(stack.pop(), `closing </${m[2]}>`).toBe(m[2]);
    else if (!m[4]) stack.push(m[2]);
  }
  expect(stack).toEqual([]);
  expect(body.replace(/<[^>]*>/g, "")).not.toMatch(/[<>]/);
}

describe("bench statistics", () => {
  it("nearest-rank percentiles, P99.9 only from 1000 samples, medians, spreads and ratios", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
    const s = summarize(hundred);
    expect(s).toEqual({ n: 100, p50: 50, p90: 90, p99: 99, p999: null, max: 100 });
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2, 3], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2); // nearest rank: the 2nd of 4, not an interpolated 2.5
    expect(Number.isNaN(percentile([], 50))).toBe(true);
    const thousand = summarize(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(thousand.p999).toBe(999);
    expect(summarize(Array.from({ length: 999 }, (_, i) => i)).p999).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(spread([2, 6, 4], [1, 2, 3])).toEqual({ median: 4, min: 2, max: 6, ratio: 2 });
    expect(spread([2, 6, 4]).ratio).toBeNull();
    expect(ratio(1, 0)).toBeNull();
    expect(ratio(NaN, 1)).toBeNull();
  });

  it("throughput counts the fraction of each iteration inside the window", () => {
    const s = 1e9;
    // iterations of 0.4 s from 0 to 2.0 s; window 0.2 s .. 1.2 s holds 0.5 + 1 + 1 = 2.5 iterations in 1 s
    const iters = [0, 1, 2, 3, 4].map((i) => [i * 0.4 * s, (i + 1) * 0.4 * s] as const);
    expect(windowThroughput(iters, 0.2 * s, 1.2 * s)).toBeCloseTo(2.5, 9);
    expect(windowThroughput(iters, 0, 2 * s)).toBeCloseTo(2.5, 9);
    expect(Number.isNaN(windowThroughput(iters, s, s))).toBe(true);
  });

  it("throughput outside the high-priority requests leaves out their time and the progress made in it", () => {
    const s = 1e9;
    const iters = [[0, 1 * s], [1 * s, 2 * s], [2 * s, 3 * s]] as const; // 1 it/s
    // a request from 0.5 to 1.5 s: 2 s outside it, in which 0.5 + 0.5 + 1 iterations were made
    expect(throughputOutside(iters, 0, 3 * s, [[0.5 * s, 1.5 * s]])).toBeCloseTo(1, 9);
    // overlapping requests merge (0.5..1.8 s); one before the window counts only inside it (0..0.2 s)
    expect(throughputOutside(iters, 0, 3 * s, [[1.2 * s, 1.8 * s], [0.5 * s, 1.5 * s], [-1 * s, 0.2 * s]])).toBeCloseTo(1, 9);
    // the batch job stalled during a request (its second iteration took 2 s around it): outside the request it ran at
    // 2.5 iterations in 3 s (the slow iteration's progress taken as uniform), against 0.75/s over the whole window
    const stalled = [[0, 1 * s], [1 * s, 3 * s], [3 * s, 4 * s]] as const;
    expect(throughputOutside(stalled, 0, 4 * s, [[1.5 * s, 2.5 * s]])).toBeCloseTo(2.5 / 3, 9);
    expect(windowThroughput(stalled, 0, 4 * s)).toBeCloseTo(0.75, 9);
    expect(Number.isNaN(throughputOutside(iters, 0, 3 * s, [[0, 3 * s]]))).toBe(true);
  });
});

describe("bench plots", () => {
  const run = (mode: string, latencyMs: number[]) => ({
    mode, repetition: 1, high: { latencyMs, arrivalMs: latencyMs.map((_, i) => i * 100) },
    holds: mode === "tailguard" ? { count: 1, totalMs: 3, list: [{ atMs: 250, durMs: 3 }] } : null,
  }) as unknown as RunRecord;
  const runs = [run("high-alone", [1, 1.2, 1.5, 2]), run("native", [2, 3, 5, 9]), run("tailguard", [1.1, 1.3, 1.6, 2.2])];

  it("renders the PNG from the SVG with resvg, its text in the shipped DejaVu Sans", () => {
    const scene = cdfChart("sim: high-priority latency CDF", [
      { name: "native", color: COLORS.native, values: [2, 3, 5, 9] },
      { name: "tailguard", color: COLORS.tailguard, values: [1.1, 1.3, 1.6, 2.2] },
    ]);
    const svg = toSvg(scene);
    expect(svg).toContain('font-family="DejaVu Sans, sans-serif"');
    const out = renderPng(svg);
    if ("error" in out) throw new Error(out.error);
    expectPlotPng(decodePng(out.png), [COLORS.native, COLORS.tailguard], "the CDF");
  });

  it("writes the SVGs alone, and says so once, where the PNGs cannot be rendered", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "tg-bench-plots-"));
    const said: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => (said.push(String(s)), true)) as typeof process.stderr.write;
    let files;
    try {
      files = writePlots(dir, "sim", ["high-alone", "native", "tailguard"], runs, 1,
        () => ({ error: "resvg cannot load on sunos-sparc: no binary" }));
    } finally {
      process.stderr.write = write;
    }
    expect(files).toEqual({ cdfSvg: path.join(dir, "latency-cdf.svg"), timelineSvg: path.join(dir, "latency-timeline.svg") });
    expect(readdirSync(dir).sort()).toEqual(["latency-cdf.svg", "latency-timeline.svg"]);
    expect(said).toEqual(["tailguard bench: PNG plots not written, the SVGs only: resvg cannot load on sunos-sparc: no binary\n"]);
    // with resvg, both
    expect(Object.keys(writePlots(dir, "sim", ["high-alone", "native", "tailguard"], runs, 1)).sort())
      .toEqual(["cdfPng", "cdfSvg", "timelinePng", "timelineSvg"]);
    expectPlotPng(decodePng(readFileSync(path.join(dir, "latency-timeline.png"))), [COLORS.native, COLORS.tailguard, COLORS.holds], "the timeline");
  });

  it("the PNG reader of these tests decodes the row filters and checks CRCs", () => {
    // an independent CRC-32 (node:zlib's, Node >= 20.15) for the chunks of a 2x2 RGB image whose rows are filtered
    // Sub and Paeth (resvg's encoder picks a filter per row)
    const zcrc = (zlib as unknown as { crc32?: (b: Buffer) => number }).crc32;
    if (!zcrc) return;
    const chunk = (type: string, data: Buffer) => {
      const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
      const head = Buffer.alloc(4), crc = Buffer.alloc(4);
      head.writeUInt32BE(data.length);
      crc.writeUInt32BE(zcrc(body));
      return Buffer.concat([head, body, crc]);
    };
    const raw = Buffer.from([1, 10, 20, 30, 5, 5, 5, 4, 1, 1, 1, 2, 2, 2]);
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk("IHDR", Buffer.from([0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0])), chunk("IDAT", zlib.deflateSync(raw)),
      chunk("IEND", Buffer.alloc(0))]);
    const img = decodePng(png);
    expect([img.at(0, 0), img.at(1, 0), img.at(0, 1), img.at(1, 1)]).toEqual([
      [10, 20, 30, 255], [15, 25, 35, 255], [11, 21, 31, 255], [17, 27, 37, 255]]);
    png[png.length - 20] ^= 1; // the last byte of the IDAT's data
    expect(() => decodePng(png)).toThrow(/bad CRC in IDAT/);
  });
});

describe("bench CPU time of the low worker", () => {
  it("reads utime + stime from /proc/PID/stat, whatever the command name holds", () => {
    // fields 14 and 15: 250 + 50 ticks of 10 ms = 3 s; a name with spaces and parentheses must not shift them
    const line = "4242 (python3 (x) y) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 12 0 100 200 300";
    expect(procStatCpuNs(line)).toBe(3e9);
    expect(procStatCpuNs("4242 (short) R 1 2")).toBeNull();
    expect(procStatCpuNs("not a stat line")).toBeNull();
    expect(processCpuNs(2 ** 30)).toBeNull(); // no such process
    // this process: its CPU time grows while it computes, as much as Node's own count says (to a 10 ms tick or two);
    // computed until 100 ms of CPU time, not wall time, so a loaded machine cannot starve the test into failing
    const before = processCpuNs(process.pid)!;
    const own = process.cpuUsage();
    const cpuMs = () => { const u = process.cpuUsage(own); return (u.user + u.system) / 1000; };
    const giveUp = Date.now() + 30_000;
    let x = 0;
    while (cpuMs() < 100 && Date.now() < giveUp) for (let i = 0; i < 1e5; i++) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    const grew = processCpuNs(process.pid)! - before;
    expect(grew).toBeGreaterThanOrEqual((cpuMs() - 25) * 1e6);
    expect(grew).toBeGreaterThanOrEqual(50e6);
  });

  it("CPU per iteration counts the iterations completed between the marks; cores is CPU over wall time", () => {
    const s = 1e9;
    const iters = [[0, 1 * s], [1 * s, 2 * s], [2 * s, 3 * s], [3 * s, 4 * s]] as const;
    // 1.5 s of CPU between 0.5 s and 3.5 s: iterations ending at 1, 2 and 3 s -> 500 ms each, 0.5 cores
    expect(lowCpu({ t: 0.5 * s, cpuNs: 1e9 }, { t: 3.5 * s, cpuNs: 2.5e9 }, iters)).toEqual({ cores: 0.5, msPerIter: 500 });
    expect(lowCpu(null, { t: s, cpuNs: 0 }, iters)).toBeNull();
    expect(lowCpu({ t: 5 * s, cpuNs: 0 }, { t: 6 * s, cpuNs: 1e9 }, iters)).toBeNull(); // no iteration completed
  });
});

describe("bench mechanism changes", () => {
  it("the table names workers whose scheduling mechanisms changed while the schedule ran, and only those", () => {
    const run = (mode: string, repetition: number, changes: { atMs: number; mechanisms: string[] }[]) =>
      ({ mode, repetition, windowS: 60, attachment: [{ role: "low", changes }] }) as unknown as RunRecord;
    const steady = run("tailguard", 1, [{ atMs: -900, mechanisms: [] }, { atMs: -850, mechanisms: ["holds", "timeslice=100us"] },
      { atMs: 60_400, mechanisms: [] }]); // the high worker gone after the window: not a change during the run
    const lapsed = run("tailguard", 2, [{ atMs: -800, mechanisms: ["holds", "timeslice=100us"] },
      { atMs: 45_210, mechanisms: ["holds"] }, { atMs: 47_000, mechanisms: ["holds", "timeslice=100us"] }]);
    const late = run("tailguard", 3, [{ atMs: 1200, mechanisms: ["holds"] }]); // first seen after the start: not a change
    const old = { ...run("tailguard", 4, []), attachment: [{ role: "low" }] } as unknown as RunRecord; // written before `changes`
    expect(mechanismChangeLines([steady, late, old])).toEqual([]);
    expect(mechanismChangeLines([steady, lapsed])).toEqual([
      "",
      "Scheduling mechanisms changed while the schedule ran (seen every 50 ms in the control block):",
      "- tailguard, repetition 2, low worker: at 45.21 s: holds (was holds, timeslice=100us); at 47.00 s: holds, timeslice=100us (was holds)",
    ]);
  });
});

describe("bench GPU sampler", () => {
  it("reads nvidia-smi's SM clock, power and utilisation lines, skips [N/A], and is empty without nvidia-smi", async () => {
    const bin = mkdtempSync(path.join(os.tmpdir(), "tg-fake-smi-"));
    const smi = path.join(bin, "nvidia-smi");
    // a stand-in that answers the query the sampler makes, as nvidia-smi prints it
    writeFileSync(smi, `#!/bin/sh
case "$*" in *"--query-gpu=clocks.sm,power.draw,utilization.gpu"*"-lms 200"*) ;; *) echo "unexpected: $*" >&2; exit 2;; esac
i=0; while true; do i=$((i+1)); echo "$((1900 + i % 2 * 80)), 350.50, 97"; echo "[N/A], [N/A], [N/A]"; sleep 0.05; done
`);
    chmodSync(smi, 0o755);
    const path0 = process.env.PATH;
    try {
      process.env.PATH = `${bin}:${path0}`;
      const s = new GpuSampler();
      const t0 = Number(process.hrtime.bigint());
      s.start();
      await new Promise((r) => setTimeout(r, 600));
      s.stop();
      const st = s.state(t0, Number(process.hrtime.bigint()))!;
      expect(st.samples).toBeGreaterThanOrEqual(4);
      expect([1900, 1980]).toContain(st.smMhzP50);
      expect(st.smMhzP10).toBe(1900);
      expect(st).toMatchObject({ powerWP50: 350.5, powerWMax: 350.5, utilPctP50: 97 });
      expect(s.state(0, t0 - 1)).toBeNull(); // nothing before it started
      process.env.PATH = "/nonexistent";
      const none = new GpuSampler();
      none.start();
      await new Promise((r) => setTimeout(r, 100));
      none.stop();
      expect(none.state(0, Number.MAX_SAFE_INTEGER)).toBeNull();
    } finally {
      process.env.PATH = path0;
    }
  });
});

describe("bench workers", () => {
  it("tg-workload and the PyTorch worker draw the same Poisson schedule from one seed", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "tg-bench-sched-"));
    const samples = path.join(dir, "samples");
    execFileSync(path.join(nativeBuild, "tg-workload"), ["requests", "--rate", "200", "--count", "40", "--kernels", "1",
      "--kernel-us", "1", "--arrivals", "poisson", "--seed", "42", "--samples", samples, "--start-ns", "1"],
    { env: { ...process.env, LD_PRELOAD: "", LD_LIBRARY_PATH: simDir, TAILGUARD_SIM_DEVICE: path.join(dir, "gpu") } });
    const due = readFileSync(samples, "utf8").trim().split("\n").map((l) => BigInt(l.split(" ")[0]) - 1n);
    const py = execFileSync("python3", ["-B", "-c",
      "import sys, json; sys.path.insert(0, sys.argv[1]); import torch_worker as w; print(json.dumps(w.arrivals(40, 200, True, 42)))",
      path.join(root, "bench/workers")], { encoding: "utf8" });
    const offsets = JSON.parse(py) as number[];
    expect(offsets.map(BigInt)).toEqual(due);
    const gaps = offsets.slice(1).map((t, i) => t - offsets[i]);
    expect(new Set(gaps).size).toBeGreaterThan(30); // exponential gaps, not a fixed period
    execFileSync("python3", ["-m", "py_compile", path.join(root, "bench/workers/torch_worker.py")], {
      env: { ...process.env, PYTHONPYCACHEPREFIX: path.join(dir, "pycache") },
    });
  });
});

describe("bench pinning", () => {
  it("keeps the orchestrator on the CPUs no worker is pinned to, every thread of it", () => {
    expect(orchestratorCpus({ high: [2, 3], low: [4, 5] }, 16)).toEqual([0, 1, ...Array.from({ length: 10 }, (_, i) => i + 6)]);
    expect(orchestratorCpus({ high: [1], low: [2, 3] }, 4)).toEqual([0]);
    expect(orchestratorCpus({ high: null, low: null }, 2)).toBeNull(); // nothing pinned: nothing to keep off
    expect(orchestratorCpus({ high: [0], low: [1] }, 2)).toBeNull(); // no CPU left
    expect(formatCpus([0, 1, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])).toBe("0,1,6-15");
    expect(formatCpus([0, 2, 3, 4, 7])).toBe("0,2-4,7");
    expect(parseCpus("--x", formatCpus([0, 1]))).toEqual([0, 1]); // read back (this machine may have only 2 CPUs)
    // a real process with two threads: both end up on CPU 0
    const child = spawn("python3", ["-c", "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(30)"]);
    try {
      const deadline = Date.now() + 5000;
      while (readdirSync(`/proc/${child.pid}/task`).length < 2 && Date.now() < deadline) execFileSync("sleep", ["0.05"]);
      expect(pinProcess(child.pid!, [0])).toBeNull();
      for (const task of readdirSync(`/proc/${child.pid}/task`))
        expect(readFileSync(`/proc/${child.pid}/task/${task}/status`, "utf8")).toMatch(/^Cpus_allowed_list:\s+0$/m);
      expect(pinProcess(2 ** 30, [0])).toMatch(/\S/); // no such process: a reason, not an exception
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("tailguard bench --sim", () => {
  it("runs every mode three times, verifies attachment, and writes the result, the table and the plots", () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "tg-bench-")), "out");
    const r = bench(["--sim", "--out", out, "--duration", "1.5"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/bench: 15\/15 /); // plain progress lines when stderr is not a terminal

    const result = JSON.parse(readFileSync(path.join(out, "result.json"), "utf8"));
    expect(result.backend).toBe("sim");
    expect(result.scenario.name).toBe("default");
    expect(result.scenario.durationS).toBe(1.5);
    expect(result.modes).toEqual(MODES);
    expect(result.repetitions).toBe(3);
    expect(result.runs).toHaveLength(15);
    expect(result.command).toContain("bench --sim");
    expect(result.commit).toMatch(/^([0-9a-f]{40}|unknown)$/);
    expect(result.machine.cpus).toBeGreaterThan(0);
    expect(result.machine.kernel).toContain("Linux");
    expect(result.machine.node).toBe(process.version);
    for (const m of MODES) expect(result.runs.filter((x: { mode: string }) => x.mode === m)).toHaveLength(3);

    const requests = Math.round(10 * 1.5);
    for (const m of ["high-alone", "native", "telemetry", "tailguard"]) {
      const s = result.summary[m];
      for (const stat of ["p50", "p90", "p99", "max"]) {
        expect(s.latency[stat].median, `${m} ${stat}`).toBeGreaterThan(0);
        expect(s.latency[stat].min).toBeLessThanOrEqual(s.latency[stat].median);
        expect(s.latency[stat].max).toBeGreaterThanOrEqual(s.latency[stat].median);
        expect(Number.isFinite(s.latency[stat].ratio), `${m} ${stat} ratio`).toBe(true);
      }
      expect(s.latency.p999).toBeUndefined(); // fewer than 1000 samples per run
      expect(s.samplesPerRun).toBe(requests);
      expect(s.gpu.p50.median).toBeGreaterThan(0);
    }
    expect(result.summary["high-alone"].latency.p50.ratio).toBe(1);
    for (const m of ["low-alone", "native", "telemetry", "tailguard"]) {
      const t = result.summary[m].lowThroughput;
      expect(t.median, m).toBeGreaterThan(50); // ResNet-50 b8 mimic: ~200 iterations/s alone
      expect(Number.isFinite(t.ratio)).toBe(true);
    }
    // between requests: only where both workers ran
    for (const m of ["native", "telemetry", "tailguard"]) {
      const t = result.summary[m].lowIdleThroughput;
      expect(t.median, m).toBeGreaterThan(50);
      expect(Number.isFinite(t.ratio)).toBe(true);
    }
    expect(result.summary["low-alone"].lowIdleThroughput).toBeNull();
    // the low worker's CPU time: every run with a low worker has it, and it is plausible (tg-workload submits from one
    // thread; the simulated GPU's device thread runs in the same process)
    for (const run of result.runs.filter((x: { low: unknown }) => x.low)) {
      expect(run.low.cpu, run.mode).not.toBeNull();
      expect(run.low.cpu.cores, run.mode).toBeGreaterThan(0);
      expect(run.low.cpu.cores, run.mode).toBeLessThanOrEqual(os.availableParallelism() + 0.1);
      expect(run.low.cpu.msPerIter, run.mode).toBeGreaterThan(0);
    }
    for (const m of ["low-alone", "native", "telemetry", "tailguard"]) expect(Number.isFinite(result.summary[m].lowCpu.msPerIter.ratio)).toBe(true);
    for (const run of result.runs.filter((x: { mode: string }) => x.mode === "low-alone")) expect(run.low.idleIterPerS).toBeNull();
    expect(result.summary["low-alone"].latency).toBeNull();
    expect(result.summary["high-alone"].lowThroughput).toBeNull();

    // every worker of the shim's modes seen attached, on the GPU, at its intended priority
    expect(result.attachment).toHaveLength(2 * 2 * 3);
    for (const a of result.attachment) {
      expect(a.verified, JSON.stringify(a)).toBe(true);
      expect(a.ring && a.slot).toBe(true);
      const intended = a.mode === "tailguard" ? (a.role === "high" ? 10 : -10) : 0;
      expect(a.slotPriority).toBe(intended);
      expect(a.ringPriority).toBe(intended);
      if (a.mode === "telemetry") expect(a.mechanisms).toEqual([]);
      if (a.mode === "tailguard" && a.role === "low") {
        expect(a.mechanisms).toContain("holds");
        // the mechanisms over time: in effect before the schedule started, and each entry a change from the last
        expect(a.changes.length, JSON.stringify(a.changes)).toBeGreaterThan(0);
        const atStart = a.changes.filter((c: { atMs: number }) => c.atMs <= 0).at(-1);
        expect(atStart?.mechanisms, JSON.stringify(a.changes)).toContain("holds");
        for (let i = 1; i < a.changes.length; i++) expect(a.changes[i].mechanisms).not.toEqual(a.changes[i - 1].mechanisms);
        // the high worker was ready before the low one started, so nothing changed while the schedule ran
        expect(a.changes.filter((c: { atMs: number }) => c.atMs > 0 && c.atMs <= 1500), JSON.stringify(a.changes)).toEqual([]);
      }
    }
    for (const run of result.runs) {
      const pids = run.workers.map((w: { pid: number }) => w.pid);
      if (run.attachment) expect(run.attachment.map((a: { pid: number }) => a.pid)).toEqual(pids);
      else expect(["high-alone", "low-alone", "native"]).toContain(run.mode);
    }
    // the scheduler acted: the low-priority worker was held; with the mechanisms off, never
    const holds = (m: string) => result.runs.filter((x: { mode: string }) => x.mode === m).map((x: { holds: { count: number } }) => x.holds.count);
    expect(holds("tailguard").reduce((a: number, b: number) => a + b, 0)).toBeGreaterThan(0);
    expect(holds("telemetry")).toEqual([0, 0, 0]);

    const md = readFileSync(path.join(out, "results.md"), "utf8");
    expect(md).toMatch(/\| mode \| P50 ms \| P90 ms \| P99 ms \| max ms \| GPU P50 ms \| low it\/s \| low it\/s between requests \| low CPU ms\/it \| low CPU cores \| holds \|/);
    for (const m of MODES) expect(md).toMatch(new RegExp(`^\\| ${m} \\|`, "m"));
    expect(md).toMatch(/\| tailguard \| [\d.]+ \(×[\d.]+\)/);
    expect(r.stdout).toContain("| tailguard |");

    // result.json lists the plots, SVG and PNG, as written
    expect(Object.keys(result.files).sort()).toEqual(["cdfPng", "cdfSvg", "markdown", "timelinePng", "timelineSvg"]);
    for (const f of Object.values(result.files) as string[]) expect(existsSync(f), f).toBe(true);
    // the timeline shows repetition 1; its holds strip has a bar for each hold of that run (on a busy 2-core machine a
    // short run can have none)
    const firstHolds = result.runs.find((x: { mode: string; repetition: number }) => x.mode === "tailguard" && x.repetition === 1).holds.count;
    for (const [name, series] of [["latency-cdf", ["high-alone", "native", "telemetry", "tailguard"]],
      ["latency-timeline", ["native", "telemetry", "tailguard", ...(firstHolds > 0 ? ["holds"] : [])]]] as const) {
      const svg = readFileSync(path.join(out, `${name}.svg`), "utf8");
      expect(svg).toMatch(/^<\?xml[^>]*\?>\s*<svg /);
      expectWellFormedXml(svg);
      for (const s of series) expect(svg, `${name}: ${s}`).toContain(`data-series="${s}"`);
      expectPlotPng(decodePng(readFileSync(path.join(out, `${name}.png`))), series.map((s) => COLORS[s]), `${name}.png`);
    }
  });

  it("fails, writing no results, when the shim does not attach", () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "tg-bench-noshim-")), "out");
    const r = bench(["--sim", "--out", out, "--duration", "0.5", "--repetitions", "1", "--modes", "high-alone,tailguard"],
      { TAILGUARD_SHIM: "/nonexistent/libtailguard.so" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/FAILED, no results written/);
    expect(r.stderr).toMatch(/the shim did not attach to the high worker/);
    expect(r.stderr).toMatch(/\/nonexistent\/libtailguard\.so.*cannot be preloaded/);
    expect(r.stdout).not.toContain("| mode |");
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });

  it("--shim-env reaches the tailguard mode only; the invoking environment's TAILGUARD_* settings reach no worker; --combine joins invocations; --rotate starts the mode order further on; without --out, results go to ./results/", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "tg-bench-combine-"));
    const args = ["--sim", "--duration", "0.5", "--repetitions", "1", "--modes", "high-alone,telemetry,tailguard", "--shim-env",
      "TAILGUARD_HOLDS=0,TAILGUARD_MIN_SHARE=20"];
    // TAILGUARD_DISABLE=1 in the environment would detach the shim from every worker, failing the attachment checks
    const runs = [1, 2].map((i) => bench([...args, "--rotate", String(i - 1), "--out", path.join(dir, `part${i}`)],
      { TAILGUARD_DISABLE: "1", TAILGUARD_HOLDS: "1" }));
    for (const r of runs) expect(r.status, r.stderr).toBe(0);
    const part = JSON.parse(readFileSync(path.join(dir, "part1", "result.json"), "utf8"));
    expect(part.scenario.shimEnv).toEqual({ TAILGUARD_HOLDS: "0", TAILGUARD_MIN_SHARE: "20" });
    const mech = (mode: string) => part.attachment.filter((a: any) => a.mode === mode && a.role === "low").flatMap((a: any) => a.mechanisms);
    expect(mech("tailguard")).toContain("min-share"); // from --shim-env
    expect(mech("tailguard")).not.toContain("holds"); // TAILGUARD_HOLDS=0 from --shim-env, not the environment's 1
    expect(mech("telemetry")).toEqual([]);
    const tailguardRun = part.runs.find((r: any) => r.mode === "tailguard");
    expect(tailguardRun.holds.count).toBe(0);

    const c = bench(["--combine", `${path.join(dir, "part1")},${path.join(dir, "part2")}`, "--out", path.join(dir, "all")]);
    expect(c.status, c.stderr).toBe(0);
    const all = JSON.parse(readFileSync(path.join(dir, "all", "result.json"), "utf8"));
    expect(all.repetitions).toBe(2);
    // the second invocation, rotated by one, ran its modes in the order a second repetition of one invocation would
    expect(all.runs.map((r: any) => `${r.mode}#${r.repetition}`)).toEqual(
      ["high-alone#1", "telemetry#1", "tailguard#1", "telemetry#2", "tailguard#2", "high-alone#2"]);
    expect(all.combinedFrom).toHaveLength(2);
    expect(all.summary.tailguard.runs).toBe(2);
    expect(readFileSync(path.join(dir, "all", "results.md"), "utf8")).toMatch(/combined from 2 invocations/);
    for (const f of ["latency-cdf.svg", "latency-cdf.png", "latency-timeline.svg", "latency-timeline.png"])
      expect(existsSync(path.join(dir, "all", f)), f).toBe(true);
    // another scenario does not combine; without --out, a run goes to ./results/tailguard-bench-SCENARIO-TIME
    const other = bench(["--sim", "--duration", "0.5", "--repetitions", "1", "--modes", "high-alone", "--rate", "20"], {}, dir);
    expect(other.status, other.stderr).toBe(0);
    const written = readdirSync(path.join(dir, "results"));
    expect(written).toEqual([expect.stringMatching(/^tailguard-bench-default-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d$/)]);
    const otherDir = path.join(dir, "results", written[0]);
    expect(other.stdout).toContain(`results in ${otherDir}`);
    const bad = bench(["--combine", `${path.join(dir, "part1")},${otherDir}`, "--out", path.join(dir, "bad")]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/ran another scenario/);
  });

  it("rejects bad input with one line", () => {
    for (const [args, message] of [
      [["--sim", "--scenario", "huge"], /unknown scenario "huge" \(known: default, intensive\)/],
      [["--sim", "--rate=-3"], /--rate "-3" is not a number/],
      [["--sim", "--repetitions", "2.5"], /--repetitions "2.5" is not a whole number/],
      [["--sim", "--rotate=-1"], /--rotate "-1" is not a whole number in \[0, 1000\]/],
      [["--sim", "--flavour", "jit"], /--flavour "jit" is not one of eager, graph/],
      [["--sim", "--modes", "native,turbo"], /unknown mode "turbo"/],
      [["--sim", "--high-cpus", "9999"], /names CPU 9999/],
      [["--sim", "--speed", "2"], /unknown option '--speed'/],
      [["--sim", "--shim-env", "TAILGUARD_PRIORITY=high"], /--shim-env "TAILGUARD_PRIORITY" is not a TAILGUARD_\* setting the bench lets you change/],
      [["--sim", "--shim-env", "TAILGUARD_HOLDS"], /--shim-env TAILGUARD_HOLDS needs a value/],
      [["--combine", "/nonexistent-a,/nonexistent-b", "--out", "/tmp/x"], /--combine: \/nonexistent-a\/result.json does not exist/],
    ] as const) {
      const r = bench([...args]);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});

// The raw runs are on the results branch (bench/results/README.md); the tables are printed from their figures in
// bench/results/figures/. A clone without the branch (a single-branch CI clone) checks the docs against the figures
// only.
describe("published H100 results", () => {
  type Run = { mode: string; repetition: number; high: { latency: { p50: number } } | null; low: { iterPerS: number } | null };
  const ref = resultsRef();
  const noBranch = "this clone has no `results` branch with the raw runs (git fetch origin results:results)";
  const load = (dir: string) => rawFiles()(`${dir}/result.json`);

  it("each case is three single-repetition invocations, every mode, attachment verified, joined unchanged", (ctx) => {
    ctx.skip(!ref, noBranch);
    for (const c of cases) {
      const all = load(`${benchRuns}/${c.dir}`);
      expect(all.runs.map((r: Run) => `${r.mode}:${r.repetition}`), c.dir)
        .toEqual([1, 2, 3].flatMap((rep) => MODES.map((m) => `${m}:${rep}`)));
      // telemetry and tailguard, high and low, three repetitions: each seen attached with its intended priority
      expect(all.attachment, c.dir).toHaveLength(12);
      for (const a of all.attachment) expect(a.verified && a.slotPriority === a.intendedPriority, `${c.dir} ${a.mode} ${a.role}`).toBe(true);
      for (const rep of [1, 2, 3]) {
        const part = load(`${benchRuns}/parts/${c.dir}-r${rep}`);
        expect(part.scenario.durationS, c.dir).toBeGreaterThanOrEqual(60);
        expect(part.scenario.high.flavour, c.dir).toBe(c.dir.endsWith("graph") ? "graph" : "eager");
        expect(part.backend, c.dir).toBe("torch");
        const mine = all.runs.filter((r: Run) => r.repetition === rep);
        part.runs.forEach((r: Run, i: number) => {
          expect(mine[i].high?.latency.p50, `${c.dir} r${rep} ${r.mode}`).toBe(r.high?.latency.p50);
          expect(mine[i].low?.iterPerS, `${c.dir} r${rep} ${r.mode}`).toBe(r.low?.iterPerS);
        });
      }
    }
  });

  it("bench/results/figures/ holds what each table's script takes out of the raw runs on the results branch", async (ctx) => {
    expect(readdirSync(path.join(root, "bench/results/figures")).sort()).toEqual(Object.keys(TABLES).map((t) => `${t}.json`).sort());
    ctx.skip(!ref, noBranch);
    const committed = Object.fromEntries(Object.keys(TABLES).map((t) => [t, publishedFigures(t)]));
    expect(await extractFigures(rawFiles())).toEqual(committed);
  }, 60_000);

  it("the batch-8 lever plan puts each variant in each position once over three repetitions", () => {
    const orders = [1, 2, 3].map((rep) => leversPlan(rep).map((v: { name: string }) => v.name));
    for (let pos = 0; pos < LEVER_VARIANTS.length; pos++)
      expect(new Set(orders.map((o) => o[pos])).size, `position ${pos}`).toBe(LEVER_VARIANTS.length);
    for (const o of orders) expect([...o].sort()).toEqual(LEVER_VARIANTS.map((v: { name: string }) => v.name).sort());
  });

  it("the tables in the READMEs and docs/scheduling.md are bench/gpu/bench-table.mjs's output from those figures", () => {
    const results = readFileSync(path.join(root, "bench/results/README.md"), "utf8");
    expect(results).toContain(medianTable());
    expect(results).toContain(goalTable());
    for (const doc of ["README.md", "docs/scheduling.md"])
      expect(readFileSync(path.join(root, doc), "utf8"), doc).toContain(goalTable());
  });

  it("the eager batch-8 pairs: every native/tailguard pair of one invocation and repetition, printed where published", () => {
    const ps = batch8Pairs();
    expect(ps).toHaveLength(3 + 4 + 6 + 4 + 6 + 4 + 3 + 4);
    expect(ps.filter((p) => p.pinned)).toHaveLength(4 + 3 + 4); // the h100-pinned runs, and only they
    for (const p of ps) {
      expect(p.native.iterPerS, p.source).toBeGreaterThan(100); // ResNet-50 b8 on an H100: 130-280 it/s
      expect(p.tailguard.iterPerS, p.source).toBeGreaterThan(100);
    }
    // the runs made with the CPU-time columns carry them for both modes
    expect(ps.filter((p) => p.native.cpuMsPerIter !== null && p.tailguard.cpuMsPerIter !== null)).toHaveLength(10 + 11);
    const table = batch8Table();
    expect(table).toMatch(/^orchestrator not pinned, 23 pairs: tailguard ÷ native median 0\.\d\d, geometric mean 0\.\d\d/m);
    expect(table).toMatch(/^orchestrator pinned, 11 pairs: tailguard ÷ native median 0\.\d\d, geometric mean 0\.\d\d/m);
    for (const doc of ["bench/results/README.md", "docs/scheduling.md"])
      expect(readFileSync(path.join(root, doc), "utf8"), doc).toContain(table);
  });

  it("the toggled runs: the table docs/scheduling.md publishes is the summary of their figures", () => {
    const summary = toggleSummary();
    expect(summary.split("\n").filter((l) => /^\| toggle-/.test(l))).toHaveLength(toggleRuns.length);
    expect(summary).toMatch(/^\| toggle-480s \| 480 s, 6 s \| – \| 27 \| 0\.\d\d ± 0\.\d\d \|/m);
    expect(summary).toMatch(/^\| the rest \|( \d+\.\d\d \|){8}$/m); // four runs with the breakdown, A and B each
    const doc = readFileSync(path.join(root, "docs/scheduling.md"), "utf8").replace(/^  /gm, "");
    expect(doc).toContain(summary);
  });
});
