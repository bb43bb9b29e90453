"""scoreaudio report: one self-contained HTML page with players, spectrograms, settings and loss curves."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import soundfile as sf

from scoreaudio.audio.io import save
from scoreaudio.cli import main
from scoreaudio.report import build_report, write_report


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(page: str):
    p = _Tags()
    p.feed(page)
    return p.tags


def _tone(path, seconds=0.3, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    save(path, 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32), rate)


def test_samples_folder_lists_every_wav_sorted_and_embedded(tmp_path):
    folder = tmp_path / "samples"
    for name, f in [("sample_001.wav", 300.0), ("sample_000.wav", 440.0), ("sub/z.wav", 880.0)]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        _tone(folder / name, freq=f)
    (folder / "manifest.json").write_text(
        json.dumps({"settings": {"sampler": "heun", "steps": 50}, "rtf": 1.5, "files": []})
    )
    out = tmp_path / "report.html"
    assert main(["report", str(folder), "-o", str(out)]) == 0
    page = out.read_text()
    tags = _parse(page)
    audio = [a for t, a in tags if t == "audio"]
    images = [a for t, a in tags if t == "img"]
    assert len(audio) == 3
    assert all("controls" in a and a["src"].startswith("data:audio/wav;base64,") for a in audio)
    assert len(images) == 3 and all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert page.count("data:audio/wav;base64,") == 3
    # sorted by relative path; nothing outside the page is referenced
    assert re.findall(r"<h3>([^<]+\.wav)</h3>", page) == ["sample_000.wav", "sample_001.wav", "sub/z.wav"]
    assert not re.search(r'(src|href)="(?!data:)', page)
    # the embedded audio is the file itself
    wav, rate = sf.read(io.BytesIO(base64.b64decode(audio[0]["src"].split(",", 1)[1])))
    assert rate == 16000 and len(wav) == 4800
    assert "<th>sampler</th><td>heun</td>" in page and "<th>rtf</th><td>1.5</td>" in page
    # pictures were drawn in memory: the folder is unchanged
    assert not list(folder.rglob("*.png"))


def test_existing_png_is_used(tmp_path):
    folder = tmp_path / "s"
    _tone(folder / "a.wav")
    png = b"\x89PNG\r\n\x1a\n" + b"not really"
    (folder / "a.png").write_bytes(png)
    page, counts = build_report(folder)
    assert counts["audio"] == 1 and base64.b64encode(png).decode() in page


def test_run_dir_has_loss_curves_and_its_samples(tiny_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("metrics.jsonl", "config.yaml", "summary.json"):
        shutil.copy(tiny_run / name, run / name)
    _tone(run / "samples" / "step_0000002" / "sample_000.wav")
    path = write_report(run)
    assert path == run / "report.html"
    tags = _parse(path.read_text())
    curves = [a for t, a in tags if t == "img" and a.get("id") == "loss-curves"]
    assert len(curves) == 1 and curves[0]["src"].startswith("data:image/png;base64,")
    assert base64.b64decode(curves[0]["src"].split(",", 1)[1])[:4] == b"\x89PNG"
    assert sum(t == "audio" for t, _ in tags) == 1


def test_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no WAV files" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_unreadable_wav_is_reported_not_fatal(tmp_path):
    folder = tmp_path / "s"
    _tone(folder / "good.wav")
    (folder / "bad.wav").write_bytes(b"RIFF garbage")
    page, counts = build_report(folder)
    assert counts["audio"] == 2 and page.count("<audio") == 1 and "cannot read" in page


def test_make_report_tool_is_the_same_command(tmp_path):
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("make_report", REPO / "tools" / "make_report.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    _tone(tmp_path / "s" / "a.wav")
    assert tool.main([str(tmp_path / "s"), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("<audio") == 1
    assert tool.main([str(tmp_path / "nothing")]) == 2
