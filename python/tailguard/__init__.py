"""tailguard's Python helper: puts the application's requests, with their W3C trace context, into the records of the
tailguard shim (LD_PRELOADed libtailguard.so), so the GPU work of a request lands in the application's own trace.

Without the shim in the process every function here is a no-op (`attached()` says which); traceparents are checked
either way, so a bad one fails in development as it would in production."""
import errno
import functools
import inspect
import os
import threading
import warnings

from . import _shim
from ._traceparent import check as _check

__all__ = ["attached", "abi_version", "request", "range_message", "set_process_context"]
__version__ = "0.1.0"


def attached():
    """True when the tailguard shim is in this process (its C ABI was found), False when every call is a no-op."""
    return _shim.begin is not None


def abi_version():
    """The version of the shim's C ABI (tailguard_abi_version()), 0 when the shim is absent."""
    return _shim.abi_version


def _encode_name(name):
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"tailguard: a request's name must be a str or None, not {type(name).__name__} {name!r}")
    return name.encode("utf-8", "replace")


_warned = set()
# Requests whose begin the shim refused (it refuses only past its nesting depth, so they are a thread's innermost):
# their ends must not end an enclosing request. Counted per thread, and looked at only once any begin has failed, so
# that a request's way in and out is a few lookups and two calls into the shim (each microseconds with the caches as
# a model's work leaves them: docs/tracing.md, "Cost").
_refused = threading.local()
_any_refused = False


def _refuse():
    global _any_refused
    _any_refused = True
    _refused.n = getattr(_refused, "n", 0) + 1


def _was_refused():
    n = getattr(_refused, "n", 0)
    if n:
        _refused.n = n - 1
    return n > 0


def _failed(call, rc, arg):
    """A negative errno from the shim: EINVAL is the caller's value; anything else is said once and ignored, since
    the application must never fail because of its telemetry."""
    if rc == -errno.EINVAL:
        raise ValueError(f"tailguard: the shim refused {arg!r} in {call} (EINVAL)")
    if (call, rc) not in _warned:
        _warned.add((call, rc))
        warnings.warn(f"tailguard: {call} failed: {os.strerror(-rc)} (errno {-rc}); requests are not recorded "
                      "while it does", RuntimeWarning, stacklevel=3)


class request:
    """A request of the calling thread, from entering to leaving: the GPU work the thread launches (and waits for)
    meanwhile is that request's, and its span in tailguard's traces is a child of `traceparent`'s span.

        with tailguard.request(traceparent, name="infer"):
            run_model(batch)

        @tailguard.request(name="infer")   # or bare: @tailguard.request
        def infer(batch): ...

    traceparent: a W3C traceparent ("00-<trace-id>-<parent-id>-<flags>"), or None to inherit the thread's current
    context (an enclosing request's, else the process's). name: shown as the request span's name; a decorator
    defaults it to the function's qualified name. Requests nest per thread.

    Threads, not coroutines: the shim keeps each thread's requests, so a request must begin and end on one thread,
    and everything that thread launches in between is the request's. Decorating a coroutine function (async def) is
    a TypeError; inside async code, wrap the synchronous part that launches the GPU work (what runs in the executor,
    asyncio.to_thread, or the model call itself between awaits)."""

    __slots__ = ("_traceparent", "_name")

    def __new__(cls, traceparent=None, name=None):
        if callable(traceparent) and not isinstance(traceparent, str):
            # bare decorator: @tailguard.request
            return cls(None, name)(traceparent)
        return super().__new__(cls)

    def __init__(self, traceparent=None, name=None):
        self._traceparent = None if traceparent is None else _check(traceparent)
        self._name = _encode_name(name)

    def _current(self):
        """The traceparent to begin with, as bytes, or None (tailguard.otel.request finds it at each begin)."""
        return self._traceparent

    def __enter__(self):
        begin = _shim.begin
        if begin is None:
            return self
        traceparent = self._current()
        rc = begin(traceparent, self._name)
        if rc < 0:
            _failed("tailguard_request_begin", rc, traceparent)
            _refuse()
        return self

    def __exit__(self, *exc):
        end = _shim.end
        if end is not None and not (_any_refused and _was_refused()):
            end()
        return False

    def __call__(self, fn):
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"tailguard.request cannot decorate the coroutine function {fn.__qualname__}: a request "
                            "belongs to a thread, and other tasks of the event loop would run inside it at every "
                            "await. Decorate the synchronous function that launches the GPU work instead.")
        current, name = self._current, self._name
        if name is None:
            name = _encode_name(getattr(fn, "__qualname__", None))

        @functools.wraps(fn)
        def in_request(*args, **kwargs):
            begin = _shim.begin
            if begin is None:
                return fn(*args, **kwargs)
            traceparent = current()
            rc = begin(traceparent, name)
            if rc < 0:
                _failed("tailguard_request_begin", rc, traceparent)
                return fn(*args, **kwargs)
            try:
                return fn(*args, **kwargs)
            finally:
                _shim.end()

        return in_request


def range_message(name, traceparent):
    """The message of an NVTX range that is at once the range `name` and a request of `traceparent`'s trace named
    `name` (the shim reads "NAME traceparent"): one NVTX call where a range and `tailguard.request` take two, for a
    server that marks its requests with NVTX anyway. Checked like `request`'s traceparent.

        with torch.cuda.nvtx.range(tailguard.range_message("infer", traceparent)):
            run_model(batch)
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"tailguard: a range's name must be a non-empty str, not {type(name).__name__} {name!r}")
    return f"{name} {_check(traceparent).decode('ascii')}"


def set_process_context(traceparent):
    """Sets the process's default trace context: requests without a traceparent of their own (and the windows the
    agent infers) become children of this span. None or "" clears it."""
    if traceparent is None or traceparent == "":
        raw = None
    else:
        raw = _check(traceparent)
    if _shim.set_process_context is None:
        return
    rc = _shim.set_process_context(raw)
    if rc < 0:
        _failed("tailguard_set_process_context", rc, raw)
