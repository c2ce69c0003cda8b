"""Grounded-chat speed on the starter vault, and the relevance-threshold calibration.

    .venv/bin/python bench/chat_bench.py [--home DIR] [--llm SPEC]   # 20 questions, markdown table
    .venv/bin/python bench/chat_bench.py --home DIR --held-out        # 64 questions nothing was tuned on
    .venv/bin/python bench/chat_bench.py --home DIR --loanwords       # 32 spelling names in Hangul
    .venv/bin/python bench/chat_bench.py --home DIR --sections        # 36 details: cite the section?
    .venv/bin/python bench/chat_bench.py --home DIR --out-of-domain [--no-gate]  # 46 the notes can't answer
    .venv/bin/python bench/chat_bench.py --home DIR --calibrate       # best-hit cosine distributions
    .venv/bin/python bench/chat_bench.py --home DIR --typed 1         # sources read while typing
    .venv/bin/python bench/chat_bench.py --home DIR --follow-ups [--typed 0]  # 10 second turns
    .venv/bin/python bench/chat_bench.py --home DIR --more-follow-ups  # 20 others, held out
    .venv/bin/python bench/chat_bench.py --home DIR --keys-per-s 3    # typed a letter at a time
    .venv/bin/python bench/chat_bench.py --home DIR --blocks          # every source read as a block first
    .venv/bin/python bench/chat_bench.py --home DIR --blocks --reread 24  # more of each block read in place

--blocks sets TUTOR_BLOCKS=1: the blocks kept under DIR/blocks (`tutor warm`, spare time,
--blocks) are copied into the prompts that hold them, instead of reading every source in context;
it also times the check of what was kept against the vault, which spare time runs once per index
generation.

On --out-of-domain every grounded answer is a wrong one: it cites notes that cannot answer;
--no-gate turns the relevance threshold off to see what the model alone does with them.
Without --home a temporary TUTOR_HOME is indexed with `tutor index` first (and the bundled
model assembled into it unless --llm names a GGUF elsewhere).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = Path(__file__).with_name("retrieval_questions.jsonl")
# Korean questions that spell English names the Korean way (아테나, 글루 잡 북마크), one a note
LOANWORDS = Path(__file__).with_name("loanword_questions.jsonl")
# 36 questions about one detail each, with the sections that state it (retrieval_bench.py too)
SECTIONS = Path(__file__).with_name("section_questions.jsonl")
# 20 more follow-ups on the 20 notes FOLLOW_UPS leaves out, written after the prompts were tuned
MORE_FOLLOW_UPS = Path(__file__).with_name("follow_up_questions.jsonl")
MIN_PIECES = 8  # streamed pieces an answer needs before its speed counts
sys.path.insert(0, str(REPO))

BENCH = [  # (question, the note that answers it)
    ("Kinesis 샤드 수는 어떻게 계산하나요?", "kinesis-data-streams-shards.md"),
    ("S3 Glacier Deep Archive에서 데이터를 복원하는 데 얼마나 걸리나요?", "s3-glacier-retrieval-options.md"),
    ("Athena에서 파티셔닝이 왜 중요한가요?", "athena-serverless-query.md"),
    ("Glue ETL 작업의 북마크 기능은 무엇인가요?", "glue-etl-data-catalog.md"),
    ("EMR 클러스터에서 스팟 인스턴스를 어디에 쓰나요?", "emr-cluster-spark-batch.md"),
    ("Redshift 분산 키는 어떻게 고르나요?", "redshift-data-warehouse.md"),
    ("S3 수명 주기 규칙으로 비용을 줄이는 방법은?", "s3-storage-classes-lifecycle.md"),
    ("Step Functions로 ML 파이프라인을 어떻게 구성하나요?", "step-functions-orchestration.md"),
    ("DMS로 CDC 복제를 하려면 무엇이 필요한가요?", "dms-data-migration.md"),
    ("QuickSight SPICE는 무엇인가요?", "quicksight-bi-dashboards.md"),
    ("What happens when a Kinesis partition key is hot?", "kinesis-data-streams-shards.md"),
    ("What are the Glacier Flexible Retrieval options and their times?", "s3-glacier-retrieval-options.md"),
    ("How does Athena charge for queries?", "athena-serverless-query.md"),
    ("What does a Glue crawler do?", "glue-etl-data-catalog.md"),
    ("Why store EMR data in S3 instead of HDFS?", "emr-cluster-spark-batch.md"),
    ("What is Redshift Spectrum?", "redshift-data-warehouse.md"),
    ("Which S3 storage class suits infrequently accessed data?", "s3-storage-classes-lifecycle.md"),
    ("What is Amazon Data Firehose used for?", "data-firehose-delivery.md"),
    ("How does SageMaker Feature Store work?", "sagemaker-data-preparation.md"),
    ("What is a VPC gateway endpoint?", "vpc-endpoints-private-access.md"),
]

# What a right answer to each BENCH question must say, as the note says it (every pattern,
# case-insensitive): citing the right note is not being right ("복원에 약 180일" cited the
# Deep Archive section, whose 180 days is the minimum storage time). Checked against the sources
# too (in either language), which tells a retrieval miss from a misreading model.
KEY_FACTS = {
    "Kinesis 샤드 수는 어떻게 계산하나요?": [r"1 ?MB", r"1,?000"],
    "S3 Glacier Deep Archive에서 데이터를 복원하는 데 얼마나 걸리나요?": [r"12 ?시간|48 ?시간"],
    "Athena에서 파티셔닝이 왜 중요한가요?": [r"스캔|scan"],
    "Glue ETL 작업의 북마크 기능은 무엇인가요?": [r"증분|이미 처리|이전에 처리|처리한 데이터|재처리|중복"],
    "EMR 클러스터에서 스팟 인스턴스를 어디에 쓰나요?": [r"task"],
    "Redshift 분산 키는 어떻게 고르나요?": [r"join|조인"],
    "S3 수명 주기 규칙으로 비용을 줄이는 방법은?": [r"IA|Glacier", r"전환|이동|transition"],
    "Step Functions로 ML 파이프라인을 어떻게 구성하나요?": [r"SageMaker"],
    "DMS로 CDC 복제를 하려면 무엇이 필요한가요?": [r"트랜잭션 로그|transaction log|binlog|바이너리 로그|supplemental|ARCHIVELOG"],
    "QuickSight SPICE는 무엇인가요?": [r"인메모리|in-memory"],
    "What happens when a Kinesis partition key is hot?": [
        r"throttl|same shard|one shard|single shard|hot shard|핫 샤드|스로틀|한 샤드"],
    "What are the Glacier Flexible Retrieval options and their times?": [
        r"1.5 ?(min|분)", r"3.5 ?(hour|시간)", r"5.12 ?(hour|시간)"],
    "How does Athena charge for queries?": [r"scan|스캔", r"TB|terabyte|\$5|5 USD"],
    "What does a Glue crawler do?": [r"schema|스키마", r"catalog|카탈로그"],
    "Why store EMR data in S3 instead of HDFS?": [
        r"transient|terminat|shut ?down|persist|decoupl|independent|separat|outlive|surviv|deleted"],
    "What is Redshift Spectrum?": [r"S3", r"without loading|external|in place|directly"],
    "Which S3 storage class suits infrequently accessed data?": [r"Standard-IA|Infrequent Access|One Zone-IA"],
    "What is Amazon Data Firehose used for?": [r"deliver|load|stream|send|writ|전송|전달|적재", r"S3|Redshift|OpenSearch"],
    "How does SageMaker Feature Store work?": [r"online", r"offline"],
    "What is a VPC gateway endpoint?": [r"S3", r"DynamoDB"],
}


def states_facts(question: str, text: str) -> bool | None:
    """Whether the answer says what KEY_FACTS wants for this question (None: no key facts)."""
    wanted = KEY_FACTS.get(question)
    return None if wanted is None else all(re.search(w, text, re.I) for w in wanted)


IN_DOMAIN = [q for q, _ in BENCH] + [
    "Kinesis Data Streams 샤드 하나의 쓰기 처리량은 얼마인가요?",
    "S3 Glacier Flexible Retrieval에서 Expedited 검색은 몇 분 걸리나요?",
    "Athena 쿼리 비용을 줄이려면 어떻게 해야 하나요?", "Glue Crawler는 무슨 일을 하나요?",
    "EMR에서 Spark 배치 비용을 줄이는 방법은?", "Redshift Spectrum은 언제 사용하나요?",
    "DynamoDB 파티션 키는 어떻게 설계해야 하나요?", "Lambda 함수의 최대 실행 시간은?",
    "SQS와 SNS의 차이는 무엇인가요?", "SageMaker Model Monitor는 무엇을 감시하나요?",
    "Lake Formation으로 컬럼 단위 권한을 줄 수 있나요?", "Firehose의 버퍼 크기와 버퍼 간격은?",
    "KMS 고객 관리형 키를 쓰는 이유는?", "VPC 게이트웨이 엔드포인트는 어떤 서비스를 지원하나요?",
    "MSK와 Kinesis Data Streams 중 무엇을 골라야 하나요?",
    "How much data can one Kinesis shard ingest per second?",
    "How long does a Glacier Deep Archive standard retrieval take?",
    "Which file formats make Athena queries cheaper?", "What does the AWS Glue Data Catalog store?",
    "How do Spot Instances reduce EMR costs?", "What is the Redshift COPY command used for?",
    "What is DynamoDB TTL?", "When is Lambda a bad fit for data processing?",
    "How does an SQS dead-letter queue work?",
    "What deployment strategies does SageMaker support for new models?",
    "How does Step Functions retry a failed Glue job?", "What is the difference between EBS and EFS?",
    "Which EC2 instance family is best for ML training?",
    "How do I monitor a pipeline with CloudWatch alarms?", "What is Aurora read replica failover?",
]

FOLLOW_UPS = [  # (first question, follow-up that needs it, the note that answers the follow-up)
    ("Kinesis 샤드 하나의 쓰기 처리량은?", "그럼 읽기는요?", "kinesis-data-streams-shards.md"),
    ("Athena는 요금을 어떻게 매기나요?", "그럼 비용을 줄이려면?", "athena-serverless-query.md"),
    ("Glue 크롤러는 무슨 일을 하나요?", "그럼 잡 북마크는?", "glue-etl-data-catalog.md"),
    ("S3 Glacier Flexible Retrieval의 검색 옵션은?", "Deep Archive는요?", "s3-glacier-retrieval-options.md"),
    ("EMR에서 스팟 인스턴스를 어디에 쓰나요?", "데이터는 HDFS 대신 어디에 두나요?", "emr-cluster-spark-batch.md"),
    ("Redshift 분산 키는 어떻게 고르나요?", "정렬 키는요?", "redshift-data-warehouse.md"),
    ("What is a Kinesis shard?", "What happens when its partition key is hot?", "kinesis-data-streams-shards.md"),
    ("What does Amazon Data Firehose do?", "How does it buffer records?", "data-firehose-delivery.md"),
    ("What is Amazon SQS used for?", "And how is SNS different?", "sqs-sns-decoupling.md"),
    ("What is an EBS volume?", "When should I use EFS instead?", "ebs-efs-storage-choice.md"),
]

OUT_OF_DOMAIN = [  # cooking, sports, trivia, other clouds' and vendors' products
    "김치찌개 맛있게 끓이는 법 알려줘", "손흥민은 어느 팀에서 뛰나요?", "파스타 면은 몇 분 삶아야 하나요?",
    "조선 왕조는 언제 건국되었나요?", "Azure Cosmos DB의 일관성 수준은 무엇인가요?",
    "Google BigQuery 슬롯 가격은 어떻게 되나요?", "오늘 서울 날씨 어때?", "피아노 독학하는 방법",
    "Azure Functions의 콜드 스타트를 줄이는 법은?", "축구 오프사이드 규칙 설명해줘", "불고기 양념 비율 알려줘",
    "야구에서 보크란 무엇인가요?", "Azure Blob Storage 액세스 계층은 무엇이 있나요?",
    "GCP Cloud Storage 클래스 종류는?", "마라톤 완주를 위한 훈련 계획", "고양이가 토하는 이유는?",
    "엑셀에서 VLOOKUP 사용법",
    # other clouds' products spelt in Hangul: no Latin name for the name check to see
    "애저 펑션 콜드 스타트를 줄이는 법은?", "구글 빅쿼리 슬롯 가격은 어떻게 되나요?",
    "애저 코스모스 디비 일관성 수준은?", "스노우플레이크 타임 트래블 기능이 뭐야?",
    "데이터브릭스 유니티 카탈로그로 권한을 관리하려면?", "지씨피 클라우드 스토리지 클래스 종류는?",
    "How do I bake sourdough bread?", "Who won the 2018 FIFA World Cup?",
    "What is the offside rule in football?", "How do I configure Azure Synapse dedicated SQL pools?",
    "What is Google Cloud Pub/Sub ordering key?", "How many calories are in a banana?",
    "Explain the rules of cricket.", "What is the capital of Australia?", "How do I tune a guitar?",
    "How do I make a Python list comprehension?", "What is Oracle Cloud Autonomous Database?",
    "Best marathon training plan for beginners", "How do I replace a bicycle tire?",
    "Kubernetes pod eviction policy explained", "What is GCP Dataflow windowing?",
    "What is the best way to cook a steak?", "How does Azure Event Hubs partitioning work?",
    "Who is the best tennis player of all time?", "How do I learn to swim as an adult?",
    "What is Snowflake's time travel feature?", "How do I grow tomatoes on a balcony?",
    "What is the plot of Hamlet?", "How do vaccines work?",
]


def held_out(path: Path = HELD_OUT) -> list[tuple[str, str]]:
    """(question, gold note): by default one Korean and one English question a note, in a learner's
    words rather than the note's; the prompts and the fusion were not tuned on them (tests read them too)."""
    return [(row["question"], row["note"]) for row in read_jsonl(path)]


