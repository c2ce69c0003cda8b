"""Prompt templates for generating practice options, rendered strictly.

The system prompts never change, so llama.cpp keeps their tokens cached between calls; a retry
repeats the request and appends what was rejected, for the same reason. `$name` placeholders:
a missing value is an error, never a silently empty hole in a prompt.
"""
from __future__ import annotations

from string import Template


class PromptError(Exception):
    """A template was rendered without one of its values: a bug in the caller."""


def listed(options) -> str:
    """Correct options in a request: one a line, so none reads as part of another."""
    return "\n".join(f"- {option}" for option in options)


def render(template: str, **values: object) -> str:
    try:
        return Template(template).substitute(values)
    except KeyError as exc:
        raise PromptError(f"prompt template needs a value for ${exc.args[0]}; pass it to render()") from None
    except ValueError as exc:  # a stray '$' in the template itself
        raise PromptError(f"prompt template is malformed ({exc}); write a literal $ as $$") from None


DISTRACTOR_SYSTEM = """\
You write wrong answer options (distractors) for AWS certification practice questions.
Rules:
- A distractor is one option, written like one correct option: the same kind of thing (a service \
for a service, an action for an action) and about as long. Never join several options into one.
- Change the key choice (the service, feature, setting or method), not just the wording: it must \
be wrong for this question but plausible to someone who half knows the topic.
- Use AWS services and features that the numbered sources describe.
- Never repeat or reword a correct option, and never repeat each other.
- No absolute words such as always, never, only, 항상, 절대.
- reason: one short sentence in Korean (under 40 characters) saying why it is wrong here, based on one source.
- source: the number of that source."""

DISTRACTOR_REQUEST = """\
Sources:
$sources

Question: $stem
Correct options (do not repeat or reword them):
$correct"""

# The question's other wrong options are not shown: the model copied them more often than it
# avoided them (40 of 75 rejections in `tutor eval --generation`); the checks still refuse them.
# Appended to the request, never a new turn: the request's tokens stay a cached prefix, and the
# model does not see (and copy) its own rejected answer.
ASK = """

Write $count new distractors."""

RETRY = """

Already accepted (do not repeat): $accepted
Rejected so far, with the reason:
$rejected
Write $count more distractors that avoid these problems and differ from every option above."""

# A worked example as a fixed first turn: the 1.5B model joined the correct options into one
# "distractor", reworded the answer and wrote reasons in English until it saw one done right.
# Rendered from the same templates as a real request, so it shows exactly that form; fixed
# text, so its tokens are part of the cached prefix and cost nothing after the first call.
DISTRACTOR_EXAMPLE_CORRECT = ("Add a DynamoDB Accelerator (DAX) cluster in front of the table",)
DISTRACTOR_EXAMPLE = render(DISTRACTOR_REQUEST, sources="""\
[1] dynamodb-capacity › 용량 모드
온디맨드 모드는 요청 수만큼 과금되어 예측할 수 없는 트래픽에 맞고, 프로비저닝 모드는 RCU/WCU를 미리 정하고 \
Auto Scaling으로 조정합니다. 어느 모드든 읽기 지연은 한 자릿수 밀리초입니다.

[2] elasticache-caching › 개요
Amazon ElastiCache는 Redis/Memcached 호환 인메모리 캐시입니다. 애플리케이션이 캐시 조회와 갱신 코드를 \
직접 작성해야 합니다.""", stem="A DynamoDB table serves a product catalog. Reads spike without warning and read latency \
must drop to microseconds with no application code changes. What should the company do?",
    correct=listed(DISTRACTOR_EXAMPLE_CORRECT)) + render(ASK, count=3)

DISTRACTOR_EXAMPLE_ANSWER = """\
{"distractors": [\
{"text": "Switch the table to on-demand capacity mode", \
"reason": "온디맨드 모드는 처리량을 맞출 뿐 읽기 지연은 밀리초 수준 그대로입니다", "source": 1}, \
{"text": "Add an Amazon ElastiCache for Redis cluster in front of the table", \
"reason": "ElastiCache는 캐시 조회 코드를 애플리케이션에 직접 넣어야 합니다", "source": 2}, \
{"text": "Enable DynamoDB Auto Scaling on the table's read capacity", \
"reason": "Auto Scaling은 용량만 늘리며 지연 시간을 마이크로초로 줄이지 못합니다", "source": 1}]}"""

QUESTION_SYSTEM = """\
You write one multiple-choice AWS certification practice question from a study note section.
Rules:
- The question must be answerable from section [1] alone. Stem in English, exam style: a short \
scenario and a question; end it with "(Select 2)" when two options are correct.
- Correct options state what section [1] says, in its terms. Do not put the answer in the stem.
- Wrong options are plausible AWS services or actions of the same kind, wrong for this scenario, \
taken from the other sources where possible. No absolute words such as always, never, only.
- explanation: one short line in Korean, why the option is right or wrong.
- source: the number of the source the explanation rests on; correct options cite 1."""

QUESTION_REQUEST = """\
[1] $note › $heading
$section

Other sources:
$sources

Write one question with $correct_count correct option(s) and $count wrong options."""

QUESTION_RETRY = """

A question written from this was rejected: $problem
Write a new question from section [1] that fixes this."""
