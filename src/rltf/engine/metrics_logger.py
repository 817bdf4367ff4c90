"""Metrics to the console (a compact line per step), a JSONL file, and TensorBoard / W&B / trackio."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rltf.errors import ConfigError, StorageError

_CONSOLE_KEYS = [("reward/turn0", "r0"), ("reward/turn1", "r1"), ("accuracy/turn0", "acc0"),
                 ("loss/total", "loss"), ("loss/fm", "fm"), ("loss/sd", "sd"), ("sd/masked_fraction", "sdmask"),
                 ("reward/task", "r"), ("reward/span_sum", "spans"), ("kl/per_sequence", "kl"),
                 ("ppo/policy_loss", "pg"), ("ppo/value_loss", "vf"), ("loss/sft", "sft"),
                 ("eval/fact_f1", "eval_f1"), ("tokens/per_s", "tok/s"), ("time/step", "s")]


class MetricsLogger:
    def __init__(self, output_dir: Path, report_to: str = "none", run_name: str | None = None,
                 config: dict | None = None, resume: bool = False):
        self.output_dir = output_dir
        output_dir.mkdir(parents=True, exist_ok=True)
        self.path = output_dir / "metrics.jsonl"
        self._file = self.path.open("a" if resume else "w", encoding="utf-8")
        self._tb = self._wandb = self._trackio = None
        targets = {t.strip() for t in report_to.split(",") if t.strip() and t.strip() != "none"}
        unknown = targets - {"tensorboard", "wandb", "trackio"}
        if unknown:
            raise ConfigError(f"report_to: unknown logger(s) {', '.join(sorted(unknown))}")
        name = run_name or output_dir.name
        if "tensorboard" in targets:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("report_to=tensorboard needs the tensorboard package") from None
            self._tb = SummaryWriter(str(output_dir / "tensorboard"))
        if "wandb" in targets:
            try:
                import wandb
            except ImportError:
                raise ConfigError("report_to=wandb needs the wandb package (pip install wandb)") from None
            self._wandb = wandb.init(project="rltf", name=name, config=config, resume="allow")
        if "trackio" in targets:
            try:
                import trackio
            except ImportError:
                raise ConfigError("report_to=trackio needs the trackio package (pip install trackio)") from None
            trackio.init(project="rltf", name=name, config=config)
            self._trackio = trackio

    def log(self, step: int, metrics: dict[str, Any], console=None) -> None:
        clean = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in metrics.items()}
        try:
            self._file.write(json.dumps({"step": step, **clean}) + "\n")
            self._file.flush()
        except OSError as err:  # a full or read-only disk: the line may be cut short (resume drops it)
            raise StorageError(f"could not write {self.path}: {err.strerror or err}") from err
        numeric = {k: v for k, v in clean.items() if isinstance(v, float) and math.isfinite(v)}
        if self._tb:
            for k, v in numeric.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb:
            self._wandb.log(numeric, step=step)
        if self._trackio:
            self._trackio.log(numeric, step=step)
        if console is not None:
            parts = [f"{short} {clean[key]:.3f}" for key, short in _CONSOLE_KEYS if isinstance(clean.get(key), float)]
            if parts:
                console(f"step {step}: " + "  ".join(parts))

    def close(self) -> None:
        self._file.close()
        if self._tb:
            self._tb.close()
        if self._wandb:
            self._wandb.finish()
        if self._trackio:
            self._trackio.finish()


class NullLogger:
    """The logger of every training process but the first: the first one logs the run's (global) metrics."""

    def log(self, step: int, metrics: dict[str, Any], console=None) -> None:
        pass

    def close(self) -> None:
        pass
