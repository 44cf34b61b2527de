"""Finds the shim's C ABI (native/include/tailguard/tailguard.h) in the running process, once.

The shim is LD_PRELOADed, so its exported functions are in the process's global scope: ctypes.CDLL(None) is
dlopen(NULL), and looking a name up in it is dlsym(RTLD_DEFAULT, name). No shim, no functions: every call of the
helper is then a no-op."""
import ctypes

ABI_VERSION = 1  # the header's TAILGUARD_ABI_VERSION this helper was written against

begin = None  # int tailguard_request_begin(const char *traceparent, const char *name)
end = None  # int tailguard_request_end(void)
set_process_context = None  # int tailguard_set_process_context(const char *traceparent)
abi_version = 0  # what the shim said, 0 when absent


def _find():
    global begin, end, set_process_context, abi_version
    try:
        process = ctypes.CDLL(None)
        version = process.tailguard_abi_version
        b, e, s = process.tailguard_request_begin, process.tailguard_request_end, process.tailguard_set_process_context
    except (AttributeError, OSError):
        return  # no shim in this process
    version.restype, version.argtypes = ctypes.c_int, []
    v = version()
    if v < ABI_VERSION:
        return  # older than the functions below: treat as absent
    # begin and end run once per request: no argtypes, whose converters cost microseconds with the caches as a
    # model's work leaves them; the helper passes only bytes or None, which ctypes hands over as char * or NULL
    b.restype, e.restype = ctypes.c_int, ctypes.c_int
    s.restype, s.argtypes = ctypes.c_int, [ctypes.c_char_p]
    begin, end, set_process_context, abi_version = b, e, s, v


_find()
