"""Corpus readers on fixtures in each real layout; roots, splits, pairs, caching and bad input."""

from __future__ import annotations

import logging

import pytest

from scoreaudio.config import compose
from scoreaudio.data import corpora
from scoreaudio.data.corpora import READERS, build_manifest, hash_split
from scoreaudio.data.manifest import AudioMeta, read_manifest, write_manifest
from scoreaudio.errors import DataError

try:
    from corpus_fixtures import (
        make_folder,
        make_librispeech,
        make_libritts,
        make_ljspeech,
        make_sc09,
        make_vctk,
        make_voicebank_demand,
        write,
    )
except ImportError:  # tests/ imported as a package
    from tests.corpus_fixtures import (
        make_folder,
        make_librispeech,
        make_libritts,
        make_ljspeech,
        make_sc09,
        make_vctk,
        make_voicebank_demand,
        write,
    )


def cfg_for(dataset, root=None, *more):
    over = [f"data.dataset={dataset}"] + ([f"data.root={root}"] if root is not None else []) + list(more)
    return compose(None, over)


def ids(metas):
    return [m.id for m in metas]


def test_readers_cover_every_dataset_choice():
    from scoreaudio.config import CHOICES

    assert set(READERS) == set(CHOICES["data.dataset"])


def test_ljspeech(tmp_path):
    root = make_ljspeech(tmp_path / "LJSpeech-1.1")
    man = build_manifest(cfg_for("ljspeech", root))
    assert ids(man["test"]) == ["LJ001-0001", "LJ001-0002", "LJ002-0001"]
    assert ids(man["valid"]) == ["LJ003-0001", "LJ003-0002"]
    assert ids(man["train"]) == ["LJ004-0001", "LJ010-0003", "LJ050-0002"]
    m = {m.id: m for s in man.values() for m in s}
    assert m["LJ002-0001"].text == "In fourteen hundred the press"  # the normalised column
    assert m["LJ001-0002"].text == 'in being "comparatively" modern.'  # quotes are not special
    assert m["LJ001-0001"].sample_rate == 22050 and m["LJ001-0001"].duration == pytest.approx(0.3, abs=1e-4)
    assert m["LJ001-0001"].speaker == "LJ" and m["LJ001-0001"].noisy_path is None


def test_ljspeech_missing_clip_is_reported(tmp_path):
    root = make_ljspeech(tmp_path / "lj")
    (root / "wavs" / "LJ003-0002.wav").unlink()
    with pytest.raises(DataError, match=r"1 clip.*LJ003-0002\.wav"):
        build_manifest(cfg_for("ljspeech", root))


@pytest.mark.parametrize("layout", ["0.92", "legacy"])
def test_vctk(tmp_path, layout):
    root = make_vctk(tmp_path / "vctk", layout=layout)
    man = build_manifest(cfg_for("vctk", root))
    assert {m.speaker for m in man["valid"]} == {"p226", "p287"}
    assert {m.speaker for m in man["test"]} == {"p232", "p257"}
    assert {m.speaker for m in man["train"]} == {"p225", "p300"}
    assert [len(man[s]) for s in ("train", "valid", "test")] == [4, 4, 4]  # mic1 only
    m = {m.id: m for s in man.values() for m in s}
    assert set(m) >= {"p225_001", "p300_002"}
    assert m["p225_001"].text == "Please call Stella p225 1." and m["p300_002"].text is None
    assert m["p225_001"].sample_rate == 48000
    if layout == "0.92":
        assert m["p225_001"].path.endswith("p225_001_mic1.flac")


def test_voicebank_demand_pairs(tmp_path):
    root = make_voicebank_demand(tmp_path / "vb")
    man = build_manifest(cfg_for("voicebank_demand", root))
    assert ids(man["valid"]) == ["p226_001", "p226_002", "p287_001"]
    assert ids(man["train"]) == ["p230_001", "p230_002", "p239_001"]
    assert ids(man["test"]) == ["p232_001", "p257_001"]
    for metas in man.values():
        for m in metas:
            assert "clean_" in m.path and "noisy_" in m.noisy_path
            assert m.path.rsplit("/", 1)[1] == m.noisy_path.rsplit("/", 1)[1]
            assert m.speaker == m.id.split("_")[0]
    assert man["test"][0].text == "Sentence p232_001."


def test_voicebank_demand_missing_partner_is_reported(tmp_path):
    root = make_voicebank_demand(tmp_path / "vb", drop_partner=True)
    with pytest.raises(DataError, match=r"voicebank_demand: 1 file.*p230_002\.wav.*re-extract") as e:
        build_manifest(cfg_for("voicebank_demand", root))
    assert "\n" not in str(e.value)


