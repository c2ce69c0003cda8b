"""The notes tab: what the index holds, a re-index button, and what needs the user's eye
(skipped notes and generated questions whose sections changed)."""
from __future__ import annotations

from typing import Iterator

from ui import render
from ui.background import in_background, running_log
from ui.text import info, warn, message_for, t

STAGE_SHARE = {"parse": (0.0, 0.2), "embed": (0.2, 0.95), "write": (0.95, 1.0)}  # of the progress bar


def panels(ws, lang: str) -> tuple:
    """Outputs: index card, problems table, stale table, stale choices, the row of stale actions."""
    import gradio as gr

    status, stale = ws.status(), ws.stale()
    choices = [(f"{item.id} · {item.question.stem[:60]}", item.id) for item in stale]
    return (render.index_card(lang, status), render.problems_table(lang, status), render.stale_table(lang, stale),
            gr.update(choices=choices, value=choices[0][1] if choices else None), gr.update(visible=bool(stale)))


def reindex(ws, lang: str, progress=None) -> tuple:
    """Sync now, the bar following the sync's stages; then the refreshed panels."""

    def on_progress(stage: str, done: float, total: float) -> None:
        if progress is None:
            return
        start, end = STAGE_SHARE.get(stage, (0.0, 1.0))
        label = render.stage(lang, stage, done, total)
        progress(start + (end - start) * (done / total if total else 1.0), desc=label)

    try:
        report = ws.sync(progress=on_progress)
    except Exception as exc:
        warn(message_for(exc, lang))
    else:
        info(t(lang, "reindexed", notes=report.notes, chunks=report.chunks,
                  changed=len(report.changed) + len(report.deleted), seconds=report.seconds))
    return panels(ws, lang)


def drop(ws, item_id: str | None, lang: str) -> tuple:

    if not item_id:
        warn(t(lang, "pick_stale"))
    elif ws.drop(item_id):
        info(t(lang, "dropped", id=item_id))
    return panels(ws, lang)


def regenerate(ws, item_id: str | None, lang: str) -> Iterator[tuple]:
    """Like the practice tab's generation, shows the model's calls and checked candidates in
    the stale list while it works (half a minute or more on a laptop CPU), then the panels."""
    import gradio as gr

    if not item_id:
        warn(t(lang, "pick_stale"))
        yield panels(ws, lang)
        return
    events, done = in_background(lambda progress: ws.regenerate(item_id, progress=progress))
    for log in running_log(events, lang):
        yield gr.update(), gr.update(), log, gr.update(), gr.update()
    try:
        fresh = done.result()
    except Exception as exc:
        warn(message_for(exc, lang))
    else:
        info(t(lang, "regenerated", id=fresh.id))
    yield panels(ws, lang)


def build(ws, i18n, lang):
    import gradio as gr

    gr.Markdown(i18n("index_md"))
    card = gr.HTML(elem_id="index-panel")
    with gr.Row(equal_height=True):
        button = gr.Button(i18n("reindex"), variant="primary", scale=1, elem_id="reindex", elem_classes=["btn-fit"])
        gr.Markdown(i18n("reindex_info"), elem_classes=["note"])
    problems = gr.HTML(elem_id="problems")
    with gr.Accordion(i18n("stale_title"), open=True):
        stale = gr.HTML(elem_id="stale")
        with gr.Row(equal_height=True, visible=False) as actions:
            pick = gr.Dropdown(label=i18n("stale_pick"), choices=[], scale=3)
            drop_btn = gr.Button(i18n("drop"), variant="stop", scale=1, elem_classes=["btn-fit"])
            regen_btn = gr.Button(i18n("regenerate"), scale=1, elem_classes=["btn-fit"])

    outputs = [card, problems, stale, pick, actions]

    def reindex_fn(lg, progress=gr.Progress()):
        return reindex(ws, lg, progress)


    def regenerate_fn(item_id, lg):  # a generator function: Gradio streams only those
        yield from regenerate(ws, item_id, lg)

    button.click(reindex_fn, lang, outputs)
    drop_btn.click(lambda item_id, lg: drop(ws, item_id, lg), [pick, lang], outputs)
    regen_btn.click(lambda item_id, lg: render.busy(lg, "generating") if item_id else gr.update(), [pick, lang], stale,
                    show_progress="hidden").then(regenerate_fn, [pick, lang], outputs, show_progress_on=[card])
    return {"outputs": outputs}
