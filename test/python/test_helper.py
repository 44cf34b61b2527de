"""Unit tests of the Python helper (python/tailguard), run by test/python/python.test.ts with the checkout's python/
first on PYTHONPATH. Each case runs a snippet in a fresh interpreter, with test/programs/fake_abi.c preloaded as the
shim ($TG_FAKE_ABI) or with no shim at all, and reads the calls the fake logged."""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

FAKE = os.environ["TG_FAKE_ABI"]
TP1 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TP2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def run(code, shim=True):
    """Runs `code` in a new interpreter; returns (its stdout, the fake's log lines split in words)."""
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "calls")
        env = dict(os.environ, TG_FAKE_ABI_LOG=log)
        env.pop("LD_PRELOAD", None)
        if shim:
            env["LD_PRELOAD"] = FAKE
        r = subprocess.run([sys.executable, "-c", "import tailguard\n" + textwrap.dedent(code)], env=env,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"snippet failed ({r.returncode}):\n{r.stderr}")
        calls = []
        if os.path.exists(log):
            with open(log) as f:
                calls = f.read().split("\n")
        return r.stdout, [c.split() for c in calls if c]


class Absent(unittest.TestCase):
    def test_everything_is_a_no_op_without_the_shim(self):
        out, calls = run(f"""
            print(tailguard.attached(), tailguard.abi_version())
            with tailguard.request({TP1!r}, name="a"):
                pass
            @tailguard.request
            def f(x):
                return x + 1
            print(f(1))
            tailguard.set_process_context({TP1!r})
        """, shim=False)
        self.assertEqual(out.split(), ["False", "0", "2"])
        self.assertEqual(calls, [])

    def test_range_message_is_name_space_traceparent_checked_like_a_request(self):
        out, _ = run(f"""
            print(tailguard.range_message("infer batch", {TP1!r}))
            for name, tp in (("infer", "00-xyz"), ("", {TP1!r}), (None, {TP1!r})):
                try:
                    tailguard.range_message(name, tp)
                except (ValueError, TypeError) as e:
                    print(type(e).__name__, e)
        """, shim=False)
        lines = out.strip().split("\n")
        self.assertEqual(lines[0], "infer batch " + TP1)
        self.assertIn("ValueError tailguard: traceparent '00-xyz' is not a W3C traceparent", lines[1])
        self.assertTrue(lines[2].startswith("TypeError") and lines[3].startswith("TypeError"), out)

    def test_a_bad_traceparent_is_a_value_error_without_the_shim_too(self):
        out, _ = run("""
            try:
                tailguard.request("00-xyz")
            except ValueError as e:
                print(e)
        """, shim=False)
        self.assertIn("'00-xyz' is not a W3C traceparent; expected 00-<trace-id", out)


