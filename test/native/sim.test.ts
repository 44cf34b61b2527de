// The simulated GPU (native/sim): kernel durations, names, stream order, time slicing between processes,
// cuGetProcAddress, copies, graphs, HIP, recovery from stopped and killed owners, and a damaged device file.
// Timing bounds are strict below (the device cannot run faster than the work) and loose above (2 loaded cores).
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { beforeAll, describe, expect, it } from "vitest";
import { compileProgram, runProgram, simEnv, testDir } from "../support/native.js";

let cuda = "";
let hip = "";
let procaddr = "";

beforeAll(() => {
  cuda = compileProgram("sim_cuda.c", { cuda: true });
  hip = compileProgram("sim_hip.c", { hip: true });
  procaddr = compileProgram("sim_procaddr.c");
});

const MS = 1e6; // nanoseconds

/** key=value lines of a program's output. */
function kv(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of stdout.matchAll(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/gm)) out[m[1]] = m[2];
  return out;
}

interface Kernel {
  pid: number;
  stream: string;
  seq: number;
  name: string;
  start: number;
  done: number;
  device: number;
}

/** Every DIR/sim-trace.PID line, in file order per process. */
function readTrace(dir: string): Kernel[] {
  const kernels: Kernel[] = [];
  for (const file of readdirSync(dir).filter((f) => f.startsWith("sim-trace."))) {
    const pid = Number(file.slice("sim-trace.".length));
    for (const line of readFileSync(path.join(dir, file), "utf8").split("\n")) {
      if (!line) continue;
      const f = line.split(" ");
      expect(f).toHaveLength(6);
      kernels.push({ pid, stream: f[0], seq: Number(f[1]), name: f[2], start: Number(f[3]), done: Number(f[4]), device: Number(f[5]) });
    }
  }
  return kernels;
}

async function run(args: string[], env: NodeJS.ProcessEnv, program = cuda, timeoutMs = 60_000) {
  const r = await runProgram(program, args, { env, timeoutMs });
  if (r.code !== 0) throw new Error(`${path.basename(program)} ${args.join(" ")} exited ${r.code ?? r.signal}:\n${r.stderr}`);
  return { ...r, kv: kv(r.stdout) };
}

/** A long-running program whose output can be awaited while it runs. */
function start(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(cuda, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    async waitFor(text: string, timeoutMs = 20_000) {
      const t0 = Date.now();
      while (!stdout.includes(text)) {
        if (Date.now() - t0 > timeoutMs) throw new Error(`no "${text}" from ${args.join(" ")}: ${stdout} ${stderr}`);
        await sleep(5);
      }
    },
  };
}

function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2)[0];
}

function traceDir(dir: string): string {
  const t = path.join(dir, "trace");
  mkdirSync(t, { recursive: true });
  return t;
}

