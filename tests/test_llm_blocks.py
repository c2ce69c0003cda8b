"""Kept source blocks (tutor.llm_blocks): finding them in a prompt, and keeping them on disk
so that a crash, a cut file or a full disk budget never hands the model the wrong keys."""
from __future__ import annotations

from tutor.llm_blocks import MIN_TOKENS, Blocks

START = [1, 2, 3]
PREFIX = [1, 2, 3, 9]
A = tuple(range(100, 100 + 40))
B = tuple(range(200, 200 + 30))


def blocks(tmp_path, **kw) -> Blocks:
    return Blocks(START, PREFIX, tmp_path / "blocks", **kw)


def test_blocks_are_found_anywhere_after_the_start_and_cut_blocks_by_their_shared_part(tmp_path):
    kept = blocks(tmp_path)
    kept.add(A, b"a" * 10)
    kept.add(B, b"b" * 10)
    prompt = [*START, 7, *A, 8, 8, *B[:-3], 5, 6]  # B cut short, as the budget cuts the last source
    assert kept.found(prompt) == [(4, A, len(A)), (4 + len(A) + 2, B, len(B) - 3)]
    assert kept.found([0, *prompt[1:]]) == []  # another prompt start: another system prompt
    short = [*START, *B[:MIN_TOKENS - 1], 0]
    assert kept.found(short) == []  # too little to be worth a copy


def test_blocks_outlive_the_process_and_the_least_recently_used_go_first(tmp_path):
    kept = blocks(tmp_path, max_bytes=25)
    kept.add(A, b"a" * 10)
    kept.add(B, b"b" * 10)
    assert kept.state(A) == b"a" * 10  # A is now the most recently used
    C = tuple(range(300, 340))
    kept.add(C, b"c" * 10)
    again = blocks(tmp_path, max_bytes=25)
    assert A in again and C in again and B not in again
    assert again.state(C) == b"c" * 10
    assert again.bytes == 20


def test_a_cut_or_half_written_block_is_forgotten_not_used(tmp_path):
    kept = blocks(tmp_path)
    kept.add(A, b"a" * 10)
    kept.add(B, b"b" * 10)
    kv_a = kept._file(A)
    kv_a.write_bytes(b"a" * 4)  # cut short (a full disk, a crash while copying the folder)
    kept._file(B).with_suffix(".tokens").unlink()  # a crash between the two writes
    again = blocks(tmp_path)
    assert B not in again and not kept._file(B).exists()
    assert A in again and again.state(A) is None  # the short file is found out when read
    assert A not in again and not kv_a.exists()
    assert again.found([*START, *A]) == []


def test_a_block_larger_than_the_disk_budget_is_not_kept(tmp_path):
    kept = blocks(tmp_path, max_bytes=5)
    kept.add(A, b"a" * 10)
    assert A not in kept and not list((tmp_path / "blocks").iterdir())


def test_keep_only_forgets_the_rest_and_their_files(tmp_path):
    kept = blocks(tmp_path)
    kept.add(A, b"a" * 10)
    kept.add(B, b"b" * 10)
    assert kept.keep_only({A, tuple(range(5, 50))}) == 1
    assert A in kept and B not in kept and kept.found([*START, *B]) == []
    assert sorted(p.suffix for p in (tmp_path / "blocks").iterdir()) == [".kv", ".tokens"]
    assert B not in blocks(tmp_path)


def test_clear_deletes_one_vaults_blocks_and_a_running_store_keeps_adding(tmp_path, tutor_home):
    from tutor.llm_blocks import clear, vault_folder

    mine, other = vault_folder(tmp_path / "mine"), vault_folder(tmp_path / "other")
    kept = Blocks(START, PREFIX, mine / "model")
    kept.add(A, b"a" * 10)
    Blocks(START, PREFIX, other / "model").add(B, b"b" * 10)
    assert clear(tmp_path / "mine") == (1, 10 + len(f"10 {' '.join(map(str, A))}"))
    assert not mine.exists() and (other / "model").exists()
    kept.add(B, b"b" * 10)  # the UI, still running, reads on
    again = Blocks(START, PREFIX, mine / "model")
    assert B in again and A not in again
    assert clear(tmp_path / "nowhere") == (0, 0)
