"""`tutor eval`: retrieval and answering quality, measured on practice questions.

Each part of the report is one key computed by one step; the table printer renders any part,
so another measurement is one option and one branch here.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tutor.cli import notes_option

EXCLUSION = "each question's own 📝 관련 문제 section is excluded from the search"


@click.command("eval")
@notes_option
@click.option("--k", default=5, show_default=True,
              help="Sections retrieved per question: recall@k, and the notes the model reads.")
@click.option("--llm", "llm_spec", default=None,
              help="Chat model: 'default', 'ollama:MODEL' or 'llamacpp:/path.gguf' (default $TUTOR_LLM).")
@click.option("--no-llm", is_flag=True, help="Measure retrieval only.")
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Cut the sections the model reads to this many tokens, as chat does "
                   "(chat's default: $TUTOR_CONTEXT_TOKENS or 380). Default: the k sections whole.")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSONL exam (id, question, options, answer) to answer with and without your notes.")
@click.option("--generation", is_flag=True,
              help="Measure generated distractors instead: one checked variant per vault question.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="With --generation: only the first N questions (by id).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(notes: Path, k: int, llm_spec: str | None, no_llm: bool, budget: int | None,
                 questions: Path | None, generation: bool, limit: int | None, as_json: bool):
    """Measure how well the tutor finds the right note and answers exam questions.

    The vault's own practice questions are the gold set: each question's note is the right
    answer for retrieval, and its key scores the multiple-choice answers. The question's own
    section is never retrieved, so it cannot give itself away.
    """
    from index.embedder import EmbedderError, get_embedder
    from tutor.evaluate import QueryMemo, evaluate_retrieval, query_text
    from tutor.evaluate_mc import ExamFileError, evaluate_mc, load_exam, vault_items
    from tutor.llm import LLMError, get_chat_model
    from tutor.retrieve import RetrievalError, Retriever

    if questions and no_llm:
        raise click.UsageError("--questions is answered by the model: drop --no-llm")
    if generation:
        if no_llm or questions:
            raise click.UsageError("--generation measures the model's distractors: drop --no-llm and --questions")
        return _generation(notes, llm_spec, limit, as_json)
    if limit:
        raise click.UsageError("--limit applies to --generation only")
    if k < 1:
        raise click.UsageError("--k must be at least 1")
    report: dict = {"retrieval": None, "retrieval_with_options": None, "multiple_choice": None, "external": None}
    try:
        exam = load_exam(questions) if questions else None
        memo = QueryMemo(get_embedder())
        retriever = Retriever(notes, embedder=memo)
        records = retriever.store.questions()
        memo.prime(query_text(r.question, opts) for r in records for opts in (False, True))
        report["retrieval"] = evaluate_retrieval(retriever, records, k, progress=_bar("Retrieval, stem", as_json))
        report["retrieval_with_options"] = evaluate_retrieval(
            retriever, records, k, with_options=True, progress=_bar("Retrieval, stem + options", as_json)
        )
        if not no_llm and (exam or records):
            model = get_chat_model(llm_spec, temperature=0.0, seed=1, max_tokens=64)
            if exam:
                report["external"] = {
                    "with_notes": evaluate_mc(model, exam, retriever, k, _bar("Exam with notes", as_json), budget),
                    "closed_book": evaluate_mc(model, exam, None, k, _bar("Exam closed book", as_json)),
                }
            else:
                items = vault_items(records)
                report["multiple_choice"] = evaluate_mc(model, items, retriever, k, _bar("Answering", as_json), budget)
    except (RetrievalError, EmbedderError, LLMError, ExamFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        _print_report(report, notes, len(records), llm_spec, questions)


def _print_report(report: dict, notes: Path, n: int, llm_spec: str | None, questions: Path | None) -> None:
    if not n:
        click.echo(f"No practice questions in {notes}: retrieval needs a '## 📝 관련 문제' section "
                   "with Question, Options and 정답 lines in some notes.")
    model = llm_spec or "the default model"
    titles = {
        "retrieval": f"Retrieval by question stem: {n} practice questions, the right note is the one each is "
                     f"written in; {EXCLUSION}. MRR counts the top k only.",
        "retrieval_with_options": "Retrieval by stem + options, same questions:",
        "multiple_choice": f"Multiple choice with {model}, notes from hybrid search ({EXCLUSION}; the key is never "
                           "shown). Seconds depend on what else the machine is doing:",
        "external": f"{questions} with {model}, with your notes and closed book. Seconds depend on what else the "
                    "machine is doing:",
    }
    for name, part in report.items():
        if part:
            click.echo(titles.get(name, name))
            _print_table(part if all(isinstance(v, dict) for v in part.values()) else {"": part})
            click.echo()


def _generation(notes: Path, llm_spec: str | None, limit: int | None, as_json: bool) -> None:
    from index.embedder import EmbedderError
    from tutor.generate_eval import evaluate_generation
    from tutor.llm import LLMError
    from tutor.practice.generate import GenerationError
    from tutor.retrieve import RetrievalError

    try:
        report = evaluate_generation(notes, llm_spec, limit, _bar("Variants", as_json))
    except (GenerationError, LLMError, RetrievalError, EmbedderError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    human = report.pop("human_options_flagged")
    incomplete = report.pop("incomplete")
    rejected = report.pop("rejected_by_check")
    click.echo(f"Generated distractors with {llm_spec or 'the default model'}: one variant of "
               f"{report['questions']} of {report['questions_in_vault']} vault questions, 3 new wrong options each.")
    for name, value in report.items():
        click.echo(f"  {name:<24}{_cell(value):>10}")
    click.echo(f"  {'rejected_by_check':<24}{', '.join(f'{k} {v}' for k, v in rejected.items()) or '-':>10}")
    for item in incomplete:
        click.echo(f"  incomplete {item['question']}: {item['missing']} missing - " + "; ".join(item["rejected"][-2:]))
    flagged = ", ".join(f"{k} {v}" for k, v in human["by_check"].items()) or "none"
    click.echo(f"Baseline: the checks flag {sum(human['by_check'].values())} of the vault's own "
               f"{human['checked']} human-written distractors ({flagged}).")


def _print_table(rows: dict[str, dict]) -> None:
    columns = list(next(iter(rows.values())))
    width = max(len(name) for name in rows) + 2
    click.echo(" " * width + "".join(f"{c:>22}" if c == "seconds_per_question" else f"{c:>10}" for c in columns))
    for name, metrics in rows.items():
        cells = "".join(_cell(metrics[c]).rjust(22 if c == "seconds_per_question" else 10) for c in columns)
        click.echo(f"{name:<{width}}{cells}")


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _bar(label: str, quiet: bool):
    """A progress callback drawing a bar on stderr (only on a terminal, never with --json)."""
    if quiet:
        return None
    from tqdm import tqdm

    state: dict = {}

    def progress(done: int, total: int) -> None:
        bar = state.get("bar") or state.setdefault(
            "bar", tqdm(total=total, desc=label, file=sys.stderr, disable=None, mininterval=0.5, leave=False)
        )
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return progress
