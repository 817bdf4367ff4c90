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

from rltf.algorithms import fm_loss
from rltf.errors import ConfigError
from rltf.feedback.reward_model import rm_messages
from rltf.feedback.span_parse import format_dual_feedback
from rltf.models import load_model, load_tokenizer
from rltf.models.hf_backend import HFBackend
from rltf.models.loading import resolve_device
from rltf.rollout import RolloutBatch
from rltf.spans.annotate import read_annotations
from rltf.engine import checkpoint as ckpt
from rltf.engine.config import SCHEDULERS, RunConfig
from rltf.engine.config_fields import arg
from rltf.engine.distributed import Distributed
from rltf.engine.forward import completion_logprobs
from rltf.engine.loop import TrainingRun, guarded_step
from rltf.engine.lora import wrap_lora
from rltf.engine.parts import Method
from rltf.errors import NonFiniteError
from rltf.methods.ppo import TEXT2GRAD_PAPER
from rltf.methods.registry import register_method


@dataclass
class RewardModelConfig(RunConfig):
    """Supervised fine-tuning of a generative span-level reward model on annotation records."""

    method: str = arg("reward-model", "training method (set by the command)")
    train_data: str = arg("annotations.jsonl", "annotation records (rltf annotate output, or prompt/answer/critique/"
                                               "spans JSONL; good_spans/poor_spans or word_score_list also read)")
    eval_data: str | None = arg(None, "held-out records scored at the end (span F1, parse failures)")
    eval_n: int = arg(64, "held-out records scored at the end (0 = all)", ge=0)
    output_dir: str = arg("runs/reward-model", "where checkpoints and metrics.jsonl go")
    epochs: int = arg(3, "passes over the data (the reference: 3)", ge=1)
    batch_size: int = arg(8, "records per optimizer step", ge=1)
    micro_batch_size: int = arg(8, "records per forward/backward", ge=1)
    learning_rate: float = arg(5e-5, "peak learning rate (the reference, with LoRA on 8B: 1e-5)", ge=0)
    lr_scheduler: str = arg("linear", "constant, linear or cosine decay after warm-up", choices=SCHEDULERS)
    warmup_steps: int = arg(5, "linear warm-up steps", ge=0)
    adam_beta2: float = arg(0.999, "Adam beta2", ge=0, lt=1)
    max_target_tokens: int = arg(256, "longest JSON target kept, in tokens", ge=1)
    max_new_tokens: int = arg(256, "generation budget when scoring held-out records", ge=1)
    lora_r: int = arg(16, "LoRA rank (the reference: 16)", ge=1)
    lora_alpha: int = arg(32, "LoRA alpha (the reference: 32)", gt=0)
    lora_target_modules: str = arg("q_proj,v_proj", "comma-separated module names with adapters (the reference: q, v)")
    save_every: int = arg(0, "checkpoint every this many optimizer steps (0 = at the end of each epoch)", ge=0)


def rm_target(record: dict) -> str:
    """The JSON the model learns to write: the critique, then each labelled quote once, in order."""
    seen, spans = set(), []
    for span in record["spans"]:
        if (span.quote, span.label) not in seen:
            seen.add((span.quote, span.label))
            spans.append(span)
    return format_dual_feedback(record["critique"], spans)


