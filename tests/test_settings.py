"""Choices kept in $TUTOR_HOME/settings.json: a broken file costs the choices, never a start."""
from __future__ import annotations

from tutor import settings
from tutor.llm_blocks import enabled


def test_a_choice_is_kept_beside_the_others_and_the_environment_wins(tutor_home, monkeypatch):
    monkeypatch.delenv("TUTOR_BLOCKS", raising=False)
    assert settings.get("blocks") is None and not enabled()
    settings.put("other", 3)
    settings.put("blocks", True)
    assert settings.get("other") == 3 and enabled()
    monkeypatch.setenv("TUTOR_BLOCKS", "0")
    assert not enabled()
    assert sorted(p.name for p in tutor_home.iterdir()) == ["settings.json"]  # no temporary file left


def test_a_broken_settings_file_means_the_defaults_and_is_replaced_on_the_next_choice(tutor_home, monkeypatch, caplog):
    monkeypatch.delenv("TUTOR_BLOCKS", raising=False)
    tutor_home.mkdir(parents=True)
    (tutor_home / "settings.json").write_bytes(b"\xff{not json")
    assert not enabled() and "the defaults apply" in caplog.text
    settings.put("blocks", True)
    assert enabled()
