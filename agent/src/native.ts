// The native parts as the agent sees them: where the built libraries are, and the addon's typed interface.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (agent/dist/native.js and agent/src/native.ts both sit two levels below it). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const builtShim = path.join(packageRoot, "native/build/libtailguard.so");
/** The shim to preload: TAILGUARD_SHIM when set, else the one built in this package. */
export function shimPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.TAILGUARD_SHIM && env.TAILGUARD_SHIM.startsWith("/") ? env.TAILGUARD_SHIM : builtShim;
}
export const simLibDir = path.join(packageRoot, "native/build/sim");
const addonPath = path.join(packageRoot, "build/Release/tailguard.node");

export interface GpuIdentity {
  ordinal: number;
  uuid: string;
  name: string;
  pci: string;
}

/** Sums over the ring's lanes (one per launching thread). */
export interface RingCounters {
  lanes: number;
  tail: number;
  head: number;
  launches: number;
  dropped: number;
  droppedLaunches: number;
  names: number;
  namesDropped: number;
  torn?: number;
}

/** A ring's header: the attached process's descriptor and counters. */
export interface RingInfo {
  id?: number;
  path: string;
  pid: number;
  ppid: number;
  startTicks: string;
  uid: number;
  execGeneration: number;
  session: string;
  shimVersion: string;
  cmdline: string[];
  anchorRealtime: bigint;
  anchorMonotonic: bigint;
  laneCapacity: number;
  priority: number;
  attachPaths: number;
  state: number;
  exitMonotonic: bigint;
  gpu: GpuIdentity | null;
  counters: RingCounters;
  consumerPid: number;
  alive?: boolean;
  error?: string;
}

export interface NameEntry {
  ring: number;
  id: number;
  name: string;
  demangled: string;
  truncated: boolean;
}

export interface Harvest {
  opened: RingInfo[];
  names: NameEntry[];
  batches: { ring: number; data: Buffer }[];
  closed: RingInfo[];
  records: number;
}

export interface CollectorOptions {
  /** drain only the rings of this recording session */
  session?: string;
  /** microseconds the drain thread sleeps when a pass found nothing (default 1000) */
  pollUs?: number;
  /** records held in memory for JavaScript before draining pauses (default 4M) */
  spoolLimit?: number;
  /** delete a ring once its process is gone and it is drained (default true) */
  removeFinished?: boolean;
}

export interface Collector {
  take(maxRecords?: number): Harvest;
  status(): RingInfo[];
  problems(): string[];
  close(): void;
}

export interface OptionInfo {
  variable: string;
  type: string;
  default: string;
  accepted: string;
  readBy: string;
  meaning: string;
}

export interface ApiInfo {
  name: string;
  family: "CUDA" | "HIP";
  kind: number;
  perThread: boolean;
}

export interface Layout {
  layoutVersion: number;
  recordSize: number;
  headerSize: number;
  namesSize: number;
  nameMax: number;
  record: Record<string, [number, number]>;
  constants: Record<string, number>;
}

/** A process's slot in a GPU's control block (native/include/tailguard/control.h). */
export interface ControlSlot {
  slot: number;
  /** in its own PID namespace (pidNamespace, the inode of /proc/PID/ns/pid) */
  pid: number;
  pidNamespace: number;
  /** in a PID namespace other than the reader's: its pid is not a process here */
  otherNamespace: boolean;
  priority: number;
  /** bits of Mechanism */
  mechanisms: number;
  timesliceUs: number;
  heldNs: number;
  holds: number;
  busy: boolean;
}

export interface ControlBlockInfo {
  path: string;
  /** GPU UUID, 32 hex digits */
  gpu?: string;
  slots?: ControlSlot[];
  error?: string;
}

/** enum tg_mechanism (control.h): what is in effect for a process. */
export const Mechanism = { HOLDS: 1, WINDOW: 2, TIMESLICE: 4, MIN_SHARE: 8 } as const;

export interface Addon {
  version: string;
  layout(): Layout;
  apis(): (ApiInfo | null)[];
  options(): OptionInfo[];
  demangle(name: string): string;
  parsePriority(text: string): number | null;
  scanRings(dir: string): RingInfo[];
  sweep(dir: string): number;
  controlBlocks(dir: string): ControlBlockInfo[];
  mechanisms: Record<keyof typeof Mechanism, number>;
  setPriority(dir: string, pid: number, priority: number): { slots: number; rings: number };
  Collector: new (dir: string, options?: CollectorOptions) => Collector;
}

let addon: Addon | undefined;

/** Loads the addon, or explains how to build it. */
export function native(): Addon {
  if (addon) return addon;
  if (!existsSync(addonPath))
    throw new Error(`tailguard's native addon is not built (${addonPath} is missing): run \`npm install\` in ${packageRoot}`);
  addon = createRequire(import.meta.url)(addonPath) as Addon;
  return addon;
}

/** The ring directory in effect for this process (TAILGUARD_DIR or the default from the options table). */
export function ringDir(env: NodeJS.ProcessEnv = process.env): string {
  const fallback = native().options().find((o) => o.variable === "TAILGUARD_DIR")!.default;
  return env.TAILGUARD_DIR && env.TAILGUARD_DIR.startsWith("/") ? env.TAILGUARD_DIR : fallback;
}
