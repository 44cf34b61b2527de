// Every document a reader is sent to is in the repository: each relative Markdown link in the tracked *.md files, and
// each `*.md` path named anywhere in the tracked tree (docs and code comments alike), resolves to a tracked file,
// relative to the naming file or to the root, and never outside the repository.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { root } from "../support/native.js";

const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);
const trackedSet = new Set(tracked);
/** Markdown files that programs write into their output folders, named by the code that writes them. */
const WRITTEN = new Set(["results.md", "fuzz.md", "faults.md", "toggle.md"]);

/** The tracked file `target` names from `from` (relative to its folder, else to the root), or null. */
function resolve(from: string, target: string): string | null {
  for (const base of [path.dirname(from), ""]) {
    const p = path.posix.normalize(path.posix.join(base, target)).replace(/\/$/, "");
    if (p.startsWith("../")) continue;
    if (trackedSet.has(p) || tracked.some((f) => f.startsWith(`${p}/`))) return p;
  }
  return null;
}

const text = (f: string) => readFileSync(path.join(root, f), "utf8");
const isText = (f: string) => !/\.(png|jpe?g|gif|ico|gz|bin|so|a|o)$/i.test(f);

describe("links and named documents", () => {
  it("every relative link in the Markdown files leads to a file in the repository", () => {
    const broken: string[] = [];
    for (const f of tracked.filter((x) => x.endsWith(".md"))) {
      for (const m of text(f).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1].split("#")[0];
        if (target === "" || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // an anchor, a URL
        if (!resolve(f, decodeURIComponent(target))) broken.push(`${f}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("every *.md file named in the tree (docs, comments) is in the repository", () => {
    const missing: string[] = [];
    for (const f of tracked.filter(isText)) {
      for (const m of text(f).matchAll(/(?<![\w./:}-])((?:\.\.?\/)?[\w./-]*[\w-]\.md)\b/g)) {
        if (WRITTEN.has(m[1])) continue;
        if (!resolve(f, m[1])) missing.push(`${f}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
