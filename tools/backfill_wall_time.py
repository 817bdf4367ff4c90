"""Fill in the wall time of sittings that ``rltf compare`` did not record.

Before ``every_sitting`` (compare.py ``_Sitting``), a run's ``wall_time.json`` counted only the
sittings that ended on their own: a sitting killed to pause the study was lost, and runs from before
wall times were recorded have no file at all. Each sitting still left its progress bar in the run's
``train.log``; its last elapsed time is the sitting's training-loop time. That leaves out model
loading and the step-0 evaluation (1-3.5 minutes per sitting, measured on the recorded sittings)
and the time after the last bar update of a killed sitting, so a filled-in sitting is a lower bound,
and the file says how many were filled in (``estimated_sittings``).

    python tools/backfill_wall_time.py runs/study-feedback/runs/*/*/

Run it while no run is training. Recorded sittings are the last ones of the log (a sitting that
ended on its own was written after the bars before it); each earlier bar segment becomes a sitting.
A finished run's ``result.json`` gets the new total as ``wall_s``.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BAR = re.compile(r"\d+/\d+ \[(?:(\d+):)?(\d+):(\d+)<")


def bar_sittings(log: str) -> list[int]:
    """Seconds of each sitting's progress bar: the bar's elapsed time restarts at each sitting."""
    sittings: list[int] = []
    previous = None
    for m in BAR.finditer(log):
        seconds = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
        if previous is None or seconds < previous:
            sittings.append(0)
        sittings[-1] = max(sittings[-1], seconds)
        previous = seconds
    return sittings


def backfill(run_dir: Path) -> dict | None:
    """-> the new wall_time.json of ``run_dir``, or None when there is nothing to fill in."""
    path, log = run_dir / "wall_time.json", run_dir / "train.log"
    old = json.loads(path.read_text()) if path.exists() else {}
    if old.get("every_sitting") or not log.exists():
        return None
    recorded = old.get("sittings_s", [])
    bars = bar_sittings(log.read_text(errors="replace"))
    missing = bars[:max(0, len(bars) - len(recorded))]
    sittings = [float(s) for s in missing] + recorded
    new = {"sittings_s": sittings, "total_s": round(sum(sittings), 1), "every_sitting": True,
           "estimated_sittings": len(missing) + old.get("estimated_sittings", 0)}
    path.write_text(json.dumps(new) + "\n")
    result = run_dir / "result.json"
    if result.exists():
        data = json.loads(result.read_text())
        data["wall_s"] = new["total_s"]
        result.write_text(json.dumps(data, indent=1) + "\n")
    return new


def main(argv: list[str]) -> None:
    for arg in argv:
        new = backfill(Path(arg))
        print(f"{arg}: {'nothing to fill in' if new is None else new}")


if __name__ == "__main__":
    main(sys.argv[1:])
