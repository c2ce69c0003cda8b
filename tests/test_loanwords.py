from index.loanwords import NAMES, expand


def test_korean_spelling_gets_the_english_name_whatever_the_particle():
    assert expand("아테나 요금은?") == "아테나 요금은? (Athena)"
    assert expand("글루가 하는 일과 크롤러의 역할") == "글루가 하는 일과 크롤러의 역할 (Glue, crawler)"


def test_spaces_inside_a_name_do_not_matter():
    assert expand("레이크 포메이션 권한") == expand("레이크포메이션 권한").replace("레이크포메이션", "레이크 포메이션")
    assert expand("스텝 펑션 재시도").endswith("(Step Functions)")


def test_longer_spelling_wins_and_names_are_added_once():
    assert expand("다이나모디비와 다이나모 스트림") == "다이나모디비와 다이나모 스트림 (DynamoDB)"
    assert expand("람다 함수와 람다 레이어") == "람다 함수와 람다 레이어 (Lambda)"


def test_questions_already_naming_it_in_english_or_in_english_only_are_unchanged():
    assert expand("Athena(아테나) 요금") == "Athena(아테나) 요금"
    assert expand("How does Athena charge?") == "How does Athena charge?"
    assert expand("파티션 키 설계") == "파티션 키 설계"


def test_no_spelling_hides_inside_another_korean_word_of_the_vault():
    """클러스터 contains 러스터 (Lustre): a key inside a common word would add a wrong name."""
    import re

    from tests.conftest import REPO

    words = set(re.findall("[\uac00-\ud7a3]+", " ".join(
        p.read_text(encoding="utf-8") for p in (REPO / "notes").glob("*.md"))))
    inside = {key: w for key in NAMES for w in words if key in w and not w.startswith(key)}
    assert not inside