def test_voicebank_demand_56spk_folders(tmp_path):
    root = make_voicebank_demand(tmp_path / "vb")
    for kind in ("clean", "noisy"):
        (root / f"{kind}_trainset_28spk_wav").rename(root / f"{kind}_trainset_56spk_wav")
    man = build_manifest(cfg_for("voicebank_demand", root))
    assert len(man["train"]) == 3 and len(man["valid"]) == 3


def test_librispeech(tmp_path):
    root = make_librispeech(tmp_path / "LibriSpeech")
    man = build_manifest(cfg_for("librispeech", root))
    assert ids(man["train"]) == ["19-198-0000", "19-198-0001", "26-495-0000", "26-495-0001"]
    assert ids(man["valid"]) == ["84-121123-0000", "84-121123-0001"]
    assert ids(man["test"]) == ["121-121726-0000", "121-121726-0001"]
    assert man["train"][1].text == "TEXT NUMBER 1 OF 19" and man["train"][0].speaker == "19"
    both = "data.train_subsets=[train-clean-100,train-other-500]"
    man2 = build_manifest(cfg_for("librispeech", root, both))
    assert len(man2["train"]) == 5
    with pytest.raises(DataError, match=r"subset 'train-clean-360' not found.*available: dev-clean"):
        build_manifest(cfg_for("librispeech", root, "data.train_subsets=[train-clean-360]"))


def test_libritts(tmp_path, caplog):
    root = make_libritts(tmp_path / "LibriTTS")
    man = build_manifest(cfg_for("libritts", root))
    assert [len(man[s]) for s in ("train", "valid", "test")] == [3, 2, 1]
    assert man["train"][0].id == "19_198_000000_000000"
    assert man["train"][0].text == "Normalized text 0 of 19." and man["train"][0].sample_rate == 24000
    # a default valid/test subset that is absent only warns
    import shutil

    shutil.rmtree(root / "test-clean")
    with caplog.at_level(logging.WARNING):
        man = build_manifest(cfg_for("libritts", root))
    assert man["test"] == [] and "test-clean" in caplog.text


