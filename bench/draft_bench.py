"""Speculative decoding with context drafts, on and off: the same work, timed both ways.

    .venv/bin/python bench/draft_bench.py [--questions 8] [--variants 8] [--draft-tokens 8]

Runs the first chat-bench questions (greedy, so both runs answer alike) and the first
distractor variants of `tutor eval --generation` (seeded) with drafts off, then on, in one
process after the other, and prints the medians and their ratio. Needs an indexed
TUTOR_HOME for the starter vault (run `tutor index --notes notes` once).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def chat(questions: int) -> tuple[float, float]:
    """Median generated tok/s and median first-token seconds over the first `questions`."""
    from chat_bench import BENCH

    from tutor.chat import ChatEngine, make_model
    from tutor.llm_llamacpp import unload_models
    from tutor.retrieve import Retriever

    unload_models()
    engine = ChatEngine(Retriever(REPO / "notes"), make_model(None, temperature=0.0), vault_name="notes")
    engine.warm(follow_ups=False)
    rates, firsts = [], []
    for question, _ in BENCH[:questions]:
        start, first = time.perf_counter(), None
        for kind, value in engine.ask(question):
            if kind == "token" and first is None:
                first = time.perf_counter() - start
            elif kind == "done":
                answer, end = value, time.perf_counter() - start
        rates.append(engine.count_tokens(answer.text) / (end - first))
        firsts.append(first)
    return statistics.median(rates), statistics.median(firsts)


def variants(count: int) -> dict:
    from tutor.generate_eval import evaluate_generation
    from tutor.llm_llamacpp import unload_models

    unload_models()
    return evaluate_generation(REPO / "notes", None, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--draft-tokens", type=int, default=8)
    args = parser.parse_args()
    rows = {}
    for draft in (0, args.draft_tokens):
        os.environ["TUTOR_LLM_DRAFT_TOKENS"] = str(draft)  # what every model made from now on uses
        rate, first = chat(args.questions)
        gen = variants(args.variants)
        rows[draft] = (rate, first, gen["seconds_per_variant"], gen["valid_after_retries"])
        print(f"drafts {draft}: chat {rate:.1f} tok/s, first token {first:.2f} s; variants "
              f"{gen['seconds_per_variant']:.1f} s each, {gen['valid_after_retries']:.3f} valid",
              file=sys.stderr, flush=True)
    off, on = rows[0], rows[args.draft_tokens]
    print(f"| drafts | chat tok/s (median of {args.questions}) | first token | seconds per variant "
          f"({args.variants}) | valid after retries |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in (("off", off), (f"{args.draft_tokens} tokens", on)):
        print(f"| {name} | {row[0]:.1f} | {row[1]:.2f} s | {row[2]:.1f} | {row[3]:.3f} |")
    print(f"| ratio on/off | {on[0] / off[0]:.2f}x | {on[1] / off[1]:.2f}x | {on[2] / off[2]:.2f}x | |")


if __name__ == "__main__":
    main()
