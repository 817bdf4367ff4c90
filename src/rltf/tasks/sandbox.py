"""Run untrusted Python (model-written code) in a child process with layered limits.

Layers, each independent of the others:
- its own process group (killed whole on timeout) and a fresh temporary working directory;
- resource limits: address space, CPU seconds, file size, open files, processes, no core dumps;
- stdout/stderr go to files under the size limit, and only ``max_output`` bytes are read back;
- when run as root: a new network namespace (no interfaces up) and the uid of ``nobody``, so the
  process limit applies and nothing outside the temp dir is writable;
- inside the child, an audit hook (``sandbox_programs/guard.py``, installed before the program
  runs, and not removable by it) that refuses process creation, sockets, ctypes, reads of other
  processes' /proc entries, and writes or deletions outside the temp dir.

:func:`run_python` runs a whole program and reports how it ended. :func:`run_function_tests`
grades a function: the candidate runs here as a function server, the tests run in a separate
trusted process, and only plain data crosses between them (see ``sandbox_programs/``).
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534
CLONE_NEWNET = 0x40000000


@dataclass
class SandboxResult:
    status: str  # "ok", "error" (non-zero exit), "timeout", "killed" (by a signal, e.g. a limit)
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    truncated: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "ok"


@dataclass
class SandboxLimits:
    timeout: float = 10.0  # wall-clock seconds
    memory_mb: int = 1024  # address space
    max_processes: int = 16  # applies when the child runs as an unprivileged user
    max_file_mb: int = 16  # largest file the child may write (stdout/stderr included)
    max_output: int = 64 * 1024  # bytes of stdout/stderr read back


def _world_executable(path: str) -> bool:
    """True when every directory on the way and the file itself are executable by others."""
    p = Path(path).resolve()
    return all(part.stat().st_mode & stat.S_IXOTH for part in [p, *p.parents])


def _interpreter(drop_privileges: bool) -> str:
    """An interpreter the sandbox user can execute (the venv's may live under a private /root)."""
    if not drop_privileges or _world_executable(sys.executable):
        return sys.executable
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and _world_executable(candidate):
            return candidate
    return ""


def _preexec(limits: SandboxLimits, drop: bool):
    def setup():
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(limits.timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        size = limits.max_file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        if drop:
            try:
                ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
            except Exception:
                pass
            os.setgroups([])
            os.setgid(NOBODY)
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
            os.setuid(NOBODY)
        else:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))

    return setup


PROGRAMS = Path(__file__).parent / "sandbox_programs"


