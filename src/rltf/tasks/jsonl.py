"""Reading JSONL and local `datasets` directories with errors that name the file and the line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from rltf.errors import DataError


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) for every non-blank line; a malformed line is a DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{number}: not valid UTF-8 (byte {err.start + 1})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno})") from None
            except RecursionError:
                raise DataError(f"{path}:{number}: JSON nested deeper than it can be read") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            try:
                json.dumps(record, ensure_ascii=False).encode("utf-8")
            except RecursionError:
                raise DataError(f"{path}:{number}: JSON nested deeper than it can be written back") from None
            except UnicodeEncodeError:
                raise DataError(f"{path}:{number}: holds a lone surrogate (an escape like \\ud800 that is no "
                                "character); fix the text") from None
            yield number, record


def json_line(record: Any) -> str:
    """One JSONL line (newline included): UTF-8 text as is, but ASCII escapes for a record that holds
    text UTF-8 cannot encode (a lone surrogate), so that writing never fails and the line reads back."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record)
    return line + "\n"


def read_records(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Records from a JSONL file, or from a local `datasets` directory (``save_to_disk``) or a
    parquet/arrow/json file read by `datasets`. Yields (where, record) with a location for errors;
    a source with no records at all is a DataError (no command has anything to do with one)."""
    path, count = Path(path), 0
    for where, record in _records(path):
        count += 1
        yield where, record
    if count == 0:
        raise DataError(f"{path}: no records (the file is empty or holds only blank lines)")


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix == ".jsonl" or (path.is_file() and path.suffix == ".json"):
        for number, record in read_jsonl(path):
            yield f"{path}:{number}", record
        return
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    try:
        import datasets
    except ImportError:
        raise DataError(f"{path}: reading a datasets directory needs the `datasets` package (pip install rltf[data])") from None
    if path.is_dir():
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            ds = ds["test"] if "test" in ds else ds[next(iter(ds))]
    else:
        kind = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv"}.get(path.suffix)
        if kind is None:
            raise DataError(f"{path}: unknown file type; use .jsonl, .parquet, .csv or a datasets directory")
        ds = datasets.load_dataset(kind, data_files=str(path), split="train")
    for i, record in enumerate(ds):
        yield f"{path}[{i}]", dict(record)


def require(record: dict, keys: tuple[str, ...], where: str) -> Any:
    """The first of ``keys`` present in ``record``; a DataError naming them otherwise."""
    for key in keys:
        if key in record and record[key] is not None:
            return record[key]
    raise DataError(f"{where}: missing field {' or '.join(repr(k) for k in keys)}")
