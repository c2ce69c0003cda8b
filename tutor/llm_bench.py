"""Measure the embedded model: load time, time to first token with and without prefix
reuse, and generation speed. Prints one JSON object.

    python -m tutor.llm_bench [--spec llamacpp:/x.gguf] [--threads N] [--rules 9]

Numbers are only meaningful on an otherwise idle machine (see ``load_avg`` in the output):
llama.cpp's threads spin-wait on each other, so other busy processes slow it many times
over. ``prompt_tokens`` counts what was actually evaluated and does not depend on load.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time

SYSTEM = ("당신은 AWS 자격증 공부를 돕는 튜터입니다. 사용자의 마크다운 노트에 근거해서만 답하고, "
          "노트에 없는 내용은 모른다고 말하세요. 답변은 한국어로 하되 AWS 서비스 이름은 영어로 쓰세요. "
          "You are a tutor for AWS certification exams. Cite the note titles you used. ")
RULE = ("규칙 {}: 답변은 간결하게, 핵심 개념(예: Amazon S3, Amazon EMR, AWS Lambda, Amazon Kinesis, "
        "Amazon DynamoDB)을 먼저 설명하고 예시를 드세요.")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="default")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rules", type=int, default=9, help="system prompt length (9 = ~520 tokens)")
    ap.add_argument("--gen-tokens", type=int, default=128)
    args = ap.parse_args(argv)

    from langchain_core.messages import HumanMessage, SystemMessage

    from tutor.llm import get_chat_model

    t = time.perf_counter()
    model = get_chat_model(args.spec, temperature=0.0, seed=1, max_tokens=4,
                           n_threads=args.threads)
    out: dict = {"load_s": round(time.perf_counter() - t, 2)}
    llama = model.llama
    evaluated: list[int] = []
    real_eval = llama.eval
    llama.eval = lambda toks: evaluated.append(len(toks)) or real_eval(toks)

    system_text = SYSTEM + " ".join(RULE.format(i) for i in range(1, args.rules + 1))
    system = SystemMessage(system_text)
    other = SystemMessage("You write multiple-choice AWS exam questions. " * 15)
    out["system_tokens"] = model.get_num_tokens(system_text)
    out["threads"] = llama.n_threads if hasattr(llama, "n_threads") else args.threads

    def ttft(messages, **kw):
        evaluated.clear()
        t0 = time.perf_counter()
        first = None
        for chunk in model.stream(messages, **kw):
            if chunk.content and first is None:
                first = time.perf_counter()
        return {"ttft_s": round((first or time.perf_counter()) - t0, 2),
                "prompt_tokens": evaluated[0] if evaluated else 0}

    out["cold"] = ttft([system, HumanMessage("Amazon S3는 무엇인가요?")])
    out["next_turn"] = ttft([system, HumanMessage("Amazon EMR은 무엇인가요?")])
    ttft([other, HumanMessage("Kinesis")])
    out["after_other_prompt_no_pin"] = ttft([system, HumanMessage("AWS Lambda는 무엇인가요?")])
    out["prefill_s"] = round(model.prefill(system_text), 2)
    ttft([other, HumanMessage("SQS")])
    out["after_other_prompt_pinned"] = ttft([system, HumanMessage("Amazon SQS는 무엇인가요?")])

    evaluated.clear()
    t0 = time.perf_counter()
    first = None
    for chunk in model.stream([system, HumanMessage("Amazon S3의 스토리지 클래스들을 자세히 설명하세요.")],
                              max_tokens=args.gen_tokens):
        if chunk.content and first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    generated = max(len(evaluated) - 1, 0)  # one eval per generated token after the prompt
    out["generation"] = {"tokens": generated,
                         "tok_per_s": round(generated / (end - first), 1) if first and end > first else None}
    out["max_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    out["load_avg"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, ensure_ascii=False))
    return out


if __name__ == "__main__":
    main()
