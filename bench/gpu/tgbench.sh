#!/usr/bin/env bash
# `tailguard bench ARGS...` on the GPU machine, where node_modules is not installed: the bench's own modules need none
# (only the built agent/dist, the addon in build/ and the shim), so they are imported directly rather than through
# agent/dist/cli.js (whose other commands load OpenTelemetry). Builds the shim first.
# Usage: bench/gpu/tgbench.sh [tailguard bench options]   (from the repository root; node on PATH)
set -uo pipefail
cd "$(dirname "$0")/../.."
make -C native build/libtailguard.so >/dev/null || exit 1
exec node --input-type=module -e '
  const m = await import(process.cwd() + "/agent/dist/bench/command.js");
  process.exitCode = await m.benchCommand(process.argv.slice(1));
' -- "$@"
