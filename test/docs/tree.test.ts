// Results stay out of the tree (issue 14): the tracked tree is small, bench/ holds drivers and a curated summary but
// no raw run output, and every raw file the docs name as `results:PATH` is on the `results` branch and in main's
// history at the commit bench/results/README.md names.
import { execFileSync, spawnSync } from "node:child_process";
import { lstatSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { resultsRef } from "../../bench/gpu/figures.mjs";
import { root } from "../support/native.js";

const MAX_TREE_BYTES = 3_000_000;
const MAX_BENCH_JSON_BYTES = 64 * 1024;

const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0")
  .filter((f) => f && !f.startsWith("node_modules/"));

/** Why a tracked file under bench/ is raw run output, or null when it is not. */
function rawOutput(file: string): string | null {
  if (/\.(png|svg|jsonl|log)$/.test(file)) return "a plot, JSON Lines or a log";
  if (/(^|\/)parts\//.test(file)) return "a part of a combined run";
  if (/(^|\/)(result\.json|results\.md|toggle\.json)$/.test(file)) return "a run's own output file";
  if (file.endsWith(".json") && lstatSync(path.join(root, file)).size > MAX_BENCH_JSON_BYTES) return "JSON over 64 KB";
  if (file.startsWith("bench/results/") && file !== "bench/results/README.md" && !/^bench\/results\/figures\/[\w-]+\.json$/.test(file))
    return "bench/results/ holds README.md and figures/ only";
  return null;
}

/** The raw files the docs name, `results:PATH` (a run folder is NAME-DATE, so `results:PATH` itself is no name). */
function namedRawFiles(): { doc: string; file: string }[] {
  const docs = tracked.filter((f) => f.endsWith(".md") && (f.startsWith("docs/") || f.startsWith("bench/") || !f.includes("/")));
  return docs.flatMap((doc) => [...readFileSync(path.join(root, doc), "utf8").matchAll(/`results:([\w.-]+-\d{4}-\d\d-\d\d(?:[/.][^`\s]*)?)`/g)]
    .map((m) => ({ doc, file: m[1].replace(/\/$/, "") })));
}

const exists = (object: string) => spawnSync("git", ["cat-file", "-e", object], { cwd: root }).status === 0;

describe("results out of the tree", () => {
  it(`the tracked tree outside node_modules is under ${MAX_TREE_BYTES / 1e6} MB`, () => {
    const bytes = tracked.reduce((sum, f) => {
      try {
        return sum + lstatSync(path.join(root, f)).size;
      } catch {
        return sum; // deleted in this checkout, not yet in the index
      }
    }, 0);
    expect(bytes, "raw runs go to the results branch (CONTRIBUTING.md, Results)").toBeLessThan(MAX_TREE_BYTES);
  });

  it("no tracked file under bench/ is raw run output", () => {
    const raw = tracked.filter((f) => f.startsWith("bench/")).flatMap((f) => {
      const why = rawOutput(f);
      return why ? [`${f}: ${why}`] : [];
    });
    expect(raw).toEqual([]);
  });

  it("every results:PATH the docs name is on the results branch", (ctx) => {
    const named = namedRawFiles();
    expect(named.filter((n) => n.doc === "bench/results/README.md").length).toBeGreaterThan(30);
    const ref = resultsRef();
    ctx.skip(!ref, "this clone has no `results` branch (git fetch origin results:results): the names were not checked");
    expect(named.filter((n) => !exists(`${ref}:${n.file}`)).map((n) => `${n.doc}: results:${n.file}`)).toEqual([]);
  });

  it("and in main's history at the commit bench/results/README.md names", (ctx) => {
    const readme = readFileSync(path.join(root, "bench/results/README.md"), "utf8");
    const commit = /in main's history up to\s+commit ([0-9a-f]{40})/.exec(readme)?.[1];
    expect(commit, "bench/results/README.md names the last commit of main with the raw runs").toBeDefined();
    ctx.skip(!exists(`${commit}^{commit}`), `this clone lacks commit ${commit} (shallow?): the names were not checked`);
    // runs committed to the branch after the cut were never in main: only names under a run that was are checked
    const wasInMain = (n: { file: string }) => exists(`${commit}:bench/results/${n.file.split("/")[0]}`);
    const old = namedRawFiles().filter(wasInMain);
    expect(old.length).toBeGreaterThan(30);
    expect(old.filter((n) => !exists(`${commit}:bench/results/${n.file}`)).map((n) => `${n.doc}: results:${n.file}`))
      .toEqual([]);
  });
});
