// The scenarios of `tailguard bench`: named presets of the dual-model priority test, and every knob a flag can
// override. One table (KNOBS) defines each knob's flag, meaning, parser and where it lands in the scenario, so the
// usage text, the argument parser and the validation cannot disagree.
import { native } from "../ingest/native.js";
import { UsageError } from "../cli/usage.js";

export type Flavour = "eager" | "graph";
export type Arrivals = "fixed" | "poisson";

export interface Scenario {
  name: string;
  /** high priority: open-loop inference requests */
  high: { model: string; batch: number; rate: number; flavour: Flavour; arrivals: Arrivals; seed: number; warmup: number };
  /** low priority: batch inference back to back */
  low: { model: string; batch: number; warmup: number };
  /** seconds of the high-priority schedule in each run */
  durationS: number;
  repetitions: number;
  /** TAILGUARD_* settings of both workers in the tailguard mode (--shim-env); every other TAILGUARD_* variable of the
   *  invoking environment is left out of every worker's */
  shimEnv: Record<string, string>;
}

/** The presets, with the duration on a real GPU and the shorter one `--sim` uses (see docs/bench.md). */
export const PRESETS: Record<string, { description: string; scenario: Omit<Scenario, "name">; simDurationS: number }> = {
  default: {
    description: "ResNet-18 b1 at 10 req/s (high) vs ResNet-50 b8 back to back (low), 60 s",
    scenario: {
      high: { model: "resnet18", batch: 1, rate: 10, flavour: "eager", arrivals: "fixed", seed: 1, warmup: 30 },
      low: { model: "resnet50", batch: 8, warmup: 5 },
      durationS: 60,
      repetitions: 3,
      shimEnv: {},
    },
    simDurationS: 2,
  },
  intensive: {
    description: "ResNet-18 b1 at 20 req/s (high) vs ResNet-50 b1024 back to back (low), 180 s",
    scenario: {
      high: { model: "resnet18", batch: 1, rate: 20, flavour: "eager", arrivals: "fixed", seed: 1, warmup: 30 },
      low: { model: "resnet50", batch: 1024, warmup: 3 },
      durationS: 180,
      repetitions: 3,
      shimEnv: {},
    },
    simDurationS: 2,
  },
};

/** Warm-up on the simulated GPU (no autotuning or graph capture to amortise: a few requests set up the device). */
export const SIM_WARMUP = { high: 3, low: 1 };

const MODELS = ["resnet18", "resnet50"];

const positive = (flag: string, integer: boolean, max: number) => (text: string): number => {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v <= 0 || v > max || (integer && !Number.isInteger(v)))
    throw new UsageError(`tailguard bench: ${flag} "${text}" is not a ${integer ? "whole " : ""}number in (0, ${max}]`);
  return v;
};
export const nonNegativeInt = (flag: string, max: number) => (text: string): number => {
  const v = Number(text);
  if (text.trim() === "" || !Number.isInteger(v) || v < 0 || v > max)
    throw new UsageError(`tailguard bench: ${flag} "${text}" is not a whole number in [0, ${max}]`);
  return v;
};
const oneOf = <T extends string>(flag: string, values: readonly T[]) => (text: string): T => {
  if (!values.includes(text as T))
    throw new UsageError(`tailguard bench: ${flag} "${text}" is not one of ${values.join(", ")}`);
  return text as T;
};

interface Knob {
  flag: string;
  meaning: string;
  apply(s: Scenario, text: string): void;
}

/** Variables the bench itself sets for each worker, or that would defeat the comparison: not for --shim-env. */
const BENCH_OWNED = ["TAILGUARD_PRIORITY", "TAILGUARD_DIR", "TAILGUARD_SESSION", "TAILGUARD_DISABLE", "TAILGUARD_SHIM",
  "TAILGUARD_SIM_DEVICE"];

