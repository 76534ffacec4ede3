"""``~/.ray/auth_token`` is made once, whole, before an embedded Ray starts (``lrl.ray_token``):
Ray's own in-place write raced when two Rays started at once on a machine without it (two lrl
commands; the test processes of ``pytest -n`` on a fresh CI machine)."""

from __future__ import annotations

import re

import pytest

from lrl.ray_token import default_token_path, ensure_token_file


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    return tmp_path


def test_the_token_file_is_made_once_and_never_replaced(home, monkeypatch):
    path = default_token_path()
    assert path == home / ".ray" / "auth_token" and not path.exists()
    ensure_token_file()
    token = path.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    ensure_token_file()
    assert path.read_text() == token  # a second Ray starting reads the first one's token
    assert [p.name for p in path.parent.iterdir()] == ["auth_token"]  # no temporary file left
    path.write_text("mine")
    ensure_token_file()
    assert path.read_text() == "mine"  # a token the user made is theirs


def test_no_token_file_where_ray_would_make_none(home, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ensure_token_file()
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(home / "elsewhere"))
    ensure_token_file()
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 64)
    ensure_token_file()
    assert not (home / ".ray").exists()


def test_a_creator_that_loses_the_race_keeps_the_winners_token(home, monkeypatch):
    """Another process links its token in between this one's look and its link."""
    import os

    path = default_token_path()
    link = os.link

    def first_another(src, dst):
        path.write_text("winner")
        return link(src, dst)

    monkeypatch.setattr(os, "link", first_another)
    ensure_token_file()
    assert path.read_text() == "winner"
    assert [p.name for p in path.parent.iterdir()] == ["auth_token"]


class _Stop(Exception):
    pass


def test_the_embedded_ray_finds_the_token_file_made_before_it_starts(home, monkeypatch):
    """Without it Ray generated the token inside ``ray.init`` and wrote it in place."""
    import ray

    from lrl.runtime import EMBEDDED_ENV, RayConfig, init_ray

    for key, value in EMBEDDED_ENV.items():  # init_ray sets them for its Ray: restored after
        monkeypatch.setenv(key, value)
    seen = []

    def fake_init(**kwargs):
        seen.append(default_token_path().is_file())
        raise _Stop

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    with pytest.raises(_Stop):
        init_ray(RayConfig())
    assert seen == [True]
