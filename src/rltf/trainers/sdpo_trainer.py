"""SDPO-style self-distillation (METHODS §3.1): the policy that sees feedback teaches the policy
that does not, on the student's own answers.

One step: N answers per prompt (one turn); every wrong answer gets a critique (no revision is
sampled). Each answer y0_i gets a teacher context x_T,i = the question + a successful sibling's
answer (if one reached ``success_threshold``) + the critique of y0_i (if wrong) + "Correctly solve
the original question."; an answer with neither gets no distillation. The teacher (an EMA of the
policy, the initial policy, or the live policy) re-scores y0_i after x_T,i without gradient; its
next-token distributions are distilled into the policy after x0 on every token of y0_i
(:func:`rltf.algorithms.distill.sdpo_loss`). Loss = (1 - w) GRPO + w SD.
"""
from __future__ import annotations

import copy
import time
from contextlib import contextmanager

import torch

from rltf.algorithms import group_centered_advantages, zero_advantage_skip_is_exact
from rltf.algorithms.distill import ema_update, sdpo_loss
from rltf.errors import ConfigError
from rltf.feedback.prompts import SDPO_CLOSING, SDPO_FEEDBACK, SDPO_SOLUTION
from rltf.trainers.forward import completion_forward
from rltf.trainers.rltf_trainer import RLTFTrainer, _Rows


def teacher_text(question: str, solution: str | None, critique: str | None) -> str | None:
    """x_T: the question + a correct sibling answer and/or this answer's critique + the closing line;
    None when there is neither (no distillation for that answer)."""
    if solution is None and critique is None:
        return None
    text = question
    if solution is not None:
        text += SDPO_SOLUTION.format(solution=solution.strip())
    if critique is not None:
        text += SDPO_FEEDBACK.format(critique=critique.strip())
    return text + SDPO_CLOSING


class SDPOTrainer(RLTFTrainer):
    @property
    def needs_reference(self) -> bool:
        return super().needs_reference or self.config.teacher == "initial"

    def init_state(self):
        c = self.config
        if c.distill == "sampled_token" and c.alpha != 1.0:
            raise ConfigError("distill: sampled_token estimates the reverse KL: set alpha: 1 (or distill: full_logits)")
        self.ema_teacher = None
        if c.teacher == "ema":
            self.ema_teacher = copy.deepcopy(self.model).requires_grad_(False)

    def state_extras(self):
        return {"ema_teacher": self.ema_teacher.state_dict()} if self.ema_teacher is not None else {}

    def load_state_extras(self, state):
        if self.ema_teacher is not None:
            if "ema_teacher" not in state:
                raise ConfigError("this checkpoint has no EMA teacher (written with another sdpo teacher setting)")
            self.ema_teacher.load_state_dict(state["ema_teacher"])

    @contextmanager
    def teacher_model(self):
        """The teacher's weights: the EMA copy, the frozen initial policy, or the policy itself."""
        c = self.config
        if c.teacher == "ema":
            yield self.ema_teacher
        elif c.teacher == "initial":
            with self.reference_model() as ref:
                yield ref
        else:
            yield self.model

    def idle_pass(self, kind):
        """In lockstep (FSDP2, ZeRO-3) an SD micro-batch with the live teacher runs two forwards of
        the sharded policy, the student's and the teacher's: the idle pass makes both. (The EMA and
        initial teachers are whole copies on every process: their forwards do not communicate.)"""
        loss = self.idle_loss()
        if kind == "sd" and self.config.teacher == "live":
            with torch.no_grad():
                self.idle_loss()
        return loss

    def _apply_gradients(self) -> float:
        norm = super()._apply_gradients()
        if self.ema_teacher is not None:
            with self.full_weights():  # the whole updated policy (FSDP2 and ZeRO-3 hold shards)
                ema_update(self.ema_teacher, self.model, self.config.ema_rate)
        return norm

    def make_batch(self, problems, seed):
        c = self.config
        N = c.group_size
        failed_before = self.feedback.stats.failed
        lo, problems, episodes, gen_time = self.roll_out(problems, seed, N, 1)
        G = len(problems)
        t1 = time.perf_counter()
        owners = [p for p in problems for _ in range(N)]
        wrong = [k for k, e in enumerate(episodes) if not e.turns[0].correct] if c.teacher_feedback else []
        critiques = dict(zip(wrong, self.feedback.critique_many(
            [(self.task, owners[k], episodes[k].turns[0].text, episodes[k].turns[0].score) for k in wrong])))
        t2 = time.perf_counter()
        r0 = torch.tensor([e.turns[0].reward for e in episodes]).view(G, N)
        a0 = group_centered_advantages(r0, std_normalize=c.std_normalize)
        rows, distilled = _Rows(), 0
        for k, e in enumerate(episodes):
            g, i = divmod(k, N)
            first = e.turns[0]
            if c.sd_weight < 1.0:
                rows.add("rl", first.prompt_ids, first.token_ids, 0, lo + g, float(a0[g, i]), first.logprobs)
            solution = None
            if c.teacher_solution:  # the first successful sibling, never the answer itself
                solution = next((s.turns[0].text for j, s in enumerate(episodes[g * N:(g + 1) * N])
                                 if j != i and s.turns[0].reward >= c.success_threshold), None)
            critique = critiques[k].text if k in critiques else None
            text = teacher_text(self.task.format_question(owners[k]), solution, critique)
            if text is None:
                continue
            distilled += 1
            rows.add("sd", first.prompt_ids, first.token_ids, 0, lo + g, 1.0, first.logprobs,
                     context=self.backend.chat_prompt_ids(self.task.messages(owners[k], text)))
        batch = rows.batch(self.tokenizer.pad_token_id)
        outcomes = self.dist.gather([(e.turns[0].reward, e.turns[0].correct, len(e.turns[0].token_ids))
                                     for e in episodes])
        counts = self.dist.sum_dict({"failed": float(self.feedback.stats.failed - failed_before),
                                     "distilled": float(distilled)})
        n = len(outcomes)
        metrics = {"reward/turn0": sum(o[0] for o in outcomes) / n, "accuracy/turn0": sum(o[1] for o in outcomes) / n,
                   "tokens/generated": float(sum(o[2] for o in outcomes)), "time/generate": gen_time,
                   "time/feedback": t2 - t1, "critique/failed": counts["failed"],
                   "sd/distilled_fraction": counts["distilled"] / n}
        return self.drop_zero_advantage(batch), metrics, n

    def zero_advantage_skips(self) -> dict[str, bool]:
        """GRPO rows whose advantage is 0 are left out where that is exact; SD rows always stay."""
        return {"rl": zero_advantage_skip_is_exact(self.config.loss_aggregation, float(self.has_kl_term))}

    def sequence_loss(self, kind, batch):
        if kind != "sd":
            loss, stats = super().sequence_loss(kind, batch)
            return (1.0 - self.config.sd_weight) * loss, stats
        c = self.config
        logits, _ = completion_forward(self.model, batch, c.bf16_autocast, shared_prefix=self.shared_prefix)
        with torch.no_grad(), self.teacher_model() as teacher:
            teacher_logits, _ = completion_forward(teacher, batch.with_context(), c.bf16_autocast,
                                                   shared_prefix=self.shared_prefix)
        loss, stats = sdpo_loss(logits, teacher_logits, batch.completion_ids, batch.completion_mask, c.distill, c.alpha,
                                c.topk, c.topk_tail, old_logp=batch.sampler_logprobs if c.is_clip else None,
                                is_clip=c.is_clip or None, aggregation=c.loss_aggregation)
        return c.sd_weight * loss, stats

