"""data_info / data_check on fixtures, including a folder full of bad files."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from scoreaudio.config import compose
from scoreaudio.data.check import data_check, data_info

try:
    from corpus_fixtures import make_folder, make_ljspeech, make_voicebank_demand
except ImportError:  # tests/ imported as a package
    from tests.corpus_fixtures import make_folder, make_ljspeech, make_voicebank_demand


def _row(table, split):
    return next(line.split() for line in table.splitlines() if line.startswith(split + " "))


def test_data_info_ljspeech(tmp_path):
    root = make_ljspeech(tmp_path / "lj")
    out = data_info(compose(None, ["data.dataset=ljspeech", f"data.root={root}"]))
    assert out.splitlines()[0] == f"dataset: ljspeech   root: {root}"
    assert "utterances" in out and "sample rates" in out
    split, n, hours, rates, speakers, pairs, unreadable = _row(out, "train")
    assert (n, rates, speakers, pairs, unreadable) == ("3", "22050", "1", "0", "0")
    assert abs(float(hours) - (0.55 + 0.6 + 0.65) / 3600) <= 0.0005 + 1e-9  # printed to 3 decimals
    assert _row(out, "test")[1] == "3" and _row(out, "valid")[1] == "2"


def test_data_info_pairs_and_cap(tmp_path):
    root = make_voicebank_demand(tmp_path / "vb")
    out = data_info(compose(None, ["data.dataset=voicebank_demand", f"data.root={root}", "data.max_files=2"]))
    assert "max_files=2" in out.splitlines()[0]
    assert _row(out, "train")[1] == "2" and _row(out, "train")[5] == "2"
    assert _row(out, "test")[3] == "48000"


def test_data_check_all_ok(tmp_path):
    root = make_voicebank_demand(tmp_path / "vb")
    report, bad = data_check(compose(None, ["data.dataset=voicebank_demand", f"data.root={root}"]))
    assert bad == 0 and report.endswith("checked 16 file(s): all OK")


def test_data_check_lists_every_bad_file(tmp_path):
    root = make_folder(tmp_path / "recs")
    (root / "bad").mkdir()
    (root / "bad" / "corrupt.wav").write_bytes(b"RIFF" + b"\x01" * 200)
    (root / "bad" / "empty.wav").write_bytes(b"")
    sf.write(str(root / "bad" / "zero.wav"), np.zeros(0, dtype=np.float32), 16000)
    x = np.full(1600, 0.1, dtype=np.float32)
    x[5] = np.nan
    sf.write(str(root / "bad" / "nan.wav"), x, 16000, subtype="FLOAT")
    sf.write(str(root / "bad" / "silent.wav"), np.zeros(1600, dtype=np.float32), 16000)
    cfg = compose(None, ["data.dataset=folder", f"data.root={root}"])
    report, bad = data_check(cfg)
    assert bad == 5
    lines = report.splitlines()
    assert lines[0].endswith("checked 17 file(s): 5 bad")
    problems = {line.split()[1]: line.split()[2] for line in lines[3:]}
    assert problems == {
        "bad/corrupt": "unreadable",
        "bad/empty": "empty",
        "bad/zero": "empty",
        "bad/nan": "nonfinite",
        "bad/silent": "silent",
    }
    info = data_info(cfg)  # the manifest still lists them; unreadable ones are counted
    total_unreadable = sum(int(_row(info, s)[6]) for s in ("train", "valid", "test"))
    assert total_unreadable == 2  # corrupt and empty: their headers cannot be read
