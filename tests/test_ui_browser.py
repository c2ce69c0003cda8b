"""End to end in a real browser: `tutor ui` over the starter vault with the real embedding model
and the real built-in LLM, driven by headless Chromium through Playwright.

It asks a Korean question and watches the sources arrive before the answer streams, turns
reading notes ahead on and sees the model keep sections in spare time, answers a practice
question and reads the grade, re-indexes, and checks the page never talked to anything but
127.0.0.1. Screenshots go to the test's tmp dir and to /tmp/ui-shots/ for a person to look at.

Set-up installs Debian's chromium and Korean/emoji fonts when missing (as root); the test is
skipped, saying why, only when that install fails. TUTOR_TEST_MODEL_HOME (as in test_llm.py)
points at a TUTOR_HOME whose models/ already holds the assembled LLM; without it the UI
assembles the model on first use, as it would for a new user.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
APT_PACKAGES = ["chromium", "fonts-nanum", "fonts-noto-color-emoji"]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]
SHOTS = Path("/tmp/ui-shots")
ANSWER_SECONDS = 1200  # the 1.5B model on two busy cores: prompt, then up to 384 tokens


def _fonts_missing() -> list[str]:
    listed = subprocess.run(["fc-list"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    return [pkg for pkg, face in (("fonts-nanum", "Nanum"), ("fonts-noto-color-emoji", "Noto Color Emoji"))
            if face not in listed]


@pytest.fixture(scope="module")
def chromium():
    missing = ([] if Path(CHROMIUM).exists() else ["chromium"]) + _fonts_missing()
    if missing:
        if os.geteuid() != 0:
            pytest.skip(f"needs {' '.join(missing)}; run as root or: apt-get install -y {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True)
            result = subprocess.run(install, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip(f"could not install {' '.join(missing)}: {result.stderr.strip()[-300:]}")
    assert set(APT_PACKAGES) >= set(missing)
    return CHROMIUM


@pytest.fixture(scope="module")
def home(starter_home, tmp_path_factory) -> Path:
    """The starter index and embedding model in a home of its own (this test re-indexes), plus the
    LLM from TUTOR_TEST_MODEL_HOME when given."""
    from tutor.llm import DEFAULT_MODEL

    home = tmp_path_factory.mktemp("ui-home")
    shutil.copytree(starter_home / "indexes", home / "indexes")
    (home / "models").mkdir()
    for model in (starter_home / "models").iterdir():
        (home / "models" / model.name).symlink_to(model.resolve())
    given = os.environ.get("TUTOR_TEST_MODEL_HOME")
    if given:
        for name in (DEFAULT_MODEL.filename, DEFAULT_MODEL.filename + ".sha256.json"):
            if (Path(given) / "models" / name).exists():
                (home / "models" / name).symlink_to(Path(given) / "models" / name)
    yield home
    assembled = home / "models" / DEFAULT_MODEL.filename
    if assembled.exists() and not assembled.is_symlink():  # 1.1 GB: not kept in pytest's tmp dirs
        assembled.unlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(home):
    """`tutor ui` as a user runs it; yields its address and the seconds until it said so."""
    pytest.importorskip("llama_cpp")
    port = _free_port()
    # spare time reads note sections as blocks (tutor.llm_blocks): a smaller disk budget in CI
    env = {**os.environ, "TUTOR_HOME": str(home), "PYTHONUNBUFFERED": "1", "TUTOR_BLOCKS_MB": "256"}
    env.pop("TUTOR_EMBED_MODEL", None)
    env.pop("TUTOR_LLM", None)
    env.pop("TUTOR_BLOCKS", None)  # the page's choice decides
    log = home / "ui.log"
    started = time.monotonic()
    tutor = Path(sys.executable).parent / "tutor"
    proc = subprocess.Popen([str(tutor), "ui", "--notes", str(REPO / "notes"), "--port", str(port)],
                            cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = None
    while url is None and time.monotonic() - started < 120 and proc.poll() is None:
        url = next(iter(re.findall(r"Tutor running at (\S+)", log.read_text())), None)
        time.sleep(0.1)
    assert url == f"http://127.0.0.1:{port}", log.read_text()
    yield url, time.monotonic() - started, log
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _fonts_drawing(page, selector: str) -> set[str]:
    """The fonts Chromium actually drew an element's text with (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    return {font["familyName"] for font in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]}


