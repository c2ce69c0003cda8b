"""The browser UI: three tabs over one `Workspace`, served only on 127.0.0.1.

`create_app(workspace)` builds the page without serving it (tests pass a fake workspace);
`launch(app, port)` serves it offline: no analytics, no share link, no outside assets (the
theme's fonts are Gradio's bundled ones, Korean falls back to the system's Nanum fonts).
"""

import os

from ui import chat_tab, notes_tab, practice_tab, render
from ui.text import i18n as make_i18n
from ui.text import lang_of

STATUS_SECONDS = 2.0  # how often the header asks the workspace what it is doing

CSS = """
#header {align-items: center; gap: 12px; margin-bottom: 4px}
#brand h2 {margin: 0; font-size: 1.35rem}
#brand p {margin: 0; color: var(--body-text-color-subdued); font-size: .9rem}
.status-row {display: flex; flex-wrap: wrap; gap: 6px; justify-content: flex-end}
.pill {border-radius: 999px; padding: 3px 12px; font-size: .85rem; border: 1px solid var(--border-color-primary);
       background: var(--background-fill-secondary); white-space: nowrap}
.pill-ok {background: #ecfdf3; border-color: #a6e9c2; color: #066a3a}
.pill-busy {background: #fff7e6; border-color: #ffd591; color: #8a4b00}
.pill-warn {background: #fff1f0; border-color: #ffccc7; color: #a8071a}
.pill-error {background: #fff1f0; border-color: #ff7875; color: #a8071a}
.pill-quiet {color: var(--body-text-color-subdued)}
.sources {display: flex; flex-direction: column; gap: 8px}
.src-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px;
           background: var(--background-fill-primary)}
.src-cited {border-color: var(--color-accent); box-shadow: 0 0 0 1px var(--color-accent-soft)}
.src-head {display: flex; align-items: center; gap: 8px}
.src-n {display: inline-flex; align-items: center; justify-content: center; min-width: 22px; height: 22px;
        border-radius: 6px; background: var(--color-accent); color: white; font-size: .8rem; font-weight: 600}
.src-title {font-weight: 600; text-decoration: none; flex: 1; text-align: left}
.sources, .not-found, .grade, .table {text-align: left}
.src-title:hover {text-decoration: underline}
.src-badge {font-size: .75rem; color: var(--body-text-color-subdued)}
.src-path {font-size: .85rem; color: var(--body-text-color-subdued); margin: 2px 0 6px}
.src-snippet {font-size: .88rem; line-height: 1.45}
.src-meta {font-size: .78rem; color: var(--body-text-color-subdued); margin-top: 6px}
.sources-empty {color: var(--body-text-color-subdued); font-size: .9rem; padding: 8px 2px}
.not-found {border: 1px dashed #fa8c16; background: #fff7e6; border-radius: 10px; padding: 10px}
.not-found-title {font-weight: 700; color: #ad4e00}
.not-found-hint {font-size: .85rem; margin: 2px 0 8px; color: #ad4e00}
.grade {border-radius: 10px; padding: 12px 14px; border: 1px solid var(--border-color-primary)}
.grade-ok {background: #f6ffed; border-color: #b7eb8f}
.grade-bad {background: #fff1f0; border-color: #ffccc7}
.verdict {font-weight: 700; font-size: 1.05rem; margin-bottom: 6px}
.opts {list-style: none; padding: 0; margin: 0}
.opt {padding: 6px 8px; border-radius: 8px; margin: 4px 0; background: var(--background-fill-primary)}
.opt-answer {outline: 1px solid #95de64}
.opt-wrong {outline: 1px solid #ff7875}
.opt-mark {font-size: .8rem; margin-left: 6px; color: var(--body-text-color-subdued)}
.opt-why {font-size: .86rem; color: var(--body-text-color-subdued); margin-top: 2px}
.busy {border: 1px dashed var(--color-accent); border-radius: 10px; padding: 12px 14px; color: var(--body-text-color)}
.gen-log {list-style: none; padding: 0; margin: 8px 0 0; font-size: .86rem; text-align: left}
.gen-call {color: var(--body-text-color-subdued); margin-top: 4px}
.gen-ok {color: #066a3a}
.gen-no {color: #a8071a}
.session-score {margin-top: 8px; font-size: .9rem; color: var(--body-text-color-subdued)}
.table {width: 100%; border-collapse: collapse; font-size: .9rem; border: none !important}
.table th, .table td {text-align: left; padding: 6px 8px; border: none !important;
                      border-bottom: 1px solid var(--border-color-primary) !important; vertical-align: top}
.bar {display: inline-block; width: 70px; height: 8px; border-radius: 4px; background: #f0f0f0;
      vertical-align: middle; overflow: hidden}
.bar span {display: block; height: 100%; background: var(--color-accent)}
.dot {font-size: .8rem; margin-right: 1px}
.dot-ok {color: #52c41a}
.dot-bad {color: #ff4d4f}
.stats {display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin-bottom: 10px}
.stat {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px}
.stat-label {font-size: .8rem; color: var(--body-text-color-subdued)}
.stat-value {font-size: 1.05rem; font-weight: 600; overflow-wrap: anywhere}
.note p {font-size: .85rem; color: var(--body-text-color-subdued)}
#question-text {font-size: 1.02rem}
footer {display: none !important}
.btn-fit {align-self: flex-end !important; flex-grow: 0 !important; min-height: 42px; max-height: 46px;
          margin-bottom: 6px}
"""


