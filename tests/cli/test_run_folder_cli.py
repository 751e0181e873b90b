"""Run folders are never lost or silently mixed: ``train --out`` into a used folder,
``--resume`` with other settings or fewer epochs, an extended cosine schedule, the data
folder saved absolute, temporary files of a killed run, ``eval`` of an interrupted run,
file permissions."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from chainrule.cli import main

QUICK = ["--subset", "100", "--hidden", "8", "--no-progress"]


def train(*args: str):
    return CliRunner().invoke(main, ["train", *args])


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "run"
    result = train(*QUICK, "--epochs", "2", "--out", str(folder))
    assert result.exit_code == 0, result.output
    return folder


def test_a_folder_holding_a_run_is_not_trained_into_again(run_dir):
    before = (run_dir / "model.npz").read_bytes()
    result = train(*QUICK, "--epochs", "1", "--out", str(run_dir))
    assert result.exit_code == 2, result.output
    assert "already holds a run" in result.output and "--overwrite" in result.output
    assert (run_dir / "model.npz").read_bytes() == before


def test_overwrite_starts_afresh(run_dir):
    result = train(*QUICK, "--epochs", "1", "--out", str(run_dir), "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(json.loads((run_dir / "history.json").read_text())["epochs"]) == 1
    assert not (run_dir / "confusion_matrix.png").exists()


def test_resume_refuses_settings_that_differ_and_names_them(run_dir):
    config_before = (run_dir / "config.json").read_text()
    result = train("--out", str(run_dir), "--resume", "--epochs", "3", "--lr", "0.5",
                   "--hidden", "9")
    assert result.exit_code == 2, result.output
    assert "--lr 0.5 (saved: 0.1)" in result.output
    assert "--hidden 9 (saved: 8)" in result.output
    assert (run_dir / "config.json").read_text() == config_before
    # the same values as saved are no conflict
    result = train("--out", str(run_dir), "--resume", "--epochs", "3", "--hidden", "8",
                   "--no-progress")
    assert result.exit_code == 0, result.output


def test_resume_with_fewer_epochs_than_done_says_so_and_changes_nothing(run_dir):
    config_before = (run_dir / "config.json").read_text()
    result = train("--out", str(run_dir), "--resume", "--epochs", "1")
    assert result.exit_code == 2, result.output
    assert "already trained 2 epochs" in result.output
    assert (run_dir / "config.json").read_text() == config_before


def test_resume_extends_to_the_total_number_of_epochs(run_dir):
    result = train("--out", str(run_dir), "--resume", "--epochs", "4", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "epoch    3/4" in result.output and "epoch    1/4" not in result.output
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 4
    assert len(json.loads((run_dir / "history.json").read_text())["epochs"]) == 4


def test_an_extended_cosine_schedule_goes_on_along_the_longer_cosine(tmp_path):
    """2 epochs of a 2-epoch cosine, then extended to 4: epoch 3 and 4 get the rates of
    a 4-epoch cosine at positions 2 and 3 (not 0, and not the full rate again)."""
    out = tmp_path / "cosine"
    common = [*QUICK, "--lr-schedule", "cosine", "--lr", "0.1"]
    assert train(*common, "--epochs", "2", "--out", str(out)).exit_code == 0
    result = train("--out", str(out), "--resume", "--epochs", "4", "--no-progress")
    assert result.exit_code == 0, result.output
    rates = [row["lr"] for row in json.loads((out / "history.json").read_text())["epochs"]]

    def cosine(k, total):
        return 0.1 * (1 + math.cos(math.pi * k / total)) / 2

    expected = [cosine(0, 2), cosine(1, 2), cosine(2, 4), cosine(3, 4)]
    assert rates == pytest.approx(expected)


def test_the_data_folder_is_saved_absolute_and_resume_may_move_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    out = tmp_path / "run"
    result = train(*QUICK, "--epochs", "1", "--data-dir", "data", "--out", str(out))
    assert result.exit_code == 0, result.output  # digits ignore the folder
    saved = json.loads((out / "config.json").read_text())["data_dir"]
    assert saved == str(tmp_path / "data")
    (tmp_path / "moved").mkdir()
    result = train("--out", str(out), "--resume", "--epochs", "2", "--data-dir", "moved",
                   "--no-progress")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["data_dir"] == str(tmp_path /
                                                                           "moved")


def test_temporary_files_of_a_killed_run_are_cleaned_at_the_next_start(run_dir):
    leftover = run_dir / ".checkpoint.npz.1a2b3c4d.tmp"
    leftover.write_bytes(b"half a checkpoint")
    result = train("--out", str(run_dir), "--resume", "--epochs", "3", "--no-progress")
    assert result.exit_code == 0, result.output
    assert not leftover.exists()
    assert not list(run_dir.glob(".*"))


def test_eval_of_an_interrupted_run_uses_its_last_checkpoint(run_dir):
    (run_dir / "model.npz").unlink()
    result = CliRunner().invoke(main, ["eval", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "after epoch 2" in result.output and "test accuracy" in result.output


def test_every_run_file_gets_the_same_permissions(run_dir):
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in run_dir.iterdir()}
    umask = os.umask(0)
    os.umask(umask)
    assert set(modes.values()) == {0o666 & ~umask}, modes
    assert Path(run_dir / "checkpoint.npz").exists()
