"""tools/denoise_example.py: one benchmark mixture drawn before and after denoising, as one PNG
whose titles carry the SI-SDR; bad choices are one-line errors."""

from __future__ import annotations

import importlib.util
import re

import pytest
import soundfile as sf
from conftest import REPO

from scoreaudio.data.synthetic import synthesize_utterance


def _tool():
    spec = importlib.util.spec_from_file_location("denoise_example", REPO / "tools" / "denoise_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def clean_dir(tmp_path):
    root = tmp_path / "clean"
    root.mkdir()
    for k in range(3):
        sf.write(root / f"utt{k}.wav", synthesize_utterance(k, 9100 + k, 2.0, 16000), 16000)
    return root


def test_draws_the_benchmark_mixture_before_and_after(tmp_path, clean_dir, capsys):
    out = tmp_path / "pics" / "example.png"
    assert (
        _tool().main(
            [
                "--clean-dir",
                str(clean_dir),
                "--noise",
                "white",
                "--snr",
                "5",
                "--file",
                "1",
                "--files",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[20:24], "big") == 1000  # three stacked panels
    line = capsys.readouterr().out
    before, after = map(float, re.search(r"SI-SDR (-?[\d.]+) -> (-?[\d.]+) dB", line).groups())
    assert before == pytest.approx(5.0, abs=0.3)  # white noise mixed at 5 dB SNR
    assert after > before  # the built-in model removes white noise from a synthetic voice


def test_bad_choices_are_one_line_errors(tmp_path, clean_dir, capsys):
    tool = _tool()
    assert (
        tool.main(
            [
                "--clean-dir",
                str(clean_dir),
                "--noise",
                "white",
                "--file",
                "7",
                "--files",
                "3",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        != 0
    )
    err = capsys.readouterr().err
    assert "--file 7" in err and "use 0 to 2" in err and "Traceback" not in err
    assert (
        tool.main(["--clean-dir", str(clean_dir), "--noise", "real", "--out", str(tmp_path / "x.png")]) != 0
    )
    assert "--noise-dir" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
