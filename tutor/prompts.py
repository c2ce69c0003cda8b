"""Prompt templates for grounded chat, rendered strictly: a missing or unknown variable is an
error, so a renamed placeholder cannot silently send the model a literal ``$name``.

System prompts take no variables on purpose: they must be byte-identical on every call so
llama.cpp reuses their cached prefix; everything that varies goes in the user turn.
"""
from __future__ import annotations

from string import Template

NOT_COVERED = "NOT_IN_NOTES"  # the marker the model emits when the sources do not answer

# Wording tried on Qwen2.5-Coder-1.5B: when the user turn also demanded the marker, it refused
# an answerable English question and cited nothing; asked for a number after each fact, it cites.
ANSWER_SYSTEM = f"""\
You are a tutor for AWS certification study. Answer the question using only the numbered \
sources the user gives you.
After each fact, write the number of the source it comes from in square brackets, like [1] or [2].
If the question asks about something the sources do not mention at all (for example a product \
of another cloud provider), reply with exactly {NOT_COVERED}.
Keep the answer short: at most five sentences or bullet points. Do not copy the sources \
or their headings."""

# The model follows the user turn's last line most. Asked for "the source number in square
# brackets after each fact" it left 19 of 62 answered held-out questions without a citation;
# told to end every sentence with one, and shown how, 4 (`bench/chat_bench.py --held-out`,
# 2026-12-02: grounded 43 -> 58 of 64, citing the note the question was written for 39 -> 54).
# It also cites more on questions the notes cannot answer (`--out-of-domain`: 4 of 40 pass the
# relevance gate, all answered with a citation, against 2); adding "if the sources do not
# answer, reply only NOT_IN_NOTES" here refused answerable held-out questions instead.
ANSWER_USER = Template("""\
Sources:

$sources

Question: $question

Answer in $language. End every sentence with the number of its source in square brackets, like this: ... [1].""")

NO_RECITING = ("Do not list the sources or repeat their headings: answer the question in your own "
               "words, citing the source numbers.")

SOURCE_BLOCK = Template("[$n] $heading\n$text")

REWRITE_SYSTEM = """\
You rewrite a follow-up question from a conversation about AWS into one standalone search \
query that makes sense without the conversation. Name the AWS services and the topic \
explicitly. Keep the language of the follow-up question. Output only the query, on one line."""

REWRITE_USER = Template("""\
Conversation:
$conversation

Follow-up question: $question
Standalone query:""")

LANGUAGES = {"ko": "Korean (한국어)", "en": "English"}

REFUSAL = {  # what the tutor says, in the question's language, when the notes do not cover it
    "ko": "노트에 이 질문에 대한 내용이 없습니다. 가장 가까운 섹션을 아래에 보여 드립니다.",
    "en": "Your notes don't cover this. The closest sections are listed below.",
}

UNKNOWN_NAMES = {  # before REFUSAL when the question names something no note mentions
    "ko": Template("노트 어디에도 $names 이(가) 나오지 않습니다."),
    "en": Template("Your notes never mention $names."),
}

UNCITED = {  # added after an answer that cites no source: it may not come from the notes
    "ko": "(이 답변은 노트를 인용하지 않았습니다. 노트에 없는 내용일 수 있으니 아래의 가까운 섹션을 확인하세요.)",
    "en": "(This answer cites none of your notes, so it may not come from them. "
          "Check the closest sections below.)",
}

NO_ANSWER = {  # instead of UNCITED when the model wrote nothing of its own (seen from a 0.5B model)
    "ko": "(모델이 답을 쓰지 않았습니다. 아래의 가까운 섹션을 확인하거나, 다시 묻거나, --llm으로 더 큰 모델을 고르세요.)",
    "en": "(The model wrote no answer. Check the closest sections below, ask again, "
          "or choose a larger model with --llm.)",
}


class PromptError(ValueError):
    """A template was rendered with missing or unknown variables (a bug in the caller)."""


def render(template: Template, **values: object) -> str:
    """Fill ``template``; every placeholder must be given and nothing else."""
    if not template.is_valid():
        raise PromptError(f"Malformed template: {template.template[:60]!r}")
    wanted = set(template.get_identifiers())
    missing, unknown = wanted - values.keys(), values.keys() - wanted
    if missing or unknown:
        raise PromptError(f"Prompt variables wrong: missing {sorted(missing)}, "
                          f"unknown {sorted(unknown)} (the template takes {sorted(wanted)})")
    return template.substitute({k: str(v) for k, v in values.items()})
