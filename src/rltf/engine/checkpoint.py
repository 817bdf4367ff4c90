"""Checkpoints: written to a temporary directory, then renamed, so a killed run never leaves a
half-written checkpoint. A directory named ``checkpoint-N`` only ever appears complete (one
rename); a checkpoint being replaced or pruned is first renamed out of that pattern, then deleted;
temporary and half-deleted directories a killed run left behind are removed by the next save.
Each checkpoint holds:

- ``model/``: ``save_pretrained`` weights + tokenizer + model card (loadable by transformers and
  ``rltf eval --model``; with LoRA the adapters are merged into a copy of the weights);
- ``adapter/``: the LoRA adapters (PEFT format), when training with LoRA;
- ``trainer_state.pt``: optimizer, scheduler, every RNG state, step, data position, metrics;
- ``config.yaml``: the full config of the run.
- ``deepspeed/``: DeepSpeed's partitioned training state, in a ZeRO run (every process wrote its
  partition into the temporary directory before process 0 completed and renamed it).
"""
from __future__ import annotations

import copy
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from rltf.errors import CheckpointError, ConfigError, first_line
from rltf.models.integrity import checkpoint_damage
from rltf.models.loading import CHECKPOINT_RE, list_checkpoints


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_card(config: dict, step: int, accuracy: float | None, citation: str) -> str:
    """The README.md of a checkpoint's model/: method, task, feedback, step, accuracy and the paper."""
    acc = "not measured" if accuracy is None else f"{accuracy:.3f}"
    method = config["method"]
    return (f"---\nlibrary_name: transformers\ntags: [rltf, {method}]\nbase_model: {config['model']}\n---\n\n"
            f"# {config['model']} trained with rltf `{method}`\n\n"
            f"- method: {method}\n- task: {config['task']}\n- feedback: {config['feedback']}\n"
            f"- steps: {step}\n- held-out single-turn accuracy at this step: {acc}\n"
            f"- seed: {config['seed']}\n\nTrained with `rltf train {method}`. {citation}\n")


def save_checkpoint(output_dir: Path, step: int, model, tokenizer, optimizer, scheduler, config: dict,
                    state: dict[str, Any], accuracy: float | None, keep: int = 2, citation: str = "",
                    model_state: dict | None = None, optimizer_state: dict | None = None,
                    optimizer_format: str | None = None, staging: Path | None = None) -> Path:
    """``model_state`` / ``optimizer_state``: the full state dicts of a sharded run (gathered from
    every process), saved in place of ``model.state_dict()`` / ``optimizer.state_dict()``;
    ``optimizer_format`` says which (default: ``torch``, or ``fsdp-full`` with an ``optimizer_state``).
    ``staging``: a directory from :func:`staging_dir` other processes have already written into
    (DeepSpeed's partitions); it is completed and renamed like any other."""
    final = output_dir / f"checkpoint-{step}"
    tmp = staging if staging is not None else staging_dir(output_dir, step)
    if optimizer_format is None:
        optimizer_format = "torch" if optimizer_state is None else "fsdp-full"
    try:
        is_peft = hasattr(model, "peft_config")
        if is_peft:
            model.save_pretrained(tmp / "adapter")
            merged = _merged_copy(model)
            merged.save_pretrained(tmp / "model")
            del merged
        else:
            model.save_pretrained(tmp / "model", state_dict=model_state)
        tokenizer.save_pretrained(tmp / "model")
        (tmp / "model" / "README.md").write_text(model_card(config, step, accuracy, citation))
        torch.save({"optimizer": optimizer.state_dict() if optimizer_state is None else optimizer_state,
                    "optimizer_format": optimizer_format,
                    "scheduler": scheduler.state_dict(), "rng": rng_state(), **state}, tmp / "trainer_state.pt")
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        if final.exists():
            discard_checkpoint(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
        discard_checkpoint(old)
    return final


def staging_dir(output_dir: Path, step: int) -> Path:
    """A fresh temporary directory for checkpoint ``step`` (leftovers of a killed run removed first)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(output_dir)
    return Path(tempfile.mkdtemp(prefix=f".checkpoint-{step}-", dir=output_dir))


def discard_checkpoint(path: Path) -> None:
    """Delete a checkpoint so that no moment of the deletion looks like a checkpoint: rename, then remove."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _remove_leftovers(output_dir: Path) -> None:
    for p in output_dir.iterdir():
        if p.is_dir() and p.name.startswith((".checkpoint-", ".trash-")):
            shutil.rmtree(p, ignore_errors=True)


def _merged_copy(peft_model):
    clone = copy.deepcopy(peft_model)
    return clone.merge_and_unload()


def resolve_resume(path: str | Path, console: Callable[[str], None] = print) -> Path:
    """A checkpoint directory, or a run directory (its latest whole checkpoint).

    Every checkpoint is checked (:func:`rltf.models.integrity.checkpoint_damage`) before a run
    resumes from it. A damaged checkpoint named directly is refused, naming the damaged file and
    the run's whole checkpoints; in a run directory, damaged checkpoints are passed over, newest
    first, each named on the console, and the run resumes from the newest whole one. A run
    directory whose checkpoints are all damaged is refused: never a silent start from step 0."""
    path = Path(path)
    if CHECKPOINT_RE.match(path.name) or (path / "trainer_state.pt").exists():
        problem = checkpoint_damage(path)
        if problem:
            whole = [str(p) for p in list_checkpoints(path.parent, with_state_only=False)
                     if p != path and not checkpoint_damage(p)]
            raise CheckpointError(f"cannot resume from {path}: {problem}. Whole checkpoints of this run: "
                                  f"{', '.join(whole) if whole else 'none'} (or --resume {path.parent} "
                                  "to take the newest whole one)")
        return path
    found = list_checkpoints(path, with_state_only=False)
    if not found:
        raise ConfigError(f"{path}: no checkpoint to resume from (expected checkpoint-N/trainer_state.pt)")
    damaged = []
    for candidate in reversed(found):
        problem = checkpoint_damage(candidate)
        if problem is None:
            for note in damaged:
                console(f"warning: passing over a damaged checkpoint: {note}")
            if damaged:
                console(f"resuming from {candidate}, the newest whole checkpoint")
            return candidate
        damaged.append(problem)
    raise CheckpointError(f"cannot resume from {path}: every checkpoint is damaged ({'; '.join(damaged)})")


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / "trainer_state.pt"
    try:
        return torch.load(path, weights_only=False)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise CheckpointError(f"{path}: damaged, cannot be loaded ({first_line(err)})") from err


def stored_state_value(checkpoint: Path, key: str) -> Any:
    """One value of a checkpoint's trainer state (None where absent), read without loading the rest
    (memory-mapped): what a run must know before it builds itself, such as its precision."""
    return torch.load(checkpoint / "trainer_state.pt", weights_only=False, mmap=True).get(key)
