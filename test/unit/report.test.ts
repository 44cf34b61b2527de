// `tailguard report` (agent/src/cli/report.ts): percentile tables from a real recording on the simulated GPU, from
// interval logs (tailguard's and another writer's), and a clear error for anything else.
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { build, HistogramLogWriter } from "hdr-histogram-js";
import { describe, expect, it } from "vitest";

import { Histograms, IntervalLog } from "../../agent/src/telemetry/histograms.js";
import { formatNs, formatReport, report, REPORT_LIMITS } from "../../agent/src/cli/report.js";
import { nativeBuild, root, runProgram, testDir } from "../support/native.js";
import { cli, recordRun } from "../support/tailguard.js";

const workload = path.join(nativeBuild, "tg-workload");

/** The value HdrHistogram means by percentile p: the one at rank round(p% of n), at least the first. */
const exactPercentile = (sorted: number[], p: number) => sorted[Math.max(1, Math.round((p / 100) * sorted.length)) - 1];
const expectWithinPrecision = (actual: number, exact: number) =>
  expect(Math.abs(actual - exact), `${actual} vs exact ${exact}`).toBeLessThanOrEqual(exact / 1000);
const tailguard = (args: string[]) => runProgram(process.execPath, [cli, ...args]);

describe("tailguard report", () => {
  it("a real recording: request latency, launch time and holds per process, as the file has them", async () => {
    const dir = testDir("report");
    const rec = await recordRun(dir, [workload, "requests", "--rate", "100", "--count", "40", "--kernels", "4", "--kernel-us", "300"]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    const [file] = readdirSync(dir).filter((f) => /^record-.*\.jsonl$/.test(f)).map((f) => path.join(dir, f));
    const attach = rec.of("process").find((l) => l.op === "attach")!;
    const detach = rec.of("process").find((l) => l.op === "detach")!;
    const windows = rec.of("window").filter((l) => l.op === "end").map((l) => l.dur as number).sort((a, b) => a - b);
    const launchTimes = rec.of("launch").filter((l) => typeof l.dur === "number").map((l) => l.dur as number).sort((a, b) => a - b);
    expect(windows.length).toBe(40);
    expect(launchTimes.length).toBeGreaterThan(0);

    const r = await report(file);
    expect(r.format).toBe("recording");
    const key = { pid: attach.pid, priority: 0, gpu: detach.gpu.uuid };
    expect(key.gpu).toMatch(/^GPU-/);
    const latency = r.series.find((s) => s.metric === "request_latency")!;
    expect(latency).toMatchObject({ key, count: windows.length, min: windows[0], max: windows[windows.length - 1] });
    expect(latency.command).toBe(attach.cmd.join(" "));
    for (const [label, p] of [["p50", 50], ["p90", 90], ["p99", 99]] as const)
      expectWithinPrecision(latency.percentiles[label], exactPercentile(windows, p));
    const launch = r.series.find((s) => s.metric === "launch_api_time")!;
    expect(launch).toMatchObject({ key, count: launchTimes.length, max: launchTimes[launchTimes.length - 1] });
    expectWithinPrecision(launch.percentiles.p50, exactPercentile(launchTimes, 50));
    // alone on its GPU: never held, so no hold series
    expect(rec.of("hold")).toEqual([]);
    // the device times of each window (docs/gpu-time.md): GPU time, and queue delay from the window's begin
    const begins = new Map(rec.of("window").filter((l) => l.op === "end").map((l) => [l.window, l.t as number]));
    const device = rec.of("gpu_time").filter((l) => l.op === "window");
    expect(device.length).toBe(40);
    const gpuTimes = device.map((l) => l.gpu_end - l.gpu_start).sort((a, b) => a - b);
    const queueDelays = device.map((l) => Math.max(0, l.gpu_start - begins.get(l.window)!)).sort((a, b) => a - b);
    const gpu = r.series.find((s) => s.metric === "request_gpu_time")!;
    expect(gpu).toMatchObject({ key, count: 40, max: gpuTimes[39] });
    expectWithinPrecision(gpu.percentiles.p50, exactPercentile(gpuTimes, 50));
    expect(gpu.percentiles.p50).toBeGreaterThan(4 * 300_000 * 0.95); // four 300 µs kernels
    const queue = r.series.find((s) => s.metric === "request_queue_delay")!;
    expect(queue).toMatchObject({ key, count: 40 });
    expectWithinPrecision(queue.percentiles.p99, exactPercentile(queueDelays, 99));
    expect(r.series.map((s) => s.metric)).toEqual(["request_latency", "launch_api_time", "request_gpu_time", "request_queue_delay"]);

    const table = await tailguard(["report", file]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`${file} (recording)`);
    expect(lines[2]).toMatch(/^METRIC\s+PID\s+PRIO\s+GPU\s+COUNT\s+P50\s+P90\s+P99\s+P99\.9\s+P99\.99\s+MAX\s+COMMAND$/);
    const row = lines.find((l) => l.startsWith("request_latency"))!;
    const cells = row.split(/\s{2,}/);
    expect(cells.slice(0, 5)).toEqual(["request_latency", String(key.pid), "0", key.gpu.slice(0, 12), "40"]);
    expect(cells.slice(5, 11)).toEqual(
      [latency.percentiles.p50, latency.percentiles.p90, latency.percentiles.p99, latency.percentiles.p999,
        latency.percentiles.p9999, latency.max].map(formatNs),
    );
    expect(cells[5]).toMatch(/^\d+(\.\d+)?(µs|ms)$/);
    expect(cells[11]).toMatch(/tg-workload requests --rate 100/);

    const json = await tailguard(["report", "--json", file]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(r)));
  });

  it("a recording's holds, processes, execs and GPUs: each duration goes to its process's series", async () => {
    const file = path.join(testDir("report-lines"), "lines.jsonl");
    const gpu = { ordinal: 0, uuid: "GPU-11111111-2222-3333-4444-555555555555", name: "g", pci: "0000:01:00.0" };
    const lines = [
      { kind: "recording", format: 1, command: ["sh"] },
      { kind: "process", op: "attach", pid: 10, cmd: ["server", "--port", "1"], priority: 10 },
      { kind: "process", op: "attach", pid: 20, cmd: ["batch"], priority: -10 },
      { kind: "launch", op: "kernel", pid: 10, t: 1, dur: 3000, kernel: "k" },
      { kind: "launch", op: "kernel", pid: 10, t: 2, kernel: "k" }, // not timed
      { kind: "window", op: "begin", pid: 10, t: 1, dur: 0, window: 1 },
      { kind: "hold", op: "priority", pid: 20, t: 5, dur: 700_000, priority: -10, cause_pid: 10 },
      { kind: "hold", op: "priority", pid: 20, t: 6, dur: 900_000, priority: -10, cause_pid: 10 },
      { kind: "window", op: "end", pid: 10, t: 1, dur: 2_000_000, window: 1, launches: 2, streams: 1 },
      { kind: "window", op: "end", pid: 20, t: 1, dur: 5_000_000_000, window: 1, launches: 9, streams: 1 },
      { kind: "process", op: "detach", pid: 10, ended: "exit", gpu },
      // pid 20 execs: its new image attaches with another priority; it never detaches (still running)
      { kind: "process", op: "attach", pid: 20, cmd: ["batch2"], priority: 0, exec_generation: 1 },
      { kind: "window", op: "end", pid: 20, t: 9, dur: 4_000_000, window: 1, launches: 1, streams: 1 },
    ];
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const r = await report(file);
    expect(r.series.map((s) => [s.metric, s.key.pid, s.key.priority, s.key.gpu, s.count, s.max, s.command])).toEqual([
      ["request_latency", 10, 10, gpu.uuid, 1, 2_000_000, "server --port 1"],
      ["request_latency", 20, -10, "unknown", 1, 5_000_000_000, "batch"],
      ["request_latency", 20, 0, "unknown", 1, 4_000_000, "batch2"],
      ["hold_time", 20, -10, "unknown", 2, 900_000, "batch"],
      ["launch_api_time", 10, 10, gpu.uuid, 1, 3000, "server --port 1"],
    ]);
    expectWithinPrecision(r.series[3].percentiles.p50, 700_000);
    expect(formatReport(r).find((l) => l.startsWith("hold_time"))).toMatch(
      /^hold_time\s+20\s+-10\s+unknown\s+2\s+700µs\s+900µs\s+900µs\s+900µs\s+900µs\s+900µs\s+batch$/,
    );
  });

  it("kernel times (kernel_time lines): a kernel_gpu_time series per process, and the top kernels by device time", async () => {
    const file = path.join(testDir("report-kernels"), "kernels.jsonl");
    const kt = (pid: number, kernel: string, ns: number, op = "kernel") =>
      ({ kind: "kernel_time", op, pid, tid: pid, t: 9, launch: 1, gpu_start: 1000, gpu_end: 1000 + ns, kernel });
    const lines = [
      { kind: "recording", format: 1, command: ["sh"] },
      { kind: "process", op: "attach", pid: 10, cmd: ["server"], priority: 0 },
      kt(10, "gemm", 3_000_000), kt(10, "gemm", 3_000_000), kt(10, "relu", 1_000_000), kt(11, "relu", 1_000_000),
      kt(10, "", 5_000_000, "memcpy"), // copies are not kernels
      { kind: "kernel_time", op: "dropped", pid: 10, tid: 0, t: 9, count: 3 },
      { ...kt(10, "bad", 1), gpu_end: 0 }, // end before start: skipped, said
    ];
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const r = await report(file);
    expect(r.series.map((s) => [s.metric, s.key.pid, s.count, s.max])).toEqual([
      ["kernel_gpu_time", 10, 3, 3_000_000], ["kernel_gpu_time", 11, 1, 1_000_000]]);
    expect(r.kernels).toEqual([
      { kernel: "gemm", count: 2, totalNs: 6_000_000, meanNs: 3_000_000, share: 0.75 },
      { kernel: "relu", count: 2, totalNs: 2_000_000, meanNs: 1_000_000, share: 0.25 },
    ]);
    expect(r.skipped.lines).toBe(1);
    const table = formatReport(r);
    const at = table.indexOf("top kernels by device time (kernel_time lines, all processes):");
    expect(at).toBeGreaterThan(0);
    expect(table.slice(at + 1).map((l) => l.split(/\s{2,}/))).toEqual([
      ["KERNEL", "COUNT", "DEVICE TIME", "SHARE", "MEAN"], ["gemm", "2", "6.00ms", "75.0%", "3.00ms"], ["relu", "2", "2.00ms", "25.0%", "1.00ms"]]);
  });

  it("an interval log: tailguard's series by tag, another writer's tags as they are", async () => {
    const dir = testDir("report-hlog");
    const ours = path.join(dir, "ours.hlog");
    const h = new Histograms({ intervals: true });
    const log = new IntervalLog(ours, h, 1_795_000_000_000);
    const key = { pid: 77, priority: 10, gpu: "GPU-0badcafe-1111-2222-3333-444455556666" };
    for (let i = 1; i <= 1000; i++) h.record("request_latency", key, i * 1000);
    log.writeInterval(1_795_000_000_000, 1_795_000_001_000);
    for (let i = 1001; i <= 2000; i++) h.record("request_latency", key, i * 1000);
    h.record("hold_time", key, 123_456);
    log.writeInterval(1_795_000_001_000, 1_795_000_002_000);
    log.close();
    h.close();
    const r = await report(ours);
    expect(r.format).toBe("interval-log");
    expect(r.other).toEqual([]);
    expect(r.series.map((s) => [s.metric, s.key, s.count])).toEqual([
      ["request_latency", key, 2000],
      ["hold_time", key, 1],
    ]);
    expectWithinPrecision(r.series[0].percentiles.p50, 1_000_000);
    expectWithinPrecision(r.series[0].percentiles.p99, 1_980_000);
    expect(formatReport(r)[0]).toBe(`${ours} (HdrHistogram interval log)`);

    // a log written by hdr-histogram-js's own writer (untagged and tagged lines, microseconds)
    const theirs = path.join(dir, "theirs.hlog");
    let text = "";
    const writer = new HistogramLogWriter((s) => (text += s));
    writer.outputLogFormatVersion();
    writer.outputStartTime(1_795_000_000_000);
    writer.outputLegend();
    for (const tag of [undefined, "db-query"]) {
      const hist = build();
      for (let i = 1; i <= 100; i++) hist.recordValue(tag ? i * 10 : i);
      if (tag) hist.tag = tag;
      writer.outputIntervalHistogram(hist, 0, 1);
    }
    writeFileSync(theirs, text);
    const other = await report(theirs);
    expect(other.series).toEqual([]);
    expect(other.other.map((o) => [o.tag, o.count, o.max])).toEqual([
      ["NO TAG", 100, 100],
      ["db-query", 100, 1000],
    ]);
    const table = await tailguard(["report", theirs]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^db-query\s+-\s+-\s+-\s+100\s+500ns\s+900ns\s+990ns\s+1\.00µs\s+1\.00µs\s+1\.00µs$/m);
  });

  it("anything else: one clear line naming the file, exit status 1", async () => {
    const dir = testDir("report-bad");
    const cases: [string, string, RegExp][] = [
      ["notes.txt", "hello\nworld\n", /is not a tailguard recording .* or an HdrHistogram interval log$/],
      ["other.jsonl", '{"kind":"launch","pid":1}\n', /is not a tailguard recording/],
      ["empty.jsonl", "", /is not a tailguard recording/],
      ["long.jsonl", `{"kind":"recording","pad":"${"x".repeat(2 ** 20)}"}\n`, /is not a tailguard recording/],
    ];
    for (const [name, content, message] of cases) {
      const file = path.join(dir, name);
      writeFileSync(file, content);
      await expect(report(file), name).rejects.toThrow(message);
      const r = await tailguard(["report", file]);
      expect(r.code, name).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr.trimEnd().split("\n"), name).toHaveLength(1);
      expect(r.stderr, name).toMatch(new RegExp(`^tailguard report: .*${name.replace(".", "\\.")}`));
    }
    const missing = await tailguard(["report", path.join(dir, "missing.jsonl")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^tailguard report: cannot read .*missing\.jsonl: ENOENT/);
    expect((await tailguard(["report"])).code).toBe(2);
  });

  it("skips the lines it cannot use, counts them and says which on stderr, and reports the rest", async () => {
    const file = path.join(testDir("report-skip"), "garbled.jsonl");
    const gpu = { uuid: "GPU-11111111-2222-3333-4444-555555555555" };
    const lines = [
      JSON.stringify({ kind: "recording", format: 1 }),
      JSON.stringify({ kind: "process", op: "attach", pid: 10, cmd: ["server"], priority: 10 }),
      JSON.stringify({ kind: "window", op: "end", pid: 10, t: 1, dur: 2_000_000, window: 1 }),
      '{"kind":"window","op":"end","pid":10,"dur":12', // 4: cut short
      "not json at all",
      JSON.stringify({ kind: "process", op: "detach", pid: 10, gpu: { uuid: 5 } }), // 6: what crashed the report
      JSON.stringify({ kind: "window", op: "end", pid: 10, dur: "3" }),
      JSON.stringify({ kind: "hold", op: "priority", pid: -1, dur: 5 }),
      '["kind","dur"]',
      '{"kind":"window","op":"end","pid":10,"dur":1e999}', // 10: Infinity
      `{"kind":"launch","pid":10,"dur":1,"pad":"${"x".repeat(2 ** 20)}"}`, // 11: over the line limit
      JSON.stringify({ kind: "window", op: "end", pid: 10, t: 2, dur: 4_000_000, window: 2 }),
      JSON.stringify({ kind: "process", op: "attach", pid: 20, cmd: ["batch"], priority: "high" }),
      JSON.stringify({ kind: "process", op: "detach", pid: 30, gpu }),
      '{"dur":1}',
      "{}", // a line the report does not use: not parsed, not counted
      JSON.stringify({ kind: "launch", op: "kernel", pid: 10, t: 3, kernel: "k" }), // untimed: fine
    ];
    writeFileSync(file, lines.join("\n") + "\n");
    const r = await report(file);
    expect(r.series.map((s) => [s.metric, s.key.pid, s.key.priority, s.key.gpu, s.count, s.max, s.command])).toEqual([
      ["request_latency", 10, 10, "unknown", 2, 4_000_000, "server"],
    ]);
    expect(r.skipped).toEqual({
      lines: 10,
      first: [
        { line: 4, problem: "not a JSON object" },
        { line: 5, problem: "not a JSON object" },
        { line: 6, problem: "gpu.uuid is 5, not a string" },
        { line: 7, problem: 'dur is "3", not a duration in nanoseconds' },
        { line: 8, problem: "pid is -1, not a process id" },
        { line: 9, problem: "not a JSON object" },
        { line: 10, problem: "dur is Infinity, not a duration in nanoseconds" },
        { line: 11, problem: "longer than 1,048,576 characters" },
        { line: 13, problem: 'priority is "high", not an integer' },
        { line: 15, problem: "kind is missing, not a string" },
      ],
    });
    const cli = await tailguard(["report", file]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^request_latency\s+10\s+10\s+unknown\s+2\s/m);
    expect(cli.stderr).toBe(`tailguard report: ${file}: skipped 10 lines that could not be read, not in the report: line 4: ` +
      "not a JSON object; line 5: not a JSON object; line 6: gpu.uuid is 5, not a string; 7 more (--json lists them)\n");
    const json = await tailguard(["report", "--json", file]);
    expect(JSON.parse(json.stdout).skipped).toEqual(r.skipped);
  });

  it("an interval log's lines that do not decode are skipped; the intervals around them are added up", async () => {
    const file = path.join(testDir("report-hlog-skip"), "mixed.hlog");
    const h = new Histograms({ intervals: true });
    const key = { pid: 5, priority: 0, gpu: "GPU-0badcafe-1111-2222-3333-444455556666" };
    const log = new IntervalLog(file, h, 1_795_000_000_000);
    for (let i = 1; i <= 100; i++) h.record("request_latency", key, i * 1000);
    log.writeInterval(1_795_000_000_000, 1_795_000_001_000);
    for (let i = 101; i <= 200; i++) h.record("request_latency", key, i * 1000);
    log.writeInterval(1_795_000_001_000, 1_795_000_002_000);
    log.close();
    h.close();
    // two bad lines between the two intervals
    const text = readFileSync(file, "utf8").split("\n");
    text.splice(6, 0, "this is not a line of the format", "Tag=x,0.000,1.000,2.000,HISTFAAAAnotbase64");
    writeFileSync(file, text.join("\n"));
    const r = await report(file);
    expect(r.series.map((s) => [s.metric, s.key, s.count])).toEqual([["request_latency", key, 200]]);
    expectWithinPrecision(r.series[0].max, 200_000);
    expect(r.skipped.lines).toBe(2);
    expect(r.skipped.first[0]).toEqual({ line: 7, problem: "not an HdrHistogram interval log line: this is not a line of the format" });
    expect(r.skipped.first[1].line).toBe(8);
    expect(r.skipped.first[1].problem).toMatch(/^cannot decode its histogram/);
  });

  it("refuses a file of more series than its limit, naming the line where it went past", async () => {
    const file = path.join(testDir("report-cap"), "many.jsonl");
    const lines = [JSON.stringify({ kind: "recording", format: 1 })];
    for (let pid = 1; pid <= 11; pid++) lines.push(JSON.stringify({ kind: "window", op: "end", pid, dur: 1000 }));
    writeFileSync(file, lines.join("\n") + "\n");
    await expect(report(file, { ...REPORT_LIMITS, maxSeries: 10 })).rejects.toThrow(
      `${file}:12: more than 10 series (metric, process, priority): tailguard report keeps at most that many; report a ` +
        "part of the file (e.g. grep the lines of some pids)",
    );
    expect((await report(file, { ...REPORT_LIMITS, maxSeries: 11 })).series).toHaveLength(11);
  });

  it("memory: 20,000 processes, and a line of 100 MB, are read in bounded memory", async () => {
    const dir = testDir("report-memory");
    // a recording of 20,000 processes, each with a request window, a hold and a timed launch: 60,000 series
    const many = path.join(dir, "many.jsonl");
    const fd = openSync(many, "w");
    writeSync(fd, JSON.stringify({ kind: "recording", format: 1 }) + "\n");
    for (let pid = 1; pid <= 20_000; pid++) {
      const ls = [
        { kind: "process", op: "attach", pid, cmd: ["worker", String(pid)], priority: (pid % 3) - 1 },
        { kind: "window", op: "end", pid, t: pid, dur: 1000 + pid * 37, window: 1, launches: 1, streams: 1 },
        { kind: "hold", op: "priority", pid, t: pid, dur: 500 + pid, priority: 0, cause_pid: 1 },
        { kind: "launch", op: "kernel", pid, t: pid, dur: 3000 + pid, kernel: "k" },
        { kind: "process", op: "detach", pid, ended: "exit", gpu: { uuid: `GPU-${String(pid).padStart(8, "0")}-0000` } },
      ];
      writeSync(fd, ls.map((l) => JSON.stringify(l)).join("\n") + "\n");
    }
    closeSync(fd);
    // a recording whose second line is 100 MB long
    const long = path.join(dir, "long.jsonl");
    const lfd = openSync(long, "w");
    writeSync(lfd, JSON.stringify({ kind: "recording", format: 1 }) + '\n{"kind":"launch","pad":"');
    const mb = Buffer.alloc(2 ** 20, "x");
    for (let i = 0; i < 100; i++) writeSync(lfd, mb);
    writeSync(lfd, '"}\n' + JSON.stringify({ kind: "window", op: "end", pid: 1, dur: 5 }) + "\n");
    closeSync(lfd);
    // each in a process of its own, to see its peak RSS (before: 2.7 GB for the first, a crash for the second)
    const peak = async (file: string) => {
      const script = `import(${JSON.stringify(path.join(root, "agent/dist/cli/report.js"))}).then(async (m) => {
        const r = await m.report(${JSON.stringify(file)});
        console.log(JSON.stringify({ series: r.series.length, skipped: r.skipped.lines, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
      })`;
      const r = await runProgram(process.execPath, ["-e", script], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const a = await peak(many);
    expect(a).toMatchObject({ series: 60_000, skipped: 0 });
    expect(a.maxRssMiB).toBeLessThan(256);
    const b = await peak(long);
    expect(b).toMatchObject({ series: 1, skipped: 1 });
    expect(b.maxRssMiB).toBeLessThan(128);
  });

  it("formats durations to 3 significant digits in ns, µs, ms or s", () => {
    expect([0, 999, 999.7, 12_345, 999_499, 999_999, 1_413_699, 25_000_000, 2_500_000_000].map(formatNs)).toEqual(
      ["0ns", "999ns", "1.00µs", "12.3µs", "999µs", "1.00ms", "1.41ms", "25.0ms", "2.50s"],
    );
  });
});
