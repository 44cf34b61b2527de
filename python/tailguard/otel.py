"""An OpenTelemetry span processor that makes each server span a tailguard request, so the GPU work done while an
instrumented server (FastAPI, Flask, gRPC...) handles a request is that request's, in its trace:

    from tailguard.otel import RequestSpanProcessor
    provider.add_span_processor(RequestSpanProcessor())

Needs opentelemetry-sdk (span processors are the SDK's); a no-op without the shim, like the rest of the helper."""
import threading

try:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import SpanKind, get_current_span
except ImportError as e:
    raise ImportError("tailguard.otel needs opentelemetry-sdk (span processors belong to the SDK): "
                      "pip install opentelemetry-sdk") from e

from . import _encode_name, _shim
from . import request as _request
from ._traceparent import encode

__all__ = ["RequestSpanProcessor", "request"]


def is_server(span):
    """The default filter: spans of kind SERVER (what HTTP and RPC server instrumentations start per request)."""
    return span.kind == SpanKind.SERVER


class RequestSpanProcessor(SpanProcessor):
    """Begins a tailguard request in on_start for every span `filter` accepts (default: SERVER spans), with the span's
    own traceparent and name, so the request's GPU spans are children of it; ends it in on_end.

    The shim's requests belong to the thread that began them (tailguard.request says why), and on_end runs on the
    thread that ends the span, which need not be that one. So: a span that ends on the thread that began it, as its
    innermost request, ends its request at once. One that ends elsewhere (on another thread, or under a request begun
    after it on its thread, as when asyncio tasks interleave on one event-loop thread) is marked ended, and the thread
    that began it ends it as soon as everything begun after it on that thread has ended, at that thread's next span
    start or end at the latest. Until then launches of that thread still count to it: thread-per-request servers
    (WSGI, gRPC's thread pool) get exact requests; servers that interleave requests on one thread get the innermost
    open request's attribution, never a request ended out of order."""

    def __init__(self, filter=None):
        self._filter = filter if filter is not None else is_server
        self._local = threading.local()
        # (trace id, span id) -> (the beginning thread's stack, its entry [ended]); each dict operation is atomic
        self._open = {}

    def _stack(self):
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    @staticmethod
    def _unwind(stack):
        # only ever called on the thread that owns `stack`: the shim ends that thread's innermost request
        while stack and stack[-1][0]:
            stack.pop()
            _shim.end()

    def on_start(self, span, parent_context=None):
        if _shim.begin is None or not self._filter(span):
            return
        stack = self._stack()
        self._unwind(stack)
        ctx = span.get_span_context()
        name = span.name.encode("utf-8", "replace") if span.name else None
        if _shim.begin(encode(ctx.trace_id, ctx.span_id, ctx.trace_flags), name) < 0:
            return  # the shim could not record it: nothing to end
        entry = [False]
        stack.append(entry)
        self._open[(ctx.trace_id, ctx.span_id)] = (stack, entry)

    def on_end(self, span):
        if _shim.begin is None:
            return
        ctx = span.get_span_context()
        found = self._open.pop((ctx.trace_id, ctx.span_id), None)
        if found is None:
            return  # not ours
        stack, entry = found
        entry[0] = True
        if stack is getattr(self._local, "stack", None):
            self._unwind(stack)

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


class request(_request):
    """tailguard.request with the current OpenTelemetry span's context, found at each begin: for GPU work that runs on
    another thread than the one that began the span, where RequestSpanProcessor's request is not (a FastAPI `def`
    endpoint, run in Starlette's thread pool; a model call handed to an executor: contextvars carry the current span
    there, the shim's requests do not):

        @app.post("/infer")
        def infer(batch: Batch):
            with tailguard.otel.request(name="infer"):   # or decorate: @tailguard.otel.request
                return model(batch)

    Its request is a child of the current span (of the SERVER span, or of a span begun inside it); with no current
    span, of the thread's current context, as tailguard.request(None)."""

    __slots__ = ()

    def __new__(cls, name=None):
        self = object.__new__(cls)
        self._traceparent = None
        if callable(name) and not isinstance(name, str):
            # bare decorator: @tailguard.otel.request
            self._name = None
            return self(name)
        return self

    def __init__(self, name=None):
        self._name = _encode_name(name)

    def _current(self):
        ctx = get_current_span().get_span_context()
        return encode(ctx.trace_id, ctx.span_id, ctx.trace_flags) if ctx.is_valid else None
