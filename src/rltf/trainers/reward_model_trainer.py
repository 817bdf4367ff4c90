"""SFT of the span reward model on annotation records (METHODS §2.3): loss on the JSON answer tokens only.

Same conventions as the RL trainers: a config dataclass whose fields are YAML keys and CLI flags,
full fine-tuning or LoRA, AdamW with warm-up and a schedule, micro-batches, NaN guards, JSONL /
console / TensorBoard logging, atomic checkpoints (``checkpoint-N/model`` loads with transformers
and is what ``rltf eval-rm`` and ``feedback: reward-model`` read) and exact resume.
"""
from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from rltf.errors import DataError
from rltf.feedback.span_parse import format_dual_feedback
from rltf.spans.align import read_span
from rltf.trainers.config import SCHEDULERS, arg, config_from_values, read_yaml_mapping


def rm_target(record: dict) -> str:
    """The JSON the model learns to write: the critique, then each labelled quote once, in order."""
    seen, spans = set(), []
    for span in record["spans"]:
        quote, label, _ = read_span(span)
        if (quote, label) not in seen:
            seen.add((quote, label))
            spans.append((quote, label))
    return format_dual_feedback(record["critique"], spans)


@dataclass
class RewardModelConfig:
    """Supervised fine-tuning of a generative span-level reward model on annotation records."""

    method: str = arg("reward-model", "training method (set by the command)")
    model: str = arg("smollm2-135m", "base model: smollm2-135m, tiny-random, a local directory or a hub id")
    train_data: str = arg("annotations.jsonl", "annotation records (rltf annotate output, or prompt/answer/critique/"
                                               "spans JSONL; good_spans/poor_spans or word_score_list also read)")
    eval_data: str | None = arg(None, "held-out records scored at the end (span F1, parse failures)")
    eval_n: int = arg(64, "held-out records scored at the end (0 = all)", ge=0)
    output_dir: str = arg("runs/reward-model", "where checkpoints and metrics.jsonl go")
    seed: int = arg(0, "seed of the data order and of LoRA init", ge=0)
    epochs: int = arg(3, "passes over the data (the reference: 3)", ge=1)
    batch_size: int = arg(8, "records per optimizer step", ge=1)
    micro_batch_size: int = arg(8, "records per forward/backward", ge=1)
    learning_rate: float = arg(5e-5, "peak learning rate (the reference, with LoRA on 8B: 1e-5)", ge=0)
    lr_scheduler: str = arg("linear", "constant, linear or cosine decay after warm-up", choices=SCHEDULERS)
    warmup_steps: int = arg(5, "linear warm-up steps", ge=0)
    weight_decay: float = arg(0.0, "decoupled weight decay (AdamW)", ge=0)
    adam_beta1: float = arg(0.9, "Adam beta1", ge=0, lt=1)
    adam_beta2: float = arg(0.999, "Adam beta2", ge=0, lt=1)
    adam_epsilon: float = arg(1e-8, "Adam epsilon", gt=0)
    max_grad_norm: float = arg(1.0, "gradient clipping by global norm (0 = off)", ge=0)
    max_target_tokens: int = arg(256, "longest JSON target kept, in tokens", ge=1)
    max_new_tokens: int = arg(256, "generation budget when scoring held-out records", ge=1)
    dtype: str = arg("auto", "weights dtype: auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16")
    bf16_autocast: bool = arg(False, "bf16 autocast for forward passes with fp32 master weights")
    device: str = arg("auto", "auto, cpu, cuda, cuda:N")
    use_lora: bool = arg(False, "train LoRA adapters (PEFT) instead of all weights")
    lora_r: int = arg(16, "LoRA rank (the reference: 16)", ge=1)
    lora_alpha: int = arg(32, "LoRA alpha (the reference: 32)", gt=0)
    lora_dropout: float = arg(0.0, "LoRA dropout", ge=0, lt=1)
    lora_target_modules: str = arg("q_proj,v_proj", "comma-separated module names with adapters (the reference: q, v)")
    save_every: int = arg(0, "checkpoint every this many optimizer steps (0 = at the end of each epoch)", ge=0)
    save_total_limit: int = arg(2, "checkpoints kept", ge=1)
    report_to: str = arg("none", "extra loggers, comma-separated: tensorboard, wandb, trackio")
    run_name: str | None = arg(None, "name shown by W&B/trackio")


def make_rm_config(recipe: str | None = None, overrides: dict[str, Any] | None = None) -> RewardModelConfig:
    """Defaults < YAML recipe < overrides; unknown keys and out-of-range values are errors."""
    values: dict[str, Any] = dict(read_yaml_mapping(recipe)) if recipe else {}
    values.update(overrides or {})
    return config_from_values(RewardModelConfig, values, "reward-model")


