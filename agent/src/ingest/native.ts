// The native parts as the agent sees them: where the built libraries are, and the addon's typed interface.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

import type { GpuIdentity } from "../model.js";

export type { GpuIdentity };

/** The package root (agent/dist/ingest/native.js and agent/src/ingest/native.ts both sit two levels below it). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const builtShim = path.join(packageRoot, "native/build/libtailguard.so");
/** The shim to preload: TAILGUARD_SHIM when set, else the one built in this package. */
export function shimPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.TAILGUARD_SHIM && env.TAILGUARD_SHIM.startsWith("/") ? env.TAILGUARD_SHIM : builtShim;
}
export const simLibDir = path.join(packageRoot, "native/build/sim");
const addonPath = path.join(packageRoot, "build/Release/tailguard.node");


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
  /** records overwritten before the consumer read them (it started late, or fell a lap behind) */
  lost?: number;
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
  /** the ring failed a check while it was drained (why): quarantined, nothing more is read from it */
  corrupt?: string;
  /** the ring file's owner, as the kernel says (scanRings) */
  ownerUid?: number;
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
  /** rings quarantined since the last take (after their last good records) */
  corrupted: RingInfo[];
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
  /** the variable's old name, still read with a warning ("" when it was never renamed) */
  formerly: string;
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

/** A process's slot in its user's GPU control file (native/include/tailguard/control.h). */
export interface ControlSlot {
  slot: number;
  /** in its own PID namespace (pidNamespace, the inode of /proc/PID/ns/pid) */
  pid: number;
  pidNamespace: number;
  /** in a PID namespace other than the reader's: its pid is not a process here */
  otherNamespace: boolean;
  /** the priority in force: what it asked for, within its owner's ceiling */
  priority: number;
  /** what its slot asks for (TAILGUARD_PRIORITY, `tailguard priority`) */
  requested: number;
  /** bits of Mechanism */
  mechanisms: number;
  timesliceUs: number;
  heldNs: number;
  holds: number;
  busy: boolean;
}

export interface ControlBlockInfo {
  path: string;
  /** the file's owner, as the kernel says: the user whose processes it holds */
  ownerUid: number;
  ownerGid?: number;
  /** the highest priority the admin's policy gives that owner */
  ceiling?: number;
  /** GPU UUID, 32 hex digits */
  gpu?: string;
  slots?: ControlSlot[];
  error?: string;
}

/** tailguard/directory.h: whether a directory may be trusted and written by this process. */
export interface DirInfo {
  exists: boolean;
  trusted: boolean;
  writable: boolean;
  uid: number;
  gid: number;
  /** permission bits with sticky and setgid (07777) */
  mode: number;
  /** what is wrong and what to do ("" when nothing) */
  problem: string;
}

/** tailguard/policy.h: the admin's priority policy as the shims read it. */
export interface PolicyInfo {
  fromFile: boolean;
  problem: string;
  defaultCeiling: number;
  adminUid: number;
  rules: { kind: "uid" | "gid"; id: number; ceiling: number }[];
  /** this process's ceiling, and the group that gives it */
  myCeiling: number;
  myCeilingGid: number;
}

/** enum tg_mechanism (control.h): what is in effect for a process. */
export const Mechanism = { HOLDS: 1, BUDGET: 2, TIMESLICE: 4, MIN_SHARE: 8 } as const;

/** The priorities of options.h (TG_PRIORITY_*): the words TAILGUARD_PRIORITY, `tailguard run --priority`,
 *  `tailguard priority` and the admin's policy accept, and the range. test/docs/priorities.test.ts proves them against
 *  the header, and every document that restates them against these. */
export const Priority = { HIGH: 10, NORMAL: 0, LOW: -10, MIN: -100, MAX: 100 } as const;

/** What a priority may be, as the options table (options.def) says it. */
export const PRIORITY_ACCEPTED =
  `integer ${Priority.MIN}..${Priority.MAX}, or high (${Priority.HIGH}), normal (${Priority.NORMAL}), low (${Priority.LOW})`;

/** Each process's slot in the control files of `dir`, by pid: its priority in force, what `tailguard ps` shows and the
 *  agent follows. A slot of another PID namespace is left out: its pid names another process here. */
export function controlSlots(dir: string): Map<number, ControlSlot> {
  const slots = new Map<number, ControlSlot>();
  for (const b of native().controlBlocks(dir)) for (const s of b.slots ?? []) if (!s.otherNamespace) slots.set(s.pid, s);
  return slots;
}

/** The mechanisms in effect for a slot, as words (`tailguard ps`, `tailguard bench`). */
export function describeMechanisms(s: ControlSlot | undefined): string[] {
  if (!s) return [];
  const out: string[] = [];
  if (s.mechanisms & Mechanism.HOLDS) out.push("holds");
  if (s.mechanisms & Mechanism.BUDGET) out.push("budget");
  if (s.mechanisms & Mechanism.TIMESLICE) out.push(`timeslice=${s.timesliceUs}us`);
  if (s.mechanisms & Mechanism.MIN_SHARE) out.push("min-share");
  return out;
}

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
  priorities: Record<keyof typeof Priority, number>;
  setPriority(dir: string, pid: number, priority: number): { slots: number; rings: number; denied: number; ceiling: number | null };
  checkDir(dir: string, create?: boolean): DirInfo;
  policy(dir: string): PolicyInfo;
  parsePolicy(text: string): { error?: string; defaultCeiling: number; rules: number };
  /** SIGBUS the guard absorbed in this process (tailguard/guard.h) */
  guardAbsorbed(): number;
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

/** A TAILGUARD_DIR that is not an absolute path: the shim would not use it, so no command pretends to. */
export class BadDirError extends Error {}

/** The ring directory in effect for this process (TAILGUARD_DIR or the default from the options table). A relative
 *  TAILGUARD_DIR is an error that says so, never a silent fall back to the default. */
export function ringDir(env: NodeJS.ProcessEnv = process.env): string {
  const fallback = native().options().find((o) => o.variable === "TAILGUARD_DIR")!.default;
  if (!env.TAILGUARD_DIR) return fallback;
  if (!env.TAILGUARD_DIR.startsWith("/"))
    throw new BadDirError(`TAILGUARD_DIR="${env.TAILGUARD_DIR}" is not an absolute path: set it to one (default ${fallback})`);
  return env.TAILGUARD_DIR;
}
