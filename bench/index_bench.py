"""Index benchmark over a generated vault: prints a markdown table of medians.

    .venv/bin/python bench/index_bench.py [--notes 1000] [--sections 10] [--runs 5]

Uses the real embedding model and a throwaway TUTOR_HOME (the prepared model is linked in).
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SERVICES = [
    ("s3", "Amazon S3", "객체 스토리지", "데이터 레이크의 저장소"),
    ("emr", "Amazon EMR", "관리형 Spark/Hadoop", "대규모 배치 처리"),
    ("glue", "AWS Glue", "서버리스 ETL", "Data Catalog 관리"),
    ("kinesis", "Amazon Kinesis Data Streams", "실시간 스트리밍", "샤드 기반 처리량"),
    ("firehose", "Amazon Data Firehose", "스트림 전송", "S3/Redshift 적재"),
    ("athena", "Amazon Athena", "서버리스 SQL", "스캔한 데이터량 과금"),
    ("redshift", "Amazon Redshift", "데이터 웨어하우스", "컬럼형 저장"),
    ("dynamodb", "Amazon DynamoDB", "NoSQL 키-값", "한 자릿수 밀리초 지연"),
    ("sagemaker", "Amazon SageMaker", "ML 학습과 추론", "관리형 엔드포인트"),
    ("lambda", "AWS Lambda", "서버리스 함수", "이벤트 기반 실행"),
]
TOPICS = ["비용 최적화", "보안", "성능", "가용성", "모니터링", "마이그레이션", "거버넌스", "확장성", "지연 시간", "운영"]


def make_note(i: int, sections: int, rng: random.Random) -> str:
    key, name, kind, role = SERVICES[i % len(SERVICES)]
    other = SERVICES[(i * 7 + 3) % len(SERVICES)]
    lines = ["---", f"title: {key}-study-note-{i}", "created: 2025-08-20", "tags:", f"- service/{key}",
             f"- service/{other[0]}", f"aliases: [\"{key}-{i}\"]", "---", "", f"# {name} 학습 노트 {i}", ""]
    for s in range(sections):
        topic = TOPICS[(i + s) % len(TOPICS)]
        lines += [f"## {topic} {s}", ""]
        for _ in range(3):
            lines.append(
                f"- {name}는 {kind} 서비스로 {role}에 쓰인다. {topic} 관점에서 {other[1]}와 비교하면 "
                f"{rng.choice(['처리량', '비용', '지연', '관리 부담'])}이 {rng.choice(['낮다', '높다', '다르다'])}. "
                f"사례 {rng.randint(1, 9999)}: {rng.choice(['로그 분석', '피처 엔지니어링', '대시보드', '배치 예측'])}."
            )
        lines.append("")
    return "\n".join(lines)


class Rows(list):
    """Printed as they come: a long run that fails late still leaves its figures."""

    def append(self, row) -> None:
        if not self:
            print("| measure | conditions | result |\n| --- | --- | --- |", flush=True)
        super().append(row)
        print("| " + " | ".join(row) + " |", flush=True)


def median(values):
    return statistics.median(values)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--sections", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    from index.embedder import default_model_path, ensure_default_model

    ensure_default_model()
    work = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    (work / "home" / "models").mkdir(parents=True)
    os.symlink(default_model_path(), work / "home" / "models" / default_model_path().name)
    os.environ["TUTOR_HOME"] = str(work / "home")
    os.environ.pop("TUTOR_EMBED_MODEL", None)

    from index.embedder import get_embedder
    from index.home import index_dir
    from index.store import Store
    from index.sync import sync

    rng = random.Random(7)
    vault = work / "vault"
    vault.mkdir()
    for i in range(args.notes):
        (vault / f"note-{i:04d}.md").write_text(make_note(i, args.sections, rng), encoding="utf-8")
    store = Store(index_dir(vault))
    rows = Rows()

    embedder = get_embedder()
    started = time.perf_counter()
    report = sync(vault, store, embedder)
    build = time.perf_counter() - started
    rows.append(("full build", f"{report.notes} notes, {report.chunks} chunks in {build:.1f} s",
                 f"{report.embedded / build:.1f} chunks/s"))

    nochange = []
    for _ in range(args.runs):
        fresh = get_embedder()
        started = time.perf_counter()
        report = sync(vault, store, fresh)
        nochange.append(time.perf_counter() - started)
        assert report.embedded == 0 and not fresh.loaded, "no-change sync did work"
    rows.append(("no-change sync", f"median of {args.runs}, model not loaded", f"{median(nochange):.3f} s"))

    def edit_and_search(emb, n):
        path = vault / f"note-{n:04d}.md"
        marker = f"편집 표식 {n}-{time.time_ns()}: Amazon MSK는 관리형 Kafka다."
        path.write_text(path.read_text(encoding="utf-8") + f"\n## 새 섹션\n\n{marker}\n", encoding="utf-8")
        started = time.perf_counter()
        result = sync(vault, store, emb)
        hits = store.search(emb.embed_query(marker), k=10)  # earlier runs' markers read alike
        elapsed = time.perf_counter() - started
        assert result.embedded == 1 and any(marker in h.text for h in hits), (result.embedded, hits[:1])
        return elapsed

    cold = [edit_and_search(get_embedder(), 10 + i) for i in range(args.runs)]
    rows.append(("one note edited → searchable, model loaded on the way", f"median of {args.runs}", f"{median(cold):.2f} s"))
    warm = [edit_and_search(embedder, 100 + i) for i in range(args.runs)]
    rows.append(("one note edited → searchable, model already loaded", f"median of {args.runs}", f"{median(warm):.3f} s"))

    queries = [f"{SERVICES[i % 10][1]} {TOPICS[i % 10]} 비교" if i % 2 else
               f"Which service is best for {SERVICES[i % 10][3]}?" for i in range(args.queries)]
    for q in queries[:5]:
        store.search(embedder.embed_query(q), k=5)
    times = []
    for q in queries:
        started = time.perf_counter()
        store.search(embedder.embed_query(q), k=5)
        times.append((time.perf_counter() - started) * 1000)
    rows.append((f"search at {store.stats()['chunks']} chunks (embed query + FAISS + SQLite)",
                 f"{len(times)} queries", f"p50 {median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak RSS", "whole run", f"{rss:.0f} MB"))

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