def follow_ups(path: Path = MORE_FOLLOW_UPS) -> list[tuple[str, str, str]]:
    """(first question, follow-up, gold note), as FOLLOW_UPS."""
    return [(row["first"], row["follow_up"], row["note"]) for row in read_jsonl(path)]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def calibrate(notes: Path) -> None:
    from tutor.chat import MIN_RELEVANCE, language_of, unknown_names
    from tutor.practice.checks import IndexTerms
    from tutor.retrieve import Retriever

    retriever = Retriever(notes)
    terms = IndexTerms(retriever.store)
    print(f"embedder: {retriever.embedder.model_id}\n")
    print("| set | lang | n | min | median | max | below the threshold | names no note mentions "
          "| refused by either |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, questions in (("in-domain", IN_DOMAIN), ("out-of-domain", OUT_OF_DOMAIN)):
        for lang in ("ko", "en"):
            asked = [q for q in questions if language_of(q) == lang]
            best = [max(h.dense for h in retriever.search(q, k=5)) for q in asked]
            low = [b < MIN_RELEVANCE[lang] for b in best]
            unknown = [unknown_names(terms, q) for q in asked]
            for q, names in zip(asked, unknown):
                if names and name == "in-domain":
                    print(f"  in-domain question refused by name: {q!r} {names}", file=sys.stderr)
            either = sum(a or bool(b) for a, b in zip(low, unknown))
            print(f"| {name} | {lang} | {len(best)} | {min(best):.3f} | {statistics.median(best):.3f} "
                  f"| {max(best):.3f} | {sum(low)} below {MIN_RELEVANCE[lang]} | {sum(map(bool, unknown))} "
                  f"| {either}/{len(best)} |")


def bench(notes: Path, llm: str | None, budget: int | None, show: bool,
          questions: list[tuple[str, str | None]], gate: bool = True, typed: int | None = None,
          first: dict[str, str] | None = None, keys_per_s: float | None = None,
          blocks: bool = False, answering: dict[str, list[str]] | None = None) -> None:
    """``first`` maps a follow-up to the question asked (untimed) before it. ``answering`` maps a
    question to the headings that state its answer, to count the answers citing one. ``keys_per_s``
    types each question into the UI's typing reader a character at a time at that rate, Enter
    one keystroke after the last: what reading ahead gives a user who does not pause."""
    from tutor.chat import ChatEngine, make_model
    from tutor.preread import Prereader
    from tutor.prompts import REFUSAL
    from tutor.retrieve import Retriever

    os.environ["TUTOR_BLOCKS"] = "0"  # not the UI's choice: --blocks turns them on below
    t0 = time.perf_counter()
    retriever = Retriever(notes)
    retriever.search("warm up", k=1)  # loads the embedding model
    t1 = time.perf_counter()
    engine = ChatEngine(retriever, make_model(llm), vault_name=notes.name, budget_tokens=budget,
                        min_relevance=None if gate else -1.0)
    engine.warm()
    t2 = time.perf_counter()
    if blocks:  # every source the questions find, read on its own beforehand (untimed)
        os.environ["TUTOR_BLOCKS"] = "1"
        engine.use_blocks()  # warm() found them off
        hits = [h for q, _ in questions for h in retriever.search(q, k=engine.k)]
        count = engine.read_blocks(hits)
        print(f"read {count} source blocks ahead in {time.perf_counter() - t2:.1f} s", file=sys.stderr)
        pruning, dropped = [], []
        for _ in range(5):  # what spare time spends once per index generation, before reading
            engine._pruned = None
            started = time.perf_counter()
            dropped.append(engine.prune_blocks())
            pruning.append(time.perf_counter() - started)
        print(f"pruning what was kept against the vault: {statistics.median(pruning):.2f} s median of 5 "
              f"({dropped[0]} dropped by the first)", file=sys.stderr)
        t2 = time.perf_counter()
    rows, reading, after_enter = [], [], []
    evaluated = count_evaluated(engine.model)
    for question, note in questions:
        history = []
        if first and question in first:
            done = [v for kind, v in engine.ask(first[question]) if kind == "done"][0]
            history = [(first[question], done.text)]
        if typed is not None:  # the user typed all but the last `typed` words, then paused that long
            start = time.perf_counter()
            engine.preread(" ".join(question.split()[:len(question.split()) - typed]), history=history)
            reading.append(time.perf_counter() - start)
        if keys_per_s:
            prereader = Prereader(lambda: engine)
            for end in range(1, len(question) + 1):
                prereader.typed(question[:end], history=history)
                time.sleep(1 / keys_per_s)
        start = time.perf_counter()
        sources_at = first_at = None
        pieces, read_before = 0, sum(evaluated)
        for kind, value in engine.ask(question, history):
            now = time.perf_counter()
            if kind == "sources":
                sources_at = now - start
            elif kind == "token":
                if first_at is None:
                    after_enter.append(sum(evaluated) - read_before)
                first_at = now - start if first_at is None else first_at
                pieces += 1
            elif kind == "done":
                answer, end = value, now - start
        if keys_per_s:
            prereader.close()
        # a refusal (the gate's, for unknown names too, or the model's marker) has no speed to time;
        # an answer streamed in a few pieces has a first token but too little to time generation by
        generated = not answer.text.endswith(tuple(REFUSAL.values()))
        rate = engine.count_tokens(answer.text) / (end - first_at) if generated and pieces >= MIN_PIECES else None
        read = "\n".join(f"{s.heading}\n{s.text}" for s in answer.sources)
        right = states_facts(question, answer.text)
        rows.append((question, note, sources_at, first_at if generated else None, rate, answer,
                     right, states_facts(question, read)))
        wanted = (answering or {}).get(question, ())
        verdict = ("cited section" if among(answer.citations, note, wanted)
                   else "cited" if any(c.note == note for c in answer.citations)
                   else "grounded" if answer.grounded else "not grounded")
        verdict += {True: ", right", False: ", WRONG", None: ""}[right]
        speed = f"{rate:4.1f} tok/s" if rate else "short     " if generated else "refused   "
        print(f"  {sources_at:5.2f}s {first_at:6.2f}s {end:6.2f}s {speed} {verdict:19} {question}",
              file=sys.stderr, flush=True)
        if show:
            print("    " + answer.text.replace("\n", "\n    "), file=sys.stderr, flush=True)

    to_sources = [r[2] for r in rows]
    first = [r[3] for r in rows if r[3] is not None] or [float("nan")]
    rates = [r[4] for r in rows if r[4]] or [float("nan")]
    grounded = sum(r[5].grounded for r in rows)
    cited = sum(any(c.note == r[1] for c in r[5].citations) for r in rows)
    checked = [r[6] for r in rows if r[6] is not None]
    if answering:
        given = sum(among(r[5].sources, r[1], answering[r[0]]) for r in rows)
        cited_section = sum(among(r[5].citations, r[1], answering[r[0]]) for r in rows)
        facts = f", {cited_section} cite an answering section (which the sources held for {given})"
    else:
        facts = (f", {sum(checked)}/{len(checked)} state the key facts (which the sources held for "
                 f"{sum(bool(r[7]) for r in rows)})" if checked else "")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
    print(f"\nbudget {engine.budget_tokens} tokens, embedder load {t1 - t0:.1f} s, "
          f"LLM load + system prompt {t2 - t1:.1f} s; {len(questions)} questions: {grounded} "
          f"grounded, {cited} cite the expected note{facts}\n")
    print("| time to sources p50 / p95 | first token p50 / p95 | generation tok/s (median) | peak RSS |")
    print("| --- | --- | --- | --- |")
    print(f"| {pct(to_sources, .5):.2f} / {pct(to_sources, .95):.2f} s "
          f"| {pct(first, .5):.2f} / {pct(first, .95):.2f} s "
          f"| {statistics.median(rates):.1f} | {peak_gb:.2f} GB |")
    if evaluated and after_enter:
        print(f"\nprompt tokens the model read between asking and its first token: "
              f"{pct(after_enter, .5):.0f} / {pct(after_enter, .95):.0f} p50 / p95")
    if reading:
        print(f"\nread ahead while typing (all but the last {typed} words): "
              f"{pct(reading, .5):.2f} / {pct(reading, .95):.2f} s p50 / p95")


def among(sources, note: str, headings) -> bool:
    """Whether one of ``sources`` is a section of ``note`` under one of ``headings`` (its last)."""
    return any(s.note == note and s.heading.split(" > ")[-1] in headings for s in sources)


def count_evaluated(model) -> list[int]:
    """The sizes of the batches the llama.cpp model evaluates from now on (nothing for Ollama):
    a count of the work done after Enter that a busy machine does not change."""
    sizes: list[int] = []
    llama = getattr(model, "llama", None)
    if llama is not None:
        real_eval = llama.eval
        llama.eval = lambda tokens: sizes.append(len(tokens)) or real_eval(tokens)
    return sizes


def use_home(home: Path | None, notes: Path) -> None:
    """Point TUTOR_HOME at ``home``, or at a new one where ``notes`` is indexed first."""
    os.environ["TUTOR_HOME"] = str(home or tempfile.mkdtemp(prefix="bench-"))
    if home is None:
        subprocess.run([str(REPO / ".venv/bin/tutor"), "index", "--notes", str(notes)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a TUTOR_HOME that already indexed --notes")
    parser.add_argument("--notes", type=Path, default=REPO / "notes")
    parser.add_argument("--llm", help="model spec (default: $TUTOR_LLM or the bundled model)")
    parser.add_argument("--budget", type=int, help="context budget in tokens (default: the tutor's)")
    parser.add_argument("--show", action="store_true", help="print every answer to stderr")
    asked = parser.add_mutually_exclusive_group()
    asked.add_argument("--held-out", action="store_true",
                       help="ask the 64 questions of retrieval_questions.jsonl instead of the 20")
    asked.add_argument("--loanwords", action="store_true",
                       help="ask the 32 Korean questions of loanword_questions.jsonl (아테나, 글루)")
    asked.add_argument("--sections", action="store_true",
                       help="ask the 36 questions of section_questions.jsonl and count the answers "
                            "citing a section that states the answer")
    asked.add_argument("--follow-ups", action="store_true",
                       help="time 10 follow-ups ('그럼 읽기는요?'), each after its first question (untimed)")
    asked.add_argument("--more-follow-ups", action="store_true",
                       help="the same with the 20 follow-ups of follow_up_questions.jsonl, held out")
    asked.add_argument("--out-of-domain", action="store_true",
                       help="ask the 46 questions no note answers (a grounded answer is a wrong one)")
    parser.add_argument("--no-gate", action="store_true", help="answer whatever the relevance threshold says")
    parser.add_argument("--typed", type=int, metavar="WORDS",
                        help="read ahead as while typing first: the question but its last WORDS words (0: all)")
    parser.add_argument("--keys-per-s", type=float, metavar="RATE",
                        help="type each question a character at a time at RATE, reading ahead as the UI does")
    parser.add_argument("--blocks", action="store_true",
                        help="read every source block the questions find beforehand, to be copied in")
    parser.add_argument("--reread", type=int, metavar="TOKENS",
                        help="with --blocks: tokens at the start of each copied block read in the prompt "
                             "instead (default: the tutor's)")
    parser.add_argument("--calibrate", action="store_true",
                        help="print best-hit cosine distributions instead (no LLM)")
    args = parser.parse_args()
    notes = args.notes.resolve()
    use_home(args.home, notes)
    if args.reread is not None:
        from tutor import llm_blocks
        llm_blocks.REREAD = args.reread
    if args.calibrate:
        calibrate(notes)
    else:
        turns = FOLLOW_UPS if args.follow_ups else follow_ups() if args.more_follow_ups else []
        sections = read_jsonl(SECTIONS) if args.sections else []
        questions = (held_out() if args.held_out else held_out(LOANWORDS) if args.loanwords
                     else [(row["question"], row["note"]) for row in sections] if sections
                     else [(q, note) for _, q, note in turns] if turns
                     else [(q, None) for q in OUT_OF_DOMAIN] if args.out_of_domain else BENCH)
        bench(notes, args.llm, args.budget, args.show, questions, gate=not args.no_gate, typed=args.typed,
              first={q: before for before, q, _ in turns} or None,
              keys_per_s=args.keys_per_s, blocks=args.blocks,
              answering={row["question"]: row["sections"] for row in sections} or None)


if __name__ == "__main__":
    main()
