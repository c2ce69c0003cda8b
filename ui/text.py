"""Every word the UI shows, in English and Korean.

Static labels go through Gradio's I18n (the browser's language picks them); text made by
handlers goes through `t(lang, key)`, with `lang` read from the same browser's Accept-Language,
so both halves of the page speak the same language.
"""
from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title_md": "## 📘 AWS notes tutor\nStudy from your own notes — offline",
        "tab_chat": "💬 Chat",
        "tab_practice": "📝 Practice",
        "tab_notes": "🗂️ Notes",
        # chat
        "chat_placeholder": "## Ask your notes\nAnswers come only from your vault, with the sections they rest on.",
        "ask_placeholder": "Ask a question in Korean or English…",
        "send": "Ask",
        "new_chat": "🧹 New chat",
        "filter": "Only these services / tags",
        "filter_info": "Empty: search every note",
        "model": "Answering model",
        "refresh_models": "↻ Find Ollama models",
        "sources_md": "#### Sources",
        "sources_empty": "The sections an answer rests on appear here, before the answer is written.",
        "searching": "🔎 Searching your notes…",
        "writing": "✍️ Writing the answer from {n} sections…",
        "loading_model": "⏳ Loading the language model (once per session)…",
        "cited": "Cited",
        "retrieved": "Retrieved",
        "not_in_notes": "Not in your notes",
        "not_in_notes_hint": "The closest sections your notes have:",
        "open_obsidian": "Open in Obsidian",
        "line": "line {line}",
        "empty_question": "Type a question first.",
        "not_ready": "Your notes are still being indexed ({detail}). Ask again in a moment.",
        "model_builtin": "Built-in · Qwen2.5-Coder 1.5B (llama.cpp)",
        "model_gguf": "llama.cpp · {name}",
        "model_ollama": "Ollama · {name}",
        "model_switched": "Answers now come from {name}.",
        "read_ahead": "⚡ Read notes ahead",
        "read_ahead_info": "Answers start about 3x sooner on a slow CPU once the model has read their sections, which it does while idle and keeps on disk (up to 2 GB). The sections read apart then do not see each other: answers cite their sources a little less often.",
        "read_ahead_on": "The model now reads note sections while idle; answers citing them start sooner.",
        "read_ahead_off": "Off: answers read their sources as before. 'tutor warm --clear' frees the disk.",
        "read_ahead_env": "Set by $TUTOR_BLOCKS for this run.",
        "read_ahead_model": "Only the built-in and llama.cpp models keep what they read; {name} reads each prompt anew.",
        "ollama_found": "Ollama lists {n} models.",
        "ollama_found_one": "Ollama lists 1 model.",
        "ollama_none": "Ollama is running but has no models - run 'ollama pull qwen2.5:7b'.",
        "error_prefix": "⚠️ {message}",
        "unexpected": "Something went wrong: {message}. The details are in the terminal running 'tutor ui'.",
        # practice
        "practice_tag": "Service / tag",
        "random": "🎲 All notes, random",
        "next_question": "Next question ▶",
        "check": "Check answer",
        "variant": "🔀 New variant (fresh wrong options)",
        "from_note": "✨ New question from this note",
        "save_generated": "💾 Save this question",
        "choose_one": "Choose one answer",
        "choose_n": "Select {n} ({n}개 선택)",
        "your_answer": "Your answer",
        "practice_intro": "Pick a service, or practise everything, and press **Next question**. Due and missed questions come first.",
        "no_questions": "No practice questions here - add a '## 📝 관련 문제' section to a note, or choose another service.",
        "round_done": "You answered every question in this set - starting a new round, missed ones first.",
        "question_of": "Question {n} of {total}",
        "generated_badge": "✨ Generated",
        "saved_badge": "💾 Saved",
        "pick_answer": "Choose an answer first.",
        "pick_n": "Choose exactly {n} options.",
        "no_question": "Press 'Next question' first.",
        "correct": "✅ Correct",
        "wrong": "❌ Not quite — the answer is {answer}",
        "mark_correct": "✓ your answer, right",
        "mark_missed": "✓ right answer (missed)",
        "mark_wrong": "✗ your answer",
        "source": "Source",
        "scores": "📊 Score by service",
        "scores_empty": "No answers yet - your accuracy per service shows up here as you practise.",
        "col_service": "Service",
        "col_attempts": "Answers",
        "col_accuracy": "Accuracy",
        "col_recent": "Recent (oldest → newest)",
        "col_last": "Last practised",
        "session_score": "This session: {right}/{total}",
        "generating": "Generating with the local model - about half a minute on a laptop CPU…",
        "gen_call": "Model call {k} (at most {n})…",
        "generated_variant": "New variant: {kept} correct option(s) kept, {new} new wrong option(s), each checked against your notes.",
        "generated_question": "New question from {note}: checked against your notes.",
        "generated_missing": "{missing} wrong option(s) did not pass the checks and were left out.",
        "saved": "Saved - it joins your practice and exports.",
        "nothing_to_save": "Generate a question first.",
        "export": "⬇️ Export",
        "export_format": "Format",
        "export_button": "Export questions",
        "export_file": "Download",
        "exported": "Exported {n} questions.",
        "exported_one": "Exported 1 question.",
        # notes
        "index_md": "#### Index",
        "reindex": "🔄 Re-index now",
        "reindex_info": "Reads every note again; only new or changed text is embedded. Saved notes are picked up automatically a second after you save.",
        "notes": "Notes",
        "chunks": "Chunks",
        "embedding_model": "Embedding model",
        "last_sync": "Last sync",
        "time_taken": "Time taken",
        "never": "never",
        "skipped_title": "Skipped notes",
        "skipped_none": "No note was skipped.",
        "warnings_title": "Indexed with warnings",
        "col_note": "Note",
        "col_reason": "Reason",
        "stale_title": "Generated questions to review",
        "stale_none": "Every saved generated question still matches your notes.",
        "stale_pick": "Question",
        "drop": "🗑️ Drop",
        "regenerate": "♻️ Regenerate",
        "dropped": "Dropped {id}.",
        "regenerated": "Regenerated as {id}.",
        "pick_stale": "Choose a question first.",
        "reindexed": "Index up to date: {notes} notes, {chunks} chunks ({changed} changed) in {seconds:.1f} s.",
        # status
        "st_starting": "⏳ Starting…",
        "st_indexing": "⏳ Indexing your notes: {detail}",
        "st_syncing": "🔄 Syncing: {detail}",
        "st_ready": "✅ Up to date — {notes} notes · {chunks} chunks",
        "st_ready_changed": "{n} notes changed {ago}",
        "st_ready_changed_one": "1 note changed {ago}",
        "st_ready_checked": "checked {ago}",
        "st_error": "⚠️ {error}",
        "st_stale": "{n} generated questions to review (Notes tab)",
        "st_stale_one": "1 generated question to review (Notes tab)",
        "stage_parse": "reading {done}/{total} notes",
        "stage_embed": "embedding {done}/{total} chunks",
        "stage_write": "saving the index",
        "stage_model": "preparing the embedding model {pct}",
        "stage_none": "starting",
        "llm_preparing": "🧠 Preparing the built-in model… {pct}",
        "llm_loading": "🧠 Loading the model…",
        "llm_ready": "🧠 {name}",
        "llm_error": "🧠 Model problem: {error}",
        "st_kept": "⚡ {n}/{of} sections read ahead",
        "st_kept_why": "The model reads note sections while idle and keeps them, so answers citing them start sooner ('tutor warm --clear' frees the disk).",
        "seconds": "{n:.1f} s",
        "ago_s": "{n} s ago",
        "ago_m": "{n} min ago",
        "ago_h": "{n} h ago",
    },
    "ko": {
        "title_md": "## 📘 AWS 노트 튜터\n내 노트로 공부하기 — 오프라인",
        "tab_chat": "💬 질문하기",
        "tab_practice": "📝 문제 풀기",
        "tab_notes": "🗂️ 노트",
        "chat_placeholder": "## 노트에 물어보세요\n답은 내 노트에서만 나오고, 근거가 된 섹션을 함께 보여 드립니다.",
        "ask_placeholder": "한국어나 영어로 질문하세요…",
        "send": "질문",
        "new_chat": "🧹 새 대화",
        "filter": "이 서비스 / 태그만",
        "filter_info": "비워 두면 모든 노트에서 찾습니다",
        "model": "답변 모델",
        "refresh_models": "↻ Ollama 모델 찾기",
        "sources_md": "#### 출처",
        "sources_empty": "답의 근거가 되는 섹션이 답변보다 먼저 여기에 나타납니다.",
        "searching": "🔎 노트를 찾는 중…",
        "writing": "✍️ 섹션 {n}개를 바탕으로 답을 쓰는 중…",
        "loading_model": "⏳ 언어 모델을 불러오는 중 (처음 한 번)…",
        "cited": "인용",
        "retrieved": "검색됨",
        "not_in_notes": "노트에 없는 내용",
        "not_in_notes_hint": "노트에서 가장 가까운 섹션:",
        "open_obsidian": "Obsidian에서 열기",
        "line": "{line}행",
        "empty_question": "먼저 질문을 입력하세요.",
        "not_ready": "아직 노트를 색인하는 중입니다 ({detail}). 잠시 후 다시 질문하세요.",
        "model_builtin": "내장 · Qwen2.5-Coder 1.5B (llama.cpp)",
        "model_gguf": "llama.cpp · {name}",
        "model_ollama": "Ollama · {name}",
        "model_switched": "이제 {name} 모델이 답합니다.",
        "read_ahead": "⚡ 노트 미리 읽기",
        "read_ahead_info": "쉬는 동안 모델이 노트 섹션을 읽어 디스크에 보관해 두면(최대 2 GB), 그 섹션을 인용하는 답이 느린 CPU에서 약 3배 빨리 시작됩니다. 따로 읽은 섹션끼리는 서로를 보지 못해 출처 인용이 조금 줄어듭니다.",
        "read_ahead_on": "이제 쉬는 동안 모델이 노트 섹션을 읽어 둡니다. 그 섹션을 인용하는 답이 더 빨리 시작됩니다.",
        "read_ahead_off": "껐습니다. 답은 전처럼 출처를 읽습니다. 'tutor warm --clear'로 디스크를 비울 수 있습니다.",
        "read_ahead_env": "이번 실행은 $TUTOR_BLOCKS 설정을 따릅니다.",
        "read_ahead_model": "내장 모델과 llama.cpp 모델만 읽은 내용을 보관합니다. {name}은(는) 매번 새로 읽습니다.",
        "ollama_found": "Ollama 모델 {n}개를 찾았습니다.",
        "ollama_found_one": "Ollama 모델 1개를 찾았습니다.",
        "ollama_none": "Ollama는 실행 중이지만 모델이 없습니다 - 'ollama pull qwen2.5:7b'를 실행하세요.",
        "error_prefix": "⚠️ {message}",
        "unexpected": "문제가 생겼습니다: {message}. 자세한 내용은 'tutor ui'를 실행한 터미널에 있습니다.",
        "practice_tag": "서비스 / 태그",
        "random": "🎲 전체 노트에서 무작위",
        "next_question": "다음 문제 ▶",
        "check": "채점하기",
        "variant": "🔀 새 변형 (오답 새로 만들기)",
        "from_note": "✨ 이 노트로 새 문제",
        "save_generated": "💾 이 문제 저장",
        "choose_one": "정답 하나를 고르세요",
        "choose_n": "{n}개 선택 (Select {n})",
        "your_answer": "내 답",
        "practice_intro": "서비스를 고르거나 전체를 선택하고 **다음 문제**를 누르세요. 복습할 때가 된 문제와 틀린 문제가 먼저 나옵니다.",
        "no_questions": "여기에는 연습 문제가 없습니다 - 노트에 '## 📝 관련 문제' 섹션을 추가하거나 다른 서비스를 고르세요.",
        "round_done": "이 묶음의 문제를 모두 풀었습니다 - 틀린 문제부터 새로 시작합니다.",
        "question_of": "{total}문제 중 {n}번째",
        "generated_badge": "✨ 생성된 문제",
        "saved_badge": "💾 저장됨",
        "pick_answer": "먼저 답을 고르세요.",
        "pick_n": "정확히 {n}개를 고르세요.",
        "no_question": "먼저 '다음 문제'를 누르세요.",
        "correct": "✅ 정답입니다",
        "wrong": "❌ 아쉽네요 — 정답은 {answer}",
        "mark_correct": "✓ 내 답, 정답",
        "mark_missed": "✓ 정답 (놓침)",
        "mark_wrong": "✗ 내 답",
        "source": "출처",
        "scores": "📊 서비스별 점수",
        "scores_empty": "아직 푼 문제가 없습니다 - 문제를 풀면 서비스별 정답률이 여기에 쌓입니다.",
        "col_service": "서비스",
        "col_attempts": "푼 횟수",
        "col_accuracy": "정답률",
        "col_recent": "최근 (오래된 → 최신)",
        "col_last": "마지막 연습",
        "session_score": "이번 세션: {right}/{total}",
        "generating": "로컬 모델로 만드는 중 - 노트북 CPU에서 30초쯤 걸립니다…",
        "gen_call": "모델 호출 {k}번째 (최대 {n}번)…",
        "generated_variant": "새 변형: 정답 {kept}개는 그대로, 새 오답 {new}개 - 모두 노트와 대조해 검사했습니다.",
        "generated_question": "{note}에서 만든 새 문제 - 노트와 대조해 검사했습니다.",
        "generated_missing": "오답 {missing}개는 검사를 통과하지 못해 뺐습니다.",
        "saved": "저장했습니다 - 연습과 내보내기에 포함됩니다.",
        "nothing_to_save": "먼저 문제를 생성하세요.",
        "export": "⬇️ 내보내기",
        "export_format": "형식",
        "export_button": "문제 내보내기",
        "export_file": "내려받기",
        "exported": "문제 {n}개를 내보냈습니다.",
        "exported_one": "문제 1개를 내보냈습니다.",
        "index_md": "#### 색인",
        "reindex": "🔄 지금 다시 색인",
        "reindex_info": "모든 노트를 다시 읽고, 새로 바뀐 내용만 임베딩합니다. 노트를 저장하면 1초 뒤 자동으로 반영됩니다.",
        "notes": "노트",
        "chunks": "청크",
        "embedding_model": "임베딩 모델",
        "last_sync": "마지막 동기화",
        "time_taken": "걸린 시간",
        "never": "없음",
        "skipped_title": "건너뛴 노트",
        "skipped_none": "건너뛴 노트가 없습니다.",
        "warnings_title": "경고와 함께 색인된 노트",
        "col_note": "노트",
        "col_reason": "이유",
        "stale_title": "다시 확인할 생성 문제",
        "stale_none": "저장한 생성 문제가 모두 지금 노트와 맞습니다.",
        "stale_pick": "문제",
        "drop": "🗑️ 삭제",
        "regenerate": "♻️ 다시 생성",
        "dropped": "{id}을(를) 삭제했습니다.",
        "regenerated": "{id}(으)로 다시 생성했습니다.",
        "pick_stale": "먼저 문제를 고르세요.",
        "reindexed": "색인 완료: 노트 {notes}개, 청크 {chunks}개 (바뀐 노트 {changed}개), {seconds:.1f}초.",
        "st_starting": "⏳ 시작하는 중…",
        "st_indexing": "⏳ 노트 색인 중: {detail}",
        "st_syncing": "🔄 동기화 중: {detail}",
        "st_ready": "✅ 최신 상태 — 노트 {notes}개 · 청크 {chunks}개",
        "st_ready_changed": "{ago} 노트 {n}개 반영",
        "st_ready_changed_one": "{ago} 노트 1개 반영",
        "st_ready_checked": "{ago} 확인",
        "st_error": "⚠️ {error}",
        "st_stale": "다시 확인할 생성 문제 {n}개 (노트 탭)",
        "st_stale_one": "다시 확인할 생성 문제 1개 (노트 탭)",
        "stage_parse": "노트 읽는 중 {done}/{total}",
        "stage_embed": "청크 임베딩 중 {done}/{total}",
        "stage_write": "색인 저장 중",
        "stage_model": "임베딩 모델 준비 중 {pct}",
        "stage_none": "시작하는 중",
        "llm_preparing": "🧠 내장 모델 준비 중… {pct}",
        "llm_loading": "🧠 모델 불러오는 중…",
        "llm_ready": "🧠 {name}",
        "llm_error": "🧠 모델 문제: {error}",
        "st_kept": "⚡ 미리 읽은 섹션 {n}/{of}",
        "st_kept_why": "쉬는 동안 모델이 노트 섹션을 읽어 두어, 그 섹션을 인용하는 답이 더 빨리 시작됩니다 ('tutor warm --clear'로 디스크를 비울 수 있습니다).",
        "seconds": "{n:.1f}초",
        "ago_s": "{n}초 전",
        "ago_m": "{n}분 전",
        "ago_h": "{n}시간 전",
    },
}

