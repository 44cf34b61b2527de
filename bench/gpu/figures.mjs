#!/usr/bin/env node
// The figures of the published H100 tables, without the raw runs in the tree. The raw runs are on the `results` branch
// (bench/results/README.md); bench/results/figures/SCRIPT.json keeps what the table of bench/gpu/SCRIPT.mjs is printed
// from (bench-table, pairs-b8, experiments/toggle-summary: each exports `extract`, which takes it out of the raw
// runs). The scripts print from those figures, or from raw runs given to them;
// test/e2e/bench.test.ts holds the docs to the figures, and the figures to the branch where a clone has it.
// Usage: node bench/gpu/figures.mjs [DIR]   rewrites bench/results/figures/ from DIR (a folder laid out as the results
//        branch: `git archive results | tar x -C DIR`), by default from the branch itself
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { root } from "../common.mjs";

export const FIGURES_DIR = path.join(root, "bench/results/figures");
/** The tables' scripts, by the name of their figures file. */
export const TABLES = { "bench-table": "./bench-table.mjs", "pairs-b8": "./pairs-b8.mjs", "toggle-summary": "./experiments/toggle-summary.mjs" };

/** The results branch as this clone knows it (a local branch, or origin's), or null. */
export function resultsRef() {
  for (const ref of ["refs/heads/results", "refs/remotes/origin/results"])
    if (spawnSync("git", ["rev-parse", "--verify", "--quiet", ref], { cwd: root }).status === 0) return ref;
  return null;
}

/** A reader of raw JSON files by their path on the results branch: from the folder `dir`, or from the branch. */
export function rawFiles(dir) {
  if (dir) return (rel) => JSON.parse(fs.readFileSync(path.resolve(dir, rel), "utf8"));
  const ref = resultsRef();
  if (!ref) throw new Error("this clone has no `results` branch (git fetch origin results:results), and no folder was given");
  return (rel) => JSON.parse(execFileSync("git", ["show", `${ref}:${rel}`], { cwd: root, encoding: "utf8", maxBuffer: 1 << 26 }));
}

/** The committed figures of one table (its script's name). */
export function publishedFigures(table) {
  return JSON.parse(fs.readFileSync(path.join(FIGURES_DIR, `${table}.json`), "utf8"));
}

/** The figures of every table, by its script's name, from raw files (`read`: path on the results branch -> parsed
 *  JSON). */
export async function extract(read) {
  const out = {};
  for (const [key, script] of Object.entries(TABLES)) out[key] = (await import(script)).extract(read);
  return out;
}

/** A figures file's text: a line per case, pair or run, so that a change shows as what it touches. */
export function format(figures) {
  const lines = Array.isArray(figures) ? figures.map((x) => JSON.stringify(x))
    : Object.entries(figures).map(([k, x]) => `${JSON.stringify(k)}: ${JSON.stringify(x)}`);
  const [open, close] = Array.isArray(figures) ? ["[", "]"] : ["{", "}"];
  return `${open}\n${lines.map((l) => `  ${l}`).join(",\n")}\n${close}\n`;
}

// not a top-level await: the table scripts import this module, which must have finished loading first
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  extract(rawFiles(process.argv[2])).then((all) => {
    fs.mkdirSync(FIGURES_DIR, { recursive: true });
    for (const [table, figures] of Object.entries(all)) {
      const file = path.join(FIGURES_DIR, `${table}.json`);
      fs.writeFileSync(file, format(figures));
      console.log(`${path.relative(process.cwd(), file)}: ${fs.statSync(file).size} bytes`);
    }
  });
}
