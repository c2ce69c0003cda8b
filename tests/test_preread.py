"""Reading ahead while the user types: the latest text after a pause, stopped by newer text."""
from __future__ import annotations

import queue
import threading
import time

from tutor.preread import Prereader

WAIT = 10  # seconds: generous, only a failure ever waits this long


class SlowEngine:
    """Reads until told to stop (or released), recording what it was given to read."""

    def __init__(self):
        self.texts: list[tuple[str, tuple]] = []
        self.stopped: list[bool] = []
        self.started, self.finished, self.release = threading.Event(), threading.Event(), threading.Event()

    def preread(self, text, tags=(), stop=lambda: False, history=(), newest=None):
        self.texts.append((text, tags) + ((history,) if history else ()))
        self.started.set()
        while not stop() and not self.release.is_set():
            self.release.wait(0.01)
        self.stopped.append(stop())
        self.finished.set()
        return len(text)


def wait_for(condition) -> bool:
    deadline = time.monotonic() + WAIT
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(condition())


def test_typing_reads_only_the_text_it_paused_on():
    engine = SlowEngine()
    engine.release.set()
    reader = Prereader(lambda: engine, pause=0.2)
    for text in ("K", "Ki", "Kinesis", "Kinesis 샤드"):
        reader.typed(text, ["service/kinesis"])
    assert wait_for(lambda: engine.finished.is_set())
    assert engine.texts == [("Kinesis 샤드", ("service/kinesis",))]
    engine.finished.clear()
    reader.typed("그럼 S3는?", (), [["샤드?", "1MB [1]"]])  # a follow-up, with the conversation before it
    assert engine.finished.wait(WAIT)
    assert engine.texts[-1] == ("그럼 S3는?", (), (("샤드?", "1MB [1]"),))


def test_newer_text_stops_the_read_in_progress():
    engine = SlowEngine()
    reader = Prereader(lambda: engine, pause=0.01)
    reader.typed("Kinesis")
    assert engine.started.wait(WAIT)
    engine.finished.clear()
    reader.typed("Kinesis 샤드")
    assert engine.finished.wait(WAIT) and engine.stopped == [True]
    engine.release.set()
    assert wait_for(lambda: len(engine.texts) == 2)
    assert engine.texts[1][0] == "Kinesis 샤드"


def test_nothing_is_read_without_a_loaded_engine_and_errors_are_not_raised():
    calls = []
    reader = Prereader(lambda: calls.append(1), pause=0.01)  # None: the models are not loaded yet
    reader.typed("Kinesis")
    assert wait_for(lambda: calls)

    class Broken:
        def preread(self, text, tags=(), stop=None, history=(), newest=None):
            calls.append(text)
            raise RuntimeError("the model fell over")

    reader = Prereader(Broken, pause=0.01)
    reader.typed("S3")
    assert wait_for(lambda: "S3" in calls)
    reader.typed("S3 Glacier")  # the thread survived the error
    assert wait_for(lambda: "S3 Glacier" in calls)


def test_closing_stops_the_read_in_progress_and_the_thread():
    engine = SlowEngine()
    reader = Prereader(lambda: engine, pause=0.01)
    reader.typed("Kinesis")
    assert engine.started.wait(WAIT)
    reader.close()  # returns once the thread has ended
    assert engine.stopped == [True] and not reader._thread.is_alive()
    reader.typed("Kinesis 샤드")  # after closing, typing reads nothing
    time.sleep(0.1)
    assert len(engine.texts) == 1 and not reader._thread.is_alive()


def test_a_word_ended_is_read_without_waiting_for_a_pause():
    engine = SlowEngine()
    engine.release.set()
    reader = Prereader(lambda: engine, pause=WAIT * 2)  # a pause that never comes in this test
    reader.typed("Kinesis")
    reader.typed("Kinesis ")
    assert engine.finished.wait(WAIT) and engine.texts == [("Kinesis ", ())]


def test_a_read_in_progress_sees_the_text_typed_since_unless_more_changed():
    seen, started, go = [], queue.Queue(), threading.Semaphore(0)

    class Watching:
        def preread(self, text, tags=(), stop=lambda: False, history=(), newest=None):
            started.put(text)
            go.acquire(timeout=WAIT)  # reading, until the test has typed on
            seen.append(newest())
            return 0

    reader = Prereader(Watching, pause=0.01)
    reader.typed("Kinesis", ["service/kinesis"])
    assert started.get(timeout=WAIT) == "Kinesis"
    reader.typed("Kinesis 샤", ["service/kinesis"])
    go.release()
    assert wait_for(lambda: seen) and seen[0] == "Kinesis 샤"
    assert started.get(timeout=WAIT) == "Kinesis 샤"  # the newer text is read next
    reader.typed("Kinesis 샤드", ["service/s3"])  # a tag chosen: not the same prompt
    go.release()
    assert wait_for(lambda: len(seen) == 2) and seen[1] is None
    go.release()
    reader.close()


class SpareEngine(SlowEngine):
    """Reads ahead for a question at once; reads note sections in spare time until stopped,
    or until ``all_read`` is set."""

    def __init__(self):
        super().__init__()
        self.release.set()
        self.spares: list[str] = []
        self.all_read = threading.Event()

    def read_spare(self, stop):
        self.spares.append("started")
        while not stop() and not self.all_read.is_set():
            time.sleep(0.01)
        self.spares.append("stopped" if stop() else "done")
        return not stop()


def test_spare_time_after_an_answer_is_used_until_typing_starts_and_all_is_read():
    engine = SpareEngine()
    reader = Prereader(lambda: engine, pause=0.01, spare_after=0.05)
    reader.typed("Kinesis 샤드")
    assert engine.finished.wait(WAIT)
    time.sleep(0.3)
    assert engine.spares == []  # a question is being written: its sources stay in the cache
    reader.asked()
    assert wait_for(lambda: engine.spares == ["started"])
    reader.typed("S")
    assert wait_for(lambda: engine.spares == ["started", "stopped"])
    reader.asked()
    assert wait_for(lambda: len(engine.spares) == 3)
    engine.all_read.set()
    assert wait_for(lambda: engine.spares[-1:] == ["done"])
    time.sleep(0.3)
    assert len(engine.spares) == 4  # nothing left to read: not asked again
    reader.close()