class _Sandbox:
    """A fresh temp dir with the guard and the named support programs, and how to start a child in it."""

    def __init__(self, limits: SandboxLimits, files: dict[str, str], programs: tuple[str, ...] = ()):
        self.limits = limits
        self.drop = hasattr(os, "geteuid") and os.geteuid() == 0
        self.python = _interpreter(self.drop)
        if not self.python:  # no interpreter the unprivileged user can run: keep uid, rely on the other layers
            self.drop, self.python = False, sys.executable
        self.dir = Path(tempfile.mkdtemp(prefix="rltf-sandbox-"))
        for name in ("guard.py", *programs):
            shutil.copyfile(PROGRAMS / name, self.dir / name)
        for name, text in files.items():
            (self.dir / name).write_text(text, encoding="utf-8")
        self.out_path, self.err_path = self.dir / "stdout.txt", self.dir / "stderr.txt"
        self.out_path.touch()
        self.err_path.touch()
        if self.drop:
            for p in self.dir.iterdir():
                os.chown(p, NOBODY, NOBODY)
            os.chown(self.dir, NOBODY, NOBODY)

    def start(self, script: str, *args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
               "HOME": str(self.dir), "TMPDIR": str(self.dir), "LANG": "C.UTF-8"}
        flags = ["-I", "-S"] if self.python != sys.executable else ["-I"]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            return subprocess.Popen(
                [self.python, *flags, "guard.py", script, *args], cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True, preexec_fn=_preexec(self.limits, self.drop),
                close_fds=True, pass_fds=pass_fds)

    def outputs(self) -> tuple[str, str, bool]:
        stdout, t1 = _read_capped(self.out_path, self.limits.max_output)
        stderr, t2 = _read_capped(self.err_path, self.limits.max_output)
        return stdout, stderr, t1 or t2

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as ``program.py`` in a fresh temp dir under the limits; never raises for what the code does.

    The exit status says how the program ended; it is no verdict on untrusted code (a program can
    exit 0 whenever it likes): grade functions with :func:`run_function_tests`.
    """
    limits = limits or SandboxLimits()
    box = _Sandbox(limits, {"program.py": code})
    try:
        start = time.monotonic()
        proc = box.start("program.py")
        try:
            proc.wait(timeout=limits.timeout)
            status = "ok" if proc.returncode == 0 else ("killed" if proc.returncode < 0 else "error")
        except subprocess.TimeoutExpired:
            status = "timeout"
        finally:
            _kill_group(proc)
        seconds = time.monotonic() - start
        stdout, stderr, truncated = box.outputs()
        return SandboxResult(status, proc.returncode, stdout, stderr, seconds, truncated)
    finally:
        box.remove()


@dataclass
class FunctionTestResult:
    """The trusted tester's verdict on a candidate function.

    ``status``: "passed", "error" (a test failed, or the candidate raised, crashed, exited or sent
    something that is not plain data) or "timeout". Frames are ``[line, source]`` pairs: in the
    tests (``test_frames``) and in the candidate's ``solution.py`` (``solution_frames``).
    """

    passed: bool
    status: str
    error: str
    calls: int
    test_frames: list
    solution_frames: list
    in_solution: bool
    candidate_stderr: str
    seconds: float


def run_function_tests(solution: str, entry: str, tests: str, prompt_code: str = "",
                       limits: SandboxLimits | None = None) -> FunctionTestResult:
    """Grade the function ``entry`` defined by ``solution`` against ``tests``; never raises for what the code does.

    The candidate runs in the sandbox as a function server (``sandbox_programs/function_server.py``);
    ``prompt_code`` (trusted helpers) and ``tests`` (a ``check(candidate)`` function and/or top-level
    asserts) run in a separate tester process (``test_harness.py``) whose ``entry`` is a proxy:
    arguments and results cross as plain data with exact builtin types, so no object, exit status,
    patch or print of the candidate can reach the verdict. The verdict is the tester's JSON line
    with a per-run nonce; anything else (no line, a wrong nonce, a tester crash) is a failure.
    """
    limits = limits or SandboxLimits()
    start = time.monotonic()
    box = _Sandbox(limits, {"solution.py": solution}, ("wire.py", "function_server.py"))
    tester_dir = Path(tempfile.mkdtemp(prefix="rltf-tester-"))
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    open_fds = [req_r, req_w, rep_r, rep_w]
    candidate = tester = None
    try:
        for name in ("wire.py", "test_harness.py"):
            shutil.copyfile(PROGRAMS / name, tester_dir / name)
        candidate = box.start("function_server.py", str(req_r), str(rep_w), entry, pass_fds=(req_r, rep_w))
        tester = subprocess.Popen(
            [sys.executable, "-I", "test_harness.py"], cwd=tester_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=_preexec(limits, False), close_fds=True,
            pass_fds=(req_w, rep_r), env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8"})
        for fd in open_fds:  # only the two children hold the channel's ends now, so either one's death is seen
            os.close(fd)
        open_fds.clear()
        nonce = secrets.token_hex(16)
        job = {"nonce": nonce, "prompt_code": prompt_code, "tests": tests, "entry": entry,
               "timeout": limits.timeout, "fd_req": req_w, "fd_rep": rep_r}
        try:
            out, _ = tester.communicate(json.dumps(job).encode(), timeout=limits.timeout + 5)
        except subprocess.TimeoutExpired:
            out = b""
        verdict = _read_verdict(out, nonce)
    finally:
        for fd in open_fds:
            os.close(fd)
        for proc in (candidate, tester):
            if proc is not None:
                _kill_group(proc)
        _, stderr, _ = box.outputs()
        box.remove()
        shutil.rmtree(tester_dir, ignore_errors=True)
    if verdict is None:
        verdict = {"passed": False, "status": "error", "error": "the tester gave no verdict", "calls": 0}
    if not verdict["passed"] and verdict.get("status") == "error" and candidate.returncode is not None \
            and "process ended" in verdict.get("error", ""):
        verdict["error"] = f"the solution's process ended during the tests (exit status {candidate.returncode})"
    return FunctionTestResult(
        passed=verdict["passed"] is True and verdict.get("status") == "passed", status=verdict.get("status", "error"),
        error=str(verdict.get("error", "")), calls=int(verdict.get("calls", 0)),
        test_frames=verdict.get("test_frames", []), solution_frames=verdict.get("solution_frames", []),
        in_solution=bool(verdict.get("in_solution")), candidate_stderr=stderr,
        seconds=time.monotonic() - start)


def _read_verdict(out: bytes, nonce: str) -> dict | None:
    """The tester's verdict: its last stdout line, a JSON object carrying this run's nonce; else None."""
    lines = out.decode("utf-8", "replace").strip().splitlines()
    try:
        verdict = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    if not isinstance(verdict, dict) or verdict.get("nonce") != nonce or not isinstance(verdict.get("passed"), bool):
        return None
    return verdict


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _read_capped(path: Path, limit: int) -> tuple[str, bool]:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return "", False
    return data[:limit].decode("utf-8", "replace"), len(data) > limit
