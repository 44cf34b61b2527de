// The GPU's own state while a bench run runs on a real GPU: SM clock, power and utilisation from `nvidia-smi`
// (read-only queries every 200 ms; the GPU's settings are never touched). A contended GPU could run its SMs slower than
// one serving the high-priority model alone; these samples tell that apart from scheduling (docs/bench.md).
import { spawn, type ChildProcess } from "node:child_process";

import { percentile } from "./stats.js";

export interface GpuSample {
  /** CLOCK_MONOTONIC ns when the line arrived */
  tNs: number;
  smMhz: number;
  powerW: number;
  utilPct: number;
}

export interface GpuState {
  samples: number;
  smMhzP50: number;
  smMhzP10: number;
  powerWP50: number;
  powerWMax: number;
  utilPctP50: number;
}

export class GpuSampler {
  readonly samples: GpuSample[] = [];
  private child: ChildProcess | null = null;
  private rest = "";

  /** Starts `nvidia-smi` (from PATH); without one there are simply no samples. */
  start(intervalMs = 200): void {
    try {
      this.child = spawn("nvidia-smi", ["--query-gpu=clocks.sm,power.draw,utilization.gpu", "--format=csv,noheader,nounits",
        "-lms", String(intervalMs)], { stdio: ["ignore", "pipe", "ignore"] });
    } catch {
      this.child = null;
      return;
    }
    this.child.on("error", () => (this.child = null)); // not installed: no samples
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      const lines = (this.rest + chunk).split("\n");
      this.rest = lines.pop() ?? "";
      const tNs = Number(process.hrtime.bigint());
      for (const line of lines) {
        const f = line.split(",").map((x) => Number(x.trim()));
        // one GPU per line; "[N/A]" fields (and a second GPU's lines) are not this run's samples
        if (f.length === 3 && f.every(Number.isFinite)) this.samples.push({ tNs, smMhz: f[0], powerW: f[1], utilPct: f[2] });
      }
    });
  }

  stop(): void {
    this.child?.kill();
    this.child = null;
  }

  /** The samples taken in [fromNs, toNs], summarised; null when there are none. */
  state(fromNs: number, toNs: number): GpuState | null {
    const inside = this.samples.filter((s) => s.tNs >= fromNs && s.tNs <= toNs);
    if (inside.length === 0) return null;
    const sorted = (f: (s: GpuSample) => number) => inside.map(f).sort((a, b) => a - b);
    const sm = sorted((s) => s.smMhz);
    const power = sorted((s) => s.powerW);
    return {
      samples: inside.length,
      smMhzP50: percentile(sm, 50),
      smMhzP10: percentile(sm, 10),
      powerWP50: percentile(power, 50),
      powerWMax: power[power.length - 1],
      utilPctP50: percentile(sorted((s) => s.utilPct), 50),
    };
  }
}
