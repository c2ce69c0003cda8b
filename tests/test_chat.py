"""Grounded chat with a fake chat model (queued replies, streamed one character at a time so
the citation filter sees every split) over a real index built with the fake embedder."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from index.embedder import get_embedder
from index.home import index_dir
from index.store import Store
from index.sync import sync
from tests.conftest import REPO, write_note
from tutor import prompts
from tutor.chat import ChatEngine, estimate_tokens, language_of, obsidian_link
from tutor.cli import cli
from tutor.retrieve import Retriever


class QueuedChat(BaseChatModel):
    """Replies in order; records every message list it was sent; fails if asked once too often."""

    replies: list[str]
    seen: list = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "queued-fake"

    def _next(self, messages) -> str:
        self.seen.append(messages)
        assert self.replies, "the model was called more often than the test expected"
        return self.replies.pop(0)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self._next(messages)))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        for char in self._next(messages):
            yield ChatGenerationChunk(message=AIMessageChunk(content=char))
        # as the llama.cpp and Ollama backends do: a last empty chunk, so "" is a reply too
        yield ChatGenerationChunk(message=AIMessageChunk(content=""), generation_info={"finish_reason": "stop"})


KINESIS = "Kinesis Data Streams의 샤드 하나는 초당 1MB, 1,000건 쓰기를 받는다."
GLUE = "AWS Glue 크롤러가 S3 데이터를 스캔해 Data Catalog 테이블을 만든다."


@pytest.fixture
def vault(tmp_path, fake_embedder):
    vault = tmp_path / "my vault"
    write_note(vault, "streams/kinesis.md", "kinesis", {"샤드 처리량": KINESIS},
               tags=("service/kinesis",))
    write_note(vault, "glue.md", "glue", {"크롤러": GLUE}, tags=("service/glue",))
    write_note(vault, "emr.md", "emr", {"Spark": "EMR 클러스터에서 Spark 배치 작업을 실행한다."},
               tags=("service/emr",))
    sync(vault, Store(index_dir(vault)), get_embedder())
    return vault


class SpyRetriever(Retriever):
    def __init__(self, vault):
        super().__init__(vault)
        self.queries: list[str] = []

    def search(self, query, **kwargs):
        self.queries.append(query)
        return super().search(query, **kwargs)


def engine(vault, replies, **opts):
    opts.setdefault("min_relevance", 0.0)
    return ChatEngine(SpyRetriever(vault), QueuedChat(replies=list(replies)),
                      vault_name=vault.name, **opts)


def run(eng, question, **kwargs):
    events = list(eng.ask(question, **kwargs))
    tokens = "".join(v for kind, v in events if kind == "token")
    return events, tokens, events[-1][1]


def test_citations_map_to_note_heading_and_obsidian_link(vault):
    eng = engine(vault, ["샤드 하나는 초당 1MB를 받습니다 [1]."])
    events, tokens, answer = run(eng, "Kinesis 샤드 하나의 쓰기 처리량은?")
    first = answer.sources[0]
    assert first.note == "streams/kinesis.md" and first.heading.endswith("샤드 처리량")
    assert [c.n for c in answer.citations] == [1] and answer.citations[0] is first
    assert answer.grounded and answer.text == tokens.strip()
    prefix = "obsidian://open?vault=my%20vault&file="
    assert first.link.startswith(prefix)
    assert unquote(first.link[len(prefix):]) == "streams/kinesis"  # the '/' is encoded too
    assert "/" not in first.link[len(prefix):]


def test_invented_citation_numbers_are_dropped_from_text_and_sources(vault):
    eng = engine(vault, ["샤드는 1MB/s를 받는다 [1][7]. 크롤러도 있다 [9]. 둘 다 맞다 [1, 8]."])
    _, tokens, answer = run(eng, "Kinesis 샤드 처리량은?")
    n = len(answer.sources)
    assert n < 7
    assert tokens.strip() == "샤드는 1MB/s를 받는다 [1]. 크롤러도 있다. 둘 다 맞다 [1]."
    assert [c.n for c in answer.citations] == [1]


def test_brackets_that_are_not_citations_pass_through(vault):
    eng = engine(vault, ["[Amazon S3] 배열 [1-2] 그리고 [1]"])
    _, tokens, answer = run(eng, "Kinesis 샤드?")
    assert tokens == "[Amazon S3] 배열 [1-2] 그리고 [1]"
    assert [c.n for c in answer.citations] == [1]


def test_low_relevance_refuses_without_asking_the_model(vault):
    eng = engine(vault, [], min_relevance=0.999)
    events, tokens, answer = run(eng, "김치찌개 맛있게 끓이는 법")
    assert eng.model.seen == []
    assert not answer.grounded and answer.citations == []
    assert answer.sources and events[0] == ("sources", answer.sources)  # the closest sections
    assert tokens == answer.text == prompts.REFUSAL["ko"]
    _, _, english = run(engine(vault, [], min_relevance=0.999), "How do I bake bread?")
    assert english.text == prompts.REFUSAL["en"]


def test_a_product_no_note_mentions_is_refused_by_name(vault):
    eng = engine(vault, [])  # no reply queued: the model is never asked
    events, tokens, answer = run(eng, "Azure Functions의 콜드 스타트를 줄이는 법은?")
    assert eng.model.seen == [] and not answer.grounded and answer.sources
    assert tokens == answer.text and answer.text.startswith("노트 어디에도 Azure Functions 이(가)")
    assert answer.text.endswith(prompts.REFUSAL["ko"])
    _, _, english = run(engine(vault, []), "How do I size Google BigQuery slots?")
    assert english.text.startswith("Your notes never mention Google BigQuery.")


def test_a_product_spelt_in_hangul_is_refused_by_its_english_name(vault):
    eng = engine(vault, [])
    _, _, answer = run(eng, "애저 펑션 콜드 스타트를 줄이는 법은?")
    assert eng.model.seen == [] and answer.text.startswith("노트 어디에도 Azure 이(가)")


@pytest.mark.parametrize("question", ["How do I add Kinesis Data Streams shards?", "AWS Glue 크롤러는 무엇인가요?",
                                      "글루 크롤러는 무엇인가요?"])
def test_names_the_notes_use_are_answered(vault, question):
    eng = engine(vault, ["답 [1]"])
    _, _, answer = run(eng, question)
    assert answer.grounded and len(eng.model.seen) == 1


def test_a_name_the_notes_gain_is_answered_after_the_next_sync(vault):
    eng = engine(vault, ["BigQuery 슬롯은 쿼리 용량이다 [1]."])
    assert run(eng, "How do I size Google BigQuery slots?")[2].text.startswith("Your notes never mention")
    write_note(vault, "bigquery.md", "bigquery", {"Google BigQuery": "Google BigQuery 슬롯은 쿼리 처리 용량 단위다."})
    sync(vault, Store(index_dir(vault)), get_embedder())
    answer = run(eng, "How do I size Google BigQuery slots?")[2]  # the same engine, a newer index
    assert answer.grounded and len(eng.model.seen) == 1


def test_not_covered_marker_becomes_a_plain_refusal(vault):
    eng = engine(vault, [prompts.NOT_COVERED + " 노트에 없음", "추가 답변"])
    _, tokens, answer = run(eng, "Kinesis 콜드 스타트는?")
    assert not answer.grounded and answer.citations == []
    assert tokens == answer.text == prompts.REFUSAL["ko"]  # nothing of the marker leaked
    assert eng.model.replies == ["추가 답변"]  # one generation only


def test_marker_after_some_text_still_refuses(vault):
    eng = engine(vault, ["Glue는 [2] 아마도 " + prompts.NOT_COVERED])
    _, tokens, answer = run(eng, "What is Kinesis time travel?")
    assert not answer.grounded and "NOT_" not in tokens
    assert tokens.endswith(prompts.REFUSAL["en"]) and answer.text == tokens.strip()


def test_answer_citing_nothing_is_flagged_as_not_grounded(vault):
    eng = engine(vault, ["EMR은 프리워밍으로 빨라진다 [8]."])
    _, tokens, answer = run(eng, "EMR 콜드 스타트?")
    assert not answer.grounded and answer.citations == []
    assert tokens.startswith("EMR은 프리워밍으로 빨라진다.")
    assert tokens.endswith(prompts.UNCITED["ko"]) and answer.text == tokens.strip()


@pytest.mark.parametrize("reply", ["", "  \n", "[1]", "- [1]\n- [2]"])
def test_a_reply_with_no_words_says_the_model_wrote_no_answer(vault, reply):
    _, tokens, answer = run(engine(vault, [reply]), "Glue 크롤러는?")
    assert tokens == prompts.NO_ANSWER["ko"] and answer.text == tokens
    assert not answer.grounded and answer.citations == []


def test_generation_stops_when_the_model_repeats_itself(vault):
    loop = "- 파티셔닝은 스캔량을 줄인다 [1].\n- 비용이 줄어든다 [1].\n"
    eng = engine(vault, [loop * 20])
    _, tokens, answer = run(eng, "EMR 파티셔닝?")
    assert tokens.count("스캔량을 줄인다") <= 2 and tokens.count("비용이 줄어든다") == 1
    assert answer.grounded and len(tokens) < 2 * len(loop)


def test_generation_stops_when_the_model_recites_its_sources(vault):
    eng = engine(vault, ["Glue 크롤러가 테이블을 만든다 [1].\n\n[2] PLACEHOLDER\n본문 복사"])
    first = eng.ask("Glue 크롤러는?")
    sources = next(first)[1]
    header = eng._block(sources[1]).split("\n", 1)[0]
    eng.model.replies[0] = eng.model.replies[0].replace("[2] PLACEHOLDER", header)
    tokens = "".join(v for kind, v in first if kind == "token")
    assert tokens.strip() == "Glue 크롤러가 테이블을 만든다 [1]."  # no header, nothing after


def test_a_bulleted_recital_after_an_uncited_answer_is_cut_and_cites_nothing(vault):
    # seen from the real model: "- [1] <title > section>" lines, then the source's bullets
    eng = engine(vault, ["크롤러는 스키마를 추론한다.\n\n- [1] PLACEHOLDER\n  - 본문 복사\n"])
    first = eng.ask("Glue 크롤러는?")
    sources = next(first)[1]
    eng.model.replies[0] = eng.model.replies[0].replace("PLACEHOLDER", sources[0].heading)
    events = list(first)
    tokens = "".join(v for kind, v in events if kind == "token")
    assert sources[0].heading not in tokens and "본문 복사" not in tokens
    assert tokens == "크롤러는 스키마를 추론한다.\n\n" + prompts.UNCITED["ko"]
    assert not events[-1][1].grounded  # the recital's "[1]" is not a citation


@pytest.mark.parametrize("footer", ["\n\nSources:\n[1] [2]", "\n**출처:** [1]", "\nSources: [1], [2]\n",
                                    "\n\n[1] [2]", "\n[1]\n\n[2]\n", "\n\n- [1]"])
def test_citations_only_in_a_sources_footer_do_not_ground_the_answer(vault, footer):
    eng = engine(vault, ["Glue 크롤러는 스키마를 추론한다." + footer])
    _, tokens, answer = run(eng, "Glue 크롤러는?")
    assert tokens == "Glue 크롤러는 스키마를 추론한다.\n\n" + prompts.UNCITED["ko"]
    assert not answer.grounded and answer.citations == []


@pytest.mark.parametrize("reply", ["Glue 크롤러는 스키마를 추론한다 [1].\n\n[1] [2]",
                                   "Glue 크롤러는 스키마를 추론한다.\n[1]\nAthena로 조회한다."])
def test_a_line_of_citations_counts_under_or_between_cited_text(vault, reply):
    eng = engine(vault, [reply])
    _, tokens, answer = run(eng, "Glue 크롤러는?")
    assert tokens == reply and answer.grounded and 1 in [c.n for c in answer.citations]


def test_a_bare_footer_under_text_copied_from_the_sources_it_names_counts(vault):
    eng = engine(vault, [GLUE + "\n\n[N]"])
    first = eng.ask("Glue 크롤러는?")
    glue = next(s.n for s in next(first)[1] if s.note == "glue.md")
    eng.model.replies[0] = eng.model.replies[0].replace("N", str(glue))
    events = list(first)
    assert "".join(v for kind, v in events if kind == "token") == GLUE + f"\n\n[{glue}]"
    assert events[-1][1].grounded and [c.note for c in events[-1][1].citations] == ["glue.md"]


def test_a_line_that_merely_starts_like_a_sources_label_is_kept(vault):
    eng = engine(vault, ["Source 엔드포인트와 Target 엔드포인트를 만든다 [1]."])
    _, tokens, answer = run(eng, "Glue 작업 구성은?")
    assert tokens == "Source 엔드포인트와 Target 엔드포인트를 만든다 [1]." and answer.grounded


def test_a_model_that_starts_by_reciting_a_heading_is_asked_again(vault):
    eng = engine(vault, ["1. PLACEHOLDER\n본문 복사\n", "크롤러가 테이블을 만든다 [1]."])
    first = eng.ask("Glue 크롤러는?")
    sources = next(first)[1]
    eng.model.replies[0] = eng.model.replies[0].replace("PLACEHOLDER", sources[0].heading)
    events = list(first)
    tokens = "".join(v for kind, v in events if kind == "token")
    assert tokens == "크롤러가 테이블을 만든다 [1]."  # nothing of the recital was shown
    assert events[-1][1].grounded and len(eng.model.seen) == 2
    assert prompts.NO_RECITING in eng.model.seen[1][-1].content
    assert prompts.NO_RECITING not in eng.model.seen[0][-1].content


def test_an_answer_that_merely_starts_like_a_heading_streams_whole(vault):
    eng = engine(vault, ["PLACEHOLDER"])
    first = eng.ask("Glue 크롤러는?")
    sources = next(first)[1]
    reply = sources[0].heading[:12] + " 는 크롤러로 테이블을 만든다 [1]."
    eng.model.replies[0] = reply
    tokens = "".join(v for kind, v in first if kind == "token")
    assert tokens == reply and len(eng.model.seen) == 1


def test_follow_up_is_rewritten_and_the_rewrite_is_searched(vault):
    rewritten = "AWS Glue 크롤러는 무엇을 하나요?"
    eng = engine(vault, [rewritten, "크롤러가 테이블을 만든다 [1]."])
    history = [("Kinesis 샤드 처리량은?", "샤드 하나는 초당 1MB [1].")]
    _, _, answer = run(eng, "그럼 Glue는?", history=history)
    assert eng.retriever.queries == [rewritten] and answer.query == rewritten
    rewrite_prompt = eng.model.seen[0][-1].content
    assert "Kinesis 샤드 처리량은?" in rewrite_prompt and "그럼 Glue는?" in rewrite_prompt
    assert "[1]" not in rewrite_prompt  # citations are noise to the rewrite
    assert answer.sources[0].note == "glue.md"
    assert rewritten in eng.model.seen[1][-1].content


def test_a_rewrite_in_another_language_is_held_to_its_own_threshold(vault):
    """The cosine is the query's, so is the threshold; the refusal speaks the question's language."""
    history = [("Kinesis 샤드 처리량은?", "샤드 하나는 초당 1MB [1].")]
    strict_english = engine(vault, ["What does an AWS Glue crawler do?"])
    strict_english.min_relevance = {"ko": 0.0, "en": 0.999}
    _, tokens, answer = run(strict_english, "그럼 Glue는?", history=history)
    assert not answer.grounded and tokens == prompts.REFUSAL["ko"]
    strict_korean = engine(vault, ["What does an AWS Glue crawler do?", "크롤러가 테이블을 만든다 [1]."])
    strict_korean.min_relevance = {"ko": 0.999, "en": 0.0}
    _, _, answer = run(strict_korean, "그럼 Glue는?", history=history)
    assert answer.grounded and answer.citations[0].note == "glue.md"


class PrefillingChat(QueuedChat):
    """Records the prefixes it is asked to read ahead and keep, as the llama.cpp backend pins them."""

    prefilled: list = Field(default_factory=list)

    def prefill(self, messages):
        self.prefilled.append([m.content for m in messages])
        return 0.0


def test_warm_reads_the_rewrites_system_prompt_and_the_answers_last(vault):
    eng = ChatEngine(SpyRetriever(vault), PrefillingChat(replies=[]), vault_name=vault.name)
    eng.warm()
    assert eng.model.prefilled == [[prompts.REWRITE_SYSTEM], [prompts.ANSWER_SYSTEM]]
    alone = ChatEngine(SpyRetriever(vault), PrefillingChat(replies=[]), vault_name=vault.name)
    alone.warm(follow_ups=False)  # `tutor warm` reads sections, never a conversation
    assert alone.model.prefilled == [[prompts.ANSWER_SYSTEM]]


def test_no_history_means_no_rewrite_call(vault):
    eng = engine(vault, ["답 [1]."])
    _, _, answer = run(eng, "Kinesis 샤드 처리량은?")
    assert len(eng.model.seen) == 1 and eng.retriever.queries == ["Kinesis 샤드 처리량은?"]
    assert answer.query == answer.question


def test_sources_come_before_generation_starts(vault):
    eng = engine(vault, ["샤드 [1]."])
    stream = eng.ask("Kinesis 샤드 처리량은?")
    kind, sources = next(stream)
    assert kind == "sources" and sources and eng.model.seen == []
    rest = list(stream)
    assert len(eng.model.seen) == 1
    assert [k for k, _ in rest][-1] == "done" and {k for k, _ in rest[:-1]} == {"token"}
    assert len(rest) > 3  # streamed in pieces, not one block


@pytest.mark.parametrize("question, lang", [("Glue 크롤러는 뭐야?", "ko"),
                                            ("What does a Glue crawler do?", "en")])
def test_answer_language_follows_the_question(vault, question, lang):
    eng = engine(vault, ["ok [1]"])
    run(eng, question)
    system, user = eng.model.seen[0]
    assert language_of(question) == lang
    assert f"Answer in {prompts.LANGUAGES[lang]}" in user.content
    other = prompts.LANGUAGES["en" if lang == "ko" else "ko"]
    assert other not in user.content


def test_system_prompt_is_fixed_and_sources_go_in_the_user_turn(vault):
    eng = engine(vault, ["a [1]", "b [1]"])
    run(eng, "Kinesis 샤드 처리량은?")
    run(eng, "What does a Glue crawler do?", tags=("service/glue",))
    (s1, u1), (s2, u2) = eng.model.seen
    assert isinstance(s1, SystemMessage) and isinstance(u1, HumanMessage)
    assert s1.content == s2.content == prompts.ANSWER_SYSTEM
    assert KINESIS in u1.content and GLUE in u2.content and KINESIS not in u2.content


def test_context_fits_the_token_budget(tmp_path, fake_embedder):
    vault = tmp_path / "v"
    long = " ".join(f"Kinesis 샤드 {i}번 문장은 처리량과 파티션 키를 설명한다." for i in range(40))
    for i in range(4):
        write_note(vault, f"n{i}.md", f"n{i}", {"샤드": long}, tags=("service/kinesis",))
    sync(vault, Store(index_dir(vault)), get_embedder())
    eng = engine(vault, ["답 [1]"], budget_tokens=300)
    hits = eng.retriever.search("Kinesis 샤드 처리량", k=5)
    assert sum(estimate_tokens(h.text) for h in hits) > 300  # the budget has work to do
    _, _, answer = run(eng, "Kinesis 샤드 처리량")
    blocks = [eng._block(s) for s in answer.sources]
    assert sum(estimate_tokens(b) for b in blocks) <= 300
    assert answer.sources[0].note == hits[0].note  # the best hit survives, first
    assert any(s.text.endswith("…") for s in answer.sources)
    assert all(b in eng.model.seen[0][-1].content for b in blocks)


def test_the_budget_comes_from_the_environment_else_the_default(monkeypatch):
    from tutor.chat import CONTEXT_TOKENS, default_context_tokens

    monkeypatch.delenv("TUTOR_CONTEXT_TOKENS", raising=False)
    assert default_context_tokens() == CONTEXT_TOKENS
    monkeypatch.setenv("TUTOR_CONTEXT_TOKENS", "900")
    assert default_context_tokens() == 900
    for bad in ("0", "lots", "-5"):  # not a usable count: the default, not a crash
        monkeypatch.setenv("TUTOR_CONTEXT_TOKENS", bad)
        assert default_context_tokens() == CONTEXT_TOKENS


def test_prompts_render_strictly():
    with pytest.raises(prompts.PromptError, match="missing.*'question'"):
        prompts.render(prompts.REWRITE_USER, conversation="x")
    with pytest.raises(prompts.PromptError, match="unknown.*'extra'"):
        prompts.render(prompts.REWRITE_USER, conversation="x", question="y", extra=1)
    assert "$" not in prompts.render(prompts.REWRITE_USER, conversation="a", question="b")


def test_obsidian_link_encodes_vault_and_path():
    link = obsidian_link("AWS 노트", "서비스/S3 & Glacier.md")
    vault, file = link.removeprefix("obsidian://open?").split("&file=")
    assert unquote(vault.removeprefix("vault=")) == "AWS 노트" and unquote(file) == "서비스/S3 & Glacier"


def test_cli_ask_json_shape(vault, monkeypatch):
    from tutor import llm

    model = QueuedChat(replies=["Glue 크롤러가 테이블을 만든다 [1][5]."])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: model)
    result = CliRunner().invoke(cli, ["ask", "Glue 크롤러는?", "--notes", str(vault), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["grounded"] is True and isinstance(data["answer"], str)
    assert data["answer"].startswith("Glue 크롤러가") and "[5]" not in data["answer"]
    assert [set(c) >= {"n", "note", "heading"} for c in data["citations"]] == [True]
    assert data["citations"][0]["note"] == "glue.md" and data["citations"][0]["n"] == 1
    assert [s["n"] for s in data["sources"]] == list(range(1, len(data["sources"]) + 1))


def test_cli_ask_streams_then_lists_sources(vault, monkeypatch):
    from tutor import llm

    model = QueuedChat(replies=["크롤러 [1]."])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: model)
    result = CliRunner().invoke(cli, ["ask", "Glue 크롤러는?", "--notes", str(vault)])
    assert result.exit_code == 0, result.output
    answer, _, listing = result.output.partition("Sources:")
    assert answer.strip() == "크롤러 [1]."
    assert "*[1] glue.md › " in listing and "obsidian://open?vault=my%20vault&file=glue" in listing


def test_cli_missing_index_is_a_clean_error(tmp_path, fake_embedder):
    result = CliRunner().invoke(cli, ["ask", "x", "--notes", str(tmp_path / "none")])
    assert result.exit_code == 1 and "tutor index --notes" in result.output
    assert "Traceback" not in result.output


def test_cli_chat_keeps_history_and_clears_it(vault, monkeypatch):
    from tutor import llm

    model = QueuedChat(replies=["샤드 [1].", "AWS Glue 크롤러", "크롤러 [1].", "EMR [1]."])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: model)
    lines = "Kinesis 샤드?\n그럼 Glue는?\n/clear\nEMR Spark?\n\nnot read\n"
    result = CliRunner().invoke(cli, ["chat", "--notes", str(vault)], input=lines)
    assert result.exit_code == 0, result.output
    assert model.replies == []  # 3 answers + 1 rewrite: the 2nd turn only had history
    assert "AWS Glue 크롤러" in model.seen[2][-1].content  # the answer saw the rewrite
    assert "Kinesis 샤드?" in model.seen[1][-1].content  # the rewrite saw the first turn


def test_chat_modules_import_light():
    code = ("import sys, tutor.cli_chat, tutor.chat; "
            "print(sorted(m for m in ('numpy', 'torch', 'langchain_core', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("question", ["Kinesis Data Streams vs Google Pub/Sub: which keeps order?",
                                      "Summarize what my notes say about Kinesis shards"])
def test_one_known_name_is_enough_to_answer(vault, question):
    eng = engine(vault, ["답 [1]"])
    _, _, answer = run(eng, question)
    assert answer.grounded and len(eng.model.seen) == 1


class ReadingChat(QueuedChat):
    """A chat model that can read a prompt ahead, as the llama.cpp backend does."""

    read: list = Field(default_factory=list)
    during: Any = None  # called once a pre-read has started, before it checks whether to stop
    stopped: bool = False

    pinned: list = Field(default_factory=list)

    def preread(self, messages, stop, pin=False):
        self.read.append(messages)
        self.pinned.append(pin)
        if self.during:
            self.during()
        self.stopped = stop()
        return 0 if self.stopped else 100


def test_preread_reads_the_prompt_up_to_the_question(vault):
    eng = ChatEngine(SpyRetriever(vault), ReadingChat(replies=["샤드 하나는 초당 1MB [1]."]),
                     vault_name=vault.name, min_relevance=0.0)
    assert eng.preread("Kinesis 샤드 하나의 쓰기") == 100
    run(eng, "Kinesis 샤드 하나의 쓰기 처리량은?")
    (system, ahead), = eng.model.read
    asked_system, asked = eng.model.seen[0]
    assert system.content == asked_system.content
    assert ahead.content.endswith("Question: ") and "Kinesis" not in ahead.content.split("Sources:")[0]
    assert asked.content.startswith(ahead.content)  # what was read is the start of what is asked
    assert asked.content[len(ahead.content):].startswith("Kinesis 샤드 하나의 쓰기 처리량은?")


def test_preread_reads_nothing_the_answer_would_not(vault):
    refusing = ChatEngine(SpyRetriever(vault), ReadingChat(replies=[]), vault_name=vault.name, min_relevance=0.999)
    assert refusing.preread("김치찌개 끓이는 법") == 0 and refusing.model.read == []
    assert engine(vault, []).preread("Kinesis 샤드") == 0  # a model that cannot read ahead
    eng = ChatEngine(SpyRetriever(vault), ReadingChat(replies=[]), vault_name=vault.name, min_relevance=0.0)
    assert eng.preread("   ") == 0 and eng.retriever.queries == []
    assert eng.preread("Kinesis 샤드", stop=lambda: True) == 0 and eng.model.read == []


def test_asking_stops_a_preread(vault):
    eng = ChatEngine(SpyRetriever(vault), ReadingChat(replies=["샤드 [1]."]), vault_name=vault.name,
                     min_relevance=0.0)
    eng.model.during = lambda: next(eng.ask("Kinesis 샤드 처리량은?"))  # asked while it reads
    assert eng.preread("Kinesis 샤드") == 0 and eng.model.stopped
    eng.model.during = None
    assert eng.preread("Kinesis 샤드") == 100 and not eng.model.stopped


def test_preread_of_a_follow_up_reads_the_conversation_its_rewrite_starts_with(vault):
    history = [("Kinesis 샤드 처리량은?", "초당 1MB [1].")]
    eng = ChatEngine(SpyRetriever(vault), ReadingChat(replies=["Glue 크롤러는 무엇을 하나요?", "스캔한다 [1]."]),
                     vault_name=vault.name, min_relevance=0.0)
    assert eng.preread("그럼 Glue", history=history) == 100
    assert eng.retriever.queries == []  # its search waits for the rewrite
    run(eng, "그럼 Glue는?", history=history)
    (system, ahead), = eng.model.read
    rewrite_system, rewrite = eng.model.seen[0]
    assert system.content == rewrite_system.content and "Kinesis 샤드 처리량은?" in ahead.content
    assert rewrite.content.startswith(ahead.content) and ahead.content.endswith("Follow-up question: ")


class RewritingChat(ReadingChat):
    """A chat model that can also write a reply in spare time, as the llama.cpp backend does."""

    ahead_seen: list = Field(default_factory=list)
    interrupted: bool = False  # the user typed on while the rewrite was being written

    def ahead(self, messages, stop, stop_words=None):
        self.ahead_seen.append((messages, stop_words))
        return None if self.interrupted or stop() else self._next(messages)


def test_a_follow_up_typed_is_rewritten_and_its_sources_read_before_it_is_asked(vault):
    history = [("Kinesis 샤드 처리량은?", "초당 1MB [1].")]
    eng = ChatEngine(SpyRetriever(vault),
                     RewritingChat(replies=["Glue 크롤러는 무엇을 하나요?", "S3를 스캔한다 [1]."]),
                     vault_name=vault.name, min_relevance=0.0)
    assert eng.preread("그럼 Glue는?", history=history) == 100
    (rewrite, stop_words), = eng.model.ahead_seen
    assert "그럼 Glue는?" in rewrite[1].content and stop_words == ["\n"]
    assert eng.retriever.queries == ["Glue 크롤러는 무엇을 하나요?"]
    conversation, sources = eng.model.read
    assert "Kinesis 샤드 처리량은?" in conversation[1].content and "Sources:" in sources[1].content
    assert eng.model.pinned == [True, True]  # both kept: the other prompt runs in between
    _, tokens, answer = run(eng, "그럼 Glue는?", history=history)
    assert answer.query == "Glue 크롤러는 무엇을 하나요?" and answer.grounded
    assert len(eng.model.seen) == 2  # the rewrite was not written again, only the answer
    assert eng.retriever.queries == ["Glue 크롤러는 무엇을 하나요?"] * 2
    assert eng.model.seen[1][1].content.startswith(sources[1].content)


def test_a_follow_up_changed_after_its_rewrite_is_rewritten_again(vault):
    history = [("Kinesis 샤드 처리량은?", "초당 1MB [1].")]
    eng = ChatEngine(SpyRetriever(vault),
                     RewritingChat(replies=["Glue는 무엇인가요?", "Glue 크롤러는 무엇을 하나요?", "스캔 [1]."]),
                     vault_name=vault.name, min_relevance=0.0)
    eng.preread("그럼 Glue", history=history)
    _, _, answer = run(eng, "그럼 Glue 크롤러는?", history=history)
    assert answer.query == "Glue 크롤러는 무엇을 하나요?"
    assert "그럼 Glue 크롤러는?" in eng.model.seen[1][1].content  # written for the question asked


def test_an_interrupted_rewrite_is_not_kept_and_reads_no_sources(vault):
    history = [("Kinesis 샤드 처리량은?", "초당 1MB [1].")]
    eng = ChatEngine(SpyRetriever(vault),
                     RewritingChat(replies=["Glue 크롤러는 무엇을 하나요?", "스캔 [1]."], interrupted=True),
                     vault_name=vault.name, min_relevance=0.0)
    assert eng.preread("그럼 Glue는?", history=history) == 100  # the conversation only
    assert len(eng.model.read) == 1 and eng.retriever.queries == []
    _, _, answer = run(eng, "그럼 Glue는?", history=history)
    assert answer.query == "Glue 크롤러는 무엇을 하나요?" and len(eng.model.seen) == 2


def test_typing_on_does_not_stop_a_read_whose_sources_stay_the_same(vault):
    def reading(**opts):
        eng = ChatEngine(SpyRetriever(vault), ReadingChat(replies=[]), vault_name=vault.name, min_relevance=0.0)
        return eng, eng.preread("Kinesis 샤드 ", stop=lambda: True, **opts)  # text typed since

    eng, read = reading(newest=lambda: "Kinesis 샤드 처")  # a word still being typed: no new search
    assert read == 100 and not eng.model.stopped and eng.retriever.queries == ["Kinesis 샤드"]
    eng, read = reading(newest=lambda: "Kinesis 샤드 처리량은 ", tags=("service/kinesis",))
    assert read == 100 and eng.retriever.queries == ["Kinesis 샤드", "Kinesis 샤드 처리량은"]  # same sources
    for opts in ({"newest": lambda: "Glue 크롤러는 "},  # other sources: reading these is wasted
                 {"newest": lambda: None},  # more than the text changed (a tag chosen)
                 {}):  # no way to tell what was typed since
        eng, read = reading(**opts)
        assert read == 0, opts


def test_typing_on_stops_a_follow_ups_rewrite_but_not_its_conversation(vault):
    history = [("Kinesis 샤드 처리량은?", "초당 1MB [1].")]
    eng = ChatEngine(SpyRetriever(vault), RewritingChat(replies=["Glue 크롤러는 무엇을 하나요?"]),
                     vault_name=vault.name, min_relevance=0.0)
    assert eng.preread("그럼 Glue", history=history, stop=lambda: True, newest=lambda: "그럼 Glue는") == 100
    assert len(eng.model.read) == 1 and not eng.model.stopped  # the conversation does not depend on the text
    assert eng.model.replies and eng.retriever.queries == []  # the rewrite stopped at once


class BlockChat(QueuedChat):
    """Keeps blocks as the llama.cpp backend does (the block's text as its tokens, a few bytes
    as its state); the disk budget is ``limit`` blocks."""

    prompts: list = Field(default_factory=list)  # (start, prefix) given to use_blocks
    texts: list = Field(default_factory=list)  # the block prompts read, in order
    blocks: Any = None
    limit: int = 100
    calls: int = 0  # read_block calls

    def use_blocks(self, start, prefix, vault):
        from tutor.llm_blocks import Blocks, vault_folder

        self.prompts.append((start, prefix))
        if self.blocks is None or self.blocks.max_bytes != self.limit * 2:
            self.blocks = Blocks([1], [1, 2], vault_folder(vault) / "fake", max_bytes=self.limit * 2)
        return len(self.blocks)

    def prune_blocks(self, keep):
        self.calls += 1
        return self.blocks.keep_only({tuple(map(ord, messages[1].content)) for messages in keep})

    def read_block(self, messages, stop):
        self.calls += 1
        if self.blocks is None:
            return None
        block = tuple(map(ord, messages[1].content))
        if block in self.blocks:
            return False
        if stop() or self.blocks.full:
            return None
        self.texts.append(messages[1].content)
        self.blocks.add(block, b"kv")
        return True


@pytest.fixture
def blocks_on(monkeypatch):
    monkeypatch.setenv("TUTOR_BLOCKS", "1")


def test_blocks_are_off_unless_asked_for(vault, monkeypatch):
    monkeypatch.delenv("TUTOR_BLOCKS", raising=False)
    eng = ChatEngine(SpyRetriever(vault), BlockChat(replies=[]), vault_name=vault.name, min_relevance=0.0)
    assert eng.use_blocks() == 0 and eng.read_blocks(eng.retriever.search("Kinesis 샤드", k=2)) == 0
    assert eng.read_spare(lambda: False) and eng.model.prompts == [] and eng.model.texts == []


def test_blocks_are_read_as_the_answer_prompt_holds_them(vault, blocks_on):
    eng = ChatEngine(SpyRetriever(vault), BlockChat(replies=["샤드 [1]."]), vault_name=vault.name, min_relevance=0.0)
    hits = eng.retriever.search("Kinesis 샤드", k=2)
    assert eng.read_blocks(hits) == 0 and eng.model.texts == []  # not before use_blocks
    eng.use_blocks()
    assert eng.read_blocks(hits) == 2 and eng.read_blocks(hits) == 0
    (start, prefix), = eng.model.prompts[-1:]
    assert start[0].content == prefix[0].content == prompts.ANSWER_SYSTEM
    assert prefix[1].content == start[1].content + "[1] " and start[1].content.endswith("Sources:\n\n")
    for block in eng.model.texts:  # each read as source [1], as it opens an answer prompt
        assert block.startswith(prefix[1].content)
    run(eng, "Kinesis 샤드?")
    asked = eng.model.seen[0][1].content
    assert eng.model.texts[0][len(start[1].content):] in asked  # a block is part of the prompt


def test_spare_time_reads_the_latest_sources_first_then_every_section_until_stopped(vault, blocks_on):
    eng = ChatEngine(SpyRetriever(vault), BlockChat(replies=["스캔한다 [1]."]), vault_name=vault.name,
                     min_relevance=0.0, k=1)
    eng.use_blocks()
    run(eng, "Glue 크롤러?")
    assert not eng.read_spare(lambda: len(eng.model.texts) == 1)  # stopped: there is more to read
    assert "크롤러" in eng.model.texts[0]  # the last question's source first
    assert eng.read_spare(lambda: False)
    assert len(eng.model.texts) == 3  # every section of the vault, once
    calls = eng.model.calls
    assert eng.read_spare(lambda: False) and eng.model.calls == calls  # the next pass asks nothing
    eng.model.limit = 1
    eng.model.texts.clear()
    eng.model.blocks.forget(next(iter(eng.model.blocks.sizes)))
    again = ChatEngine(SpyRetriever(vault), eng.model, vault_name=vault.name, min_relevance=0.0, k=1)
    again.use_blocks()  # a smaller disk budget: full after one more block
    assert again.read_spare(lambda: False) and eng.model.texts == []  # full: no block pushed out


def test_spare_time_reads_the_last_answers_sources_first_not_hits_past_the_budget(vault, blocks_on):
    eng = ChatEngine(SpyRetriever(vault), BlockChat(replies=["샤드 [1].", "스캔한다 [1]."]), vault_name=vault.name,
                     min_relevance=0.0, k=3, count_tokens=len, budget_tokens=90)  # room for one source
    eng.use_blocks()
    assert [s.heading for s in run(eng, "Kinesis 샤드 처리량?")[2].sources] == ["kinesis 노트 > 샤드 처리량"]
    assert [s.heading for s in run(eng, "Glue 크롤러 S3 스캔?")[2].sources] == ["glue 노트 > 크롤러"]
    assert not eng.read_spare(lambda: len(eng.model.texts) == 2)
    assert "크롤러" in eng.model.texts[0] and "샤드" in eng.model.texts[1]  # the latest answer's first


def test_spare_time_drops_the_blocks_of_edited_sections_once_per_sync(vault, blocks_on):
    eng = ChatEngine(SpyRetriever(vault), BlockChat(replies=[]), vault_name=vault.name, min_relevance=0.0, k=1)
    eng.use_blocks()
    assert eng.read_spare(lambda: False) and len(eng.model.blocks) == 3
    write_note(vault, "glue.md", "glue", {"크롤러": GLUE.replace("스캔해", "읽어")}, tags=("service/glue",))
    (vault / "emr.md").unlink()
    sync(vault, Store(index_dir(vault)), get_embedder())
    assert eng.read_spare(lambda: False)
    kept = ["".join(map(chr, block)) for block in eng.model.blocks.sizes]
    assert len(kept) == 2 and any("읽어" in k for k in kept)  # the new text read, the old dropped
    assert not any("스캔해" in k or "Spark" in k for k in kept)
    assert len(list(eng.model.blocks.folder.glob("*.kv"))) == 2  # and their files
    calls = eng.model.calls
    assert eng.read_spare(lambda: False) and eng.model.calls == calls  # not pruned again until a sync


def test_blocks_of_one_vault_are_never_dropped_for_another(vault, tmp_path, blocks_on):
    other = tmp_path / "other vault"
    write_note(other, "s3.md", "s3", {"버전 관리": "S3 버전 관리는 객체의 모든 버전을 보존한다."})
    sync(other, Store(index_dir(other)), get_embedder())
    engines = [ChatEngine(SpyRetriever(v), BlockChat(replies=[]), vault_name=v.name, min_relevance=0.0)
               for v in (vault, other)]
    for eng in engines:
        eng.use_blocks()
        assert eng.read_spare(lambda: False)
    assert engines[0].model.blocks.folder != engines[1].model.blocks.folder
    again = ChatEngine(SpyRetriever(vault), BlockChat(replies=[]), vault_name=vault.name, min_relevance=0.0)
    assert again.use_blocks() == 3 and again.prune_blocks() == 0  # its own, from disk


def test_cli_warm_clear_deletes_what_was_kept_for_those_notes(vault, tmp_path, monkeypatch, blocks_on):
    from tutor import llm

    model = BlockChat(replies=[])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: model)
    assert CliRunner().invoke(cli, ["warm", "--notes", str(vault)]).exit_code == 0
    folder = model.blocks.folder
    assert len(list(folder.glob("*.kv"))) == 3
    monkeypatch.delenv("TUTOR_BLOCKS")  # turned off, and the disk wanted back
    result = CliRunner().invoke(cli, ["warm", "--clear", "--notes", str(vault)])
    assert result.exit_code == 0 and "3 kept sections deleted" in result.output, result.output
    assert not folder.exists()
    result = CliRunner().invoke(cli, ["warm", "--clear", "--notes", str(vault)])
    assert "0 kept sections deleted" in result.output


def test_cli_warm_says_what_it_dropped_of_edited_notes(vault, monkeypatch, blocks_on):
    from tutor import llm

    model = BlockChat(replies=[])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: model)
    assert CliRunner().invoke(cli, ["warm", "--notes", str(vault)]).exit_code == 0
    (vault / "emr.md").unlink()
    sync(vault, Store(index_dir(vault)), get_embedder())
    result = CliRunner().invoke(cli, ["warm", "--notes", str(vault)])
    assert result.exit_code == 0 and "dropped 1 section since edited or deleted" in result.output
    assert "2 sections kept" in result.output


def test_cli_warm_reads_every_section_once_and_says_where_it_keeps_them(vault, monkeypatch, blocks_on):
    from tutor import llm

    model = BlockChat(replies=[])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: model)
    result = CliRunner().invoke(cli, ["warm", "--notes", str(vault)])
    assert result.exit_code == 0, result.output
    assert len(model.texts) == 3 and "3 sections kept" in result.output and "blocks" in result.output
    result = CliRunner().invoke(cli, ["warm", "--notes", str(vault)])
    assert len(model.texts) == 3 and "3 sections kept" in result.output  # nothing read again
    monkeypatch.delenv("TUTOR_BLOCKS")
    result = CliRunner().invoke(cli, ["warm", "--notes", str(vault)])
    assert result.exit_code == 1 and "TUTOR_BLOCKS=1" in result.output and len(model.texts) == 3


def test_a_home_where_sections_cannot_be_kept_is_said_and_answers_go_on(vault, monkeypatch, blocks_on, tutor_home):
    from tutor import llm

    eng = ChatEngine(SpyRetriever(vault), BlockChat(replies=["샤드 [1]."]), vault_name=vault.name, min_relevance=0.0)
    (tutor_home / "blocks").parent.mkdir(parents=True, exist_ok=True)
    (tutor_home / "blocks").write_text("a file where the folder goes")
    assert eng.use_blocks() == 0 and "cannot keep note sections" in eng.blocks_problem
    assert eng.read_blocks(eng.retriever.search("Kinesis", k=1)) == 0
    assert run(eng, "Kinesis 샤드?")[2].grounded
    model = BlockChat(replies=[])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: model)
    result = CliRunner().invoke(cli, ["warm", "--notes", str(vault)])
    assert result.exit_code == 1 and "Nothing can be kept: cannot keep note sections" in result.output
