"""Installs an audit hook, then runs the script named by ``argv[1]`` as ``__main__``.

The hook is installed before any untrusted code runs and cannot be removed (``sys.addaudithook``
itself is refused afterwards). It refuses process creation, signals, sockets, ctypes, and any
write, deletion or rename outside the working directory, and reads of other processes' ``/proc``.
"""
import os
import sys

_ROOT = os.path.realpath(os.getcwd())
_PID = str(os.getpid())
_DENY = {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.kill",
         "os.killpg", "subprocess.Popen", "pty.spawn", "socket.__new__", "socket.connect", "socket.bind",
         "socket.getaddrinfo", "socket.gethostbyname", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
         "os.setuid", "os.chroot", "resource.setrlimit", "sys.addaudithook", "os.putenv", "os.unsetenv",
         "signal.pthread_kill", "os.register_at_fork"}
_PATHS = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
          "os.link", "shutil.rmtree", "shutil.copyfile", "shutil.move", "os.truncate", "os.utime"}
_BANNED_MODULES = ("ctypes", "_ctypes", "multiprocessing", "_posixsubprocess")


def _real(path):
    try:
        return os.path.realpath(os.fsdecode(path))
    except Exception:
        return None


def _inside(path):
    p = _real(path)
    return p is not None and (p == _ROOT or p.startswith(_ROOT + os.sep))


def _other_proc(path):
    p = _real(path)
    if p is None or not p.startswith("/proc/"):
        return False
    head = p.split("/")[2]
    return head.isdigit() and head != _PID


def _hook(event, args):
    if event in _DENY:
        raise PermissionError("sandbox: %s is not allowed" % event)
    if event == "import" and args and str(args[0]).split(".")[0] in _BANNED_MODULES:
        raise PermissionError("sandbox: import of %s is not allowed" % args[0])
    if event == "open" and args:
        path, mode = args[0], args[1]
        flags = args[2] if len(args) > 2 else 0
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if not isinstance(path, int):
            if writing and not _inside(path):
                raise PermissionError("sandbox: writing outside the sandbox directory is not allowed: %s" % path)
            if _other_proc(path):
                raise PermissionError("sandbox: reading another process's /proc entry is not allowed")
    if event in _PATHS and args and not isinstance(args[0], int) and not _inside(args[0]):
        raise PermissionError("sandbox: %s outside the sandbox directory is not allowed" % event)


if __name__ == "__main__":
    sys.addaudithook(_hook)
    _main = sys.argv[1]
    sys.argv = sys.argv[1:]
    import runpy

    runpy.run_path(_main, run_name="__main__")