# Example questions shown in an empty chat, in both languages whatever the UI language.
EXAMPLES = [
    "Kinesis Data Streams 샤드 하나의 쓰기 처리량은?",
    "S3 Glacier에서 데이터를 복원하는 데 얼마나 걸리나요?",
    "Which service runs Spark batch jobs without managing servers?",
    "How do I cut Athena query costs?",
]


def lang_of(accept_language: str | None) -> str:
    """'ko' when the browser prefers Korean to English, else 'en'."""
    for part in (accept_language or "").split(","):
        primary = part.split(";")[0].strip().lower()[:2]
        if primary in TEXT:
            return primary
    return "en"


# Why a generated option was rejected, by the check's kind (`Rejection.kind`). English, and a
# kind without an entry here, show the checker's own words.
REJECTED_BECAUSE: dict[str, dict[str, str]] = {
    "ko": {
        "empty": "비어 있음",
        "correct": "정답 보기 '{of}'와 같은 말",
        "existing": "이미 있는 보기 '{of}'와 같은 말",
        "duplicate": "다른 새 보기 '{of}'와 같은 말",
        "example": "예시 문제에만 나오는 '{of}'을(를) 씀 - 이 문제의 노트에는 없음",
        "giveaway": "길이나 단정적인 표현('항상', '절대' 등) 때문에 오답임이 드러남",
        "unknown": "노트에 나오지 않는 이름이나 낱말을 씀",
        "invalid": "모델의 답이 정해진 JSON 형식이 아님",
        "question": "새 문제가 검사를 통과하지 못함 ({reason})",
    },
}


