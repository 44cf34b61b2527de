// `tailguard bench`: the dual-model priority test (a latency-critical model at high priority sharing one GPU with a
// batch model at low priority), every mode in one invocation, repeated, verified and written as JSON, a Markdown
// table and plots. docs/bench.md describes it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { parseCommand, UsageError } from "../cli/usage.js";
import { BenchFailure, MODES, runMode, type ModeName, type RunRecord } from "./orchestrate.js";
import { markdownTable, provenance, summarizeModes, writePlots } from "./output.js";
import { Progress } from "./progress.js";
import { KNOBS, knobUsage, nonNegativeInt, PRESETS, resolveScenario, type Scenario } from "./scenarios.js";
import { defaultCpus, formatCpus, orchestratorCpus, parseCpus, pinProcess, simBackend, torchBackend, type Backend } from "./workers.js";

export const BENCH_USAGE = `  bench [--sim] [--scenario default|intensive] [--out DIR] [--modes M,...] [overrides]
                 the dual-model priority test: high-priority ResNet-18 requests beside low-priority ResNet-50 batches,
                 alone, natively shared, under the shim (telemetry only) and with priorities; --sim on the simulated
                 GPU (docs/bench.md)`;

/** The options in detail, for `tailguard bench --help`. */
export const BENCH_OPTIONS = `Options:
  --sim                the simulated GPU and tg-workload workers (anywhere, under a minute); default: PyTorch workers
                       (bench/workers/torch_worker.py) on the real GPU
  --scenario NAME      ${Object.entries(PRESETS).map(([k, p]) => `${k}: ${p.description}`).join("\n                       ")}
  --out DIR            where result.json, results.md and the plots go (default
                       ./results/tailguard-bench-SCENARIO-TIME)
  --modes LIST         a subset of ${MODES.map((m) => m.name).join(",")} (default: all)
  --high-cpus LIST     CPUs of the high-priority worker (e.g. 2,3; none: not pinned); --low-cpus likewise
  --python PATH        the Python with torch and torchvision (default python3)
  --rotate K           start the order of the modes K places on (default 0; each repetition moves it one further), so
                       that single-repetition invocations joined with --combine rotate it as one longer run would
  --combine DIR,DIR... instead of running: one result of the runs of several invocations of the same scenario (their
                       result.json), e.g. repetitions run in separate sessions; written to --out
  overrides of the scenario:
${knobUsage().join("\n")}`;

