// The ring reader of bench/gpu/paired.py: drains every ring in one TAILGUARD_DIR, as the agent would (a shim whose
// lanes fill up drops records, and a measurement of that would not be one of tailguard as deployed), and answers
// "status" on stdin with what the rings and the GPU control files say of each process (one JSON line), "quit" to end.
// Needs the built agent (agent/dist) and addon (build/Release); no node_modules.
// Usage: node bench/gpu/rings.mjs DIR
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const { native, describeMechanisms } = await import(path.join(root, "agent/dist/ingest/native.js"));

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node bench/gpu/rings.mjs DIR");
  process.exit(2);
}
const addon = native();
// rings of processes that are gone stay (removeFinished: false) so that the last status still counts their drops
const collector = new addon.Collector(dir, { pollUs: 1000, removeFinished: false });
let drained = 0;
const timer = setInterval(() => {
  drained += collector.take(1 << 18).records;
}, 10);

function status() {
  const rings = addon.scanRings(dir).filter((r) => !r.error).map((r) => ({
    pid: r.pid, generation: r.execGeneration, priority: r.priority, launches: r.counters.launches,
    dropped: r.counters.dropped, lost: r.counters.lost ?? 0, gpu: r.gpu?.uuid ?? null,
  }));
  const slots = addon.controlBlocks(dir).flatMap((b) => b.slots ?? []).map((s) => ({
    pid: s.pid, priority: s.priority, requested: s.requested, mechanisms: describeMechanisms(s), holds: s.holds,
    heldMs: s.heldNs / 1e6,
  }));
  return { drained, rings, slots, problems: collector.problems() };
}

const finish = () => {
  clearInterval(timer);
  collector.close();
  process.exit(0);
};
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "status") process.stdout.write(JSON.stringify(status()) + "\n");
  else if (cmd === "quit") finish();
  else process.stdout.write(JSON.stringify({ error: `unknown command ${JSON.stringify(cmd)}: use status or quit` }) +
    "\n");
});
lines.on("close", finish);
