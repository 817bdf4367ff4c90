"""Untrusted side of function testing: loads the candidate's ``solution.py`` and answers calls.

``argv``: the request fd, the reply fd, the function's name. Requests and replies are wire lines
(:mod:`wire`). The first reply says whether the solution loaded. Everything the candidate prints
goes to its own stdout/stderr files, never to the reply channel; whatever it does to this process,
the tester only ever decodes plain data from it.
"""
import linecache
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's folder off the path
import wire  # noqa: E402

SOLUTION = "solution.py"


def _frames(tb):
    """[(line number, source text)] of the traceback's frames inside solution.py."""
    return [[f.lineno, (f.line or "").strip()] for f in traceback.extract_tb(tb) if f.filename == SOLUTION]


def _error(err):
    frames = _frames(err.__traceback__)
    if isinstance(err, SyntaxError) and err.filename == SOLUTION and err.lineno:
        frames.append([err.lineno, (err.text or "").strip()])
    msg = str(err)[:500]
    return {"exc": type(err).__name__, "msg": msg, "frames": frames}


def main():
    fd_in, fd_out, entry = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    requests, replies = os.fdopen(fd_in, "rb"), os.fdopen(fd_out, "wb", buffering=0)
    sys.stdin = open(os.devnull)
    namespace = {"__name__": "solution", "__file__": SOLUTION}
    try:
        with open(SOLUTION, encoding="utf-8") as f:
            source = f.read()
        linecache.cache[SOLUTION] = (len(source), None, source.splitlines(True), SOLUTION)
        exec(compile(source, SOLUTION, "exec"), namespace)
        fn = namespace[entry]
        if not callable(fn):
            raise TypeError("%s is not a function" % entry)
    except BaseException as err:  # noqa: BLE001 - everything the candidate does is reported, not raised
        if isinstance(err, KeyError) and err.args == (entry,):
            err = NameError("the solution does not define %s" % entry)
        replies.write(wire.dumps({"load": _error(err)}))
        return
    replies.write(wire.dumps({"load": None}))
    for line in requests:
        message = wire.loads(line)
        args, kwargs = wire.decode(message["args"]), wire.decode(message["kwargs"])
        try:
            result = fn(*args, **kwargs)
            reply = {"id": message["id"], "value": wire.encode(result)}
        except wire.WireError as err:
            reply = {"id": message["id"], "error": {"exc": "TypeError", "msg": str(err), "frames": []}}
        except BaseException as err:  # noqa: BLE001
            reply = {"id": message["id"], "error": _error(err)}
        replies.write(wire.dumps(reply))


if __name__ == "__main__":
    main()
