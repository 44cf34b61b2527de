#!/usr/bin/env bash
# The Python environment of the Python helper's tests (test/python/python.test.ts): a venv in .venv-ci/ (ignored by
# git) with opentelemetry-sdk and the helper from python/. Idempotent; .ci/run calls it, and so can a developer:
#   bash test/python/venv.sh
# Needs python3 >= 3.10 with venv (Debian: python3-venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-ci
OTEL_SDK=1.45.0 # the pin; its semantic conventions are 0.66b0

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check --retries 0 --timeout 20)
# opentelemetry-sdk with its real dependencies where the index has them all. Where it lacks
# opentelemetry-semantic-conventions (the Python index of this project's machines), the SDK is installed beside
# test/python/semconv-standin, which defines the names the SDK imports: `pip list` shows its version
# 0.66b0+tailguard.standin.
if ! "${pip[@]}" "opentelemetry-sdk==$OTEL_SDK" 2>/dev/null; then
  echo "test/python/venv.sh: opentelemetry-semantic-conventions is not to be had here; using test/python/semconv-standin" >&2
  "${pip[@]}" ./test/python/semconv-standin "opentelemetry-sdk==$OTEL_SDK"
fi
"${pip[@]}" --force-reinstall --no-deps ./python
"$venv/bin/python" -c "import opentelemetry.sdk.trace, tailguard"