class RewardModelTrainer:
    def __init__(self, config: RewardModelConfig, console: Callable[[str], None] = print, resume: str | None = None):
        from rltf.feedback.reward_model import rm_messages
        from rltf.models import load_model, load_tokenizer
        from rltf.models.hf_backend import HFBackend
        from rltf.models.loading import resolve_device
        from rltf.spans.annotate import read_annotations
        from rltf.trainers import checkpoint as ckpt
        from rltf.trainers.base import lr_lambda, wrap_lora

        self.config, self.console = config, console
        c = config
        torch.manual_seed(c.seed)
        self.output_dir = Path(c.output_dir)
        self.resume_from = ckpt.resolve_resume(resume) if resume else None
        records = read_annotations(c.train_data)
        if not records:
            raise DataError(f"{c.train_data}: no annotation records")
        self.device = resolve_device(c.device)
        self.tokenizer = load_tokenizer(c.model)
        source = str(self.resume_from / "model") if (self.resume_from and not c.use_lora) else c.model
        model = load_model(source, dtype=c.dtype, device=self.device, seed=c.seed, tokenizer=self.tokenizer)
        if c.use_lora:
            model = wrap_lora(model, c, self.resume_from / "adapter" if self.resume_from else None)
        self.model = model
        backend = HFBackend(model, self.tokenizer)
        eos = self.tokenizer.eos_token_id
        self.examples = []
        for r in records:
            prompt_ids = backend.chat_prompt_ids(rm_messages(r["prompt"], r["answer"]))
            target = self.tokenizer(rm_target(r), add_special_tokens=False)["input_ids"][: c.max_target_tokens]
            self.examples.append((prompt_ids, list(target) + [eos]))
        self.steps_per_epoch = -(-len(self.examples) // c.batch_size)
        self.max_steps = self.steps_per_epoch * c.epochs
        schedule = _Schedule(c.warmup_steps, self.max_steps, c.lr_scheduler)  # what lr_lambda reads
        self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=c.learning_rate,
                                           betas=(c.adam_beta1, c.adam_beta2), eps=c.adam_epsilon,
                                           weight_decay=c.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(schedule))
        self.step = 0
        if self.resume_from is not None:
            state = ckpt.load_trainer_state(self.resume_from)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            ckpt.set_rng_state(state["rng"])
            self.step = state["step"]
            console(f"resumed from {self.resume_from} at step {self.step}")

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.examples)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def train_step(self, epoch: int, index: int) -> dict[str, float]:
        from rltf.algorithms import fm_loss
        from rltf.trainers.base import NonFiniteError, guarded_step
        from rltf.trainers.sequences import Sequence, collate, completion_logprobs

        c = self.config
        order = self._order(epoch)[index * c.batch_size:(index + 1) * c.batch_size]
        seqs = [Sequence(*self.examples[i], 1.0, "sft") for i in order]
        n_tokens = sum(len(s.completion_ids) for s in seqs)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for lo in range(0, len(seqs), c.micro_batch_size):
            part = seqs[lo:lo + c.micro_batch_size]
            batch = collate(part, self.tokenizer.pad_token_id, self.device)
            logp = completion_logprobs(self.model, batch, c.bf16_autocast)
            loss = fm_loss(logp, batch.mask, "sum") * len(part) / n_tokens  # token mean over the batch
            if not torch.isfinite(loss):
                raise NonFiniteError(f"non-finite loss at step {self.step + 1}; the step was not applied")
            loss.backward()
            total += loss.item()
        norm = guarded_step(self.optimizer, c.max_grad_norm, f"at step {self.step + 1}; the step was not applied")
        self.scheduler.step()
        self.step += 1
        return {"loss/sft": total, "grad_norm": norm, "lr": self.scheduler.get_last_lr()[0],
                "tokens": float(n_tokens), "epoch": epoch + (index + 1) / self.steps_per_epoch}

    def save(self) -> Path:
        from rltf.trainers import checkpoint as ckpt
        from rltf.trainers.methods import get_method

        c = self.config
        card_config = {**dataclasses.asdict(c), "task": c.train_data, "feedback": "annotations"}
        return ckpt.save_checkpoint(self.output_dir, self.step, self.model, self.tokenizer, self.optimizer,
                                    self.scheduler, card_config, {"step": self.step}, None, keep=c.save_total_limit,
                                    citation=get_method(c.method).citation)

    def train(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        from rltf.trainers.metrics_logger import MetricsLogger

        c = self.config
        logger = MetricsLogger(self.output_dir, c.report_to, c.run_name, dataclasses.asdict(c),
                               resume=self.resume_from is not None)
        bar = tqdm(total=self.max_steps, initial=self.step, desc="reward-model", unit="step", leave=False)
        path = None
        try:
            while self.step < self.max_steps:
                epoch, index = divmod(self.step, self.steps_per_epoch)
                t0 = time.perf_counter()
                metrics = self.train_step(epoch, index)
                metrics["time/step"] = time.perf_counter() - t0
                logger.log(self.step, metrics, console=self.console)
                bar.update(1)
                end_of_epoch = self.step % self.steps_per_epoch == 0
                if (c.save_every and self.step % c.save_every == 0) or (not c.save_every and end_of_epoch) \
                        or self.step == self.max_steps:
                    path = self.save()
                    self.console(f"saved {path}")
        finally:
            bar.close()
            logger.close()
        return {"step": self.step, "checkpoint": str(path) if path else None}


@dataclass
class _Schedule:
    warmup_steps: int = 0
    max_steps: int = 1
    lr_scheduler: str = "linear"
