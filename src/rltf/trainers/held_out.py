"""The held-out evaluations every RL trainer runs at its eval steps: greedy single-turn accuracy
(optionally K rounds of self-critique) and, with ``eval_feedback``, two-round accuracy with each
feedback provider, its fix rate, and the revision-use rate (the critic's fix rate minus
correctness-only feedback's)."""
from __future__ import annotations

import time

from rltf.feedback import build_feedback
from rltf.models.backend import SamplingParams
from rltf.rollout.evaluation import evaluate


class HeldOutEvaluation:
    """Mixin for :class:`~rltf.trainers.base.Trainer`: uses its ``config``, ``task``, ``dist``,
    ``rollout_backend()``, ``full_weights()`` and ``judge_config()``."""

    def evaluate(self) -> dict[str, float]:
        """Greedy single-turn accuracy on a fixed held-out set (and K-round self-critique when asked)."""

        c = self.config
        started = time.perf_counter()
        self.model.eval()
        params = SamplingParams(max_new_tokens=c.max_new_tokens or self.task.max_new_tokens, temperature=0.0)
        rounds = c.eval_rounds
        with self.full_weights():
            feedback = build_feedback("self", backend=self.rollout_backend()) if rounds > 1 else None
            result = evaluate(self.task, self.rollout_backend(), n=c.eval_n, seed=12345, rounds=rounds,
                              feedback=feedback, params=params, split="eval", ranks=self.dist,
                              revision=c.revision_prompt)
        self.last_accuracy = result["accuracy"]
        revision = self.evaluate_revisions(params) if c.eval_feedback else {}
        out = {"eval/accuracy": result["accuracy"], "eval/ci95_low": result["ci95"][0],
               "eval/ci95_high": result["ci95"][1], "eval/format_rate": result["format_rate"]}
        out["eval/mean_reward"] = result["mean_reward"]
        out.update({f"eval/{k}": v for k, v in result.get("metrics", {}).items()})
        if rounds > 1:
            out.update({f"eval/self_critique_round{k + 1}": a for k, a in enumerate(result["per_round_accuracy"])})
        out.update(revision)
        out["time/eval"] = time.perf_counter() - started
        return out

    def evaluate_revisions(self, params: SamplingParams) -> dict[str, float]:
        """Two-round greedy evaluation with each of ``eval_feedback``'s providers on the same held-out
        prompts: the share of wrong first answers each one's critique lets the model fix
        (``eval/fix_rate/KIND``), its two-round accuracy, and ``eval/revision_use`` = fix rate with
        the critic minus fix rate with correctness-only feedback (issue 16's direct test of whether a
        model uses the content of a critique), and the wrong first answers only the critique fixed and
        only correctness-only feedback fixed (``eval/fixed_only/KIND``: McNemar's discordant pairs)."""
        c = self.config
        kinds = [k.strip() for k in c.eval_feedback.split(",") if k.strip()]
        out: dict[str, float] = {}
        fixed: dict[str, set[str]] = {}
        with self.full_weights():
            for kind in kinds:
                feedback = build_feedback(kind, backend=self.rollout_backend(), judge=self.judge_config())
                result = evaluate(self.task, self.rollout_backend(), n=c.eval_n, seed=12345, rounds=2,
                                  feedback=feedback, params=params, split="eval", ranks=self.dist,
                                  revision=c.revision_prompt)
                out[f"eval/round2_accuracy/{kind}"] = result["per_round_accuracy"][-1]
                out[f"eval/wrong_first/{kind}"] = float(result["wrong_first"])
                fixed[kind] = set(result["fixed_ids"])
                if result["fix_rate"] is not None:
                    out[f"eval/fix_rate/{kind}"] = result["fix_rate"]
        if "eval/fix_rate/critic" in out and "eval/fix_rate/correctness" in out:
            out["eval/revision_use"] = out["eval/fix_rate/critic"] - out["eval/fix_rate/correctness"]
            # the discordant pairs of the same wrong (greedy) first answers, for McNemar's test
            out["eval/fixed_only/critic"] = float(len(fixed["critic"] - fixed["correctness"]))
            out["eval/fixed_only/correctness"] = float(len(fixed["correctness"] - fixed["critic"]))
        return out