def test_sc09(tmp_path):
    root = make_sc09(tmp_path / "speech_commands")
    man = build_manifest(cfg_for("sc09", root))
    assert [len(man[s]) for s in ("train", "valid", "test")] == [10, 10, 10]
    assert {m.speaker for m in man["valid"]} == {"0a2b400e"}
    assert {m.speaker for m in man["test"]} == {"1b4c9b89"}
    texts = {m.text for s in man.values() for m in s}
    assert texts == {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    assert all("yes" not in m.path and "_background_noise_" not in m.path for s in man.values() for m in s)
    (root / "testing_list.txt").unlink()
    with pytest.raises(DataError, match="testing_list.txt"):
        build_manifest(cfg_for("sc09", root))


def test_folder(tmp_path):
    root = make_folder(tmp_path / "recs")
    cfg = cfg_for("folder", root, "data.valid_fraction=0.25", "data.test_fraction=0.25")
    man = build_manifest(cfg)
    every = [m for s in man.values() for m in s]
    assert sorted(ids(every)) == [
        "alice/a01",
        "alice/a02",
        "alice/a03",
        "alice/a04",
        "alice/sub/a05",
        "bob/b01",
        "bob/b02",
        "bob/b03",
        "bob/b04",
        "bob/b05",
        "carol/c01",
        "top",
    ]
    by = {m.id: m for m in every}
    assert by["alice/sub/a05"].speaker == "alice" and by["top"].speaker is None
    assert by["bob/b05"].sample_rate == 44100 and by["carol/c01"].sample_rate == 16000
    for m in every:
        assert m.split == hash_split(m.id + m.path[m.path.rfind(".") :], 0.25, 0.25)
    assert build_manifest(cfg) == man  # deterministic


def test_hash_split_is_stable_and_proportional():
    assert hash_split("spk/a.wav", 0.1, 0.1) == hash_split("spk/a.wav", 0.1, 0.1)
    splits = [hash_split(f"s{i % 7}/utt{i}.wav", 0.1, 0.05) for i in range(20000)]
    assert splits.count("test") / 20000 == pytest.approx(0.05, abs=0.01)
    assert splits.count("valid") / 20000 == pytest.approx(0.10, abs=0.01)
    # growing valid_fraction only moves files from train to valid, never out of test
    grown = [hash_split(f"s{i % 7}/utt{i}.wav", 0.2, 0.05) for i in range(2000)]
    assert all(b == a or (a, b) == ("train", "valid") for a, b in zip(splits, grown))


def test_synthetic_manifest(tmp_path):
    cfg = cfg_for(
        "synthetic",
        tmp_path / "syn",
        "data.synthetic.train_utterances=5",
        "data.synthetic.valid_utterances=2",
        "data.synthetic.test_utterances=2",
        "data.synthetic.utterance_seconds=0.3",
        "data.synthetic.num_speakers=2",
    )
    man = build_manifest(cfg)
    assert [len(man[s]) for s in ("train", "valid", "test")] == [5, 2, 2]
    assert {m.speaker for m in man["train"]} == {"spk00", "spk01"}
    assert all(m.sample_rate == 16000 and 0.2 < m.duration < 0.4 for s in man.values() for m in s)


def test_synthetic_without_root_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREAUDIO_CACHE", str(tmp_path / "cache"))
    cfg = cfg_for(
        "synthetic",
        None,
        "data.synthetic.train_utterances=2",
        "data.synthetic.valid_utterances=1",
        "data.synthetic.test_utterances=1",
        "data.synthetic.utterance_seconds=0.3",
    )
    man = build_manifest(cfg)
    assert man["train"][0].path.startswith(str(tmp_path / "cache" / "synthetic-"))


def test_missing_root_messages(tmp_path, monkeypatch):
    with pytest.raises(DataError) as e:
        build_manifest(cfg_for("ljspeech", tmp_path / "nowhere"))
    msg = str(e.value)
    assert msg.startswith("ljspeech: dataset root not found at") and str(tmp_path / "nowhere") in msg
    assert "metadata.csv" in msg and "data.root=" in msg and "\n" not in msg
    monkeypatch.delenv("LJSPEECH_ROOT", raising=False)
    with pytest.raises(DataError, match=r"ljspeech: no dataset root given .*\$LJSPEECH_ROOT.*LJSPEECH_ROOT"):
        build_manifest(cfg_for("ljspeech", None, "data.root_env=LJSPEECH_ROOT"))
    root = make_ljspeech(tmp_path / "lj")
    monkeypatch.setenv("LJSPEECH_ROOT", str(root))
    assert len(build_manifest(cfg_for("ljspeech", None, "data.root_env=LJSPEECH_ROOT"))["train"]) == 3
    # a root that exists but holds another layout
    wrong = make_folder(tmp_path / "wrong")
    for name in ("ljspeech", "vctk", "voicebank_demand", "librispeech", "libritts", "sc09"):
        with pytest.raises(DataError, match=rf"^{name}: dataset root not found at '{wrong}'"):
            build_manifest(cfg_for(name, wrong))


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        build_manifest(cfg_for("folder", tmp_path / "empty"))


def test_unreadable_file_is_kept_flagged_and_warned(tmp_path, caplog):
    root = make_folder(tmp_path / "recs")
    (root / "bob" / "broken.wav").write_bytes(b"not a wav at all" * 10)
    with caplog.at_level(logging.WARNING):
        man = build_manifest(cfg_for("folder", root))
    bad = [m for s in man.values() for m in s if m.id == "bob/broken"]
    assert len(bad) == 1 and bad[0].sample_rate == 0 and not bad[0].readable
    assert "could not be read" in caplog.text


def test_max_files_caps_every_split(tmp_path):
    root = make_sc09(tmp_path / "sc")
    man = build_manifest(cfg_for("sc09", root, "data.max_files=3"))
    assert [len(man[s]) for s in ("train", "valid", "test")] == [3, 3, 3]
    texts = [m.text for m in man["train"]]
    assert len(set(texts)) == 3  # evenly spaced, not the first three


def test_manifest_cache_hit_and_invalidation(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "recs")
    run = tmp_path / "run"
    cfg = cfg_for("folder", root)
    first = build_manifest(cfg, cache_dir=run)
    cached = list(run.glob("manifest-folder-*.jsonl"))
    assert len(cached) == 1

    def boom(*a, **k):
        raise AssertionError("rescanned")

    monkeypatch.setitem(corpora.READERS, "folder", boom)
    assert build_manifest(cfg, cache_dir=run) == first  # served from the cache
    write(root / "dave" / "d01.wav", 0.3, 16000)  # the listing changed -> rescan
    monkeypatch.setitem(corpora.READERS, "folder", corpora.read_folder)
    again = build_manifest(cfg, cache_dir=run)
    assert "dave/d01" in ids([m for s in again.values() for m in s])
    assert len(list(run.glob("manifest-folder-*.jsonl"))) == 1  # the stale one is gone
    monkeypatch.setitem(corpora.READERS, "folder", boom)
    with pytest.raises(AssertionError, match="rescanned"):
        build_manifest(cfg_for("folder", root, "data.manifest_cache=false"), cache_dir=run)


def test_manifest_jsonl_roundtrip_and_errors(tmp_path):
    metas = [
        AudioMeta("a", "/x/a.wav", 1.5, 16000, "s1", "héllo | world", "train"),
        AudioMeta("b", "/x/b.wav", 2.0, 48000, None, None, "test", "/x/nb.wav"),
    ]
    p = write_manifest(tmp_path / "m" / "man.jsonl", metas)
    assert read_manifest(p) == metas
    p.write_text(p.read_text() + '{"id": "c", "oops": 1}\n')
    with pytest.raises(DataError, match="line 3"):
        read_manifest(p)
    with pytest.raises(DataError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl")
