// What the README's Quickstart says the tests need is what .ci/run installs, and what the tests ask for when a
// component is missing (test/support/components.ts): one list of Debian packages, installed without recommends.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { COMPONENTS } from "../support/components.js";
import { root } from "../support/native.js";

const readme = readFileSync(path.join(root, "README.md"), "utf8");
const ci = readFileSync(path.join(root, ".ci/run"), "utf8");

/** The README Quickstart's apt-get line: its packages. */
function quickstartPackages(): string[] {
  const quickstart = readme.slice(readme.indexOf("## Quickstart"), readme.indexOf("\n## ", readme.indexOf("## Quickstart") + 1));
  const lines = quickstart.split("\n").filter((l) => /^(sudo )?apt-get install /.test(l));
  expect(lines, "one apt-get install line in the README's Quickstart").toHaveLength(1);
  expect(lines[0]).toMatch(/^(sudo )?apt-get install --no-install-recommends [a-z0-9 .+-]+$/);
  return lines[0].replace(/^(sudo )?apt-get install --no-install-recommends /, "").split(/\s+/);
}

/** .ci/run's package list: `for pkg in ...; do`. */
function ciPackages(): string[] {
  const m = /^for pkg in ([^;]+); do$/m.exec(ci);
  expect(m, ".ci/run's `for pkg in ...; do` line").not.toBeNull();
  return m![1].trim().split(/\s+/);
}

describe("the packages the tests need", () => {
  it("the README's Quickstart installs the same packages as .ci/run", () => {
    expect(quickstartPackages().sort()).toEqual(ciPackages().sort());
  });

  it(".ci/run installs them without recommends", () => {
    // the commands, with their options (not the message that names a failed one)
    const installs = ci.split("\n").filter((l) => /apt-get install( -\S+)+/.test(l));
    expect(installs.length).toBeGreaterThan(0);
    for (const l of installs) expect(l).toContain("--no-install-recommends");
  });

  it("a component no Debian 12 package provides is installed by .ci/run and named in the Quickstart", () => {
    const quickstart = readme.slice(readme.indexOf("## Quickstart"), readme.indexOf("\n## ", readme.indexOf("## Quickstart") + 1));
    const installs = Object.values(COMPONENTS).flatMap((c: { install?: string }) => c.install ?? []);
    expect(installs.length).toBeGreaterThan(0);
    for (const cmd of installs) {
      expect(ci, `.ci/run runs ${cmd}`).toContain(cmd);
      expect(quickstart, `the Quickstart names ${cmd}`).toContain(cmd);
    }
  });

  it("every package a test names when its component is missing is one of them", () => {
    const ciList = ciPackages();
    for (const [name, c] of Object.entries(COMPONENTS))
      for (const p of c.packages) expect(ciList, `${name} needs ${p}`).toContain(p);
  });
});
