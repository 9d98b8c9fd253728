"""``featureops.progress``: a bar or spinner on a terminal or when forced, silence otherwise."""

from __future__ import annotations

import io
import sys

import pytest

from featureops import progress
from featureops.progress import track, working


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.ENV_SWITCH, raising=False)
    monkeypatch.delenv("CI", raising=False)


def test_silent_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not sys.stderr.isatty()  # captured by pytest
    assert list(track(range(5), "ingesting drops")) == [0, 1, 2, 3, 4]
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_draws_when_forced_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(progress.ENV_SWITCH, "1")
    assert list(track(iter(range(3)), "ingesting drops", total=3)) == [0, 1, 2]
    out, err = capsys.readouterr()
    assert out == ""  # bars never mix into stdout (stage output, JSON)
    assert "ingesting drops" in err and "100%" in err, err


def test_draws_on_a_terminal_unless_ci_or_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(track(range(2), "running benchmarks")) == [0, 1]
    assert "running benchmarks" in terminal.getvalue()

    for env, value in (("CI", "true"), (progress.ENV_SWITCH, "0")):
        with monkeypatch.context() as m:
            m.setenv(env, value)
            quiet = FakeTerminal()
            m.setattr(sys, "stderr", quiet)
            assert list(track(range(2), "running benchmarks")) == [0, 1]
            assert quiet.getvalue() == "", env


def test_a_single_long_step_shows_a_finished_line_only_when_enabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with working("point-in-time join of 3 entity rows"):
        pass
    assert capsys.readouterr() == ("", "")  # not a terminal
    monkeypatch.setenv(progress.ENV_SWITCH, "1")
    with working("point-in-time join of 3 entity rows"):
        pass
    out, err = capsys.readouterr()
    assert out == "" and "point-in-time join of 3 entity rows" in err and "done" in err, err
