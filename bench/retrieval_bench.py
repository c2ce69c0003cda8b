"""Retrieval quality per ranker on the starter vault, including questions nothing was tuned on.

    .venv/bin/python bench/retrieval_bench.py [--home DIR]     # markdown table, no LLM

Sets: the vault's 32 practice stems (with and without options; `tutor eval`'s gold), the 20
chat-bench questions, and `retrieval_questions.jsonl`: 64 questions (one Korean, one English
per note) in the words a learner would use rather than the note's, and `loanword_questions.jsonl`:
32 Korean questions that spell English names the Korean way ("아테나 요금", "글루 잡 북마크"). The fusion constants are
picked on the first three sets; the last is there to check them (other settings score higher
on it and were not taken). Without --home a temporary TUTOR_HOME is indexed first.

A second table asks for the section, not just the note: `section_questions.jsonl`, 36 questions
(18 Korean, 18 English) about one detail each, with the sections that state it. The right note
is not enough when the model reads only the two or three sections that fit its budget: "How does
Athena charge for queries?" found the Athena note, but not its billing section, and the answer
invented the rest. "in context" counts the questions whose answering section is among the
sources the chat would give the model (the default budget, counted by the tokenizer estimate).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from chat_bench import BENCH, LOANWORDS, REPO, SECTIONS, held_out, read_jsonl, use_home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a TUTOR_HOME that already indexed --notes")
    parser.add_argument("--notes", type=Path, default=REPO / "notes")
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()
    notes = args.notes.resolve()
    use_home(args.home, notes)

    from index.embedder import get_embedder
    from tutor.chat import language_of
    from tutor.evaluate import QueryMemo, evaluate_queries, own_section, query_text
    from tutor.retrieve import Retriever

    memo = QueryMemo(get_embedder())
    retriever = Retriever(notes, embedder=memo)
    records = retriever.store.questions()
    pairs = held_out()
    sets = {
        "practice stems": [(query_text(r.question), r.note, own_section(r)) for r in records],
        "stems + options": [(query_text(r.question, True), r.note, own_section(r)) for r in records],
        "chat bench": [(q, note, ()) for q, note in BENCH],
        "held-out, Korean": [(q, note, ()) for q, note in pairs if language_of(q) == "ko"],
        "held-out, English": [(q, note, ()) for q, note in pairs if language_of(q) == "en"],
        "held-out, all": [(q, note, ()) for q, note in pairs],
        "Korean spellings of names": [(q, note, ()) for q, note in held_out(LOANWORDS)],
    }
    memo.prime(text for queries in sets.values() for text, _, _ in queries)
    print(f"| set | n | ranker | recall@1 | recall@{args.k} | MRR |\n|---|---|---|---|---|---|")
    for name, queries in sets.items():
        for mode, m in evaluate_queries(retriever, queries, k=args.k).items():
            print(f"| {name} | {m['n']} | {mode} | {m['recall@1']:.3f} | {m[f'recall@{args.k}']:.3f} "
                  f"| {m['mrr']:.3f} |")
    sections(retriever, args.k)


def sections(retriever, k: int) -> None:
    """Section-level recall: the rank of the first hit that is one of the answering sections."""
    from tutor.chat import ChatEngine

    rows = read_jsonl(SECTIONS)
    chat = ChatEngine(retriever, model=None, vault_name="notes", k=k)

    def answers(row, note: str, headings) -> bool:
        return note == row["note"] and bool(headings) and headings[-1] in row["sections"]

    print(f"\n| sections ({len(rows)} questions) | ranker | recall@1 | recall@3 | recall@{k} | MRR "
          f"| in context |\n|---|---|---|---|---|---|---|")
    for mode in ("dense", "lexical", "hybrid"):
        ranks, fitted = [], 0
        for row in rows:
            hits = retriever.search(row["question"], k=k, mode=mode)
            found = [i for i, h in enumerate(hits, 1) if answers(row, h.note, h.headings)]
            ranks.append(found[0] if found else None)
            fitted += any(answers(row, s.note, tuple(s.heading.split(" > "))) for s in chat.fit_sources(hits))
        n = len(rows)
        at = lambda c: sum(r is not None and r <= c for r in ranks) / n  # noqa: E731
        mrr = sum(1 / r for r in ranks if r) / n
        print(f"| | {mode} | {at(1):.3f} | {at(3):.3f} | {at(k):.3f} | {mrr:.3f} | {fitted}/{n} |")


if __name__ == "__main__":
    main()
