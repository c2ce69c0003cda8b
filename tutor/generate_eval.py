"""How good are generated distractors? Variants for the vault's own questions, measured.

Teachers rate about half of LLM-made distractors usable; this reports how many variants come
out complete and checked, how often the checks had to step in, and what it costs per variant.
The vault's own human-written distractors are put through the same checks as a baseline: a
check that rejects many of them is miscalibrated, not strict.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Callable

Progress = Callable[[int, int], None]  # (done, total)


def evaluate_generation(
    vault: Path, llm_spec: str | None = None, limit: int | None = None, progress: Progress | None = None
) -> dict:
    """Generate one variant (3 new distractors) per vault question, the first `limit` by id."""
    from index.embedder import get_embedder
    from index.home import index_dir
    from index.store import Store
    from index.sync import sync
    from tutor.practice.checks import canonical, names, normalized
    from tutor.practice.generate import DEFAULT_N, Generator, chat_model

    vault = Path(vault)
    embedder = get_embedder()
    sync(vault, Store(index_dir(vault)), embedder)  # nothing to do, and no model load, when current
    started = time.perf_counter()
    model = chat_model(llm_spec)
    load_seconds = time.perf_counter() - started
    generator = Generator(vault, model, embedder=embedder, seed=0)
    records = generator.index.questions()
    chosen = records[:limit] if limit else records
    results = []
    for record in chosen:
        results.append(generator.distractors(record, DEFAULT_N))
        if progress:
            progress(len(results), len(chosen))

    new, equal_to_correct = [], 0
    for record, result in zip(chosen, results):
        q = record.question
        correct = [q.options[letter] for letter in q.answer]
        for letter, text in result.question.options.items():
            if letter not in result.question.answer:
                new.append(text)
                equal_to_correct += any(
                    normalized(text) == normalized(c) or canonical(text) == canonical(c) for c in correct
                )
    kinds = Counter(r.kind for result in results for r in result.rejected)
    named = [any(generator.terms.is_service(n) for n in names(text)) for text in new]
    count = len(results) or 1
    return {
        "questions": len(results),
        "questions_in_vault": len(records),
        "requested_variants": len(results),
        "distractors_requested": DEFAULT_N * len(results),
        "distractors_generated": len(new),
        "valid_first_try": round(sum(r.first_try for r in results) / count, 3),
        "valid_after_retries": round(sum(r.missing == 0 for r in results) / count, 3),
        "equal_to_correct": equal_to_correct,
        "duplicates": kinds["duplicate"],
        "giveaway_flags": kinds["giveaway"],
        "rejected_by_check": dict(sorted(kinds.items())),
        "known_service_share": round(sum(named) / len(named), 3) if named else None,
        "seconds_per_variant": round(sum(r.seconds for r in results) / count, 2),
        "calls_per_variant": round(sum(r.calls for r in results) / count, 2),
        "model_load_seconds": round(load_seconds, 2),
        "incomplete": [
            {"question": record.id, "missing": result.missing, "rejected": [x.reason for x in result.rejected]}
            for record, result in zip(chosen, results) if result.missing
        ],
        "human_options_flagged": human_baseline(generator.checker, records),
    }


def human_baseline(checker, records) -> dict:
    """The vault's own distractors through the same checks (their own question as the target)."""
    from tutor.practice.checks import Candidate, Target

    kinds: Counter = Counter()
    flagged = []
    for record in records:
        q = record.question
        correct = tuple(q.options[letter] for letter in q.answer)
        target = Target(q.stem, correct, ())
        for letter, text in q.options.items():
            if letter in q.answer:
                continue
            problem = checker.problem(Candidate(text, "", 1), target, ())
            kinds["checked"] += 1
            if problem:
                kinds[problem.kind] += 1
                flagged.append({"question": record.id, "option": text, "reason": problem.reason})
    return {"checked": kinds.pop("checked", 0), "by_check": dict(sorted(kinds.items())), "flagged": flagged}
