"""The command line as a user meets it: help, data info/check, info, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import corpus_fixtures as fx
import pytest
from conftest import REPO

from scoreaudio.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "scoreaudio", "--help"],
        [sys.executable, "-m", "scoreaudio.train", "--help"],
        ["scoreaudio", "--help"],
    ],
)
def test_help_works_as_a_process(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


@pytest.mark.parametrize("command", ["train", "generate", "denoise", "evaluate", "data", "info", "report"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: scoreaudio " + command in capsys.readouterr().out


def test_data_info_on_a_real_layout(tmp_path, capsys):
    root = fx.make_ljspeech(tmp_path / "LJSpeech-1.1")
    assert main(["data", "info", str(REPO / "recipes/ljspeech.yaml"), f"data.root={root}"]) == 0
    out = capsys.readouterr().out
    assert "ljspeech" in out and "train" in out and "valid" in out and "test" in out
    assert "22050" in out


def test_data_check_reports_bad_files_and_exit_code(tmp_path, capsys):
    root = fx.make_folder(tmp_path / "speech")
    assert main(["data", "check", str(REPO / "recipes/folder.yaml"), f"data.root={root}"]) == 0
    capsys.readouterr()
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / "empty.wav").write_bytes(b"")
    assert (
        main(
            [
                "data",
                "check",
                str(REPO / "recipes/folder.yaml"),
                f"data.root={root}",
                "data.manifest_cache=false",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "broken.wav" in out and "empty.wav" in out


def test_missing_dataset_root_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LJSPEECH_ROOT", raising=False)
    assert (
        main(["data", "info", str(REPO / "recipes/ljspeech.yaml"), f"data.root={tmp_path / 'nowhere'}"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "ljspeech" in err and "data.root" in err and "LJSPEECH_ROOT" in err


def test_info_for_recipe_and_checkpoint(tiny_run, capsys):
    assert main(["info", str(REPO / "recipes/quickstart.yaml")]) == 0
    out = capsys.readouterr().out
    assert "stft_unet_small" in out and "parameters" in out and "receptive_field" in out
    assert main(["info", str(tiny_run), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"preset": "unet2d_tiny"' in out and '"step": 2' in out


def test_unknown_target_and_typo_are_one_line_errors(capsys):
    assert main(["info", "no/such/thing.pt"]) == 2
    assert main(["data", "info", str(REPO / "recipes/quickstart.yaml"), "data.sampel_rate=8000"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "data.sample_rate" in err
