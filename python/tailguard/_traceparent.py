"""W3C Trace Context `traceparent` checks, so a bad value is a ValueError in Python whether or not the shim is there."""
import re

FORMAT = ("00-<trace-id: 32 lowercase hex digits, not all 0>-<parent-id: 16 lowercase hex digits, not all 0>-"
          "<trace-flags: 2 hex digits>, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

# version 00 is exactly these 55 characters; a later version may append "-..." (W3C Trace Context, 3.2.4)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z")


def check(traceparent, what="traceparent"):
    """The traceparent as bytes for C, or ValueError saying what was wrong and what is expected."""
    if not isinstance(traceparent, str):
        raise TypeError(f"tailguard: {what} must be a str ({FORMAT}), not {type(traceparent).__name__} {traceparent!r}")
    m = _TRACEPARENT.match(traceparent)
    why = None
    if not m:
        why = "is not a W3C traceparent"
    elif m.group(1) == "ff":
        why = "has the invalid version ff"
    elif m.group(1) == "00" and m.group(5):
        why = "has version 00 but more than 55 characters"
    elif m.group(2) == "0" * 32:
        why = "has an all-zero trace id"
    elif m.group(3) == "0" * 16:
        why = "has an all-zero parent id"
    if why:
        raise ValueError(f"tailguard: {what} {traceparent!r} {why}; expected {FORMAT}")
    return traceparent.encode("ascii")


def encode(trace_id, span_id, flags):
    """The traceparent of a span context's integer ids and flags."""
    return b"00-%032x-%016x-%02x" % (trace_id, span_id, flags & 0xFF)