class Attached(unittest.TestCase):
    def test_attached(self):
        out, _ = run("print(tailguard.attached(), tailguard.abi_version())")
        self.assertEqual(out.split(), ["True", "1"])

    def test_bad_traceparents_are_value_errors_naming_the_value_and_the_format(self):
        bad = ["", "hello", TP1.upper(), "ff" + TP1[2:], TP1 + "-extra", "00-" + "0" * 32 + TP1[35:],
               TP1[:36] + "0" * 16 + TP1[52:], TP1[:-1]]
        out, calls = run(f"""
            for tp in {bad!r}:
                for call in (lambda: tailguard.request(tp), lambda: tailguard.set_process_context(tp) if tp else None):
                    try:
                        call()
                        print("accepted", repr(tp))
                    except ValueError as e:
                        print(e)
        """)
        lines = [l for l in out.split("\n") if l]
        self.assertEqual(lines.count("accepted ''"), 1, out)  # set_process_context("") clears
        for line in lines:
            if line == "accepted ''":
                continue
            self.assertRegex(line, r"^tailguard: traceparent '.*' (is not a W3C traceparent|has .*); expected 00-<trace-id")
        self.assertEqual(len(lines), 2 * len(bad))
        self.assertEqual(calls, [])  # refused before reaching the shim
        # a future version may append fields
        _, calls = run(f"tailguard.request('01' + {TP1[2:]!r} + '-more')")

    def test_context_manager_passes_traceparent_and_name_and_nests(self):
        _, calls = run(f"""
            with tailguard.request({TP1!r}, name="outer"):
                with tailguard.request(name="inner"):
                    pass
            with tailguard.request():
                pass
        """)
        self.assertEqual([c[0] for c in calls], ["begin", "begin", "end", "end", "begin", "end"])
        self.assertEqual(calls[0][2:], ["1", TP1, "outer"])
        self.assertEqual(calls[1][2:], ["2", "-", "inner"])
        self.assertEqual(calls[2][2], "1")
        self.assertEqual(calls[3][2], "0")
        self.assertEqual(calls[4][2:], ["1", "-", "-"])

    def test_past_the_shims_depth_a_request_is_not_opened_and_not_ended(self):
        out, calls = run(f"""
            import contextlib, warnings
            warnings.simplefilter("always")
            with contextlib.ExitStack() as stack:
                for i in range(10):
                    stack.enter_context(tailguard.request(name=f"r{{i}}"))
            print("done")
        """)
        self.assertEqual([c[0] for c in calls], ["begin"] * 8 + ["end"] * 8)
        self.assertEqual(calls[-1][2], "0")  # every end matched a begin: none refused

    def test_a_request_object_shared_by_threads(self):
        _, calls = run(f"""
            import threading
            shared = tailguard.request(name="shared")
            barrier = threading.Barrier(4)
            def worker():
                for _ in range(50):
                    with shared:
                        barrier.wait()
            ts = [threading.Thread(target=worker) for _ in range(4)]
            [t.start() for t in ts]
            [t.join() for t in ts]
        """)
        self.assertEqual(len(calls), 400)
        self.assertTrue(all(c[2] in ("0", "1") for c in calls), calls)  # each thread at depth 1, then 0

    def test_a_request_ends_when_its_block_raises(self):
        _, calls = run(f"""
            try:
                with tailguard.request({TP1!r}):
                    raise KeyError("x")
            except KeyError:
                print("raised")
        """)
        self.assertEqual([c[0] for c in calls], ["begin", "end"])
        self.assertEqual(calls[1][2], "0")

    def test_decorator_with_and_without_arguments(self):
        out, calls = run(f"""
            @tailguard.request
            def bare(x):
                return x * 2
            @tailguard.request({TP2!r}, name="named")
            def named(x):
                return bare(x) + 1
            print(named(20), named.__name__)
        """)
        self.assertEqual(out.split(), ["41", "named"])
        self.assertEqual([c[0] for c in calls], ["begin", "begin", "end", "end"])
        self.assertEqual(calls[0][2:], ["1", TP2, "named"])
        self.assertEqual(calls[1][2:], ["2", "-", "bare"])

    def test_a_coroutine_function_cannot_be_decorated(self):
        out, _ = run("""
            try:
                @tailguard.request
                async def handler():
                    pass
            except TypeError as e:
                print(e)
        """)
        self.assertIn("cannot decorate the coroutine function handler", out)

    def test_requests_belong_to_their_threads(self):
        _, calls = run(f"""
            import threading
            ready, done = threading.Event(), threading.Event()
            def other():
                with tailguard.request({TP2!r}, name="other"):
                    ready.set()
                    done.wait()
            t = threading.Thread(target=other)
            t.start()
            ready.wait()
            with tailguard.request({TP1!r}, name="main"):
                pass
            done.set()
            t.join()
        """)
        begins = [c for c in calls if c[0] == "begin"]
        self.assertEqual(sorted(c[2] for c in begins), ["1", "1"])  # depth 1 on each thread: no cross-thread nesting
        self.assertNotEqual(begins[0][1], begins[1][1])

    def test_process_context(self):
        _, calls = run(f"""
            tailguard.set_process_context({TP1!r})
            tailguard.set_process_context(None)
        """)
        self.assertEqual(calls, [["process", calls[0][1], "0", TP1], ["process", calls[0][1], "0", "-"]])