describe("simulated GPU: one process", () => {
  it("runs each kernel for the microseconds of its first argument; events time it", async () => {
    const dir = testDir("sim-dur");
    const trace = traceDir(dir);
    const r = await run(["durations", "20", "2000"], simEnv(dir, { TAILGUARD_SIM_TRACE: trace }));
    const total = Number(r.kv.total_ns);
    expect(total).toBeGreaterThanOrEqual(20 * 2 * MS); // the device cannot be faster than the work
    expect(total).toBeLessThan(20 * 2 * MS * 1.5 + 20 * MS);
    expect(Number(r.kv.submit_ns)).toBeLessThan(total / 4); // launches are asynchronous
    const ms = Number(r.kv.event_ms);
    expect(ms).toBeGreaterThanOrEqual(1.999);
    expect(ms).toBeLessThan(2.5);
    expect(r.kv.query_early).toBe("600"); // NOT_READY while the kernel runs
    expect(r.kv.stream_query_early).toBe("600");
    expect(r.kv.elapsed_early).toBe("600");
    const sleepy = readTrace(trace).filter((k) => k.name === "sleepy");
    expect(sleepy).toHaveLength(22); // the 0 µs warm-up, 20 measured, 1 timed by events
    expect(sleepy[0].device).toBe(0);
    for (const k of sleepy.slice(1)) {
      expect(k.device).toBe(2 * MS);
      expect(k.done - k.start).toBeGreaterThanOrEqual(2 * MS);
    }
  });

  it("blocks a launch while 1024 operations are pending, like a full push buffer", async () => {
    const dir = testDir("sim-full");
    const r = await run(["durations", "1100", "200"], simEnv(dir));
    // The 1025th launch must wait for the first kernel, and so on: ≥ 75 kernels of 200 µs before the last returns.
    expect(Number(r.kv.submit_ns)).toBeGreaterThanOrEqual(75 * 0.2 * MS);
    expect(Number(r.kv.total_ns)).toBeGreaterThanOrEqual(1100 * 0.2 * MS);
  });

  it("loads any image, finds any function name, and gives the name back", async () => {
    const dir = testDir("sim-names");
    const r = await run(["names"], simEnv(dir));
    expect(r.stdout).toContain("name=_Z6kernelPfi\n");
    expect(r.stdout).toContain("name=void at::native::vectorized_elementwise_kernel<4>(int)\n");
    expect(r.stdout.trim().endsWith("ok")).toBe(true);
  });

  it("reports its identity, and requires cuInit like the real driver", async () => {
    const dir = testDir("sim-id");
    const r = await run(["identity"], simEnv(dir));
    expect(r.kv).toMatchObject({
      count: "1",
      version: "13000",
      name: "tailguard simulated GPU",
      bus: "0000:00:00.0",
      mem: String(80 * 2 ** 30),
      sms: "132",
      cc: "9.0",
    });
    expect(r.kv.uuid).toMatch(/^[0-9a-f]{32}$/);
    const again = await run(["identity"], simEnv(dir));
    expect(again.kv.uuid).toBe(r.kv.uuid); // same device file, same UUID
    const other = await run(["identity"], simEnv(testDir("sim-id2")));
    expect(other.kv.uuid).not.toBe(r.kv.uuid);
  });

  it("refuses bad handles and arguments with the driver's error codes", async () => {
    await run(["errors"], simEnv(testDir("sim-err")));
  });

  it("keeps each stream's order, runs host functions in order, and serves per-thread default streams", async () => {
    const dir = testDir("sim-streams");
    const trace = traceDir(dir);
    const r = await run(["streams"], simEnv(dir, { TAILGUARD_SIM_TRACE: trace }));
    expect(r.stdout.trim().endsWith("ok")).toBe(true);
    const handles = new Map<string, number>();
    for (const m of r.stdout.matchAll(/^stream (\d+) (0x[0-9a-f]+)$/gm)) handles.set(m[2], Number(m[1]));
    expect(handles.size).toBe(4);
    expect(handles.get("0x0")).toBe(0); // the legacy default stream is traced as 0x0
    const kernels = readTrace(trace);
    // One worker executes everything in submission order: completions never go back in time.
    for (let i = 1; i < kernels.length; i++) expect(kernels[i].done).toBeGreaterThanOrEqual(kernels[i - 1].done);
    for (const [handle, index] of handles) {
      const mine = kernels.filter((k) => k.stream === handle);
      expect(mine).toHaveLength(12);
      mine.forEach((k, j) => {
        expect(k.seq).toBe(j);
        expect(k.name).toBe(`k${index}_${j}`);
        expect(k.device).toBe((((j * 7 + index * 3) % 5) * 150) * 1000);
        if (j > 0) expect(k.start).toBeGreaterThanOrEqual(mine[j - 1].done);
      });
    }
    const ptMain = kernels.filter((k) => k.name === "pt_main");
    const ptOther = kernels.filter((k) => k.name === "pt_other");
    expect(ptMain).toHaveLength(3);
    expect(ptOther).toHaveLength(3);
    expect(new Set(ptMain.map((k) => k.stream)).size).toBe(1);
    expect(new Set(ptOther.map((k) => k.stream)).size).toBe(1);
    expect(handles.has(ptMain[0].stream)).toBe(false);
    expect(ptOther[0].stream).not.toBe(ptMain[0].stream); // one per-thread stream per thread
    expect(ptOther.map((k) => k.seq)).toEqual([0, 1, 2]);
  });

  it("copies and fills real memory in stream order (sync and async, 1D, 2D, 3D)", async () => {
    const r = await run(["copies"], simEnv(testDir("sim-copy")));
    expect(r.stdout.trim()).toBe("ok");
  });

  it("captures launches into a graph without running them, then replays the graph", async () => {
    const dir = testDir("sim-graph");
    const trace = traceDir(dir);
    const r = await run(["graph"], simEnv(dir, { TAILGUARD_SIM_TRACE: trace }));
    expect(r.stdout.trim().endsWith("ok")).toBe(true);
    expect(Number(r.kv.launch_ns)).toBeGreaterThanOrEqual(2 * 13 * MS); // twice 3 × 4 ms + 1 ms
    expect(Number(r.kv.capture_ns)).toBeLessThan(4 * MS); // capturing ran nothing
    const kernels = readTrace(trace);
    const names = ["g0", "g1", "g2", "g_side"];
    expect(kernels.map((k) => k.name)).toEqual([...names, ...names]);
    expect(kernels.every((k) => k.stream === r.kv.stream)).toBe(true);
    expect(kernels.map((k) => k.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

});

describe("simulated GPU: cuGetProcAddress", () => {
  it("hands out the versioned and per-thread exports, the same pointers dlsym gives", async () => {
    const r = await run([], simEnv(testDir("sim-proc")), procaddr);
    expect(r.stdout).toContain("declared=107 missing=0");
    const rows = new Map<string, { rc: number; status: number; sym: string; same: boolean }>();
    for (const line of r.stdout.split("\n")) {
      const f = line.split(" ");
      if (f.length !== 7) continue;
      rows.set(`${f[0]} ${f[1]} ${f[2]}`, { rc: +f[3], status: +f[4], sym: f[5], same: f[6] === "1" });
    }
    const found = (name: string, version: number, flags: number, sym: string) => {
      expect(rows.get(`${name} ${version} ${flags}`), `${name} ${version} ${flags}`).toEqual({ rc: 0, status: 0, sym, same: true });
    };
    const missing = (name: string, version: number, status: number) => {
      for (const flags of [0, 1, 2]) expect(rows.get(`${name} ${version} ${flags}`)).toEqual({ rc: 500, status, sym: "NULL", same: false });
    };
    const both = (name: string, version: number, sym: string, ptsz = sym) => {
      found(name, version, 0, sym);
      found(name, version, 1, sym);
      found(name, version, 2, ptsz);
    };
    both("cuInit", 13000, "cuInit");
    both("cuGetProcAddress", 13000, "cuGetProcAddress_v2");
    both("cuGetProcAddress", 11030, "cuGetProcAddress");
    both("cuLaunchKernel", 13000, "cuLaunchKernel", "cuLaunchKernel_ptsz");
    both("cuLaunchKernelEx", 13000, "cuLaunchKernelEx", "cuLaunchKernelEx_ptsz");
    both("cuLaunchCooperativeKernel", 13000, "cuLaunchCooperativeKernel", "cuLaunchCooperativeKernel_ptsz");
    both("cuMemcpyHtoD", 13000, "cuMemcpyHtoD_v2", "cuMemcpyHtoD_v2_ptds");
    both("cuMemcpyDtoHAsync", 13000, "cuMemcpyDtoHAsync_v2", "cuMemcpyDtoHAsync_v2_ptsz");
    both("cuMemcpy", 13000, "cuMemcpy", "cuMemcpy_ptds");
    both("cuMemcpy3D", 13000, "cuMemcpy3D_v2", "cuMemcpy3D_v2_ptds");
    both("cuMemsetD32", 13000, "cuMemsetD32_v2", "cuMemsetD32_v2_ptds");
    both("cuMemsetD2D8Async", 13000, "cuMemsetD2D8Async", "cuMemsetD2D8Async_ptsz");
    both("cuStreamDestroy", 13000, "cuStreamDestroy_v2");
    both("cuEventDestroy", 13000, "cuEventDestroy_v2");
    both("cuStreamSynchronize", 13000, "cuStreamSynchronize", "cuStreamSynchronize_ptsz");
    both("cuStreamBeginCapture", 13000, "cuStreamBeginCapture_v2", "cuStreamBeginCapture_v2_ptsz");
    both("cuStreamEndCapture", 13000, "cuStreamEndCapture", "cuStreamEndCapture_ptsz");
    both("cuDevicePrimaryCtxRelease", 13000, "cuDevicePrimaryCtxRelease_v2");
    both("cuDeviceGetUuid", 13000, "cuDeviceGetUuid_v2");
    both("cuDeviceGetUuid", 11000, "cuDeviceGetUuid");
    both("cuCtxCreate", 13000, "cuCtxCreate_v2");
    both("cuMemAlloc", 13000, "cuMemAlloc_v2");
    both("cuMemFree", 13000, "cuMemFree_v2");
    both("cuDeviceTotalMem", 13000, "cuDeviceTotalMem_v2");
    both("cuGraphInstantiate", 13000, "cuGraphInstantiateWithFlags");
    both("cuGraphLaunch", 13000, "cuGraphLaunch", "cuGraphLaunch_ptsz");
    both("cuEventRecord", 13000, "cuEventRecord", "cuEventRecord_ptsz");
    both("cuLaunchHostFunc", 13000, "cuLaunchHostFunc", "cuLaunchHostFunc_ptsz");
    both("cuFuncGetName", 13000, "cuFuncGetName");
    missing("cuMemcpyHtoD", 3000, 2); // the v1 exports are not part of this ABI: version not sufficient
    missing("cuStreamDestroy", 3020, 2);
    missing("cuStreamBeginCapture", 10000, 2);
    missing("cuGraphInstantiate", 11040, 2);
    missing("cuMemcpyHtoD_v2", 13000, 1); // only base names are looked up
    missing("cuNoSuchFunction", 13000, 1);
    missing("(empty)", 13000, 1);
    expect(r.kv.null_status).toBe("0");
    expect(r.stdout).toContain("four_args=0 same=1");
    expect(r.kv.null_pfn).toBe("1");
  });
});

describe("simulated GPU: HIP", () => {
  it("launches by host function pointer and by module, times hipExt launches, copies, syncs, replays graphs", async () => {
    const dir = testDir("sim-hip");
    const trace = traceDir(dir);
    const r = await run([], simEnv(dir, { TAILGUARD_SIM_TRACE: trace }), hip);
    expect(r.stdout.trim().endsWith("ok")).toBe(true);
    expect(r.kv).toMatchObject({ count: "1", device: "0", name: "tailguard simulated GPU", bus: "0000:00:00.0" });
    expect(Number(r.kv.version)).toBeGreaterThanOrEqual(60000000);
    expect(r.kv.name_a).toBe("sim_hip_stub_a");
    expect(r.kv.name_anon).toBe(r.kv.expect_anon);
    expect(r.kv.module_name).toBe("_Z10hip_modulePf");
    expect(Number(r.kv.three_ns)).toBeGreaterThanOrEqual(9 * MS);
    expect(Number(r.kv.module_ns)).toBeGreaterThanOrEqual(5 * MS);
    expect(Number(r.kv.graph_ns)).toBeGreaterThanOrEqual(6 * MS);
    for (const key of ["ext_ms", "ext_module_ms"]) {
      expect(Number(r.kv[key])).toBeGreaterThanOrEqual(3.999);
      expect(Number(r.kv[key])).toBeLessThan(4.5);
    }
    expect(Number(r.kv.ext_total_ms)).toBeGreaterThanOrEqual(7.999);
    const kernels = readTrace(trace);
    const onStream = kernels.filter((k) => k.stream === r.kv.stream);
    expect(onStream.map((k) => k.name)).toEqual([
      "sim_hip_stub_a", "sim_hip_stub_b", r.kv.expect_anon, "_Z10hip_modulePf", "_Z10hip_modulePf",
      "sim_hip_stub_a", "_Z10hip_modulePf", "sim_hip_stub_a",
      "sim_hip_stub_b", "_Z10hip_modulePf", "sim_hip_stub_b", "_Z10hip_modulePf",
    ]);
    expect(onStream.map((k) => k.device / 1000)).toEqual([3000, 3000, 3000, 3000, 2000, 4000, 4000, 20000, 1500, 1500, 1500, 1500]);
    expect(onStream.map((k) => k.seq)).toEqual([...Array(12).keys()]);
    // The per-thread default stream is its own stream.
    expect(kernels.filter((k) => k.stream !== r.kv.stream).map((k) => k.name)).toEqual(["sim_hip_stub_b"]);
    // CUDA and HIP processes naming the same file share one device.
    const id = await run(["identity"], simEnv(dir));
    expect(id.kv.uuid).toBe(r.kv.uuid);
  });
});

describe("simulated GPU: one device shared by processes", () => {
  /** Two processes, each 10 × 5 ms kernels, started together on one device. */
  async function pair(slice?: string) {
    const dir = testDir("sim-pair");
    const trace = traceDir(dir);
    const env = simEnv(dir, { TAILGUARD_SIM_TRACE: trace, ...(slice ? { TAILGUARD_SIM_SLICE_US: slice } : {}) });
    await Promise.all([run(["run", "10", "5000", "A"], env), run(["run", "10", "5000", "B"], env)]);
    const kernels = readTrace(trace).sort((a, b) => a.done - b.done);
    expect(kernels).toHaveLength(20);
    for (const k of kernels) expect(k.device).toBe(5 * MS);
    const a = kernels.filter((k) => k.name === "A");
    const b = kernels.filter((k) => k.name === "B");
    const first = Math.min(...kernels.map((k) => k.start));
    const last = Math.max(...kernels.map((k) => k.done));
    // Exclusive (never faster than the sum of the work) and work-conserving (no idle gaps beyond scheduling noise).
    expect(last - first).toBeGreaterThanOrEqual(100 * MS);
    expect(last - first).toBeLessThan(160 * MS);
    // While both had work: who completed, in completion order, and how long each kernel took from first start.
    const from = Math.max(a[0].start, b[0].start);
    const to = Math.min(a[9].done, b[9].done);
    expect(to - from).toBeGreaterThan(40 * MS); // they did overlap
    const both = kernels.filter((k) => k.start >= from && k.done <= to);
    let switches = 0;
    for (let i = 1; i < both.length; i++) if (both[i].name !== both[i - 1].name) switches++;
    const stretched = both.filter((k) => k.done - k.start >= 1.5 * k.device).length / both.length;
    return { both, runLength: both.length / (switches + 1), stretched };
  }

  it("runs one process's kernels uninterrupted", async () => {
    const dir = testDir("sim-solo");
    const trace = traceDir(dir);
    const r = await run(["run", "10", "5000", "solo"], simEnv(dir, { TAILGUARD_SIM_TRACE: trace }));
    expect(Number(r.kv.total_ns)).toBeGreaterThanOrEqual(50 * MS);
    const spans = readTrace(trace).map((k) => k.done - k.start).sort((x, y) => x - y);
    expect(spans).toHaveLength(10);
    expect(spans[0]).toBeGreaterThanOrEqual(5 * MS);
    expect(spans[5]).toBeLessThan(5.5 * MS);
  });

  it("time-slices two processes in 1 ms slices, round robin", async () => {
    const { both, runLength, stretched } = await pair();
    expect(both.length).toBeGreaterThanOrEqual(6);
    expect(runLength).toBeLessThan(1.5); // completions alternate A, B, A, B
    expect(stretched).toBeGreaterThanOrEqual(0.8); // each 5 ms kernel shares the device: ~10 ms from start to end
  });

  it("follows TAILGUARD_SIM_SLICE_US: 20 ms slices run several kernels per turn", async () => {
    const { both, runLength, stretched } = await pair("20000");
    expect(both.length).toBeGreaterThanOrEqual(6);
    expect(runLength).toBeGreaterThanOrEqual(2.5); // A A A A B B B B ...
    expect(stretched).toBeLessThan(0.5); // only kernels that straddle a slice boundary wait for the other
  });

  it("creates the device file once when many processes start together", async () => {
    const dir = testDir("sim-race");
    const results = await Promise.all([...Array(6)].map(() => run(["identity"], simEnv(dir))));
    expect(new Set(results.map((r) => r.kv.uuid)).size).toBe(1);
    for (const r of results) expect(r.stderr).toBe("");
    expect(statSync(path.join(dir, "sim-gpu")).size).toBe(8320);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
  });
});

describe("simulated GPU: owners that stop or die", () => {
  async function hog(dir: string) {
    const env = simEnv(dir);
    const h = start(["run", "20", "50000", "hog"], env); // 1 s of 50 ms kernels
    await h.waitFor("launched");
    await sleep(100); // it owns the device now, mid-kernel
    return h;
  }

  it("moves on from an owner stopped with SIGSTOP, which resumes correctly after SIGCONT", async () => {
    const dir = testDir("sim-stop");
    const h = await hog(dir);
    try {
      h.child.kill("SIGSTOP");
      const v = await run(["run", "10", "2000", "victim"], simEnv(dir), cuda, 10_000);
      // 20 ms of own work; a stopped owner costs at most one slice + 2 ms grace, not its 50 ms kernel.
      expect(Number(v.kv.total_ns)).toBeLessThan(40 * MS);
      expect(processState(h.child.pid!)).toBe("T");
      h.child.kill("SIGCONT");
      const end = await h.exited;
      expect(end.code).toBe(0);
      expect(h.stdout()).toContain("total_ns=");
    } finally {
      h.child.kill("SIGKILL");
    }
  });

  it("moves on when the owner is stopped while another process already waits", async () => {
    const dir = testDir("sim-stop2");
    const h = await hog(dir);
    try {
      const victim = run(["run", "25", "2000", "victim"], simEnv(dir), cuda, 10_000);
      await sleep(30);
      h.child.kill("SIGSTOP");
      const v = await victim; // would hang until SIGCONT if the stopped owner kept the device
      // 50 ms of own work, shared 1:1 with the hog for ~30 ms, then a slice + grace: far below the hog's kernels.
      expect(Number(v.kv.total_ns)).toBeLessThan(150 * MS);
      expect(processState(h.child.pid!)).toBe("T");
      h.child.kill("SIGCONT");
      expect((await h.exited).code).toBe(0);
    } finally {
      h.child.kill("SIGKILL");
    }
  });

  it("reclaims the device from an owner killed with SIGKILL, waiting or not", async () => {
    const dir = testDir("sim-kill");
    let h = await hog(dir);
    h.child.kill("SIGKILL");
    await h.exited;
    const v = await run(["run", "10", "2000", "victim"], simEnv(dir), cuda, 10_000);
    expect(Number(v.kv.total_ns)).toBeLessThan(40 * MS);

    h = await hog(dir);
    const victim = run(["run", "25", "2000", "victim"], simEnv(dir), cuda, 10_000);
    await sleep(30);
    h.child.kill("SIGKILL");
    await h.exited;
    expect(Number((await victim).kv.total_ns)).toBeLessThan(150 * MS);
  });
});

describe("simulated GPU: a damaged device file", () => {
  async function withFile(content: Buffer | "dir") {
    const dir = testDir("sim-corrupt");
    const file = path.join(dir, "sim-gpu");
    if (content === "dir") mkdirSync(file);
    else writeFileSync(file, content);
    const r = await run(["durations", "3", "1000"], simEnv(dir));
    expect(Number(r.kv.total_ns)).toBeGreaterThanOrEqual(3 * MS);
    const lines = r.stderr.split("\n").filter(Boolean);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^tailguard-sim\[\d+\]: warning: simulated GPU file .*sim-gpu: .*private simulated GPU/);
    if (content !== "dir") expect(readFileSync(file).equals(content)).toBe(true); // left alone
    return lines[0];
  }

  it("warns once and runs on a private device when the file is garbage", async () => {
    expect(await withFile(Buffer.alloc(8320, 0xab))).toContain("not a compatible tailguard simulated GPU");
  });

  it("warns once when the file is too short or is a directory", async () => {
    expect(await withFile(Buffer.from("short"))).toContain("5 bytes long");
    expect(await withFile("dir")).toContain("cannot open it");
  });

  it("warns once when the file comes from another version", async () => {
    const dir = testDir("sim-version");
    await run(["identity"], simEnv(dir)); // a good file
    const file = path.join(dir, "sim-gpu");
    const good = readFileSync(file);
    const old = Buffer.from(good);
    old.writeUInt32LE(99, 8); // version
    expect(await withFile(old)).toMatch(/version 99/);
  });
});
