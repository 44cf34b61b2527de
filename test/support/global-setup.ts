// Builds the native parts once before any test file runs (test files run in parallel; concurrent builds of the same
// library could replace it under a process that is loading it). `npm test` also builds in `pretest`.
import { execFileSync } from "node:child_process";
import path from "node:path";

import { root } from "./native.js";

export default function setup() {
  execFileSync("make", ["-C", path.join(root, "native")], { stdio: "pipe" });
  execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", root], { stdio: "pipe" });
}