class Processor(unittest.TestCase):
    """RequestSpanProcessor with the real opentelemetry-sdk."""

    SETUP = """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.trace import SpanKind
        from tailguard.otel import RequestSpanProcessor
        provider = TracerProvider()
        provider.add_span_processor(RequestSpanProcessor(**KW))
        tracer = provider.get_tracer("test")
        def tp(span):
            c = span.get_span_context()
            return "00-%032x-%016x-%02x" % (c.trace_id, c.span_id, c.trace_flags)
    """

    def run_with(self, code, kw="{}"):
        return run(textwrap.dedent(self.SETUP).replace("**KW", "**" + kw) + textwrap.dedent(code))

    def test_without_the_sdk_importing_tailguard_otel_says_what_to_install(self):
        out, _ = run("""
            import sys
            sys.modules["opentelemetry.sdk.trace"] = None   # as if opentelemetry-sdk were not installed
            try:
                import tailguard.otel
            except ImportError as e:
                print(e)
        """)
        self.assertEqual(out.strip(), "tailguard.otel needs opentelemetry-sdk (span processors belong to the SDK): "
                                      "pip install opentelemetry-sdk")

    def test_server_spans_only_with_their_own_traceparent_and_name(self):
        out, calls = self.run_with("""
            with tracer.start_as_current_span("GET /infer", kind=SpanKind.SERVER) as s:
                print(tp(s))
                with tracer.start_as_current_span("model", kind=SpanKind.INTERNAL):
                    pass
            with tracer.start_as_current_span("outbound", kind=SpanKind.CLIENT):
                pass
        """)
        self.assertEqual(calls, [["begin", calls[0][1], "1", out.strip(), "GET", "/infer"], ["end", calls[0][1], "0"]])

    def test_a_filter_chooses_the_spans(self):
        out, calls = self.run_with("""
            with tracer.start_as_current_span("batch", kind=SpanKind.INTERNAL) as s:
                print(tp(s))
            with tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER):
                pass
        """, kw="dict(filter=lambda span: span.name == 'batch')")
        self.assertEqual(calls, [["begin", calls[0][1], "1", out.strip(), "batch"], ["end", calls[0][1], "0"]])

    def test_a_span_ended_on_another_thread_is_ended_by_its_own_thread(self):
        out, calls = self.run_with("""
            import threading
            a = tracer.start_span("a", kind=SpanKind.SERVER)
            threading.Thread(target=a.end).start()   # the end arrives from elsewhere
            import time; time.sleep(0.2)
            print("mark")
            b = tracer.start_span("b", kind=SpanKind.SERVER)   # this thread ends a first
            b.end()
        """)
        self.assertEqual([(c[0], c[2]) for c in calls], [("begin", "1"), ("end", "0"), ("begin", "1"), ("end", "0")])
        self.assertEqual(len({c[1] for c in calls}), 1, "every call on the thread that began the requests")

    def test_otel_request_takes_the_current_span_on_the_thread_that_runs_the_work(self):
        out, calls = run(textwrap.dedent(self.SETUP).replace("**KW", "") + textwrap.dedent("""
            import tailguard.otel
            from concurrent.futures import ThreadPoolExecutor
            import contextvars
            @tailguard.otel.request
            def model():
                pass
            pool = ThreadPoolExecutor(1)
            with tracer.start_as_current_span("POST /infer", kind=SpanKind.INTERNAL) as s:
                print(tp(s))
                # as Starlette's run_in_threadpool does: the context (and the current span) goes along
                pool.submit(contextvars.copy_context().run, model).result()
                with tracer.start_as_current_span("inner") as inner:
                    print(tp(inner))
                    with tailguard.otel.request(name="named"):
                        pass
            with tailguard.otel.request():   # no current span: the thread's context
                pass
        """))
        outer, inner = out.split()
        self.assertEqual([c[:1] + c[2:] for c in calls], [
            ["begin", "1", outer, "model"], ["end", "0"],
            ["begin", "1", inner, "named"], ["end", "0"],
            ["begin", "1", "-", "-"], ["end", "0"]])
        self.assertNotEqual(calls[0][1], calls[2][1], "the pool's thread began the first")

    def test_interleaved_spans_never_end_the_wrong_request(self):
        _, calls = self.run_with("""
            a = tracer.start_span("a", kind=SpanKind.SERVER)
            b = tracer.start_span("b", kind=SpanKind.SERVER)
            a.end()          # a is under b: marked, not ended (ending now would end b)
            print("a ended")
            b.end()          # ends b, then a
        """)
        self.assertEqual([(c[0], c[2]) for c in calls], [("begin", "1"), ("begin", "2"), ("end", "1"), ("end", "0")])
        self.assertEqual(calls[1][4], "b")


if __name__ == "__main__":
    unittest.main()
