"""The GPU work the measurement scripts time: the high-priority request (ResNet-18, batch 1, eager or replayed as a CUDA
graph) and the low-priority batch job (ResNet-50, batch B, back to back), built and warmed up here (cuDNN autotune,
graph capture) so that every script times the same thing; and CPU-only stand-ins of both for running the scripts
without a GPU (`fake=True`: a request sleeps, an iteration spins).

    request = requests("graph")        # warmed up; request.run() -> GPU ms of one request, after it completed
    batch = batch_job(1024)            # warmed up; batch.run() runs one iteration to completion
    info = versions()                  # torch, torchvision, CUDA, GPU name (None entries for the stand-ins)

torch is imported only when a real workload is built. Written in the spirit of bench/h100/mission.py (the original
test's harness), which can switch to it."""
import time

REQUEST_MODEL, BATCH_MODEL = "resnet18", "resnet50"


def _model(name, batch):
    import torch
    import torchvision.models as models

    torch.backends.cudnn.benchmark = True  # autotuned during the warm-up, never inside a timed block
    torch.set_grad_enabled(False)  # inference only, for the whole (main) thread: no context manager per request
    model = getattr(models, name)(weights=None).cuda().eval()  # weights=None: nothing to download
    return torch, model, torch.randn(batch, 3, 224, 224, device="cuda")


class Requests:
    """ResNet-18 batch 1; `flavour` "eager" runs the model as PyTorch does (launch-bound: its latency is mostly host
    time), "graph" replays it as one CUDA graph (GPU-bound: where GPU scheduling shows)."""

    def __init__(self, flavour, warmup=30):
        torch, model, x = _model(REQUEST_MODEL, 1)
        self.torch, self.flavour = torch, flavour
        for _ in range(warmup):
            model(x)
        torch.cuda.synchronize()
        step = lambda: model(x)  # noqa: E731
        if flavour == "graph":
            # capture on a side stream after a few runs there, as torch.cuda.graphs asks
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    model(x)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                model(x)
            for _ in range(warmup):
                graph.replay()
            torch.cuda.synchronize()
            step = graph.replay
        self._step = step
        # one pair, read after each request's sync: its GPU time includes waiting for other contexts' time slices
        self._begin = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def run(self):
        """One request, to completion; returns its GPU time (ms) between CUDA events around it."""
        self._begin.record()
        self._step()
        self._end.record()
        self.torch.cuda.synchronize()
        return self._begin.elapsed_time(self._end)


class BatchJob:
    """ResNet-50 inference at batch `batch`, one synchronised iteration per run()."""

    def __init__(self, batch, warmup=5):
        torch, model, x = _model(BATCH_MODEL, batch)
        self.torch, self._model, self._x = torch, model, x
        for _ in range(warmup):
            self.run()

    def run(self):
        self._model(self._x)
        self.torch.cuda.synchronize()


class FakeRequests:
    """Stand-in request: sleeps `service_ms` (the "GPU time"), so the controller's schedule, latency and pipes are
    exercised without a GPU."""

    def __init__(self, flavour, service_ms=2.0):
        self.flavour, self.service_s = flavour, service_ms / 1e3

    def run(self):
        t = time.perf_counter()
        time.sleep(self.service_s)
        return (time.perf_counter() - t) * 1e3


class FakeBatchJob:
    """Stand-in iteration: spins the CPU for about a millisecond per 32 images, like a host-bound batch job."""

    def __init__(self, batch):
        self.iteration_s = max(1.0, batch / 32) / 1e3

    def run(self):
        until = time.perf_counter() + self.iteration_s
        while time.perf_counter() < until:
            pass


def requests(flavour, fake=False):
    if flavour not in ("eager", "graph"):
        raise ValueError(f"flavour {flavour!r}: use eager or graph")
    return FakeRequests(flavour) if fake else Requests(flavour)


def batch_job(batch, fake=False):
    if batch <= 0:
        raise ValueError(f"batch {batch}: must be positive")
    return FakeBatchJob(batch) if fake else BatchJob(batch)


def versions(fake=False):
    if fake:
        return {"torch": None, "torchvision": None, "cuda": None, "gpu": None}
    import torch
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0)}