def _shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


@pytest.mark.slow
def test_chat_practice_and_reindex_in_a_real_browser(chromium, server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, _, log = server
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, args=FLAGS, locale="ko-KR",
            viewport={"width": 1360, "height": 900})
        browser.on("request", lambda r: requests.append(r.url))
        page = browser.new_page()
        try:
            loading = time.monotonic()
            page.goto(url)
            page.wait_for_selector("#index-state")
            assert time.monotonic() - loading < 15
            expect(page.get_by_role("tab", name="💬 질문하기")).to_be_visible()  # Korean labels from the browser's language
            expect(page.locator("#index-state")).to_contain_text("최신 상태", timeout=120_000)
            assert any("Nanum" in font for font in _fonts_drawing(page, "#index-state")), "Korean drawn without Nanum"

            page.fill("#question textarea", "Kinesis Data Streams 샤드 하나의 쓰기 처리량은?")
            page.click("#send")
            page.wait_for_selector("#sources .src-card", timeout=120_000)
            bot = page.locator("#chat .bot-row").last
            assert not re.search(r"MB|\[\d\]", bot.inner_text())  # the sources came before any answer text
            seen = set()
            deadline = time.monotonic() + ANSWER_SECONDS
            while time.monotonic() < deadline and not page.locator("#sources .src-cited, #not-in-notes").count():
                seen.add(bot.inner_text())
                time.sleep(0.3)
            answer = bot.inner_text()
            assert page.locator("#sources .src-cited").count() >= 1, (answer, log.read_text()[-2000:])
            assert re.search(r"[\uac00-\ud7a3]", answer) and "1" in answer, answer
            assert len(seen) >= 3, seen  # placeholder, then the answer growing token by token
            links = page.locator("#sources .src-cited a.src-title")
            assert links.first.get_attribute("href").startswith("obsidian://open?vault=notes&file=")
            _shot(page, tmp_path, "1-chat")

            expect(page.locator("#read-ahead input")).not_to_be_checked()  # off unless chosen
            page.locator("#read-ahead input").check()
            expect(page.get_by_text("이제 쉬는 동안 모델이 노트 섹션을 읽어 둡니다").first).to_be_visible()
            expect(page.locator("#kept")).to_contain_text("미리 읽은 섹션", timeout=60_000)

            page.get_by_role("tab", name="📝 문제 풀기").click()
            page.click("#next-question")
            page.wait_for_selector("#answer-one input, #answer-many input")
            wanted = re.search(r"(\d+)개 선택", page.inner_text("#question-text"))
            options = page.locator("#answer-many label" if wanted else "#answer-one label")
            for i in range(int(wanted.group(1)) if wanted else 1):
                options.nth(i).click()
            page.click("#check")
            expect(page.locator("#grade .verdict")).to_contain_text(re.compile("정답입니다|아쉽네요"))
            expect(page.locator("#scores table")).to_be_visible()
            _shot(page, tmp_path, "2-practice")

            page.get_by_role("tab", name="🗂️ 노트").click()
            expect(page.locator("#index-card")).to_contain_text("32")
            page.click("#reindex")
            expect(page.get_by_text(re.compile(r"색인 완료: 노트 32개"))).to_be_visible(timeout=120_000)
            _shot(page, tmp_path, "3-notes")
            # meanwhile, in spare time, the real model kept note sections
            expect(page.locator("#kept")).not_to_contain_text(re.compile(r"섹션 0/"), timeout=180_000)
        finally:
            browser.close()
    outside = sorted({u for u in requests if not u.startswith(url + "/") and u != url})
    assert requests and not outside, outside
