"""The chat tab: streamed, cited answers with the sections they rest on beside them.

Handlers take the workspace and the page language as plain arguments, so tests call them
directly with a fake workspace; `build` only wires them to components.
"""

from ui import render
from ui.text import info, warn, EXAMPLES, message_for, t


def _pairs_to_messages(pairs) -> list[dict]:
    messages = []
    for user, answer in pairs:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return messages


def _answer_markdown(lang: str, answer) -> str:
    if answer.grounded:
        return answer.text
    return f"> 📭 **{t(lang, 'not_in_notes')}**\n>\n> {answer.text}"


def respond(ws, message: str, pairs: list, tags: list, lang: str):
    """Yields (chat messages, history pairs, sources panel, textbox) as the answer grows: the
    question at once, the sources as soon as they are found, then the answer token by token."""
    question = (message or "").strip()
    pairs = list(pairs or [])
    if not question:
        warn(t(lang, "empty_question"))
        yield _pairs_to_messages(pairs), pairs, render.sources_panel(lang), message
        return
    status = ws.status()
    if not status.indexed:
        warn(render.not_ready(lang, status))
        yield _pairs_to_messages(pairs), pairs, render.sources_panel(lang), message
        return
    asked = _pairs_to_messages(pairs) + [{"role": "user", "content": question}]

    def shown(content: str) -> list[dict]:  # a fresh list each time: every update is a snapshot
        return [*asked, {"role": "assistant", "content": content}]

    panel = render.sources_panel(lang)
    yield shown(t(lang, "searching")), pairs, panel, ""
    answer, text, content = None, "", t(lang, "searching")
    try:
        for kind, value in ws.ask(question, pairs, tuple(tags or ())):
            if kind == "loading":
                content = t(lang, "loading_model")
            elif kind == "sources":
                panel = render.sources_panel(lang, sources=value)
                content = t(lang, "writing", n=len(value))
            elif kind == "token":
                text += value
                content = text
            elif kind == "done":
                answer = value
                panel = render.sources_panel(lang, answer=answer)
                content = _answer_markdown(lang, answer)
            yield shown(content), pairs, panel, ""
    except Exception as exc:  # every failure becomes a readable message, never a trace
        problem = message_for(exc, lang)
        warn(problem)
        yield shown(t(lang, "error_prefix", message=problem)), pairs, panel, ""
        return
    if answer is not None:
        yield shown(content), pairs + [(question, answer.text)], panel, ""


def new_chat(lang: str):
    return [], [], render.sources_panel(lang), ""


def tag_choices(ws) -> list[tuple[str, str]]:
    """Service tags first (what exam questions are about), then the rest, each with its note count."""
    tags = ws.tags()
    ordered = [x for x in tags if x[0].startswith("service/")] + [x for x in tags if not x[0].startswith("service/")]
    return [(f"{tag} ({count})", tag) for tag, count in ordered]


def model_choices(ws, lang: str, announce: bool = False):
    """The dropdown's choices and a line under it; `announce` also pops the result up."""
    import gradio as gr

    specs, problem = ws.llm_choices()
    ollama = [s for s in specs if s.startswith("ollama:")]
    if problem:
        note = f"⚠️ {problem}"
        if announce:
            warn(problem)
    else:
        note = t(lang, "ollama_found", n=len(ollama)) if ollama else t(lang, "ollama_none")
        if announce:
            info(note)
    choices = [(render.model_name(lang, s), s) for s in specs]
    return gr.update(choices=choices, value=ws.llm_spec), note


def choose_model(ws, spec: str, lang: str):
    """Switch models; when the new one cannot load, say why and keep the old one selected."""
    import gradio as gr

    try:
        ws.set_llm(spec)
    except Exception as exc:
        warn(message_for(exc, lang))
        return gr.update(value=ws.llm_spec), f"⚠️ {message_for(exc, lang)}"
    note = t(lang, "model_switched", name=render.model_name(lang, spec))
    info(note)
    return gr.update(value=spec), note


def choose_read_ahead(ws, on: bool, lang: str) -> str:
    """Keep note sections read in spare time, or stop; the line under the box says what now."""
    ws.set_read_ahead(on)
    if on and ws.llm_spec.startswith("ollama:"):
        note = t(lang, "read_ahead_model", name=render.model_name(lang, ws.llm_spec))
        warn(note)
        return note
    note = t(lang, "read_ahead_on" if on else "read_ahead_off")
    info(note)
    return note


def build(ws, i18n, lang):
    """The tab's components and events; returns what the page-level events update."""
    import gradio as gr

    pairs = gr.State([])
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            chatbot = gr.Chatbot(
                show_label=False, elem_id="chat", height=560, placeholder=i18n("chat_placeholder"),
                examples=[{"text": q} for q in EXAMPLES], buttons=["copy"], feedback_options=None,
                layout="bubble",
            )
            with gr.Row(equal_height=True):
                box = gr.Textbox(show_label=False, placeholder=i18n("ask_placeholder"), elem_id="question",
                                 scale=8, lines=1, max_lines=6, autofocus=True, container=False)
                send = gr.Button(i18n("send"), variant="primary", scale=1, min_width=80, elem_id="send")
                clear = gr.Button(i18n("new_chat"), variant="secondary", scale=1, min_width=140, elem_id="new-chat")
        with gr.Column(scale=2, min_width=320):
            tags = gr.Dropdown(label=i18n("filter"), info=i18n("filter_info"), multiselect=True, choices=[],
                               elem_id="tag-filter")
            with gr.Row(equal_height=True):
                model = gr.Dropdown(label=i18n("model"), choices=[(render.model_name("en", ws.llm_spec), ws.llm_spec)],
                                    value=ws.llm_spec, scale=4, elem_id="model")
                refresh = gr.Button(i18n("refresh_models"), size="sm", scale=1, min_width=150, elem_classes=["btn-fit"])
            model_note = gr.Markdown(elem_classes=["note"])
            on, fixed = ws.read_ahead()
            read_ahead = gr.Checkbox(value=on, label=i18n("read_ahead"), info=i18n("read_ahead_info"),
                                     interactive=not fixed, elem_id="read-ahead")
            read_ahead_note = gr.Markdown(i18n("read_ahead_env") if fixed else "", elem_classes=["note"])
            gr.Markdown(i18n("sources_md"))
            sources = gr.HTML(render.sources_panel("en"), elem_id="sources")

    def ask_fn(message, history, chosen_tags, lg):
        yield from respond(ws, message, history, chosen_tags, lg)

    def example(evt: gr.SelectData):
        return EXAMPLES[evt.index]

    def typing_fn(message, history, chosen_tags):
        ws.typing(message or "", history or [], tuple(chosen_tags or ()))

    outputs = [chatbot, pairs, sources, box]
    ask = dict(fn=ask_fn, inputs=[box, pairs, tags, lang], outputs=outputs, show_progress="hidden")
    # each keystroke hands the text over and returns: the model reads ahead on its own thread
    box.input(typing_fn, [box, pairs, tags], None, show_progress="hidden", queue=False)
    box.submit(**ask)
    send.click(**ask)
    chatbot.example_select(example, None, box, show_progress="hidden").then(**ask)
    clear.click(new_chat, lang, outputs, show_progress="hidden")
    model.input(lambda spec, lg: choose_model(ws, spec, lg), [model, lang], [model, model_note])
    refresh.click(lambda lg: model_choices(ws, lg, announce=True), lang, [model, model_note])
    read_ahead.input(lambda on, lg: choose_read_ahead(ws, on, lg), [read_ahead, lang], read_ahead_note)
    return {"tags": tags, "model": model, "model_note": model_note, "sources": sources}
