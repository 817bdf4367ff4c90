"""What a warm-started model writes where one feedback kind fixed a wrong answer and the other did
not (docs/RESULTS.md, "add2: LoRA, the confirmation"): the McNemar discordant items of a run's last
evaluation, regenerated and printed side by side (draft, critique, revision with the critique,
revision with "your answer was incorrect"), with counts of how the two revisions differ.

    python studies/warm-start/probes/discordant_revisions.py RUN_DIR [--revised drafts|own] \\
        [--model RUN_DIR/checkpoint-60/model] [--initial smollm2-135m] [--output out.json]

RUN_DIR holds the run's ``eval_outcomes.jsonl`` and ``metrics.jsonl`` (a run of studies/warm-start or
its archive); ``--model`` is the warm-started model (default: RUN_DIR's last checkpoint). ``drafts``:
the initial model's wrong greedy answers (regenerated with ``--initial``); ``own``: the warm-started
model's. Greedy and the HF backend, fp32, the run's revision prompt; the run's own evaluation used
the backend of its config, so an item can come out differently here: the probe says how many of the
recorded discordant outcomes it reproduces. ``--all``: every wrong answer the run revised, not only
the discordant ones, and (add2) how each revision changed the boxed sum: only the digit the critique
named, that digit to its right value, or more.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

from rltf.feedback import build_feedback
from rltf.models import load_model_and_tokenizer
from rltf.models.backend import SamplingParams
from rltf.models.engines import build_backend
from rltf.models.loading import list_checkpoints
from rltf.rollout.episode import run_episodes
from rltf.rollout.evaluation import same_words
from rltf.tasks import get_task
from rltf.tasks.boxed import last_boxed

EVAL_SEED, KINDS = 12345, ("critic", "correctness")


def last_checkpoint(run: Path) -> Path:
    found = list_checkpoints(run, with_state_only=False)  # a finished run may keep only the weights
    if not found:
        sys.exit(f"{run}: no checkpoint; pass --model")
    return found[-1]


PLACES = {"ones": 0, "tens": 1, "hundreds": 2}


def boxed_number(text: str) -> int | None:
    """The integer in the last ``\\boxed{}`` (the one add2 grades), or None."""
    boxed = last_boxed(text)
    return int(boxed) if boxed and re.fullmatch(r"-?\d+", boxed) else None


def digit_change(draft: str, revision: str, critique: str | None, answer: int) -> str:
    """add2: how the revision's boxed sum differs from the draft's, read against the critique's named
    digit ("its tens digit is wrong"): same | named digit, right | named digit, wrong | other digits |
    unreadable | no digit named."""
    before, after = boxed_number(draft), boxed_number(revision)
    if before is None or after is None:
        return "unreadable"
    if before == after:
        return "same"
    m = re.search(r"its (ones|tens|hundreds) digit is wrong", critique or "")
    if not m:
        return "no digit named"
    place = PLACES[m.group(1)]
    width = max(len(str(before)), len(str(after)), place + 1)
    a, b = str(before).zfill(width)[::-1], str(after).zfill(width)[::-1]
    changed = {i for i in range(width) if a[i] != b[i]}
    if changed != {place}:
        return "other digits"
    return "named digit, right" if after == answer else "named digit, wrong"


def hf_backend(model: str):
    m, tok = load_model_and_tokenizer(model, dtype="float32")
    return build_backend("hf", m, tok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--revised", choices=("drafts", "own"), default="drafts")
    ap.add_argument("--model", default=None)
    ap.add_argument("--config", type=Path, default=None, help="the run's config.yaml (default: its last checkpoint's)")
    ap.add_argument("--initial", default="smollm2-135m")
    ap.add_argument("--all", action="store_true", help="every wrong answer revised, not only the discordant ones")
    ap.add_argument("--quiet", action="store_true", help="counts only, no texts")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    record = [json.loads(x) for x in (args.run / "eval_outcomes.jsonl").read_text().splitlines() if x.strip()][-1]
    if args.revised not in record:
        sys.exit(f"{args.run}: its last evaluation revised no {args.revised}")
    fixed = {k: set(record[args.revised][k]["fixed"]) for k in KINDS}
    discordant = {"critic": sorted(fixed["critic"] - fixed["correctness"]),
                  "correctness": sorted(fixed["correctness"] - fixed["critic"])}
    config_path = args.config or last_checkpoint(args.run) / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    task = get_task(config["task"])
    n = config.get("eval_n", 200)
    wanted = set(discordant["critic"]) | set(discordant["correctness"])
    if args.all:
        wanted = set(record[args.revised]["critic"]["wrong"])
    problems = [p for p in task.problems("eval", n, seed=EVAL_SEED) if str(p.id) in wanted]
    params = SamplingParams(max_new_tokens=config.get("max_new_tokens") or task.max_new_tokens, temperature=0.0)
    revision = config.get("revision_prompt", "paper")
    model = args.model or str(last_checkpoint(args.run) / "model")
    warm = hf_backend(model)
    drafter = hf_backend(args.initial) if args.revised == "drafts" else warm
    drafts = {str(e.problem_id): e.turns[0].text
              for e in run_episodes(task, problems, drafter, None, params, rounds=1, seed=EVAL_SEED)}
    revised = {k: {str(e.problem_id): e for e in run_episodes(task, problems, warm, build_feedback(k), params,
                                                              rounds=2, seed=EVAL_SEED, revision=revision,
                                                              first_answers=drafts)} for k in KINDS}
    items, reproduced = [], 0
    for p in problems:
        pid = str(p.id)
        ep = {k: revised[k][pid] for k in KINDS}
        ok = {k: len(ep[k].turns) > 1 and ep[k].turns[-1].correct for k in KINDS}
        recorded = ("critic" if pid in discordant["critic"] else "correctness" if pid in discordant["correctness"]
                    else None)
        if recorded:
            reproduced += ok[recorded] and not ok["correctness" if recorded == "critic" else "critic"]
        critique = ep["critic"].critiques[-1].text if ep["critic"].critiques else None
        item = {"id": pid, "recorded_fixed_only_by": recorded, "fixed_now": ok, "draft": drafts[pid],
                "critique": critique, "revision": {k: ep[k].turns[-1].text for k in KINDS},
                "hands_back": {k: same_words(ep[k].turns[-1].text, drafts[pid]) for k in KINDS}}
        if task.name == "add2":
            item["change"] = {k: digit_change(drafts[pid], ep[k].turns[-1].text, critique, int(p.answer))
                              for k in KINDS}
        items.append(item)
    for it in items if not args.quiet else []:
        print(f"\n=== {it['id']} (recorded: fixed only with {it['recorded_fixed_only_by']}; now {it['fixed_now']})")
        print(f"draft: {it['draft']!r}\ncritique: {it['critique']!r}")
        for k in KINDS:
            print(f"revision ({k}){' [hands the draft back]' if it['hands_back'][k] else ''}: {it['revision'][k]!r}")
    n_discordant = len(discordant["critic"]) + len(discordant["correctness"])
    print(f"\n{n_discordant} discordant items recorded ({len(discordant['critic'])} fixed only with the critique, "
          f"{len(discordant['correctness'])} only with \"incorrect\"); {reproduced} reproduced here"
          + (f"; {len(items)} wrong answers revised in all" if args.all else ""))
    if items and "change" in items[0]:
        for k in KINDS:
            counts = Counter(it["change"][k] for it in items)
            print(f"boxed sum after the revision with {k}: " + ", ".join(f"{c} {v}" for c, v in counts.most_common())
                  + f"; fixed {sum(it['fixed_now'][k] for it in items)}")
    if args.output:
        args.output.write_text(json.dumps({"run": str(args.run), "revised": args.revised, "model": model,
                                           "reproduced": reproduced, "items": items}, indent=1))


if __name__ == "__main__":
    main()
