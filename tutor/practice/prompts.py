"""Prompt templates for generating practice options, rendered strictly.

The system prompts never change, so llama.cpp keeps their tokens cached between calls; a retry
repeats the request and appends what was rejected, for the same reason. `$name` placeholders:
a missing value is an error, never a silently empty hole in a prompt.
"""
from __future__ import annotations

from string import Template


class PromptError(Exception):
    """A template was rendered without one of its values: a bug in the caller."""


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
- Each distractor is the same kind of thing as the correct options: a service name when they name \
services, an action sentence when they describe actions. Match their length and style.
- Each distractor is wrong for this question but plausible to someone who half knows the topic.
- Use AWS services and features that the numbered sources describe.
- Never repeat or reword a correct option or an existing option, and never repeat each other.
- No absolute words such as always, never, only, 항상, 절대.
- reason: one short line in Korean saying why the distractor is wrong, based on one source.
- source: the number of that source."""

DISTRACTOR_REQUEST = """\
Sources:
$sources

Question: $stem
Correct options (do not use, do not reword): $correct"""

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
