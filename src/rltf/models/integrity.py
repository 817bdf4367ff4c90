"""Is a saved model or checkpoint whole? Cheap checks of the files a load would read (no tensor is
loaded): a truncated safetensors or ``torch.save`` file, a missing tokenizer, an unreadable
config. Each returns None for a whole file or directory, else one line naming the file and what
is wrong with it, for :mod:`rltf.engine.checkpoint` (resume) and :mod:`rltf.models.loading`
(``rltf eval --model``).

What they catch: files cut short (a full disk, a copy that stopped, a kill outside rltf's atomic
writes), files deleted, and headers that are not what their format says. What they do not: bytes
flipped inside a tensor's data (the formats carry no checksum of it).
"""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")  # one of them is needed
_SAFETENSORS_HEADER_LIMIT = 100 << 20  # safetensors itself refuses headers over 100 MB


def safetensors_damage(path: Path) -> str | None:
    """A safetensors file's header (8-byte length, JSON) against its size: every tensor's bytes
    must lie inside the file and the data must end where the file does."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path}: truncated ({size} bytes, shorter than a safetensors header)"
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, _SAFETENSORS_HEADER_LIMIT):
                return f"{path}: truncated or not safetensors (header of {n} bytes in a file of {size})"
            header = json.loads(f.read(n))
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror or err})"
    except (ValueError, UnicodeDecodeError):
        return f"{path}: damaged safetensors header (not JSON)"
    if not isinstance(header, dict):
        return f"{path}: damaged safetensors header (not a JSON object)"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"{path}: damaged safetensors header (tensor {name!r} has no data offsets)"
        end = max(end, offsets[1])
    if 8 + n + end != size:
        cut = "truncated" if 8 + n + end > size else "longer than its header says"
        return f"{path}: {cut} (its tensors end at byte {8 + n + end}, the file has {size})"
    return None


def torch_file_damage(path: Path) -> str | None:
    """A ``torch.save`` file (a zip archive): its central directory, which sits at the end of the
    file and is gone when the file is cut short, and every member inside the file's length."""
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.header_offset + info.compress_size > size:
                    return f"{path}: truncated (member {info.filename} runs past the end of the file)"
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror or err})"
    except (zipfile.BadZipFile, ValueError, EOFError):
        return f"{path}: truncated or damaged (not a complete torch.save archive)"
    return None


def _weights_damage(directory: Path, stem: str) -> str | None:
    """``stem``.safetensors, its sharded index, or ``pytorch_model.bin``: present and whole."""
    single = directory / f"{stem}.safetensors"
    index = directory / f"{stem}.safetensors.index.json"
    if single.exists():
        return safetensors_damage(single)
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return f"{index}: damaged (not a JSON index with a weight_map)"
        for shard in shards:
            if not (directory / shard).exists():
                return f"{directory / shard}: missing (listed in {index.name})"
            problem = safetensors_damage(directory / shard)
            if problem:
                return problem
        return None
    legacy = directory / ("pytorch_model.bin" if stem == "model" else f"{stem}.bin")
    if legacy.exists():
        return torch_file_damage(legacy)
    return f"{directory}: no weights file ({single.name}, {index.name} or {legacy.name})"


def _json_damage(path: Path) -> str | None:
    if not path.exists():
        return f"{path}: missing"
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return f"{path}: damaged (not JSON)"
    return None


def model_dir_damage(directory: Path) -> str | None:
    """A ``save_pretrained`` model directory: config.json and the weights."""
    return _json_damage(directory / "config.json") or _weights_damage(directory, "model")


def tokenizer_dir_damage(directory: Path) -> str | None:
    """A ``save_pretrained`` tokenizer: tokenizer_config.json and one of :data:`TOKENIZER_FILES`."""
    if not any((directory / name).exists() for name in TOKENIZER_FILES):
        return f"{directory}: no tokenizer file ({', '.join(TOKENIZER_FILES)})"
    problem = _json_damage(directory / "tokenizer_config.json")
    if problem is None and (directory / "tokenizer.json").exists():
        problem = _json_damage(directory / "tokenizer.json")
    return problem


def checkpoint_damage(checkpoint: Path) -> str | None:
    """An rltf checkpoint (:mod:`rltf.engine.checkpoint`): trainer_state.pt, config.yaml, model/
    (weights and tokenizer) and, when present, the LoRA adapter/."""
    state = checkpoint / "trainer_state.pt"
    if not state.exists():
        return f"{state}: missing"
    problem = torch_file_damage(state)
    if problem:
        return problem
    if not (checkpoint / "config.yaml").exists():
        return f"{checkpoint / 'config.yaml'}: missing"
    model = checkpoint / "model"
    problem = model_dir_damage(model) or tokenizer_dir_damage(model)
    if problem:
        return problem
    adapter = checkpoint / "adapter"
    if adapter.is_dir():
        return _json_damage(adapter / "adapter_config.json") or _weights_damage(adapter, "adapter_model")
    return None
