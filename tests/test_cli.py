"""The `megageo` command: every subcommand explains itself, and user errors are one line with exit status 2."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest


def megageo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "megageo", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", [[], ["data"], ["data", "synth"], ["data", "build"], ["data", "inspect"],
                                     ["model", "summary"], ["bench", "kernels"], ["plan"]])
def test_help_describes_each_command(command: list[str]) -> None:
    result = megageo(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: megageo")
    assert len(result.stdout.splitlines()) > 3


def every_parser(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("megageo",)):
    """(command path, parser) for the parser and each subcommand beneath it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_parser(child, (*path, name))


def test_every_help_renders_as_written() -> None:
    """argparse expands % only in argument help; a description's "%%" would reach the user as "%%"."""
    from megageo.cli import build_parser

    pages = dict(every_parser(build_parser()))
    assert ("megageo", "da", "twin") in pages and len(pages) > 20
    for path, parser in pages.items():
        text = parser.format_help()
        assert "%%" not in text and "%(" not in text, f"{' '.join(path)} --help: {text}"


def test_bad_config_is_one_line_and_exit_2(tmp_path) -> None:
    result = megageo("model", "summary", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"megageo: error: config file not found: {tmp_path / 'missing.yaml'}"


@pytest.mark.parametrize("launcher_flags", [
    ["--local_rank=1", "data", "inspect", "STORE"],  # where the deepspeed launcher puts it
    ["--local-rank=1", "data", "inspect", "STORE"],  # torch.distributed.launch, newer launchers
    ["data", "--local_rank=1", "inspect", "STORE"],
    ["data", "inspect", "STORE", "--local_rank", "1"],
])
def test_launcher_local_rank_is_accepted_anywhere(tmp_path, monkeypatch, capsys, launcher_flags) -> None:
    from megageo.cli import main

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    store = str(tmp_path / "missing.h5")
    assert main([store if token == "STORE" else token for token in launcher_flags]) == 2
    assert capsys.readouterr().err == f"megageo: error: {store}: no such store\n"  # the command ran
    assert os.environ["LOCAL_RANK"] == "1"


@pytest.mark.parametrize(("flags", "environment", "message"), [
    (["--local_rank=1"], "0", "--local_rank=1 disagrees with LOCAL_RANK=0 in the environment"),
    (["--local_rank=1", "--local-rank=2"], None, "--local_rank given several times with different values: [1, 2]"),
    (["--local_rank=one"], None, "--local_rank must be a non-negative integer (the launcher's local rank), got 'one'"),
    (["--local-rank"], None, "--local-rank must be a non-negative integer (the launcher's local rank), got 'data'"),
])
def test_inconsistent_local_rank_is_one_line(monkeypatch, capsys, flags, environment, message) -> None:
    from megageo.cli import main

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    if environment is not None:
        monkeypatch.setenv("LOCAL_RANK", environment)
    assert main([*flags, "data", "inspect", "x.h5"]) == 2
    assert capsys.readouterr().err == f"megageo: error: {message}\n"
