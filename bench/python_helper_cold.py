"""The Python helper's cost per request with cold caches, as a model's work leaves them (docs/tracing.md, "Cost"): each
call follows a sweep over 16 MB and 30,000 Python objects; modes interleaved in random order, 3000 rounds, medians.
  plain       nothing (the timer's own cost)
  construct   tailguard.request(traceparent, name=...) built, not entered
  check       the traceparent check alone
  around      with tailguard.request(traceparent, name=...): pass
  raw_ctypes  tailguard_request_begin/end through ctypes, no argtypes
    LD_PRELOAD=native/build/libtailguard.so python3 bench/python_helper_cold.py
"""
import sys, time, secrets, statistics, ctypes, random
sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__import__("os").path.abspath(__file__)), "..", "python"))
import tailguard
from tailguard._traceparent import check
big = bytearray(16 << 20)
objs = [dict(a=i) for i in range(200000)]
def thrash():
    s = 0
    for i in range(0, len(big), 4096): s += big[i]
    for o in objs[::7]: s += o["a"]
    return s
lib = ctypes.CDLL(None)
b2, e2 = lib.tailguard_request_begin, lib.tailguard_request_end
name = b"infer"
def m_plain(tp): pass
def m_construct(tp): tailguard.request(traceparent=tp, name="infer")
def m_check(tp): check(tp)
def m_around(tp):
    with tailguard.request(traceparent=tp, name="infer"): pass
def m_raw(tp):
    b2(tp.encode(), name); e2()
modes = {"plain": m_plain, "construct": m_construct, "check": m_check, "around": m_around, "raw_ctypes": m_raw}
lat = {m: [] for m in modes}
rng = random.Random(1)
for i in range(3000):
    order = list(modes); rng.shuffle(order)
    for m in order:
        tp = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        thrash()
        t0 = time.perf_counter_ns(); modes[m](tp); lat[m].append(time.perf_counter_ns() - t0)
for m in modes: print(m, round(statistics.median(lat[m]) / 1e3, 2), "us")