class RewardModelTrainer(TrainingRun):
    """SFT of the span reward model on the shared training core (:class:`TrainingRun`)."""

    def __init__(self, config: RewardModelConfig, console: Callable[[str], None] = print, resume: str | None = None):
        c = config
        self.dist = Distributed(c.device)
        self.config, self.citation = c, TEXT2GRAD_PAPER
        self.console = self.dist.speaker(console)
        if self.dist.fsdp is not None or self.dist.zero is not None:
            raise ConfigError("the span reward model's SFT trains data parallel; launch it with a MULTI_GPU "
                              "accelerate config (e.g. recipes/accelerate/ddp-8gpu.yaml), not "
                              f"{'FSDP' if self.dist.fsdp is not None else 'DeepSpeed'}")
        torch.manual_seed(c.seed)
        self.output_dir = Path(c.output_dir)
        self.resume_from = ckpt.resolve_resume(resume, self.console) if resume else None
        records = read_annotations(c.train_data)
        self.device = self.dist.device(resolve_device(c.device))
        self.tokenizer = load_tokenizer(c.model)
        source = str(self.resume_from / "model") if (self.resume_from and not c.use_lora) else c.model
        model = load_model(source, dtype=c.dtype, device=self.device, seed=c.seed, tokenizer=self.tokenizer)
        self.precision = self.choose_precision(model.config)
        self.console(f"precision: {self.precision.label} ({self.precision.reason})")
        if c.use_lora:
            model = wrap_lora(model, c, self.resume_from / "adapter" if self.resume_from else None)
        self.model = model
        self.dist.broadcast_parameters([model])
        backend = HFBackend(model, self.tokenizer)
        eos = self.tokenizer.eos_token_id
        self.examples = []
        for r in records:
            prompt_ids = backend.chat_prompt_ids(rm_messages(r["prompt"], r["answer"]))
            target = self.tokenizer(rm_target(r), add_special_tokens=False)["input_ids"][: c.max_target_tokens]
            self.examples.append((prompt_ids, list(target) + [eos]))
        self.steps_per_epoch = -(-len(self.examples) // c.batch_size)
        self.max_steps = self.steps_per_epoch * c.epochs
        self.setup_optimization([{"params": [p for p in model.parameters() if p.requires_grad]}], self.max_steps)
        if self.resume_from is not None:
            self.restore_common(self.resume_from)

    @property
    def total_steps(self) -> int:
        return self.max_steps

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.examples)))
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def train_step(self) -> dict[str, float]:
        """One optimizer step on the next ``batch_size`` records: token-mean NLL of the JSON target
        (each process takes its contiguous share of the records; the mean is over all of them)."""
        c = self.config
        t0 = time.perf_counter()
        epoch, index = divmod(self.step, self.steps_per_epoch)
        order = self._order(epoch)[index * c.batch_size:(index + 1) * c.batch_size]
        n_tokens = sum(len(self.examples[i][1]) for i in order)
        lo, hi = self.dist.share_bounds(len(order))  # the epoch's last batch may be short: split as it goes
        order = order[lo:hi]
        batch = RolloutBatch.from_sequences([self.examples[i][0] for i in order], [self.examples[i][1] for i in order],
                                            kind=["sft"] * len(order), turn=[0] * len(order), group=order,
                                            pad_id=self.tokenizer.pad_token_id)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, error = 0.0, None
        for part in batch.split(c.micro_batch_size):
            part = part.to(self.device)
            logp = completion_logprobs(self.model, part, self.autocast_bf16)
            loss = fm_loss(logp, part.completion_mask, "sum") * len(part) / n_tokens  # token mean over the batch
            if not torch.isfinite(loss):
                error = f"non-finite loss at step {self.step + 1}; the step was not applied"
                break
            loss.backward()
            total += loss.item()
        error = self.dist.first_error(error)  # every process stops, not just the one
        if error:
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(error)
        self.dist.sum_gradients(self.model.parameters())
        total = self.dist.sum(total)
        norm = guarded_step(self.optimizer, c.max_grad_norm, f"at step {self.step + 1}; the step was not applied")
        self.scheduler.step()
        self.step += 1
        return {"loss/sft": total, "grad_norm": norm, "lr": self.scheduler.get_last_lr()[0],
                "tokens": float(n_tokens), "epoch": epoch + (index + 1) / self.steps_per_epoch,
                "time/step": time.perf_counter() - t0}

    def checkpoint_state(self) -> dict[str, Any]:
        return {"autocast_bf16": self.autocast_bf16}

    def card_config(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.config), "task": self.config.train_data, "feedback": "annotations"}

    def save_due(self, last: bool) -> bool:
        """Every ``save_every`` steps, or at the end of each epoch when it is 0; always at the end."""
        every = self.config.save_every
        end_of_epoch = self.step % self.steps_per_epoch == 0
        return bool(every and self.step % every == 0) or (not every and end_of_epoch) or last


register_method(Method("reward-model", RewardModelConfig, TEXT2GRAD_PAPER, policy=False, build=RewardModelTrainer))
