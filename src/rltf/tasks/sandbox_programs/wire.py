"""Plain data across a process boundary: exact builtin types only, recursively.

A value crosses as one line of JSON. ``None``, ``bool``, ``int``, ``float``, ``str`` and ``list``
map to JSON directly; everything else is a tagged object ``{"t": TAG, "v": ...}`` for ``tuple``,
``dict``, ``set``, ``frozenset``, ``bytes`` and ``complex``. Types are checked with ``type(x) is``,
so a subclass of ``int`` with a permissive ``__eq__`` does not encode, and decoding can only ever
produce builtin values: whatever the sender was, the receiver compares plain data.

Self-contained (standard library only): the sandbox copies this file next to the candidate.
"""
import json

MAX_DEPTH = 100
MAX_LINE = 16 * 1024 * 1024  # bytes in one message


class WireError(ValueError):
    """A value that is not plain data, or a message that is not a valid encoding of one."""


_SCALARS = (type(None), bool, int, float, str)


def _walk(value, depth, convert):
    """Shared by encode and decode: the depth limit, scalars as they are, lists item by item; else None."""
    if depth > MAX_DEPTH:
        raise WireError("nested deeper than %d levels" % MAX_DEPTH)
    if type(value) in _SCALARS:
        return (value,)
    if type(value) is list:
        return ([convert(x, depth + 1) for x in value],)
    return None


def encode(value, depth=0):
    """A JSON-able structure for ``value``; raises WireError for any non-builtin type."""
    done = _walk(value, depth, encode)
    if done is not None:
        return done[0]
    t = type(value)
    if t is tuple or t is set or t is frozenset:
        items = [encode(x, depth + 1) for x in value]
        if t is not tuple:
            items.sort(key=lambda x: json.dumps(x, sort_keys=True))
        return {"t": t.__name__, "v": items}
    if t is dict:
        return {"t": "dict", "v": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if t is bytes:
        return {"t": "bytes", "v": value.hex()}
    if t is complex:
        return {"t": "complex", "v": [value.real, value.imag]}
    raise WireError("a value of type %s is not plain data" % t.__qualname__)


def decode(data, depth=0):
    """The builtin value that ``data`` (from :func:`encode`, via JSON) stands for; strict."""
    done = _walk(data, depth, decode)
    if done is not None:
        return done[0]
    if type(data) is not dict or set(data) != {"t", "v"}:
        raise WireError("malformed value")
    tag, v = data["t"], data["v"]
    if tag in ("tuple", "set", "frozenset", "dict") and type(v) is not list:
        raise WireError("malformed %s" % tag)
    if tag == "tuple":
        return tuple(decode(x, depth + 1) for x in v)
    if tag in ("set", "frozenset"):
        items = [decode(x, depth + 1) for x in v]
        try:
            return set(items) if tag == "set" else frozenset(items)
        except TypeError:
            raise WireError("unhashable set member") from None
    if tag == "dict":
        out = {}
        for pair in v:
            if type(pair) is not list or len(pair) != 2:
                raise WireError("malformed dict item")
            try:
                out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
            except TypeError:
                raise WireError("unhashable dict key") from None
        return out
    if tag == "bytes" and type(v) is str:
        try:
            return bytes.fromhex(v)
        except ValueError:
            raise WireError("malformed bytes") from None
    if tag == "complex" and type(v) is list and len(v) == 2 and all(type(x) in (int, float) for x in v):
        return complex(v[0], v[1])
    raise WireError("unknown or malformed tag %r" % (tag,))


def dumps(message):
    """One line of JSON (bytes, newline-terminated) for a message dict of already-encoded parts."""
    return (json.dumps(message, separators=(",", ":"), allow_nan=True) + "\n").encode("utf-8")


def loads(line):
    """The message dict in one line; raises WireError for anything but a JSON object."""
    if len(line) > MAX_LINE:
        raise WireError("message longer than %d bytes" % MAX_LINE)
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise WireError("not JSON: %s" % str(err)[:100]) from None
    if type(message) is not dict:
        raise WireError("message is not an object")
    return message
