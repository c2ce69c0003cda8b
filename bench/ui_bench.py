"""UI benchmark: from `tutor ui` launch to a page that answers, cold index vs warm index.

    .venv/bin/python bench/ui_bench.py [--notes notes] [--ask "Kinesis ... 처리량은?"] [--no-browser]

Runs `tutor ui` twice in a throwaway TUTOR_HOME (models linked in from $TUTOR_HOME, or prepared):
first with no index (cold: every note is embedded), then again (warm: nothing changed). Times
come from the terminal lines `tutor ui` prints and, with a browser, from headless Chromium
already running (as a user's is): page interactive (the question box usable), the status pill
shown, then for the warm run a question's sources, first answer text and finished answer.
Prints one markdown table.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]
LINES = {"server up": "Tutor running at", "index ready": "Index ready:", "models loaded": "Model ready:"}


def link_models(home: Path) -> None:
    """The prepared embedding model and the assembled LLM, from the user's home when they exist."""
    from index.embedder import ensure_default_model
    from index.home import tutor_home

    (home / "models").mkdir(parents=True)
    source = tutor_home() / "models"
    for entry in source.iterdir() if source.is_dir() else []:
        if not entry.name.endswith(".lock"):
            (home / "models" / entry.name).symlink_to(entry.resolve())
    os.environ["TUTOR_HOME"] = str(home)
    ensure_default_model()  # no-op when linked; a few seconds otherwise


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(notes: Path, home: Path, question: str | None, page, timeout: float) -> dict[str, float]:
    """One launch; `page` (a browser already running, as a user's is) opens it once it is up."""
    port = free_port()
    env = {**os.environ, "TUTOR_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tutor"), "ui", "--notes", str(notes), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put((time.monotonic(), line)) for line in proc.stdout], daemon=True).start()
    times: dict[str, float] = {}

    def wait_for(name: str) -> None:
        while name not in times and time.monotonic() - started < timeout:
            try:
                at, line = lines.get(timeout=1)
            except queue.Empty:
                continue
            for key, prefix in LINES.items():
                if line.startswith(prefix) and key not in times:
                    times[key] = at - started

    try:
        wait_for("server up")
        if page is not None:
            times.update(drive(page, f"http://127.0.0.1:{port}", started, question, lambda: wait_for("models loaded")))
        wait_for("index ready")
        wait_for("models loaded")
    finally:
        proc.terminate()
        proc.wait(30)
    return times


def drive(page, url: str, started: float, question: str | None, models_loaded) -> dict[str, float]:
    out = {}
    page.goto(url)
    page.wait_for_selector("#question textarea")
    out["page interactive"] = time.monotonic() - started
    page.wait_for_selector("#index-state")
    out["status shown"] = time.monotonic() - started
    if question:
        page.wait_for_selector("#index-state:has-text('최신 상태')", timeout=0)
        models_loaded()
        asked = time.monotonic()
        page.fill("#question textarea", question)
        page.click("#send")
        page.wait_for_selector("#sources .src-card", timeout=0)
        out["question → sources"] = time.monotonic() - asked
        bot = page.locator("#chat .bot-row").last
        placeholder = bot.inner_text()
        while bot.inner_text() == placeholder and not page.locator("#sources .src-cited, #not-in-notes").count():
            time.sleep(0.1)
        out["question → first answer text"] = time.monotonic() - asked
        page.wait_for_selector("#sources .src-cited, #not-in-notes", timeout=0)
        out["question → answer done"] = time.monotonic() - asked
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=Path, default=REPO / "notes")
    parser.add_argument("--ask", default="Kinesis Data Streams 샤드 하나의 쓰기 처리량은?",
                        help="asked in the warm run ('' to skip)")
    parser.add_argument("--no-browser", action="store_true", help="terminal lines only")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        link_models(home)
        page = None
        if not args.no_browser:
            from playwright.sync_api import sync_playwright

            playwright = stack.enter_context(sync_playwright())
            browser = playwright.chromium.launch_persistent_context(
                stack.enter_context(tempfile.TemporaryDirectory()), executable_path="/usr/bin/chromium",
                args=FLAGS, locale="ko-KR")
            stack.callback(browser.close)
            page = browser.new_page()
        results = {
            "cold index": run(args.notes.resolve(), home, None, page, args.timeout),
            "warm index": run(args.notes.resolve(), home, args.ask or None, page, args.timeout),
        }
        for times in results.values():
            if "page interactive" in times:
                times["page after server up"] = times["page interactive"] - times["server up"]
    columns = ["server up", "page interactive", "page after server up", "status shown", "index ready", "models loaded",
               "question → sources", "question → first answer text", "question → answer done"]
    columns = [c for c in columns if any(c in r for r in results.values())]
    print(f"`tutor ui` over {args.notes} ({len(list(args.notes.rglob('*.md')))} notes), {os.cpu_count()} cores; "
          "seconds from launch (question rows: from pressing Ask)\n")
    print("| run | " + " | ".join(columns) + " |")
    print("| --- | " + " | ".join("---" for _ in columns) + " |")
    for name, times in results.items():
        print(f"| {name} | " + " | ".join(f"{times[c]:.1f}" if c in times else "–" for c in columns) + " |")


if __name__ == "__main__":
    main()
