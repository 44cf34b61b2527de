// What the tests need from the machine beyond Node 20, gcc and make: each external component, how it is found and the
// Debian packages that provide it (the README's Quickstart and .ci/run install the same; test/docs/quickstart.test.ts
// holds them together). A test that needs a missing component fails with one line naming it and the install command,
// never skips: a missing component must not look green. global-setup.ts says up front what is missing.
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Where a component is, or why it is not usable. */
type Found = { at: string } | { missing: string };

export interface Component {
  /** what it is, for people */
  what: string;
  /** the Debian packages that provide it */
  packages: string[];
  /** the tests that need it */
  neededBy: string;
  /** commands that install it beyond its packages (after them), or where no Debian 12 package provides it */
  install?: string[];
  find(env: NodeJS.ProcessEnv): Found;
}

const HIP_HEADER = "/usr/include/hip/hip_runtime_api.h";

export const COMPONENTS = {
  promtool: {
    what: "promtool",
    packages: ["prometheus"],
    neededBy: "test/docs/dashboards.test.ts, test/docs/deploy.test.ts",
    find: (env) => onPath("promtool", env),
  },
  prometheus: {
    what: "prometheus",
    packages: ["prometheus"],
    neededBy: "test/e2e/prometheus.test.ts, test/e2e/two-nodes.test.ts",
    find: (env) => onPath("prometheus", env),
  },
  chromium: {
    what: "chromium",
    packages: ["chromium"],
    neededBy: "test/e2e/web.test.ts",
    find: (env) => onPath("chromium", env),
  },
  libfuzzer: {
    what: "clang with libFuzzer",
    packages: ["clang", "libclang-rt-14-dev"],
    neededBy: "test/native/fuzz.test.ts",
    find: libFuzzer,
  },
  "hip-headers": {
    what: "the HIP headers",
    packages: ["libamdhip64-dev"],
    neededBy: "test/native/abi-conformance.test.ts",
    find: () => (existsSync(HIP_HEADER) ? { at: path.dirname(path.dirname(HIP_HEADER)) } : { missing: `no ${HIP_HEADER}` }),
  },
  vmagent: {
    what: "vmagent (the Collector path's stand-in: OTLP in, Prometheus remote write out)",
    packages: [],
    install: ["bash test/support/fetch-vmagent.sh"],
    neededBy: "test/e2e/collector-path.test.ts",
    find: (env) => executable(env.TAILGUARD_VMAGENT ?? path.join(env.XDG_CACHE_HOME ?? path.join(env.HOME ?? "/", ".cache"), "tailguard/vmagent/vmagent")),
  },
  "python-otel": {
    what: "the Python test environment (python3 with venv, opentelemetry-sdk and the helper in .venv-ci/)",
    packages: ["python3-venv"],
    neededBy: "test/python/python.test.ts",
    install: ["bash test/python/venv.sh"],
    find: (env) => pythonVenv(env.TG_PYTHON_VENV || PYTHON_VENV),
  },
} satisfies Record<string, Component>;

export type ComponentName = keyof typeof COMPONENTS;

/** The command that installs these packages (Debian, as root), recommends left out as in .ci/run. */
export function installCommand(packages: string[]): string {
  return `apt-get install --no-install-recommends ${[...new Set(packages)].join(" ")}`;
}

/** The component's path (an executable, or an include directory), or a thrown Error saying what is missing, why, and
 *  how to install it. */
export function requireComponent(name: ComponentName, env: NodeJS.ProcessEnv = process.env): string {
  const c: Component = COMPONENTS[name];
  const found = c.find(env);
  if ("at" in found) return found.at;
  throw new Error(`${c.what} is missing (${found.missing}), which this test needs: install it with ` +
    `${installCommands([c]).map((x) => `\`${x}\``).join(" then ")} (the README's Quickstart lists everything the full suite needs)`);
}

/** The commands that install these components: their packages first, then their own commands. */
export function installCommands(components: Component[]): string[] {
  const packages = components.flatMap((c) => c.packages);
  return [...(packages.length ? [installCommand(packages)] : []), ...new Set(components.flatMap((c) => c.install ?? []))];
}

/** The components this machine lacks, with why. */
export function missingComponents(env: NodeJS.ProcessEnv = process.env): { name: ComponentName; missing: string }[] {
  const out: { name: ComponentName; missing: string }[] = [];
  for (const [name, c] of Object.entries(COMPONENTS) as [ComponentName, Component][]) {
    const found = c.find(env);
    if ("missing" in found) out.push({ name, missing: found.missing });
  }
  return out;
}

/** The venv that test/python/venv.sh makes (TG_PYTHON_VENV names another, for the tests of this file). */
export const PYTHON_VENV = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../.venv-ci");

/** The venv's python, with opentelemetry-sdk installed. */
function pythonVenv(venv: string): Found {
  const python = path.join(venv, "bin/python");
  if (!existsSync(python)) return { missing: `no ${python}` };
  const lib = path.join(venv, "lib");
  const sdk = (existsSync(lib) ? readdirSync(lib) : []).some((v) => existsSync(path.join(lib, v, "site-packages/opentelemetry/sdk")));
  if (!sdk) return { missing: `no opentelemetry-sdk in ${venv}` };
  return { at: python };
}

/** An executable named `cmd` in one of env.PATH's directories. */
function onPath(cmd: string, env: NodeJS.ProcessEnv): Found {
  const dirs = (env.PATH ?? "").split(":").filter(Boolean);
  for (const dir of dirs) {
    const file = path.join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      return { at: file };
    } catch {
      // not here
    }
  }
  return { missing: `no executable \`${cmd}\` in PATH` };
}

/** An executable file at this path. */
function executable(file: string): Found {
  try {
    accessSync(file, constants.X_OK);
    return { at: file };
  } catch {
    return { missing: `no executable ${file}` };
  }
}

/** clang, clang++ and clang's fuzzer runtime (libclang_rt.fuzzer, from libclang-rt-14-dev on Debian 12). */
function libFuzzer(env: NodeJS.ProcessEnv): Found {
  const clang = onPath("clang", env);
  if ("missing" in clang) return clang;
  const clangxx = onPath("clang++", env);
  if ("missing" in clangxx) return clangxx;
  const r = spawnSync(clang.at, ["--print-runtime-dir"], { encoding: "utf8", env });
  const dir = r.stdout?.trim() ?? "";
  const arch = process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch;
  const names = [`libclang_rt.fuzzer-${arch}.a`, "libclang_rt.fuzzer.a"];
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    // no runtime directory at all
  }
  const lib = names.find((n) => files.includes(n));
  if (lib) return { at: clang.at };
  return { missing: `${clang.at} has no libFuzzer: no ${names.join(" or ")} in its runtime directory ${dir || "(none)"}` };
}
