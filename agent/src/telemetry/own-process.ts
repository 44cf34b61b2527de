// The agent's own process as the standard `process_*` metrics describe it (the names every Prometheus client library
// exports): CPU time, memory, file descriptors, start time, read from Node and /proc/self at collection, and the build.
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

/** The package's version (package.json): the build the agent runs. */
export const agentVersion: string = createRequire(import.meta.url)("../../../package.json").version;

export interface OwnProcess {
  /** user + system CPU time, s */
  cpuSeconds: number;
  residentBytes: number;
  /** null where /proc is not there to say */
  virtualBytes: number | null;
  openFds: number | null;
  maxFds: number | null;
  /** Unix time, s: the same at every read, so that a change of it is a restart */
  startTimeSeconds: number;
}

const startTimeSeconds = performance.timeOrigin / 1000;

/** The process now. A few small reads of /proc: for a collection, not a hot path. */
export function ownProcess(): OwnProcess {
  const cpu = process.cpuUsage();
  return {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    residentBytes: process.memoryUsage.rss(),
    virtualBytes: virtualBytes(),
    openFds: openFds(),
    maxFds: maxFds(),
    startTimeSeconds,
  };
}

function virtualBytes(): number | null {
  try {
    const kib = /^VmSize:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    return kib === undefined ? null : Number(kib) * 1024;
  } catch {
    return null;
  }
}

function openFds(): number | null {
  try {
    return readdirSync("/proc/self/fd").length - 1; // less the one the listing itself has open
  } catch {
    return null;
  }
}

function maxFds(): number | null {
  try {
    const soft = /^Max open files\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1];
    return soft === undefined || soft === "unlimited" ? null : Number(soft);
  } catch {
    return null;
  }
}