function parseShimEnv(text: string): Record<string, string> {
  // an old name is still a setting (the shim reads it, and says so), so old commands keep working
  const known = new Set(native().options().flatMap((o) => (o.formerly ? [o.variable, o.formerly] : [o.variable])));
  const out: Record<string, string> = {};
  for (const item of text.split(",").map((x) => x.trim()).filter(Boolean)) {
    const eq = item.indexOf("=");
    const name = eq > 0 ? item.slice(0, eq) : item;
    const value = eq > 0 ? item.slice(eq + 1) : "";
    if (!known.has(name) || BENCH_OWNED.includes(name))
      throw new UsageError(`tailguard bench: --shim-env "${name}" is not a TAILGUARD_* setting the bench lets you change ` +
        "(`tailguard options` lists them; priority, directory and session are the bench's own)");
    if (value === "") throw new UsageError(`tailguard bench: --shim-env ${name} needs a value (${name}=VALUE)`);
    out[name] = value;
  }
  return out;
}

/** Every overridable knob of a scenario. */
export const KNOBS: Knob[] = [
  { flag: "rate", meaning: "high-priority requests per second", apply: (s, t) => (s.high.rate = positive("--rate", false, 10000)(t)) },
  { flag: "flavour", meaning: "high-priority model eager or replayed as a CUDA graph", apply: (s, t) => (s.high.flavour = oneOf("--flavour", ["eager", "graph"] as const)(t)) },
  { flag: "arrivals", meaning: "fixed-rate or Poisson arrivals", apply: (s, t) => (s.high.arrivals = oneOf("--arrivals", ["fixed", "poisson"] as const)(t)) },
  { flag: "seed", meaning: "seed of the Poisson arrivals", apply: (s, t) => (s.high.seed = nonNegativeInt("--seed", 2 ** 52)(t)) },
  { flag: "high-model", meaning: "high-priority model", apply: (s, t) => (s.high.model = oneOf("--high-model", MODELS)(t)) },
  { flag: "high-batch", meaning: "high-priority batch size", apply: (s, t) => (s.high.batch = positive("--high-batch", true, 4096)(t)) },
  { flag: "low-model", meaning: "low-priority model", apply: (s, t) => (s.low.model = oneOf("--low-model", MODELS)(t)) },
  { flag: "low-batch", meaning: "low-priority batch size", apply: (s, t) => (s.low.batch = positive("--low-batch", true, 4096)(t)) },
  { flag: "duration", meaning: "seconds of the high-priority schedule per run", apply: (s, t) => (s.durationS = positive("--duration", false, 86400)(t)) },
  { flag: "repetitions", meaning: "runs of every mode (>= 3 for a spread)", apply: (s, t) => (s.repetitions = positive("--repetitions", true, 1000)(t)) },
  { flag: "shim-env", meaning: "TAILGUARD_* settings for the tailguard mode: VAR=VALUE,... (e.g. TAILGUARD_TIMESLICE_US=50)", apply: (s, t) => (s.shimEnv = parseShimEnv(t)) },
  { flag: "warmup", meaning: "untimed requests/iterations of each worker before the start", apply: (s, t) => { s.high.warmup = s.low.warmup = nonNegativeInt("--warmup", 100000)(t); } },
];

/** The scenario a preset and flag values make (`values`: flag -> text, as parseArgs returns them). */
export function resolveScenario(name: string, values: Record<string, string | undefined>, sim: boolean): Scenario {
  const preset = PRESETS[name];
  if (!preset)
    throw new UsageError(`tailguard bench: unknown scenario "${name}" (known: ${Object.keys(PRESETS).join(", ")})`);
  const s: Scenario = { name, ...structuredClone(preset.scenario) };
  if (sim) {
    s.durationS = preset.simDurationS;
    s.high.warmup = SIM_WARMUP.high;
    s.low.warmup = SIM_WARMUP.low;
  }
  for (const k of KNOBS) {
    const v = values[k.flag];
    if (v !== undefined) k.apply(s, v);
  }
  const requests = Math.round(s.high.rate * s.durationS);
  if (requests < 1)
    throw new UsageError(`tailguard bench: --rate ${s.high.rate} for --duration ${s.durationS} s schedules no request`);
  return s;
}

/** Requests in the high-priority schedule of one run. */
export const requestCount = (s: Scenario): number => Math.round(s.high.rate * s.durationS);

/** Usage lines for the knobs. */
export function knobUsage(): string[] {
  return KNOBS.map((k) => `    --${k.flag.padEnd(12)} ${k.meaning}`);
}
