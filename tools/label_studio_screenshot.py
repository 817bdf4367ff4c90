"""Screenshot of an rltf task, pre-annotated, in Label Studio's labeling page (for docs/HUMAN_FEEDBACK.md).

    apt-get install chromium && .venv/bin/pip install playwright
    .venv/bin/python tools/label_studio_screenshot.py [--out docs/img/label-studio-task.png]

Starts a real Label Studio (``.venv-labelstudio``, as ``make test`` installs it) on 127.0.0.1,
exports one fact-summary answer with the programmatic critic's suggestions through
``rltf label-studio export --url``, logs in with headless Chromium driven by Playwright, opens the
task and saves a screenshot. The server is stopped at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from label_studio_server import LS_BIN, PASSWORD, USER, LabelStudioServer  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from rltf.cli import main as rltf  # noqa: E402
from rltf.spans.labelstudio import LabelStudioClient  # noqa: E402


def answers(path: Path) -> None:
    answer = ("Tom is a 31-year-old chef who lives in Boston. He recently started a cooking class for "
              "neighbours.")
    path.write_text(json.dumps({
        "id": "demo", "task": "fact_summary", "prompt": "Summarise the key facts of this post:\n\nHi all. I'm Tom, "
        "I'm 31 and I work as a chef in Denver. My sister moved to Boston last year.",
        "answer": answer, "critique": "The city is wrong: Tom works in Denver; Boston is where his sister lives.",
        "spans": [{"quote": "Boston", "label": "negative", "start": answer.index("Boston")},
                  {"quote": "31-year-old chef", "label": "positive", "start": answer.index("31")}]}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "label-studio-task.png"))
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LabelStudioServer(LS_BIN, Path(tmp)) as server:
        answers(Path(tmp) / "answers.jsonl")
        os.environ["RLTF_SCREENSHOT_TOKEN"] = server.token
        rltf(["label-studio", "export", "--episodes", f"{tmp}/answers.jsonl", "--out", f"{tmp}/tasks.json",
              "--url", server.url, "--token-env", "RLTF_SCREENSHOT_TOKEN", "--title", "rltf: fact summaries"])
        client = LabelStudioClient(server.url, server.token)
        project = max(p["id"] for p in client._send("GET", "/api/projects")["results"])
        (task,) = client.tasks(project)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server.url}/user/login/")
            page.fill("input[name=email]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            page.goto(f"{server.url}/projects/{project}/data?task={task['id']}")
            page.wait_for_selector("text=Boston", timeout=120_000)
            page.wait_for_timeout(3000)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
