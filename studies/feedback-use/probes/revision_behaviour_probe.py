"""What does a revision do with a critique? (issue 16: why the critique fixes fewer wrong answers
than "your answer was incorrect")

    python studies/feedback-use/probes/revision_behaviour_probe.py runs/study-feedback/runs/add2/{base,grpo,rltf-sd}-s0 \\
        [--output studies/feedback-use/archive/revision_behaviour.json]

Each run's final checkpoint (a base run: the initial model) revises the initial model's wrong greedy
answers to the held-out prompts (``initial_drafts.json``, the drafts of ``eval_drafts``) greedily,
once with the critic's critique and once with correctness-only feedback, as the study's draft
revision-use metric does. Each revision is put in exactly one class:

- ``fixed``: the revision is correct;
- ``same_answer``: it repeats the draft's wrong final answer (``\\boxed{}`` content; for a task that
  grades the whole text, such as a summary, the whole text), whitespace aside;
- ``no_answer``: it has no parsable final answer;
- ``other_wrong``: a different wrong answer;

flagged ``verbatim`` when it repeats the draft word for word (whitespace aside), and
flagged ``copies_feedback`` when it contains a stretch of at least ``COPY_CHARS`` characters of
the feedback text that is in neither the draft nor the prompt (the model writing out the critique
instead of revising). Each run is probed in its own process (a vLLM engine stays in memory until
its process ends).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rltf.rollout.evaluation import same_words
from rltf.stats import mcnemar_two_sided

COPY_CHARS = 20
CLASSES = ("fixed", "same_answer", "no_answer", "other_wrong")


def longest_new_copy(revision: str, feedback: str, elsewhere: str) -> int:
    """Length of the longest stretch of ``feedback`` that ``revision`` contains and that, as a whole,
    ``elsewhere`` (draft and prompt) does not: wording the revision can only have taken from the
    feedback. From each start, the longest stretch in the revision is the only candidate: a shorter
    one from the same start is in ``elsewhere`` whenever the longer one is."""
    best = 0
    for i in range(len(feedback)):
        j = i
        while j < len(feedback) and feedback[i:j + 1] in revision:
            j += 1
        if j - i > best and feedback[i:j] not in elsewhere:
            best = j - i
    return best


def answer_of(score, text: str) -> str | None:
    """The final answer the grader read; a task that grades the whole text (a summary) has no
    extracted answer, so the whole text is its answer when it is well-formed; None: no answer."""
    if score.extracted is not None:
        return score.extracted
    return text if score.format_ok else None


def classify(draft_answer: str | None, revision_answer: str | None, correct: bool) -> str:
    """One revision of a wrong draft -> one of CLASSES (answers are the extracted final answers)."""
    if correct:
        return "fixed"
    if revision_answer is None:
        return "no_answer"
    if draft_answer is not None and same_words(revision_answer, draft_answer):
        return "same_answer"
    return "other_wrong"


def tally(rows: list[dict]) -> dict:
    """Per feedback kind: how many revisions fell in each class and how many copied the feedback."""
    out = {}
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        out[kind] = {"n": len(mine), **{c: sum(r["class"] == c for r in mine) for c in CLASSES},
                     "verbatim": sum(bool(r.get("verbatim")) for r in mine),
                     "copies_feedback": sum(r["copied_chars"] >= COPY_CHARS for r in mine)}
    return out


def paired(rows: list[dict], flag) -> tuple[int, int]:
    """Over the same drafts: how many had ``flag(row)`` only with the critique, and only with
    correctness-only feedback (McNemar's discordant pairs)."""
    by = {(r["kind"], r["problem_id"]): r for r in rows}
    ids = {r["problem_id"] for r in rows}
    only_critic = sum(flag(by["critic", i]) and not flag(by["correctness", i]) for i in ids)
    only_correctness = sum(flag(by["correctness", i]) and not flag(by["critic", i]) for i in ids)
    return only_critic, only_correctness


def probe(run_dir: Path) -> dict:
    """One run, in this process: the final checkpoint (or the initial model) revises the drafts."""
    from rltf.feedback import build_feedback
    from rltf.models.loading import list_checkpoints
    from rltf.rollout.episode import run_episodes

    sys.path.insert(0, str(Path(__file__).parent))
    from probe_models import drafts_of, greedy_trainer

    result = json.loads((run_dir / "result.json").read_text())
    recipe = run_dir / "recipe.yaml"
    if not recipe.exists():  # a base run: the grpo recipe of the same seed gives the same initial model
        recipe = run_dir.parent / f"grpo-s{result['seed']}" / "recipe.yaml"
    drafts = drafts_of(run_dir.parent, recipe)
    method = "grpo" if result["method"] == "base" else result["method"]
    checkpoints = [] if result["method"] == "base" else list_checkpoints(run_dir)
    trainer, params = greedy_trainer(method, recipe, checkpoints[-1] if checkpoints else None)
    task, c = trainer.task, trainer.config
    problems = task.problems("eval", c.eval_n, seed=12345)
    by_id = {str(p.id): p for p in problems}
    wrong = [p for p in problems if not task.score(p, drafts[str(p.id)]).correct]
    rows = []
    with trainer.full_weights():
        for kind in ("critic", "correctness"):
            feedback = build_feedback(kind, backend=trainer.rollout_backend(), judge=trainer.judge_config())
            episodes = run_episodes(task, wrong, trainer.rollout_backend(), feedback, params, rounds=2,
                                    seed=12345, revision=c.revision_prompt, first_answers=drafts)
            for e in episodes:
                draft, revision = e.turns[0], e.turns[-1]
                feedback_text = e.critiques[0].text if e.critiques else ""
                prompt = "\n".join(m["content"] for m in task.messages(by_id[str(e.problem_id)]))
                rows.append({"kind": kind, "problem_id": str(e.problem_id),
                             "class": classify(answer_of(draft.score, draft.text),
                                               answer_of(revision.score, revision.text), revision.correct),
                             "verbatim": same_words(revision.text, draft.text),
                             "copied_chars": longest_new_copy(revision.text, feedback_text, draft.text + prompt),
                             "draft": draft.text, "feedback": feedback_text, "revision": revision.text})
    return {"run": str(run_dir), "task": task.name, "method": result["method"], "seed": result["seed"],
            "step": trainer.step, "wrong_drafts": len(wrong), "tally": tally(rows), "rows": rows}


def report(results: list[dict]) -> str:
    lines = [f"Revisions of the initial model's wrong greedy held-out answers (copies: >= {COPY_CHARS} characters"
             " of the feedback that are in neither the draft nor the prompt)", ""]
    head = f"{'task':<13} {'run':<22} {'feedback':<12} {'n':>3} " + " ".join(f"{c:>11}" for c in CLASSES)
    lines += [head + "    verbatim      copies", "-" * (len(head) + 24)]
    for r in results:
        for kind, t in r["tally"].items():
            lines.append(f"{r['task']:<13} {Path(r['run']).name:<22} {kind:<12} {t['n']:>3} "
                         + " ".join(f"{t[c]:>11}" for c in CLASSES) + f" {t['verbatim']:>11} {t['copies_feedback']:>11}")
    lines += ["", "Paired over the same drafts: revisions that were fixed, or repeated the draft verbatim, with only one",
              "of the two feedbacks (critique only / correctness only; two-sided exact McNemar p)", ""]
    head = f"{'task':<13} {'run':<22} {'fixed':>22} {'verbatim':>22}"
    lines += [head, "-" * len(head)]
    for r in results:
        cells = []
        for flag in (lambda x: x["class"] == "fixed", lambda x: bool(x.get("verbatim"))):
            b, c = paired(r["rows"], flag)
            p = mcnemar_two_sided(b, c)
            cells.append(f"{b:>3} / {c:<3} (p {p:.3f})" if p >= 0.001 else f"{b:>3} / {c:<3} (p {p:.0e})")
        lines.append(f"{r['task']:<13} {Path(r['run']).name:<22} " + " ".join(f"{x:>22}" for x in cells))
    return "\n".join(lines) + "\n"


def record(result: dict) -> str:
    """Add the probe's verbatim counts to its run's last evaluation (``eval/draft_verbatim/KIND``,
    ``eval/draft_verbatim_only/KIND``), as the trainer logs them since it counts them, for runs that
    finished before; only when the probe's fixes are the logged draft fixes (the same greedy
    revisions), else nothing is written. -> what was done."""
    done = Path(result["run"]) / "result.json"
    data = json.loads(done.read_text())
    last = data["evals"][-1]
    if "eval/draft_verbatim/critic" in last:
        return "already logged"
    for kind, t in result["tally"].items():
        logged = (last.get(f"eval/draft_wrong_first/{kind}"), round(last.get(f"eval/draft_fix_rate/{kind}", 0) * t["n"]))
        if logged != (t["n"], t["fixed"]):
            return f"not recorded: {kind} fixes {t['fixed']} of {t['n']}, logged {logged[1]} of {logged[0]}"
    for kind, t in result["tally"].items():
        last[f"eval/draft_verbatim/{kind}"] = t["verbatim"] / t["n"] if t["n"] else 0.0
    only_critic, only_correctness = paired(result["rows"], lambda x: bool(x.get("verbatim")))
    last.update({"eval/draft_verbatim_only/critic": float(only_critic),
                 "eval/draft_verbatim_only/correctness": float(only_correctness), "verbatim_from_probe": True})
    done.write_text(json.dumps(data, indent=1) + "\n")
    return f"recorded (verbatim only with the critique / with correctness: {only_critic} / {only_correctness})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="finished run directories (runs/TASK/NAME-sSEED)")
    ap.add_argument("--output", default="studies/feedback-use/archive/revision_behaviour.json")
    ap.add_argument("--one", help="probe this run and print its JSON (what each subprocess runs)")
    ap.add_argument("--record", metavar="JSON", help="write the verbatim counts of an earlier probe's output into "
                                                     "its runs' result.json (runs from before they were logged)")
    args = ap.parse_args()
    if args.record:
        for result in json.loads(Path(args.record).read_text()):
            print(f"{result['run']}: {record(result)}")
        return
    if args.one:
        print("PROBE " + json.dumps(probe(Path(args.one))), flush=True)
        return
    results = []
    for run in args.runs:
        out = subprocess.run([sys.executable, __file__, "--one", run], capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("PROBE ")), None)
        if out.returncode != 0 or line is None:
            sys.exit(f"{run}: probe failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
        results.append(json.loads(line[len("PROBE "):]))
        print(report(results[-1:]).splitlines()[-1], flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    Path(args.output).with_suffix(".txt").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