def theme():
    import gradio as gr

    korean = ["NanumGothic", "NanumBarunGothic", "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans KR", "sans-serif"]
    return gr.themes.Default(
        primary_hue="orange", secondary_hue="slate", radius_size="md",
        font=[gr.themes.LocalFont("IBM Plex Sans"), *korean],
        font_mono=[gr.themes.LocalFont("IBM Plex Mono"), "NanumGothicCoding", "monospace"],
    )


def create_app(workspace):
    """The page, its events and the header's live status; nothing is served yet."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported
    import gradio as gr

    ws = workspace
    i18n = make_i18n()
    with gr.Blocks(title="AWS notes tutor", analytics_enabled=False) as app:
        lang = gr.State("en")
        tags_seen = gr.State(())
        with gr.Row(elem_id="header", equal_height=True):
            with gr.Column(scale=2, min_width=240, elem_id="brand"):
                gr.Markdown(i18n("title_md"))
            with gr.Column(scale=5):
                status = gr.HTML(elem_id="status")
        with gr.Tabs():
            with gr.Tab(i18n("tab_chat"), id="chat"):
                chat = chat_tab.build(ws, i18n, lang)
            with gr.Tab(i18n("tab_practice"), id="practice", elem_id="tab-practice"):
                practice = practice_tab.build(ws, i18n, lang)
            with gr.Tab(i18n("tab_notes"), id="notes", elem_id="tab-notes") as notes_tab_:
                notes = notes_tab.build(ws, i18n, lang)

        def on_load(request: gr.Request):
            lg = lang_of(request.headers.get("accept-language") if request else None)
            tags = tuple(chat_tab.tag_choices(ws))
            return (lg, render.status_line(lg, ws.status()), tags, gr.update(choices=list(tags)),
                    gr.update(choices=practice_tab.tag_choices(ws, lg)), render.sources_panel(lg),
                    practice_tab.scores(ws, lg), *notes_tab.panels(ws, lg))

        def tick(lg, seen):
            """The header every few seconds; the tag lists only when the vault's tags changed."""
            status, tags = ws.status(), tuple(chat_tab.tag_choices(ws))
            changed = tags != tuple(map(tuple, seen))
            return (render.status_line(lg, status), tags,
                    gr.update(choices=list(tags)) if changed else gr.update(),
                    gr.update(choices=practice_tab.tag_choices(ws, lg)) if changed else gr.update(),
                    render.index_card(lg, status))

        loaded = app.load(on_load, None, [lang, status, tags_seen, chat["tags"], practice["tag"], chat["sources"],
                                          practice["scores"], *notes["outputs"]], show_progress="hidden")
        loaded.then(lambda lg: chat_tab.model_choices(ws, lg), lang, [chat["model"], chat["model_note"]],
                    show_progress="hidden")
        gr.Timer(STATUS_SECONDS).tick(tick, [lang, tags_seen],
                                      [status, tags_seen, chat["tags"], practice["tag"], notes["outputs"][0]],
                                      show_progress="hidden")
        notes_tab_.select(lambda lg: notes_tab.panels(ws, lg), lang, notes["outputs"], show_progress="hidden")
    app.tutor_i18n = i18n
    return app


def launch(app, port: int = 7860) -> str:
    """Serve on 127.0.0.1 without blocking; returns the address. Raises OSError if the port is taken."""
    from tutor.workspace import Workspace

    exports = Workspace.exports_dir()
    exports.mkdir(parents=True, exist_ok=True)
    app.queue(default_concurrency_limit=4)
    _, url, _ = app.launch(
        server_name="127.0.0.1", server_port=port, share=False, inbrowser=False, prevent_thread_lock=True,
        quiet=True, show_error=False, footer_links=[], run_history=False, enable_monitoring=False,
        mcp_server=False, ssr_mode=False, pwa=False, allowed_paths=[str(exports)],
        i18n=app.tutor_i18n, theme=theme(), css=CSS,
    )
    return url.rstrip("/")
