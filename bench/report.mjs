// What every benchmark result says about itself (the command that produced it, the commit, when, and on which
// machine) and where it goes.
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";

import { root } from "./common.mjs";

export function provenance() {
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8", stdio: "pipe" }).trim();
  } catch {}
  return {
    command: ["node", path.relative(root, process.argv[1]), ...process.argv.slice(2)].join(" "),
    commit,
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, kernel: os.release(), node: process.version },
  };
}

/** Where a driver writes: `out` (its --out) if given, else the folder results/NAME-DATE/ of the repository, which git
 *  ignores: a run worth keeping goes to the `results` branch (bench/results/README.md), never into the tree. `file`:
 *  for a driver whose --out names a file, that file's name in the folder. */
export function resultsPath(name, out, file) {
  if (out) return path.resolve(out);
  const dir = path.join(root, "results", `${name}-${new Date().toISOString().slice(0, 10)}`);
  return file ? path.join(dir, file) : dir;
}