export async function benchCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand("bench", {
    args: argv,
    options: {
      sim: { type: "boolean" },
      scenario: { type: "string", default: "default" },
      out: { type: "string" },
      modes: { type: "string" },
      python: { type: "string", default: "python3" },
      rotate: { type: "string", default: "0" },
      "high-cpus": { type: "string" },
      "low-cpus": { type: "string" },
      combine: { type: "string" },
      ...Object.fromEntries(KNOBS.map((k) => [k.flag, { type: "string" as const }])),
    },
  }) as { values: Record<string, string | boolean | undefined> };
  if (values.combine !== undefined) {
    if (!values.out) throw new UsageError("tailguard bench: --combine needs --out DIR for the combined result");
    return combine((values.combine as string).split(",").map((d) => d.trim()).filter(Boolean), values.out as string);
  }
  const sim = !!values.sim;
  const scenario = resolveScenario(values.scenario as string, values as Record<string, string | undefined>, sim);
  const modeNames = values.modes
    ? (values.modes as string).split(",").map((m) => m.trim())
    : MODES.map((m) => m.name);
  for (const m of modeNames)
    if (!MODES.some((x) => x.name === m))
      throw new UsageError(`tailguard bench: unknown mode "${m}" (modes: ${MODES.map((x) => x.name).join(", ")})`);
  const modes = MODES.filter((m) => modeNames.includes(m.name));
  const rotate = nonNegativeInt("--rotate", 1000)(values.rotate as string);
  const auto = defaultCpus();
  const cpus = {
    high: values["high-cpus"] !== undefined ? parseCpus("--high-cpus", values["high-cpus"] as string) : auto.high,
    low: values["low-cpus"] !== undefined ? parseCpus("--low-cpus", values["low-cpus"] as string) : auto.low,
  };
  let pinning = values["high-cpus"] !== undefined || values["low-cpus"] !== undefined
    ? `pinned by the command: high ${cpus.high?.join(",") ?? "none"}; low ${cpus.low?.join(",") ?? "none"}`
    : auto.note;
  const rest = orchestratorCpus(cpus);
  const unpinned = rest ? pinProcess(process.pid, rest) : null;
  if (rest) pinning += unpinned ? `; the orchestrator not kept off them (${unpinned})` : `; orchestrator ${formatCpus(rest)}`;
  const backend: Backend = sim ? simBackend : torchBackend(values.python as string);
  backend.check();

  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  // results/ under the current directory, not the directory itself: runs collect in one folder (ignored in a checkout)
  const out = path.resolve((values.out as string | undefined) ?? path.join("results", `tailguard-bench-${scenario.name}-${stamp}`));
  const work = mkdtempSync(path.join(os.tmpdir(), "tailguard-bench-"));
  const ringDir = mkdtempSync(path.join(os.platform() === "linux" ? "/dev/shm" : os.tmpdir(), "tailguard-bench-rings-"));
  const started = new Date().toISOString();
  const total = modes.length * scenario.repetitions;
  const progress = new Progress(total);
  process.stderr.write(`tailguard bench: ${scenario.name} on ${sim ? "the simulated GPU" : "the GPU (PyTorch)"}, ` +
    `${modes.length} modes x ${scenario.repetitions} repetitions of ${scenario.durationS} s; ${pinning}\n`);
  const runs: RunRecord[] = [];
  try {
    for (let rep = 1; rep <= scenario.repetitions; rep++) {
      for (let k = 0; k < modes.length; k++) {
        // rotate the order between repetitions: drift spreads evenly
        const mode = modes[(rotate + rep - 1 + k) % modes.length];
        progress.begin(`repetition ${rep} ${mode.name}`);
        const r = await runMode({ backend, scenario, cpus, work, ringDir, baseEnv: process.env }, mode, rep, runs.length);
        runs.push(r);
        progress.end(describeRun(r));
      }
    }
  } catch (err) {
    progress.finish();
    if (err instanceof BenchFailure) {
      process.stderr.write(`tailguard bench: FAILED, no results written: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(ringDir, { recursive: true, force: true });
  }
  progress.finish();
  const torch = (runs.flatMap((r) => r.workers).find((w) => w.result && "torch" in w.result)?.result ?? null) as Record<string, unknown> | null;
  writeResult(out, {
    tool: "tailguard bench",
    format: 1,
    backend: backend.name,
    scenario,
    modes: modes.map((m) => m.name as ModeName),
    modeDescriptions: Object.fromEntries(modes.map((m) => [m.name, m.description])),
    repetitions: scenario.repetitions,
    pinning: { ...cpus, orchestrator: rest && !unpinned ? rest : null, note: pinning },
    ...provenance(["bench", ...argv], torch && { torch: torch.torch, torchvision: torch.torchvision, cuda: torch.cuda, gpu: torch.gpu }),
    started,
    finished: new Date().toISOString(),
    attachment: runs.filter((r) => r.attachment).flatMap((r) => r.attachment!.map((a) => ({ mode: r.mode, repetition: r.repetition, ...a }))),
    runs,
  });
  return 0;
}

/** What result.json holds; summary and files are derived from the rest by writeResult. */
interface BenchResult {
  tool: string;
  format: number;
  backend: string;
  scenario: Scenario;
  modes: ModeName[];
  repetitions: number;
  command: string;
  commit: string;
  started: string;
  finished: string;
  attachment: ({ mode: string; repetition: number } & object)[];
  runs: RunRecord[];
  combinedFrom?: { dir: string; command: string; commit: string; started: string; repetitions: number }[];
  [more: string]: unknown;
}

/** Summary, table and plots from the runs; writes result.json, results.md and the plots to `out`; prints the table. */
function writeResult(out: string, r: BenchResult): void {
  const summary = summarizeModes(r.modes, r.runs);
  mkdirSync(out, { recursive: true });
  const title = `${r.scenario.name}${r.backend === "sim" ? " (simulated GPU)" : ""}`;
  const plots = writePlots(out, title, r.modes, r.runs, r.scenario.durationS);
  const result = { ...r, summary, files: { markdown: path.join(out, "results.md"), ...plots } };
  const table = markdownTable({ modes: r.modes, summary, repetitions: r.repetitions, runs: r.runs });
  const origin = r.combinedFrom
    ? `combined from ${r.combinedFrom.length} invocations: ` +
      r.combinedFrom.map((c) => `\`${c.command}\` at ${c.commit} (${c.repetitions} repetitions)`).join("; ")
    : `\`${r.command}\` at ${r.commit}`;
  writeFileSync(path.join(out, "result.json"), JSON.stringify(result, null, 1) + "\n");
  writeFileSync(path.join(out, "results.md"), `# tailguard bench: ${title}\n\n${origin}\n\n${table}`);
  console.log(table);
  console.log(`every worker of the shim's modes was seen attached with its intended priority ` +
    `(${r.attachment.length} checks); results in ${out}`);
}

/** One result from several invocations of the same scenario: the repetitions of each, renumbered in order. */
function combine(dirs: string[], out: string): number {
  if (dirs.length < 2) throw new UsageError("tailguard bench: --combine needs at least two result directories");
  const parts = dirs.map((dir) => {
    const file = path.join(dir, "result.json");
    if (!existsSync(file)) throw new UsageError(`tailguard bench: --combine: ${file} does not exist`);
    const r = JSON.parse(readFileSync(file, "utf8")) as BenchResult;
    if (r.tool !== "tailguard bench" || r.format !== 1)
      throw new UsageError(`tailguard bench: --combine: ${file} is not a tailguard bench result`);
    return { dir, r };
  });
  const first = parts[0].r;
  // (results written before --shim-env existed have no shimEnv: they ran with none)
  const key = (r: BenchResult) => JSON.stringify({ backend: r.backend, ...r.scenario, shimEnv: r.scenario.shimEnv ?? {}, repetitions: 0 });
  for (const { dir, r } of parts)
    if (key(r) !== key(first))
      throw new UsageError(`tailguard bench: --combine: ${dir} ran another scenario, settings or backend than ${parts[0].dir}`);
  let offset = 0;
  const runs: RunRecord[] = [];
  const attachment: BenchResult["attachment"] = [];
  for (const { r } of parts) {
    for (const run of r.runs) runs.push({ ...run, repetition: run.repetition + offset });
    for (const a of r.attachment) attachment.push({ ...a, repetition: a.repetition + offset });
    offset += r.repetitions;
  }
  writeResult(path.resolve(out), {
    ...first,
    scenario: { ...first.scenario, shimEnv: first.scenario.shimEnv ?? {}, repetitions: offset },
    modes: [...new Set(parts.flatMap(({ r }) => r.modes))],
    repetitions: offset,
    started: parts.map(({ r }) => r.started).sort()[0],
    finished: parts.map(({ r }) => r.finished).sort().at(-1)!,
    combinedFrom: parts.map(({ dir, r }) => ({ dir, command: r.command, commit: r.commit, started: r.started, repetitions: r.repetitions })),
    attachment,
    runs,
  });
  return 0;
}

function describeRun(r: RunRecord): string {
  const parts = [`repetition ${r.repetition} ${r.mode}:`];
  if (r.high) parts.push(`high P50 ${r.high.latency.p50.toFixed(3)} ms P99 ${r.high.latency.p99.toFixed(3)} ms`);
  if (r.low) parts.push(`low ${r.low.iterPerS.toFixed(1)} it/s` + (r.low.cpu ? ` (CPU ${r.low.cpu.msPerIter.toFixed(2)} ms/it, ${r.low.cpu.cores.toFixed(2)} cores)` : ""));
  if (r.holds) parts.push(`${r.holds.count} holds`);
  if (r.attachment) parts.push(`attached: ${r.attachment.map((a) => `${a.role}@${a.slotPriority}`).join(" ")}`);
  return parts.join(" ");
}
