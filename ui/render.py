"""HTML for the UI's panels, from plain data: pure functions, so tests can read what is shown.

Everything that came from notes or a model is escaped; links are obsidian:// links the
workspace made.
"""
from __future__ import annotations

import time
from datetime import datetime
from html import escape

from ui.text import rejected_because, t

SNIPPET_CHARS = 280
LOG_LINES = 12  # of a generation's running log: the latest calls and candidates


def ago(lang: str, then: float | None, now: float | None = None) -> str:
    if then is None:
        return t(lang, "never")
    seconds = max(0, int((now or time.time()) - then))
    if seconds < 60:
        return t(lang, "ago_s", n=seconds)
    if seconds < 3600:
        return t(lang, "ago_m", n=seconds // 60)
    if seconds < 86400:
        return t(lang, "ago_h", n=seconds // 3600)
    return datetime.fromtimestamp(then).strftime("%Y-%m-%d %H:%M")


def _pct(done: float, total: float) -> str:
    return f"{done / total:.0%}" if total else ""


def stage(lang: str, name: str | None, done: float = 0, total: float = 0) -> str:
    """A sync or preparation stage in words: 'embedding 64/440 chunks'."""
    if name == "model":
        return t(lang, "stage_model", pct=_pct(done, total)).rstrip()
    if name in ("parse", "embed"):
        return t(lang, f"stage_{name}", done=int(done), total=int(total))
    if name == "write":
        return t(lang, "stage_write")
    return t(lang, "stage_none")


def not_ready(lang: str, status) -> str:
    return status.error or t(lang, "not_ready", detail=stage(lang, status.stage, status.done, status.total))


def model_name(lang: str, spec: str) -> str:
    from tutor.llm import LLMError, default_model_path, parse_spec

    try:
        backend, target = parse_spec(spec)
    except LLMError:
        return spec
    if backend == "ollama":
        return t(lang, "model_ollama", name=target)
    if target == str(default_model_path()):
        return t(lang, "model_builtin")
    return t(lang, "model_gguf", name=target.rsplit("/", 1)[-1])


def status_line(lang: str, status, now: float | None = None) -> str:
    """The header pill: what the index is doing, then the model, then anything to review."""
    if status.state == "error":
        main, kind = t(lang, "st_error", error=status.error or ""), "error"
    elif status.state in ("indexing", "starting") or (status.state == "syncing" and not status.indexed):
        main = t(lang, "st_starting") if status.state == "starting" else t(lang, "st_indexing", detail=stage(lang, status.stage, status.done, status.total))
        kind = "busy"
    elif status.state == "syncing":
        main, kind = t(lang, "st_syncing", detail=stage(lang, status.stage, status.done, status.total)), "busy"
    else:
        main, kind = t(lang, "st_ready", notes=status.notes, chunks=status.chunks), "ok"
        if status.synced_at is not None:
            when = ago(lang, status.synced_at, now)
            main += " — " + (t(lang, "st_ready_changed", n=status.changed, ago=when) if status.changed
                             else t(lang, "st_ready_checked", ago=when))
    parts = [f'<span class="pill pill-{kind}" id="index-state">{escape(main)}</span>']
    llm = {
        "preparing": t(lang, "llm_preparing", pct=f"{status.llm_fraction or 0:.0%}"),
        "loading": t(lang, "llm_loading"),
        "ready": t(lang, "llm_ready", name=model_name(lang, status.llm)),
        "error": t(lang, "llm_error", error=status.llm_error or ""),
    }.get(status.llm_state)
    if llm:
        parts.append(f'<span class="pill pill-{"error" if status.llm_state == "error" else "quiet"}">{escape(llm)}</span>')
    if status.kept is not None:  # spare time reads note sections so that answers start sooner
        kept = t(lang, "st_kept", n=min(status.kept, status.chunks), of=status.chunks)
        parts.append(f'<span class="pill pill-quiet" id="kept" title="{escape(t(lang, "st_kept_why"))}">'
                     f'{escape(kept)}</span>')
    if status.stale:
        parts.append(f'<span class="pill pill-warn">{escape(t(lang, "st_stale", n=status.stale))}</span>')
    return '<div class="status-row">' + "".join(parts) + "</div>"


def busy(lang: str, key: str, detail: str = "") -> str:
    return f'<div class="busy" id="busy">⏳ {escape(t(lang, key))}{detail}</div>'


def generation_log(lang: str, events) -> str:
    """The busy note over what the model has done so far, so half a minute of work is not silence."""
    lines = []
    for event in events:
        if event.kind == "call":
            lines.append(("gen-call", t(lang, "gen_call", k=event.call, n=event.most)))
        elif event.kind == "accepted":
            lines.append(("gen-ok", f"✓ {event.text}"))
        elif event.kind == "rejected":
            reason = rejected_because(lang, event.why, event.of, event.reason)
            lines.append(("gen-no", f"✗ {event.text} — {reason}" if event.text else f"✗ {reason}"))
    items = "".join(f'<li class="{kind}">{escape(text)}</li>' for kind, text in lines[-LOG_LINES:])
    return busy(lang, "generating", f'<ul class="gen-log" id="gen-log">{items}</ul>' if items else "")


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


def source_card(lang: str, source, cited: bool) -> str:
    badge = t(lang, "cited") if cited else t(lang, "retrieved")
    meta = " · ".join([escape(source.note), t(lang, "line", line=source.line)])
    return (
        f'<div class="src-card{" src-cited" if cited else ""}">'
        f'<div class="src-head"><span class="src-n">{source.n}</span>'
        f'<a class="src-title" href="{escape(source.link)}" title="{escape(t(lang, "open_obsidian"))}">{escape(source.title)}</a>'
        f'<span class="src-badge">{escape(badge)}</span></div>'
        f'<div class="src-path">{escape(source.heading.replace(" > ", " › "))}</div>'
        f'<div class="src-snippet">{escape(_snippet(source.text))}</div>'
        f'<div class="src-meta">{meta}</div></div>'
    )


def sources_panel(lang: str, sources=None, answer=None) -> str:
    """Before the answer: every retrieved section. After: the cited ones first; when the notes do
    not cover the question, a labelled box with the closest sections."""
    if answer is not None and not answer.grounded:
        cards = "".join(source_card(lang, s, False) for s in answer.sources)
        return (f'<div class="not-found" id="not-in-notes"><div class="not-found-title">📭 {escape(t(lang, "not_in_notes"))}</div>'
                f'<div class="not-found-hint">{escape(t(lang, "not_in_notes_hint"))}</div>{cards}</div>')
    if answer is not None:
        cited = {s.n for s in answer.citations}
        ordered = [s for s in answer.sources if s.n in cited] + [s for s in answer.sources if s.n not in cited]
        return '<div class="sources">' + "".join(source_card(lang, s, s.n in cited) for s in ordered) + "</div>"
    if sources:
        return '<div class="sources">' + "".join(source_card(lang, s, False) for s in sources) + "</div>"
    return f'<div class="sources-empty">{escape(t(lang, "sources_empty"))}</div>'


def grade_html(lang: str, grade, link: str | None) -> str:
    """The verdict, then every option with its mark and the note's explanation, then the source."""
    verdict = t(lang, "correct") if grade.correct else t(lang, "wrong", answer=", ".join(grade.presented.answer))
    marks = {"correct": t(lang, "mark_correct"), "missed": t(lang, "mark_missed"), "wrong": t(lang, "mark_wrong"), "": ""}
    rows = []
    for option in grade.options:
        why = f'<div class="opt-why">{escape(option.explanation)}</div>' if option.explanation else ""
        mark = f'<span class="opt-mark">{escape(marks[option.status])}</span>' if option.status else ""
        rows.append(f'<li class="opt opt-{option.status or "plain"}{" opt-answer" if option.correct else ""}">'
                    f'<div class="opt-line"><b>{option.letter})</b> {escape(option.text)} {mark}</div>{why}</li>')
    prose = ""
    if grade.explanation and not any(o.explanation for o in grade.options):
        prose = f'<div class="explanation">{escape(grade.explanation)}</div>'
    record = grade.presented.record
    where = escape(" › ".join([record.title, *record.question.headings]))
    source = f'<a href="{escape(link)}">{where}</a>' if link else where
    return (f'<div class="grade grade-{"ok" if grade.correct else "bad"}" id="grade">'
            f'<div class="verdict">{escape(verdict)}</div><ul class="opts">{"".join(rows)}</ul>{prose}'
            f'<div class="src-meta">{escape(t(lang, "source"))}: {source} · {escape(record.note)}</div></div>')


def scores_table(lang: str, rows: list[dict]) -> str:
    if not rows:
        return f'<div class="sources-empty">{escape(t(lang, "scores_empty"))}</div>'
    head = "".join(f"<th>{escape(t(lang, k))}</th>" for k in ("col_service", "col_attempts", "col_accuracy", "col_recent", "col_last"))
    body = []
    for row in rows:
        trend = "".join('<span class="dot dot-ok">●</span>' if ok else '<span class="dot dot-bad">●</span>' for ok in row["recent"])
        bar = f'<span class="bar"><span style="width:{row["accuracy"] * 100:.0f}%"></span></span>'
        name = row["tag"].split("/", 1)[-1]
        body.append(f'<tr><td>{escape(name)}</td><td>{row["correct"]}/{row["attempts"]}</td>'
                    f'<td>{bar} {row["accuracy"]:.0%}</td><td>{trend}</td><td>{row["last"]:%Y-%m-%d}</td></tr>')
    return f'<table class="table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def index_card(lang: str, status) -> str:
    """The index's figures; what it is doing is the header's, which every tab shows."""
    seconds = t(lang, "seconds", n=status.seconds) if status.seconds is not None else "—"
    cells = [
        ("notes", str(status.notes)), ("chunks", str(status.chunks)),
        ("embedding_model", status.embedding_model or "—"),
        ("last_sync", ago(lang, status.last_sync)), ("time_taken", seconds),
    ]
    items = "".join(f'<div class="stat"><div class="stat-label">{escape(t(lang, k))}</div>'
                    f'<div class="stat-value">{escape(v)}</div></div>' for k, v in cells)
    return f'<div class="stats" id="index-card">{items}</div>'


def problems_table(lang: str, status) -> str:
    """Skipped notes with the reason, then notes indexed despite a problem (e.g. broken YAML)."""
    def table(rows, key):
        body = "".join(f"<tr><td>{escape(r['path'])}</td><td>{escape(r[key])}</td></tr>" for r in rows)
        return (f'<table class="table"><thead><tr><th>{escape(t(lang, "col_note"))}</th>'
                f'<th>{escape(t(lang, "col_reason"))}</th></tr></thead><tbody>{body}</tbody></table>')

    html = f"<h4>{escape(t(lang, 'skipped_title'))}</h4>"
    html += table(status.skipped, "reason") if status.skipped else f'<div class="sources-empty">{escape(t(lang, "skipped_none"))}</div>'
    if status.warnings:
        html += f"<h4>{escape(t(lang, 'warnings_title'))}</h4>" + table(status.warnings, "warning")
    return html


def stale_table(lang: str, items) -> str:
    if not items:
        return f'<div class="sources-empty">{escape(t(lang, "stale_none"))}</div>'
    body = "".join(f"<tr><td><code>{escape(i.id)}</code><br>{escape(i.question.stem[:120])}</td>"
                   f"<td>{escape('; '.join(i.problems))}</td></tr>" for i in items)
    return (f'<table class="table"><thead><tr><th>{escape(t(lang, "stale_pick"))}</th>'
            f'<th>{escape(t(lang, "col_reason"))}</th></tr></thead><tbody>{body}</tbody></table>')
