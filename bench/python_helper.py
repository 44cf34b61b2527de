"""Cost of the Python helper (python/, docs/tracing.md#python) per request, without the shim and with it (no agent
reading: the ring drops and counts). Run with the tests' venv, from the checkout:

    .venv-ci/bin/python bench/python_helper.py [--runs 5]

Prints a Markdown table: the best of --runs rounds of 100000 calls each, in ns per call."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import timeit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CASES = [
    ("`with tailguard.request(traceparent, name=...)`", "with tailguard.request(TP, name='infer'): pass", None),
    ("`with tailguard.request()`", "with tailguard.request(): pass", None),
    ("a `@tailguard.request` function's call, over a plain one's", "decorated()", "plain()"),
    ("`RequestSpanProcessor`'s on_start + on_end of a SERVER span", "processor.on_start(span); processor.on_end(span)", None),
    ("for scale: a SERVER span of the SDK, with no processor", "with t0.start_as_current_span('GET /infer', kind=SERVER): pass", None),
]


def measure(runs, n=100_000):
    import tailguard
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind
    from tailguard.otel import RequestSpanProcessor

    @tailguard.request(name="f")
    def decorated():
        pass

    def plain():
        pass

    t0 = TracerProvider().get_tracer("bench")
    span = t0.start_span("GET /infer", kind=SpanKind.SERVER)
    g = dict(tailguard=tailguard, TP=TP, decorated=decorated, plain=plain, t0=t0, SERVER=SpanKind.SERVER, span=span,
             processor=RequestSpanProcessor())

    def ns(stmt):
        return min(timeit.repeat(stmt, globals=g, number=n, repeat=runs)) / n * 1e9

    out = [ns(stmt) - (ns(base) if base else 0) for _, stmt, base in CASES]
    return {"attached": tailguard.attached(), "ns": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--child", action="store_true")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure(a.runs)))
        return
    shim = os.path.join(ROOT, "native/build/libtailguard.so")
    results = []
    with tempfile.TemporaryDirectory() as d:
        for preload in ("", shim):
            env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), TAILGUARD_DIR=os.path.join(d, "rings"),
                       LD_PRELOAD=preload)
            r = subprocess.run([sys.executable, __file__, "--child", "--runs", str(a.runs)], env=env, check=True,
                               capture_output=True, text=True)
            results.append(json.loads(r.stdout))
    assert not results[0]["attached"] and results[1]["attached"], "the shim was not found where preloaded"
    print("| ns per call | no shim | shim |\n|---|---|---|")
    for (what, _, _), absent, present in zip(CASES, results[0]["ns"], results[1]["ns"]):
        print(f"| {what} | {absent:.0f} | {present:.0f} |")


if __name__ == "__main__":
    main()
