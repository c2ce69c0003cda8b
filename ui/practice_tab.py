"""The practice tab: exam questions from the notes, graded with the notes' own explanations.

A session (one per browser tab, in gr.State) is a `Quiz` over the chosen service, due and
missed questions first. Generated questions (a fresh variant, a new one from the note) are
shown and graded the same way and can be saved into practice.
"""
from __future__ import annotations

import random
import time
from typing import Iterator

from ui import render
from ui.background import in_background, running_log
from ui.text import info, warn, message_for, t

RANDOM = ""  # the tag choice meaning every note


def new_session() -> dict:
    return {"tags": (), "quiz": None, "presented": None, "started": 0.0, "generated": None, "saved": False,
            "graded": False, "right": 0, "answered": 0}


def _show(lang: str, session: dict, presented, note: str = "") -> tuple:
    """Outputs for a new question: text, the right kind of answer input, an empty result."""
    import gradio as gr

    session.update(presented=presented, started=time.monotonic(), graded=False)
    record, quiz = presented.record, session["quiz"]
    if session["generated"] is not None:
        where = t(lang, "saved_badge") if session["saved"] else t(lang, "generated_badge")
    else:
        where = t(lang, "question_of", n=len(quiz.asked), total=quiz.total)
    how = t(lang, "choose_n", n=presented.select) if presented.select > 1 else t(lang, "choose_one")
    text = f"**{where}** · {record.title}\n\n{presented.stem}\n\n**{how}**" + (f"\n\n_{note}_" if note else "")
    choices = [(f"{letter}) {option}", letter) for letter, option in presented.options]
    one, many = presented.select == 1, presented.select > 1
    return (
        session, text,
        gr.update(choices=choices if one else [], value=None, visible=one, interactive=True),
        gr.update(choices=choices if many else [], value=[], visible=many, interactive=True),
        "", gr.update(visible=session["generated"] is not None and not session["saved"]),
    )


def _unchanged(session: dict) -> tuple:
    import gradio as gr

    return session, gr.update(), gr.update(), gr.update(), gr.update(), gr.update()


def next_question(ws, session: dict, tag: str, lang: str) -> tuple:
    """Outputs: session, question text, radio, checkboxes, result, save button."""
    session = {**(session or new_session()), "generated": None, "saved": False}
    tags = (tag,) if tag else ()
    if not ws.status().indexed:
        warn(render.not_ready(lang, ws.status()))
        return _unchanged(session)
    try:
        if session["quiz"] is None or session["tags"] != tags:
            session.update(quiz=ws.quiz(tags), tags=tags, right=0, answered=0)
        presented, note = session["quiz"].next(), ""
        if presented is None and session["quiz"].records:  # every question asked: a new round
            session["quiz"] = ws.quiz(tags)
            presented, note = session["quiz"].next(), t(lang, "round_done")
    except Exception as exc:
        warn(message_for(exc, lang))
        return _unchanged(session)
    if presented is None:
        warn(t(lang, "no_questions"))
        return _unchanged(session)
    return _show(lang, session, presented, note)


def check(ws, session: dict, one: str | None, many: list | None, lang: str) -> tuple:
    """Outputs: session, result, radio, checkboxes, scores."""
    import gradio as gr

    presented = (session or {}).get("presented")
    if presented is None or session["graded"]:
        warn(t(lang, "no_question"))
        return session, gr.update(), gr.update(), gr.update(), gr.update()
    chosen = [one] if presented.select == 1 and one else list(many or [])
    if len(chosen) != presented.select:
        warn(t(lang, "pick_n", n=presented.select) if presented.select > 1 else t(lang, "pick_answer"))
        return session, gr.update(), gr.update(), gr.update(), gr.update()
    try:
        grade = ws.check(session["quiz"], presented, chosen, time.monotonic() - session["started"])
    except Exception as exc:
        warn(message_for(exc, lang))
        return session, gr.update(), gr.update(), gr.update(), gr.update()
    session = {**session, "graded": True, "answered": session["answered"] + 1, "right": session["right"] + grade.correct}
    score = f'<div class="session-score">{t(lang, "session_score", right=session["right"], total=session["answered"])}</div>'
    locked = gr.update(interactive=False)
    return session, render.grade_html(lang, grade, ws.link(presented.record.note)) + score, locked, locked, scores(ws, lang)


