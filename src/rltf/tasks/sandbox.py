"""Run untrusted Python (model-written code) in a child process with layered limits.

Layers, each independent of the others:
- its own process group (killed whole on timeout) and a fresh temporary working directory;
- resource limits: address space, CPU seconds, file size, open files, processes, no core dumps;
- stdout/stderr go to files under the size limit, and only ``max_output`` bytes are read back;
- when run as root: a new network namespace (no interfaces up) and the uid of ``nobody``, so the
  process limit applies and nothing outside the temp dir is writable;
- inside the child, an audit hook (installed before the program runs, and not removable by it)
  that refuses process creation, sockets, ctypes, and writes or deletions outside the temp dir.
"""
from __future__ import annotations

import os
import resource
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

_GUARD = r'''
import sys, os
_ROOT = os.path.realpath(os.getcwd())
_DENY = {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.kill",
         "os.killpg", "subprocess.Popen", "pty.spawn", "socket.__new__", "socket.connect", "socket.bind",
         "socket.getaddrinfo", "socket.gethostbyname", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
         "os.setuid", "os.chroot", "resource.setrlimit", "sys.addaudithook", "os.putenv", "os.unsetenv"}
_PATHS = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
          "os.link", "shutil.rmtree", "shutil.copyfile", "shutil.move", "os.truncate", "os.utime"}
def _inside(path):
    try:
        p = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return p == _ROOT or p.startswith(_ROOT + os.sep)
def _hook(event, args):
    if event in _DENY:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args and str(args[0]).split(".")[0] in ("ctypes", "_ctypes", "multiprocessing", "_posixsubprocess"):
        raise PermissionError(f"sandbox: import of {args[0]} is not allowed")
    if event == "open" and args:
        path, mode = args[0], args[1]
        flags = args[2] if len(args) > 2 else 0
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing and not isinstance(path, int) and not _inside(path):
            raise PermissionError(f"sandbox: writing outside the sandbox directory is not allowed: {path}")
    if event in _PATHS and args and not isinstance(args[0], int) and not _inside(args[0]):
        raise PermissionError(f"sandbox: {event} outside the sandbox directory is not allowed")
sys.addaudithook(_hook)
sys.argv = ["program.py"]
import runpy
runpy.run_path("program.py", run_name="__main__")
'''


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
                import ctypes

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


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as ``program.py`` in a fresh temp dir under the limits; never raises for what the code does."""
    limits = limits or SandboxLimits()
    drop = hasattr(os, "geteuid") and os.geteuid() == 0
    python = _interpreter(drop)
    if not python:  # no interpreter the unprivileged user can run: keep uid, rely on the other layers
        drop, python = False, sys.executable
    workdir = Path(tempfile.mkdtemp(prefix="rltf-sandbox-"))
    try:
        (workdir / "program.py").write_text(code, encoding="utf-8")
        (workdir / "_guard.py").write_text(_GUARD, encoding="utf-8")
        out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
        if drop:
            for p in (workdir, workdir / "program.py", workdir / "_guard.py"):
                os.chown(p, NOBODY, NOBODY)
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
               "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8"}
        start = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            if drop:
                os.chown(out_path, NOBODY, NOBODY)
                os.chown(err_path, NOBODY, NOBODY)
            proc = subprocess.Popen(
                [python, "-I", "-S", "_guard.py"] if python != sys.executable else [python, "-I", "_guard.py"],
                cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, preexec_fn=_preexec(limits, drop), close_fds=True,
            )
            try:
                proc.wait(timeout=limits.timeout)
                status = "ok" if proc.returncode == 0 else ("killed" if proc.returncode < 0 else "error")
            except subprocess.TimeoutExpired:
                status = "timeout"
            finally:
                _kill_group(proc)
        seconds = time.monotonic() - start
        stdout, t1 = _read_capped(out_path, limits.max_output)
        stderr, t2 = _read_capped(err_path, limits.max_output)
        return SandboxResult(status, proc.returncode, stdout, stderr, seconds, t1 or t2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


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
