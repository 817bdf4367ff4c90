"""What several test files share: tiny-model trainers, graders and critics that give the random
model mixed rewards, and ways to look inside a step (a method's collection, its loss terms)."""
from __future__ import annotations

import dataclasses

from rltf.feedback.base import Critique, FeedbackProvider, Span
from rltf.methods import build_trainer, make_config
from rltf.tasks.base import Score

BASE = dict(model="tiny-random", task="add2", prompts_per_step=2, group_size=3, max_new_tokens=8, eval_n=4,
            eval_every=0, eval_at_start=False, save_every=0, learning_rate=1e-2, micro_batch_size=4)
PPO_BASE = dict(model="tiny-random", task="fact_summary", prompts_per_step=4, max_new_tokens=8, eval_n=4,
                eval_every=0, eval_at_start=False, save_every=0, learning_rate=1e-3, value_learning_rate=1e-2,
                micro_batch_size=2, mini_batch_size=2, ppo_epochs=2)


def trainer(method, tmp_path, **kw):
    """The engine running ``method`` on the tiny random model (BASE's small step), quiet."""
    cfg = make_config(method, overrides={**BASE, "output_dir": str(tmp_path / method), **kw})
    return build_trainer(cfg, console=lambda s: None)


def parity_grader(problem, completion):
    """A grader that gives the random model mixed rewards (so group advantages are not all 0)."""
    good = len(completion) % 2 == 0
    return Score(1.0 if good else 0.0, good, True, "parity", None)


class FirstCharsCritic(FeedbackProvider):
    """Labels the first 4 characters of each answer: positive when the answer's length is even."""

    name = "first-chars"

    def __init__(self, fail_every: int = 0):
        super().__init__()
        self.fail_every, self.calls = fail_every, 0

    def critique(self, task, problem, answer, score):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            self.stats.count("timeout")
            return Critique("Your previous attempt was incorrect.", [], self.name, fallback="timeout")
        self.stats.count(None)
        quote = answer[:4]
        if not quote.strip():
            return Critique("Nothing to say.", [], self.name)
        return Critique("About the start.", [Span(quote, "positive" if len(answer) % 2 == 0 else "negative", 0)],
                        self.name)


def ppo_trainer(method, tmp_path, **kw):
    """span-ppo or scalar-ppo on the tiny random model with :class:`FirstCharsCritic`'s spans."""
    cfg = make_config(method, overrides={**PPO_BASE, "output_dir": str(tmp_path / method), **kw})
    tr = build_trainer(cfg, console=lambda s: None)
    tr.feedback = FirstCharsCritic()
    return tr


def collect(tr, problems, seed):
    """One rollout of the running method -> (the rows the step trains on, its metrics, its episodes):
    what the engine's step accumulates (rows with a 0 advantage left out where that is exact)."""
    collected = tr.method.collect(tr, problems, seed)
    batch = collected.batch if tr.method.minibatches is not None else tr.drop_zero_advantage(collected.batch)
    return batch, collected.metrics, collected.episodes


def term_loss(tr, kind, batch):
    """Loss term ``kind`` of one micro-batch, times its coefficient (as the engine weighs it)."""
    term = tr.method.terms[kind]
    loss, stats = term.loss(tr, batch)
    return term.coefficient(tr.config, tr.step) * loss, stats


def patch_losses(monkeypatch, tr, wrap):
    """Replace every loss term's function ``f`` of ``tr``'s method by ``wrap(kind, f)``."""
    terms = {kind: dataclasses.replace(t, loss=wrap(kind, t.loss)) for kind, t in tr.method.terms.items()}
    monkeypatch.setattr(tr, "method", dataclasses.replace(tr.method, terms=terms))
