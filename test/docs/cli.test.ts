// Every `tailguard` command the README and docs show is one the CLI has, with options its usage names: an example
// written as the docs say is never refused as an unknown command or option.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { COMMANDS, commandHelp } from "../../agent/src/cli.js";
import { root } from "../support/native.js";

const DOCS = ["README.md", "deploy/README.md", "bench/results/README.md",
  ...readdirSync(path.join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** `tailguard CMD ...` in code spans and in fenced code blocks (up to a comment, a pipe or a ;), with npx or not. */
function examples(text: string): string[] {
  const found = [...text.matchAll(/`(?:npx )?tailguard ([a-z][^`]*)`/g)].map((m) => m[1]);
  for (const block of text.matchAll(/^```[a-z]*\n([\s\S]*?)^```/gm))
    for (const line of block[1].split("\n")) {
      const m = /(?:^|[\s$(])(?:npx )?tailguard ([a-z].*)/.exec(line);
      if (m) found.push(m[1].split(/\s#|\s\|\s|;|&&/)[0]);
    }
  // a word followed by a colon or a parenthesis is prose or output ("tailguard report: FILE: skipped ..."), not a command
  return found.filter((e) => /^[a-z]+(\s|$)/.test(e)).map((e) => e.trim());
}

describe("tailguard commands in the docs", () => {
  it("are found", () => {
    expect(examples(readFileSync(path.join(root, "README.md"), "utf8")).length).toBeGreaterThan(20);
  });

  it.each(DOCS)("%s: commands and options the CLI has", (file) => {
    const wrong: string[] = [];
    for (const example of examples(readFileSync(path.join(root, file), "utf8"))) {
      const [name, ...args] = example.split(/\s+/);
      if (name === "help") continue;
      if (!Object.hasOwn(COMMANDS, name)) {
        wrong.push(`tailguard ${example}: no command "${name}"`);
        continue;
      }
      const own = args.includes("--") ? args.slice(0, args.indexOf("--")) : args; // after --: the program's
      for (const option of own.flatMap((a) => a.match(/--[a-z][a-z-]*/g) ?? []))
        if (option !== "--help" && !commandHelp(name).includes(option)) wrong.push(`tailguard ${example}: no option ${option}`);
    }
    expect(wrong).toEqual([]);
  });
});
