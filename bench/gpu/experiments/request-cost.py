"""Where the Python helper's cost on a ResNet-18 eager request comes from (issue 15): requests back to back in one
process under the shim, interleaved in random order, in modes that differ only in where the helper's calls sit:
  plain     the request alone
  around    tailguard.request(traceparent) around it (what bench/gpu/tracing.py's "request" part times)
  beside    the same begin and end, called just before the request (nothing enclosed): the calls' own cost
  ctypes    tailguard_request_begin/end through ctypes directly around it, no Python context manager
and, without any GPU work, the helper's begin+end pair alone (ns). Prints medians and ratios to plain.
    LD_PRELOAD=native/build/libtailguard.so TAILGUARD_DIR=... python3 bench/gpu/experiments/request-cost.py [--seconds 40]
"""
import argparse
import ctypes
import os
import random
import secrets
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "python"))
import tailguard  # noqa: E402
import workloads  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=40)
a = ap.parse_args()
req = workloads.requests("eager")
lib = ctypes.CDLL(None)
begin, end = lib.tailguard_request_begin, lib.tailguard_request_end
begin.argtypes, begin.restype = [ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int
end.argtypes, end.restype = [], ctypes.c_int


def run(mode, tp):
    t0 = time.perf_counter()
    if mode == "around":
        with tailguard.request(traceparent=tp, name="infer"):
            req.run()
    elif mode == "beside":
        with tailguard.request(traceparent=tp, name="infer"):
            pass
        req.run()
    elif mode == "ctypes":
        begin(tp.encode(), b"infer")
        req.run()
        end()
    else:
        req.run()
    return (time.perf_counter() - t0) * 1e6


modes = ["plain", "around", "beside", "ctypes"]
lat = {m: [] for m in modes}
rng = random.Random(15)
stop = time.perf_counter() + a.seconds
while time.perf_counter() < stop:
    order = list(modes)
    rng.shuffle(order)
    for m in order:
        lat[m].append(run(m, f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"))
base = statistics.median(lat["plain"])
for m in modes:
    med = statistics.median(lat[m])
    print(f"{m:7} n={len(lat[m])} median {med:8.1f} us  ratio {med / base:.4f}  (+{med - base:.1f} us)")
tp = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
for _ in range(3):
    n, t = 20000, time.perf_counter()
    for _ in range(n):
        with tailguard.request(traceparent=tp, name="infer"):
            pass
    print(f"helper begin+end alone: {(time.perf_counter() - t) / n * 1e9:.0f} ns")
print("attached:", tailguard.attached())
