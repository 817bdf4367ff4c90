"""Trusted side of function testing: runs the task's tests against a proxy of the candidate.

Reads a job (JSON on stdin: nonce, prompt_code, tests, entry, timeout, fd_req, fd_rep), runs the
prompt's code (helpers the tests may use) and the tests in a fresh namespace where the entry point
is a proxy: each call sends its arguments to the candidate's process as plain data and returns the
plain value that comes back, or raises what the candidate raised (as a builtin exception type).
The verdict is one JSON line carrying the nonce, written to the stdout this process started with;
the tests' own prints go nowhere. The candidate never runs in this process, so no object, exit
code, patch or print of the candidate can reach the verdict.
"""
import builtins
import io
import json
import linecache
import os
import select
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's folder off the path
import wire  # noqa: E402

TESTS = "tests.py"


class CandidateFailure(BaseException):
    """The candidate did not return a plain value: it died, hung, or sent something unreadable.

    A BaseException, so that a test's ``except Exception`` cannot swallow it; once raised, the
    verdict is a failure whatever the tests do next.
    """

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class CandidateRaised(Exception):
    """Mixin of the exceptions re-raised from the candidate; carries the candidate's frames."""

    frames = ()


_RAISED_TYPES = {}


def _raised(error):
    """An exception to raise in the tests for one the candidate raised: same builtin type when it has one."""
    name = error.get("exc") if isinstance(error, dict) else None
    base = getattr(builtins, name, None) if isinstance(name, str) else None
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = RuntimeError
    cls = _RAISED_TYPES.get(base)
    if cls is None:
        cls = _RAISED_TYPES[base] = type("Candidate" + base.__name__, (base, CandidateRaised), {})
    msg = error.get("msg") if isinstance(error, dict) else ""
    err = cls.__new__(cls)
    err.wire_msg = msg[:300] if isinstance(msg, str) else ""
    Exception.__init__(err, err.wire_msg)
    err.exc_name = name[:100] if isinstance(name, str) else base.__name__
    frames = error.get("frames") if isinstance(error, dict) else None
    err.frames = [f for f in frames if isinstance(f, list) and len(f) == 2] if isinstance(frames, list) else []
    return err


class Channel:
    """Line-framed, deadline-bounded request/reply with the candidate process."""

    def __init__(self, fd_req, fd_rep, deadline):
        self.fd_req, self.fd_rep, self.deadline, self.buf = fd_req, fd_rep, deadline, b""
        self.failure = None  # the first CandidateFailure: every later call raises it again

    def call(self, message):
        if self.failure is not None:
            raise self.failure
        try:
            self.send(message)
            return self.receive()
        except CandidateFailure as err:
            self.failure = err
            raise

    def send(self, message):
        try:
            os.write(self.fd_req, wire.dumps(message))
        except OSError:
            raise CandidateFailure("crashed", "the solution's process ended") from None

    def receive(self):
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise CandidateFailure("timeout", "the solution did not answer within the time limit")
            ready, _, _ = select.select([self.fd_rep], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.fd_rep, 1 << 16)
            if not chunk:
                raise CandidateFailure("crashed", "the solution's process ended")
            self.buf += chunk
            if len(self.buf) > wire.MAX_LINE:
                raise CandidateFailure("bad_reply", "the solution sent a reply over the size limit")
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return wire.loads(line)
        except wire.WireError as err:
            raise CandidateFailure("bad_reply", "unreadable reply: %s" % err) from None


def make_proxy(channel, entry, counter):
    def candidate(*args, **kwargs):
        counter[0] += 1
        try:
            request = {"id": counter[0], "args": wire.encode(list(args)), "kwargs": wire.encode(dict(kwargs))}
        except wire.WireError as err:
            raise TypeError("the tests passed a non-plain argument: %s" % err) from None
        reply = channel.call(request)
        if "error" in reply:
            raise _raised(reply["error"])
        try:
            if reply.get("id") != counter[0] or "value" not in reply:
                raise wire.WireError("a reply out of order or without a value")
            return wire.decode(reply["value"])
        except wire.WireError as err:
            channel.failure = CandidateFailure("bad_reply", "the solution returned %s" % err)
            raise channel.failure from None

    candidate.__name__ = candidate.__qualname__ = entry
    return candidate


def _test_frames(tb):
    return [[f.lineno, (f.line or "").strip()] for f in traceback.extract_tb(tb) if f.filename == TESTS]


def run(job):
    deadline = time.monotonic() + float(job["timeout"])
    channel = Channel(int(job["fd_req"]), int(job["fd_rep"]), deadline)
    verdict = {"passed": False, "status": "error", "calls": 0, "error": "", "test_frames": [],
               "solution_frames": [], "in_solution": False}
    counter = [0]
    try:
        load = channel.receive()
        if "load" not in load:
            raise CandidateFailure("bad_reply", "no load report")
        if load["load"] is not None:
            err = _raised(load["load"])
            verdict.update(error=_describe(err), solution_frames=err.frames, in_solution=True)
            return verdict
        namespace = {"__name__": "__tests__"}
        if job.get("prompt_code"):
            try:  # helpers the tests call (HumanEval's encode_cyclic, poly, ...); the stub itself is replaced
                exec(compile(job["prompt_code"], "prompt.py", "exec"), namespace)
            except Exception:
                pass
        proxy = make_proxy(channel, job["entry"], counter)
        namespace[job["entry"]] = proxy
        linecache.cache[TESTS] = (len(job["tests"]), None, job["tests"].splitlines(True), TESTS)
        exec(compile(job["tests"], TESTS, "exec"), namespace)
        check = namespace.get("check")
        if callable(check):
            check(proxy)
        if channel.failure is not None:
            raise channel.failure
        if counter[0] == 0:
            verdict.update(error="the tests never called %s" % job["entry"])
            return verdict
        verdict.update(passed=True, status="passed")
    except CandidateFailure as err:
        verdict.update(status="timeout" if err.status == "timeout" else "error", error=str(err),
                       test_frames=_test_frames(err.__traceback__))
    except Exception as err:  # noqa: BLE001 - a failing test, in whatever way it fails
        verdict.update(error=_describe(err), test_frames=_test_frames(err.__traceback__))
        if isinstance(err, CandidateRaised):
            verdict.update(solution_frames=err.frames, in_solution=True)
    finally:
        verdict["calls"] = counter[0]
    return verdict


def _describe(err):
    name = getattr(err, "exc_name", None) or type(err).__name__
    msg = getattr(err, "wire_msg", None)
    msg = str(err) if msg is None else msg
    return "%s: %s" % (name, msg) if msg else name


def main():
    job = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")
    devnull = open(os.devnull, "w")
    sys.stdout, sys.stderr = devnull, io.StringIO()
    try:
        verdict = run(job)
    except BaseException as err:  # noqa: BLE001 - SystemExit from a test file counts as a failure
        verdict = {"passed": False, "status": "error", "calls": 0, "error": _describe(err), "test_frames": [],
                   "solution_frames": [], "in_solution": False}
    verdict["nonce"] = job["nonce"]
    out.write(json.dumps(verdict) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
