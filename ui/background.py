"""Slow model work off Gradio's event thread, so a handler can stream what it is doing."""
from __future__ import annotations

from ui import render


def in_background(work):
    """Runs `work(progress)` in a thread: returns the queue its progress events arrive on (None
    once it is done) and the Future holding its result or error."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    events = queue.SimpleQueue()
    pool = ThreadPoolExecutor(1, thread_name_prefix="tutor-generate")
    done = pool.submit(work, events.put)
    done.add_done_callback(lambda _: events.put(None))
    pool.shutdown(wait=False)  # the thread ends with the work
    return events, done


def running_log(events, lang: str):
    """The generation log as HTML, once more after each progress event until the work is done."""
    log = []
    for event in iter(events.get, None):
        log.append(event)
        yield render.generation_log(lang, log)
