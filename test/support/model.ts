// Hand-built telemetry (agent/src/model.ts) for the tests of the parts that consume it: a process, a request window
// and a hold with plain defaults, each overridable field by field.
import type { Hold, ProcessMeta, RequestWindow } from "../../agent/src/model.js";

export function processMeta(pid: number, over: Partial<ProcessMeta> = {}): ProcessMeta {
  return {
    pid,
    ppid: 1,
    cmdline: ["/usr/bin/python3", "serve.py"],
    priority: 0,
    gpu: { ordinal: 0, uuid: "GPU-11111111-2222-3333-4444-555555555555", name: "H100", pci: "0000:01:00.0" },
    anchorMonotonic: 0n,
    anchorRealtime: 0n,
    resource: {},
    ...over,
  };
}

export function requestWindow(pid: number, over: Partial<RequestWindow> = {}): RequestWindow {
  return {
    pid,
    seq: 1,
    t: 0n,
    durNs: 1_000_000,
    launchCount: 1,
    streams: 1,
    launches: [],
    launchesDropped: 0,
    holds: [],
    heldNs: 0,
    gpuNs: null,
    ...over,
  };
}

export function heldLaunch(pid: number, over: Partial<Hold> = {}): Hold {
  return {
    pid,
    reason: "priority",
    t: 0n,
    durNs: 250_000,
    priority: 0,
    causePid: null,
    causePriority: null,
    causeWindow: null,
    releasedBy: "idle",
    ...over,
  };
}
