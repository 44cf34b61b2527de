"""A Python inference server as test/python/python.test.ts runs it: an HTTP server instrumented with the real
opentelemetry-sdk (a SERVER span per request, continuing the caller's traceparent, as the HTTP instrumentations do)
and tailguard's RequestSpanProcessor, whose handler launches kernels on the simulated GPU through libcuda (ctypes)
and waits for them. Its own clients send the requests. Prints one JSON line per SERVER span the SDK exported.

With MODE executor, the handler hands the GPU work to a thread pool, as a FastAPI `def` endpoint runs in Starlette's,
and the work is wrapped in tailguard.otel.request there.

Usage: server_loop.py REQUESTS CLIENTS KERNEL_US [handler|executor]
(LD_LIBRARY_PATH names the simulated GPU; LD_PRELOAD the shim)"""
import contextvars
import ctypes
import json
import secrets
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.propagate import extract
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tailguard
import tailguard.otel
from tailguard.otel import RequestSpanProcessor

requests, clients, kernel_us = (int(a) for a in sys.argv[1:4])
mode = sys.argv[4] if len(sys.argv) > 4 else "handler"
pool = ThreadPoolExecutor(2)

# the two lines an instrumented server adds (here beside an exporter the test reads)
provider = TracerProvider()
provider.add_span_processor(RequestSpanProcessor())
exported = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(exported))
tracer = provider.get_tracer("server_loop")

# the simulated GPU's driver API, as a framework's CUDA runtime would reach it
cuda = ctypes.CDLL("libcuda.so.1")
p = ctypes.c_void_p


def check(r, what):
    if r != 0:
        raise RuntimeError(f"{what} failed: CUresult {r}")


cuda.cuLaunchKernel.argtypes = [p] + [ctypes.c_uint] * 7 + [p, ctypes.POINTER(p), ctypes.POINTER(p)]
cuda.cuModuleGetFunction.argtypes = [ctypes.POINTER(p), p, ctypes.c_char_p]
cuda.cuStreamSynchronize.argtypes = [p]
cuda.cuCtxSetCurrent.argtypes = [p]
check(cuda.cuInit(0), "cuInit")
device, context, module, kernel = ctypes.c_int(), p(), p(), p()
check(cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device), "cuDevicePrimaryCtxRetain")
check(cuda.cuCtxSetCurrent(context), "cuCtxSetCurrent")
check(cuda.cuModuleLoadData(ctypes.byref(module), b"any image"), "cuModuleLoadData")
check(cuda.cuModuleGetFunction(ctypes.byref(kernel), module, b"resnet_block"), "cuModuleGetFunction")
# one stream for every handler thread, as PyTorch's default stream is: the process's request window (its busy period)
# ends at a sync that covers every stream it used, which concurrent requests on streams of their own would never do
stream = p()
check(cuda.cuStreamCreate(ctypes.byref(stream), 1), "cuStreamCreate")


def infer():
    """Two kernels of KERNEL_US, and the wait for them."""
    check(cuda.cuCtxSetCurrent(context), "cuCtxSetCurrent")
    us = ctypes.c_uint32(kernel_us)
    params = (p * 1)(ctypes.cast(ctypes.byref(us), p))
    for _ in range(2):
        check(cuda.cuLaunchKernel(kernel, 1, 1, 1, 32, 1, 1, 0, stream, params, None), "cuLaunchKernel")
    check(cuda.cuStreamSynchronize(stream), "cuStreamSynchronize")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with tracer.start_as_current_span("GET /infer", context=extract({k.lower(): v for k, v in self.headers.items()}), kind=SpanKind.SERVER):
            if mode == "executor":
                # as Starlette's run_in_threadpool: the work, with the context, on a pool thread
                pool.submit(contextvars.copy_context().run, tailguard.otel.request(name="infer")(infer)).result()
            else:
                infer()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/infer"
sent = []


def client(n):
    for _ in range(n):
        traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        sent.append(traceparent)
        with urllib.request.urlopen(urllib.request.Request(url, headers={"traceparent": traceparent}), timeout=30) as r:
            assert r.status == 200


threads = [threading.Thread(target=client, args=(requests // clients,)) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
server.shutdown()

print(json.dumps({"attached": tailguard.attached(), "sent": sent}))
for s in exported.get_finished_spans():
    print(json.dumps({"name": s.name, "kind": s.kind.name, "traceId": f"{s.context.trace_id:032x}",
                      "spanId": f"{s.context.span_id:016x}", "parentSpanId": f"{s.parent.span_id:016x}" if s.parent else None}))
