// `tailguard ps`: the processes with the shim attached, read from their rings' headers. Rings of processes that are
// gone and that nobody will read are removed first (the same rule the shim applies when a process starts).
import { controlSlots, describeMechanisms, native, ringDir, type RingInfo } from "../ingest/native.js";
import { describePaths } from "../ingest/recording.js";
import { RingState } from "../ingest/record.js";

export interface PsRow {
  pid: number;
  alive: boolean;
  state: string;
  /** effective priority: the process's slot in its user's GPU control file once attached (what it asks for, within
   *  its owner's ceiling), else its ring header's */
  priority: number | null;
  /** what its slot asks for, when the ceiling keeps it lower (else null) */
  requested: number | null;
  /** the ring file's owner (the process's user) */
  uid: number | null;
  /** scheduling mechanisms in effect for it (empty: none, e.g. it is the highest priority on its GPU) */
  mechanisms: string[];
  /** channel-group timeslice set for it (NVIDIA), microseconds; null if none */
  timesliceUs: number | null;
  /** time its launches were held, ms */
  heldMs: number | null;
  gpu: string;
  launches: number | null;
  dropped: number | null;
  session: string;
  consumer: number | null;
  via: string[];
  command: string;
  error?: string;
}

export function stateOf(r: RingInfo): string {
  if (r.error?.startsWith("corrupt")) return "corrupt";
  if (r.error) return "unreadable";
  if (r.state === RingState.EXECED) return "exec'd";
  if (!r.alive) return r.state === RingState.EXITED ? "exited" : "gone";
  return r.state === RingState.EXITED ? "exiting" : "running";
}

export function listProcesses(env: NodeJS.ProcessEnv = process.env): { rows: PsRow[]; removed: number; dir: string } {
  const addon = native();
  const dir = ringDir(env);
  const removed = addon.sweep(dir);
  // a process of another PID namespace has no slot here: its ring, if any, is shown without scheduling state
  const slots = controlSlots(dir);
  const rows = addon
    .scanRings(dir)
    .map((r): PsRow => ({
      pid: r.pid,
      alive: !!r.alive,
      state: stateOf(r),
      priority: slots.get(r.pid)?.priority ?? (r.error ? null : r.priority),
      requested: slots.has(r.pid) && slots.get(r.pid)!.requested !== slots.get(r.pid)!.priority ? slots.get(r.pid)!.requested : null,
      uid: r.ownerUid ?? null,
      mechanisms: describeMechanisms(slots.get(r.pid)),
      timesliceUs: slots.get(r.pid)?.timesliceUs || null,
      heldMs: slots.has(r.pid) ? slots.get(r.pid)!.heldNs / 1e6 : null,
      gpu: r.gpu ? `${r.gpu.ordinal}:${r.gpu.name}` : "-",
      launches: r.error ? null : r.counters.launches,
      dropped: r.error ? null : r.counters.dropped,
      session: r.session ?? "",
      consumer: r.error ? null : r.consumerPid || null,
      via: r.error ? [] : describePaths(r.attachPaths),
      command: r.error ? `(${r.error})` : r.cmdline.join(" "),
      error: r.error || undefined,
    }))
    .sort((a, b) => a.pid - b.pid);
  return { rows, removed, dir };
}

export function formatPs(rows: PsRow[]): string[] {
  const head = ["PID", "STATE", "PRIO", "SCHED", "HELD", "GPU", "LAUNCHES", "DROPS", "READER", "COMMAND"];
  const body = rows.map((r) => [
    String(r.pid),
    r.state,
    r.priority === null ? "-" : r.requested === null ? String(r.priority) : `${r.priority} (asked ${r.requested})`,
    r.mechanisms.length ? r.mechanisms.join(",") : "-",
    r.heldMs === null ? "-" : `${r.heldMs.toFixed(1)}ms`,
    r.gpu,
    r.launches === null ? "-" : String(r.launches),
    r.dropped === null ? "-" : String(r.dropped),
    r.consumer ? String(r.consumer) : "-",
    r.command,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(head), ...body.map(line)];
}
