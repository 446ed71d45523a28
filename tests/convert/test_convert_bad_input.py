"""Bad input fails with one MegageoError line before anything is written."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys

import pytest

from runs import SAVED_AT

TAG = f"step{SAVED_AT:08d}"


def convert(capsys, *args: str) -> str:
    """Run `megageo convert ...`, expect exit status 2, return its one-line error."""
    from megageo.cli import main

    assert main(["convert", *map(str, args)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("megageo: error: ")
    return error


@pytest.mark.parametrize("action", ["consolidate", "reshard", "inspect"])
def test_a_folder_without_a_checkpoint_is_refused(capsys, tmp_path, action: str) -> None:
    out = tmp_path / "out"
    extra = {"consolidate": [out], "reshard": [out, "--tp", "1"], "inspect": []}[action]
    assert "not a megageo checkpoint (no 'latest' file" in convert(capsys, action, tmp_path, *extra)
    assert not out.exists()


def test_a_deepspeed_checkpoint_without_megageo_metadata_is_refused(capsys, tp2_run, tmp_path) -> None:
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(tp2_run / "checkpoints" / TAG, checkpoints / TAG)
    (checkpoints / TAG / "megageo.json").unlink()
    (checkpoints / "latest").write_text(TAG)
    error = convert(capsys, "consolidate", checkpoints, tmp_path / "out.safetensors")
    assert f"{checkpoints / TAG}: not a megageo checkpoint (no megageo.json)" in error
    assert not (tmp_path / "out.safetensors").exists()


def test_a_missing_shard_is_named(capsys, tp2_run, tmp_path) -> None:
    tag = tmp_path / TAG
    shutil.copytree(tp2_run / "checkpoints" / TAG, tag)
    (tag / "zero_pp_rank_0_mp_rank_01_optim_states.pt").unlink()
    error = convert(capsys, "reshard", tag, tmp_path / "out", "--tp", "1")
    assert "missing shard zero_pp_rank_0_mp_rank_01_optim_states.pt" in error
    assert "tp=2, cp=1, pp=1, dp=1, zero_stage=1" in error
    assert sorted(path.name for path in tmp_path.iterdir()) == [TAG]


def test_a_tensor_parallel_degree_that_splits_heads_is_refused(capsys, tp2_run, tmp_path) -> None:
    error = convert(capsys, "reshard", tp2_run, tmp_path / "out", "--tp", "3")
    assert "model.mixer.num_heads=4 is not divisible by parallel.tensor_parallel=3" in error
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_folder_is_left_alone(capsys, tp2_run, tmp_path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("x")
    assert "already exists" in convert(capsys, "reshard", tp2_run, tmp_path / "out", "--tp", "1")
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["keep"]


def test_a_file_that_is_not_a_release_is_refused(tmp_path) -> None:
    from megageo.convert.release import load_release
    from megageo.errors import MegageoError

    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(MegageoError, match="not a safetensors file"):
        load_release(path)


def test_a_full_disk_during_an_export_keeps_the_previous_release(tp2_run, tmp_path) -> None:
    """The kernel refuses files past 64 KB (EFBIG, as a full disk refuses with ENOSPC) while a new release is
    written over an existing one: one line, exit 2, and the old release's bytes untouched."""
    release = tmp_path / "release.safetensors"
    command = [sys.executable, "-m", "megageo", "convert", "consolidate", str(tp2_run), str(release)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    before = release.read_bytes()

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=full_disk)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == (f"megageo: error: {release}: could not be written (File too large); "
                                              "the existing release.safetensors is unchanged")
    assert release.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["release.safetensors"]
