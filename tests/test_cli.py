"""The `megageo` command: every subcommand explains itself, and user errors are one line with exit status 2."""

from __future__ import annotations

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


def test_bad_config_is_one_line_and_exit_2(tmp_path) -> None:
    result = megageo("model", "summary", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"megageo: error: config file not found: {tmp_path / 'missing.yaml'}"