def generate(ws, session: dict, kind: str, lang: str) -> Iterator[tuple]:
    """A new variant of the shown question, or a new question from its note (slow: a local LLM).

    Yields the running log of model calls and checked candidates while the model works, then the
    question: half a minute with nothing moving looks like a hang."""
    import gradio as gr

    presented = (session or {}).get("presented")
    if presented is None:
        warn(t(lang, "no_question"))
        yield _unchanged(session)
        return
    current = presented.record

    def work(progress):
        if kind == "variant":
            made = ws.variant(current, progress=progress)
        else:
            made = ws.new_question(current.note, progress=progress)
        return made, ws.as_record(made)

    events, done = in_background(work)
    for log in running_log(events, lang):
        yield (*_unchanged(session)[:4], log, gr.update())
    try:
        made, record = done.result()
    except Exception as exc:
        warn(message_for(exc, lang))
        yield (*_unchanged(session)[:4], "", gr.update())  # the question stays; the busy note goes
        return
    from tutor.practice.quiz import present

    if kind == "variant":
        note = t(lang, "generated_variant", kept=len(made.question.answer),
                 new=len(made.question.options) - len(made.question.answer))
    else:
        note = t(lang, "generated_question", note=record.title)
    if made.missing:
        note += " " + t(lang, "generated_missing", missing=made.missing)
    session = {**session, "generated": made, "saved": False}
    yield _show(lang, session, present(record, random.Random()), note)


def save(ws, session: dict, lang: str) -> tuple:
    """Outputs: session, save button."""
    import gradio as gr

    made = (session or {}).get("generated")
    if made is None:
        warn(t(lang, "nothing_to_save"))
        return session, gr.update()
    try:
        ws.save(made)
    except Exception as exc:
        warn(message_for(exc, lang))
        return session, gr.update()
    info(t(lang, "saved"))
    return {**session, "saved": True}, gr.update(visible=False)


def export(ws, fmt: str, tag: str, lang: str):
    import gradio as gr

    try:
        path, count = ws.export(fmt, (tag,) if tag else ())
    except Exception as exc:
        warn(message_for(exc, lang))
        return gr.update()
    info(t(lang, "exported", n=count))
    return gr.update(value=str(path), visible=True)


def scores(ws, lang: str) -> str:
    return render.scores_table(lang, ws.scores())


def tag_choices(ws, lang: str) -> list[tuple[str, str]]:
    from ui.chat_tab import tag_choices as all_tags

    return [(t(lang, "random"), RANDOM), *all_tags(ws)]


def build(ws, i18n, lang):
    import gradio as gr

    session = gr.State(new_session())
    with gr.Row(equal_height=True):
        tag = gr.Dropdown(label=i18n("practice_tag"), choices=[("🎲", RANDOM)], value=RANDOM, scale=3, elem_id="practice-tag")
        nxt = gr.Button(i18n("next_question"), variant="primary", scale=1, elem_id="next-question",
                        elem_classes=["btn-fit"])
    with gr.Group(elem_classes=["question-card"]):
        question = gr.Markdown(i18n("practice_intro"), elem_id="question-text", padding=True)
        one = gr.Radio(label=i18n("your_answer"), visible=False, elem_id="answer-one")
        many = gr.CheckboxGroup(label=i18n("your_answer"), visible=False, elem_id="answer-many")
    with gr.Row():
        check_btn = gr.Button(i18n("check"), variant="primary", elem_id="check")
        variant_btn = gr.Button(i18n("variant"), elem_id="variant")
        note_btn = gr.Button(i18n("from_note"), elem_id="from-note")
        save_btn = gr.Button(i18n("save_generated"), visible=False, elem_id="save-generated")
    result = gr.HTML(elem_id="result")
    with gr.Accordion(i18n("scores"), open=True):
        score_html = gr.HTML(elem_id="scores")
    with gr.Accordion(i18n("export"), open=False):
        with gr.Row(equal_height=True):
            fmt = gr.Radio([("Markdown (.md)", "markdown"), ("Anki (.apkg)", "anki")], value="anki",
                           label=i18n("export_format"), scale=2)
            export_btn = gr.Button(i18n("export_button"), scale=1, elem_classes=["btn-fit"])
        download = gr.File(label=i18n("export_file"), visible=False, interactive=False)

    shown = [session, question, one, many, result, save_btn]

    def busy(s, lg):
        """Says what is happening at once: generation takes a minute on a laptop CPU."""
        return render.busy(lg, "generating") if (s or {}).get("presented") else gr.update()

    nxt.click(lambda s, tg, lg: next_question(ws, s, tg, lg), [session, tag, lang], shown)
    tag.input(lambda s, tg, lg: next_question(ws, s, tg, lg), [session, tag, lang], shown)
    check_btn.click(lambda s, a, b, lg: check(ws, s, a, b, lg), [session, one, many, lang],
                    [session, result, one, many, score_html])
    for button, kind in ((variant_btn, "variant"), (note_btn, "question")):
        def generate_fn(s, lg, kind=kind):  # a generator function: Gradio streams only those
            yield from generate(ws, s, kind, lg)

        button.click(busy, [session, lang], result, show_progress="hidden").then(
            generate_fn, [session, lang], shown, show_progress_on=[question])
    save_btn.click(lambda s, lg: save(ws, s, lg), [session, lang], [session, save_btn])
    export_btn.click(lambda f, tg, lg: export(ws, f, tg, lg), [fmt, tag, lang], download)
    return {"tag": tag, "scores": score_html}