def rejected_because(lang: str, kind: str, of: str, reason: str) -> str:
    return REJECTED_BECAUSE.get(lang, {}).get(kind, "{reason}").format(of=of, reason=reason)


def t(lang: str, key: str, **values) -> str:
    """The text for `key`; `key_one` instead when it exists and the count `n` is 1."""
    if values.get("n") == 1 and f"{key}_one" in TEXT["en"]:
        key = f"{key}_one"
    text = TEXT.get(lang, TEXT["en"]).get(key) or TEXT["en"][key]
    return text.format(**values) if values else text


def i18n():
    """Gradio's translator for the static labels (built on first use: gradio is imported late)."""
    import gradio as gr

    return gr.I18n(**TEXT)


# Exceptions whose message is written for the user (see each class): shown as they are.
# Matched by name so this module imports none of the heavy modules that define them.
USER_ERRORS = {
    "NotReady", "WorkspaceError", "LLMError", "SyncError", "EmbedderError", "RetrievalError",
    "GenerationError", "ExportRefused", "InvalidAnswer", "IndexMissing", "IndexDamaged",
}


def message_for(exc: BaseException, lang: str) -> str:
    """What to show for a failure: its own message when it was written for people, else a
    short note that points at the terminal (where the details are logged), never a trace."""
    if any(cls.__name__ in USER_ERRORS for cls in type(exc).__mro__):
        return str(exc)
    import logging

    logging.getLogger("tutor.ui").error("Unexpected error in the UI", exc_info=exc)
    return t(lang, "unexpected", message=f"{type(exc).__name__}: {exc}")


def warn(message: str) -> None:
    """A yellow toast; Gradio renders toasts as HTML, so the message is escaped."""
    import gradio as gr
    from html import escape

    gr.Warning(escape(message))


def info(message: str) -> None:
    import gradio as gr
    from html import escape

    gr.Info(escape(message))
