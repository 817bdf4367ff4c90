"""The warm-start runs' revision use, from their item-level outcomes (docs/RESULTS.md, "Teaching the
model to use a critique"): for each run in runs/warm-start/ (or the directories given), at its first
and last evaluation, the wrong answers revised with the critic's critique and with "your answer was
incorrect", fixed by one only (McNemar's discordant pairs, exact two-sided p), handed back verbatim,
for the run's own wrong answers and for the initial model's (the drafts), and first-turn accuracy.

    python studies/warm-start/report.py [RUN_DIR ...]      # prints a markdown table
    python studies/warm-start/report.py --pool RUN_DIR ...  # and the runs' last evaluations pooled
    python studies/warm-start/report.py --family NAME=RUN_DIR[,RUN_DIR...] ...  # a family of tests, Holm

A family: each NAME's runs pooled (own wrong answers at the last evaluation), its exact McNemar p,
and Holm's adjustment over the NAMEs (e.g. the add2 attempts of one sitting: the pooled seeds and
each variation).

Pooled: the discordant pairs of the runs' last evaluations summed (e.g. seeds of one recipe) and
tested with the exact two-sided McNemar test; the runs are taken as independent.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rltf.eval.compare_stats import item_level_pairs
from rltf.stats import holm, mcnemar_two_sided


def rows(run: Path):
    outcomes = [json.loads(line) for line in (run / "eval_outcomes.jsonl").read_text().splitlines() if line.strip()]
    accuracy = {r["step"]: r["eval/accuracy"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                if "eval/accuracy" in r}
    for record in (outcomes[0], outcomes[-1]):
        for revised in ("own", "drafts"):
            if revised not in record:
                continue
            only_critique, only_incorrect, n = item_level_pairs(record, revised)
            fixed = {k: len(record[revised][k]["fixed"]) for k in ("critic", "correctness")}
            verbatim = {k: len(record[revised][k]["verbatim"]) for k in ("critic", "correctness")}
            yield (run.name, record["step"], accuracy.get(record["step"]), revised, n, fixed["critic"],
                   fixed["correctness"], only_critique, only_incorrect, mcnemar_two_sided(only_critique, only_incorrect),
                   verbatim["critic"], verbatim["correctness"])


def pooled(runs: list[Path]) -> None:
    """One line per kind of revised answers: the last evaluations' discordant pairs summed over ``runs``."""
    for revised in ("own", "drafts"):
        only_critique, only_incorrect, n = last_pairs(runs, revised)
        if n:
            print(f"pooled over {len(runs)} runs, {'own' if revised == 'own' else 'initial model'}'s wrong answers: "
                  f"n {n}, critique only {only_critique}, incorrect only {only_incorrect}, "
                  f"McNemar p {mcnemar_two_sided(only_critique, only_incorrect):.3g}")


def last_pairs(runs: list[Path], revised: str = "own") -> tuple[int, int, int]:
    """(critique only, incorrect only, n) of the runs' last evaluations, summed (a run whose last
    evaluation did not revise ``revised`` adds nothing)."""
    sums = (0, 0, 0)
    for run in runs:
        lines = [json.loads(x) for x in (run / "eval_outcomes.jsonl").read_text().splitlines() if x.strip()]
        if revised in lines[-1]:
            sums = tuple(t + v for t, v in zip(sums, item_level_pairs(lines[-1], revised)))
    return sums


def family(groups: list[str]) -> None:
    """``NAME=DIR,DIR`` groups: each pooled, tested, and Holm-adjusted over the groups."""
    named = [(g.split("=", 1)[0], [Path(d) for d in g.split("=", 1)[1].split(",")]) for g in groups]
    tests = [(name, runs, *last_pairs(runs)) for name, runs in named]
    ps = [mcnemar_two_sided(a, b) for _, _, a, b, _ in tests]
    print("| attempt | runs | n | critique only | incorrect only | McNemar p | Holm p |")
    print("|---|---|---|---|---|---|---|")
    for (name, runs, a, b, n), p, adjusted in zip(tests, ps, holm(ps)):
        print(f"| {name} | {len(runs)} | {n} | {a} | {b} | {p:.3g} | {adjusted:.3g} |")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--family"]:
        family(argv[1:])
        return
    pool = "--pool" in argv
    argv = [a for a in argv if a != "--pool"]
    runs = [Path(a) for a in argv] or sorted(p for p in Path("runs/warm-start").iterdir()
                                              if (p / "eval_outcomes.jsonl").exists())
    print("| run | step | accuracy | wrong answers revised | n | fixed: critique | fixed: incorrect | "
          "critique only | incorrect only | McNemar p | verbatim: critique | verbatim: incorrect |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        for r in rows(run):
            acc = "" if r[2] is None else f"{r[2]:.3f}"
            print(f"| {r[0]} | {r[1]} | {acc} | {'own' if r[3] == 'own' else 'initial model'} | {r[4]} | {r[5]} | "
                  f"{r[6]} | {r[7]} | {r[8]} | {r[9]:.3g} | {r[10]} | {r[11]} |")
    if pool:
        pooled(runs)


if __name__ == "__main__":
    main(sys.argv[1:])
