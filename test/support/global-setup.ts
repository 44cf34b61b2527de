// Builds the native parts once before any test file runs (test files run in parallel; concurrent builds of the same
// library could replace it under a process that is loading it). `npm test` also builds in `pretest`. Says up front,
// in one line, which external components this machine lacks: the tests that need them will fail (components.ts).
import { execFileSync } from "node:child_process";
import path from "node:path";

import { COMPONENTS, type Component, installCommands, missingComponents } from "./components.js";
import { root } from "./native.js";

export default function setup() {
  execFileSync("make", ["-C", path.join(root, "native")], { stdio: "pipe" });
  execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", root], { stdio: "pipe" });
  const missing = missingComponents().map((m) => COMPONENTS[m.name] as Component);
  const commands = installCommands(missing);
  if (missing.length > 0)
    console.warn(`tailguard tests: this machine lacks ${missing.map((c) => c.what).join(", ")}: the tests of ` +
      `${missing.map((c) => c.neededBy).join(", ")} will fail; install with ${commands.map((c) => `\`${c}\``).join(" and ")}`);
}
