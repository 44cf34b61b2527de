"""Worker of toggle-b8.mjs (a probe, not the product): one of the two processes of the `default` eager scenario, run
for as long as the driver says, so that the driver can switch tailguard's priorities and the high-priority requests
at runtime and compare stretches of one pair of processes (no difference between process starts or cuDNN choices).

  toggle-b8.py high   ResNet-18 batch 1 eager, a request every 100 ms (synchronised) while not paused
  toggle-b8.py low    ResNet-50 batch 8 eager, back to back, each iteration split into enqueue and sync wait
CPUs: 2,3 (high) and 4,5 (low), or TOGGLE_HIGH_CPUS / TOGGLE_LOW_CPUS. stdin: "go" starts, "pause" / "resume"
(high only) stop and restart the requests, "stop" ends; stdout: "ready" after the warm-up, then at the end one JSON
line with every row (monotonic ns):
  high  [scheduled, completion]           low  [begin, enqueued, synchronised]"""
import gc
import json
import os
import select
import sys
import time

role = sys.argv[1]
cpus = os.environ.get("TOGGLE_HIGH_CPUS" if role == "high" else "TOGGLE_LOW_CPUS", "2,3" if role == "high" else "4,5")
os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
import torch  # noqa: E402
import torchvision.models as models  # noqa: E402

torch.backends.cudnn.benchmark = True
model = (models.resnet18 if role == "high" else models.resnet50)(weights=None).cuda().eval()
x = torch.randn(1 if role == "high" else 8, 3, 224, 224, device="cuda")


def command(timeout):
    ready, _, _ = select.select([sys.stdin], [], [], max(0.0, timeout))
    return sys.stdin.readline().strip() if ready else None


rows = []
with torch.no_grad():
    for _ in range(30):
        model(x)
    torch.cuda.synchronize()
    print("ready", flush=True)
    while command(1) != "go":
        pass
    gc.collect()
    gc.disable()
    if role == "low":
        while command(0) != "stop":
            b = time.monotonic_ns()
            model(x)
            e = time.monotonic_ns()
            torch.cuda.synchronize()
            rows.append((b, e, time.monotonic_ns()))
    else:
        due, paused = time.monotonic_ns(), False
        while True:
            c = command((due - time.monotonic_ns()) / 1e9)
            if c == "stop":
                break
            if c in ("pause", "resume"):
                paused = c == "pause"
                continue
            if c is not None or time.monotonic_ns() < due:
                continue
            if not paused:
                model(x)
                torch.cuda.synchronize()
                rows.append((due, time.monotonic_ns()))
            due += 100_000_000
    gc.enable()
print(json.dumps({"role": role, "rows": rows}), flush=True)
