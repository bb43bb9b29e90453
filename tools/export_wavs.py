"""Export WAV files for listening: from saved tensors, or from a dataset.

    # (a) tensors -> WAVs through the right Representation.decode
    python tools/export_wavs.py tensors samples/ --out wavs/              # .pt/.npy files or folders
    python tools/export_wavs.py tensors x.pt --checkpoint runs/quickstart-...   # its representation
    python tools/export_wavs.py tensors x.npy --representation stft --sample-rate 16000 --length 32000

    # (b) a dataset's examples: clean, and noisy at a chosen SNR
    python tools/export_wavs.py dataset recipes/quickstart.yaml --split valid --num 8 --snr 5 --noise pink

(a) A tensor is a waveform batch (N, 1, T), (N, T) or (T,), or a model-space batch (N, C, F, T)
(what ``scoreaudio generate --save-tensors`` writes, one ``sample_NNN.pt`` per sample). The
representation and sample rate come from ``--checkpoint``, else ``--representation`` and
``--sample-rate``, else the ``manifest.json`` that ``generate`` wrote beside the file. The length of
a spectrogram's waveform comes from ``--length``, else that manifest, else (frames - 1) * hop.
Samples are made peak-safe exactly as ``generate`` does (scaled down to a 0.99 peak, never
clipped), so exporting ``generate``'s tensors reproduces its WAVs. Output: ``OUT/<stem>.wav`` (or
``<stem>_NNN.wav`` for a file holding several examples).

(b) Whole files of the split (in manifest order), loudness-normalised as in training
(``data.normalize``), written as ``OUT/NNN_clean.wav`` and, with ``--snr`` (or for a paired corpus
such as VoiceBank-DEMAND), ``OUT/NNN_noisy.wav``; noise is drawn per example, seeded by its index.
A ``manifest.json`` lists the settings and the source files. Then ``scoreaudio report OUT`` makes a
page to listen to them.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

try:
    import scoreaudio  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoreaudio.audio.io import save
from scoreaudio.audio.representation import CompressedSTFT, Waveform, representation_from_dict
from scoreaudio.errors import ConfigError, DataError, ScoreAudioError
from scoreaudio.generation import MANIFEST, PEAK_LIMIT, OutputExistsError, limit_peaks, write_json

TENSOR_EXTS = (".pt", ".npy")


# --------------------------------------------------------------------------------------------
# (a) tensors
# --------------------------------------------------------------------------------------------
def find_tensor_files(inputs: Sequence[str]) -> List[Path]:
    """Files given, plus the .pt/.npy files of folders given (sorted); DataError when none."""
    files: List[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.suffix in TENSOR_EXTS and q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"'{p}' does not exist; pass .pt/.npy files or folders holding them")
    if not files:
        raise DataError(f"no .pt or .npy files in {', '.join(inputs)}")
    return files


def load_array(path: Path) -> torch.Tensor:
    """A float32 tensor from a .pt (a plain tensor, loaded with weights_only=True) or .npy file."""
    try:
        if path.suffix == ".npy":
            x = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            x = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        why = " ".join(str(e).split())[:120]
        raise DataError(f"cannot read '{path}' ({type(e).__name__}: {why})") from None
    if not isinstance(x, torch.Tensor):
        raise DataError(
            f"'{path}' holds a {type(x).__name__}, not a tensor; save a plain tensor (torch.save(x, path))"
        )
    if not x.is_floating_point():
        raise DataError(f"'{path}' holds a {x.dtype} tensor; expected real floating-point values")
    return x.float()


def as_batch(x: torch.Tensor, path: Path) -> torch.Tensor:
    """(T,) / (N, T) / (N, 1, T) -> (N, 1, T); (N, C, F, T) unchanged; anything else a DataError."""
    if x.ndim == 1:
        return x[None, None]
    if x.ndim == 2:
        return x[:, None]
    if (x.ndim == 3 and x.shape[1] == 1) or x.ndim == 4:
        return x
    raise DataError(
        f"'{path}' has shape {tuple(x.shape)}; expected a waveform (T,), (N, T), (N, 1, T) "
        f"or a model-space spectrogram (N, C, F, T)"
    )


def _manifest_beside(path: Path) -> Optional[dict]:
    m = path.parent / MANIFEST
    if not m.is_file():
        return None
    try:
        data = json.loads(m.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "representation" in data else None


@functools.lru_cache(maxsize=4)
def representation_of_checkpoint(checkpoint: str) -> Tuple[object, int]:
    """(representation, sample rate) stored in a checkpoint (a .pt file or a run directory)."""
    from scoreaudio.config import from_container
    from scoreaudio.utils.checkpoint import load_checkpoint_dict, resolve_checkpoint

    ckpt = load_checkpoint_dict(resolve_checkpoint(checkpoint))
    try:
        rate = int(from_container(ckpt["config"]).data.sample_rate)
        return representation_from_dict(ckpt["representation"]), rate
    except KeyError as e:
        raise DataError(f"checkpoint {checkpoint} has no {e}; it is incomplete") from None


def resolve_representation(args, path: Path, x: torch.Tensor):
    """(representation, sample_rate, length or None) for one tensor file."""
    length = args.length
    if args.checkpoint:
        rep, sr = representation_of_checkpoint(str(args.checkpoint))
        return rep, args.sample_rate or sr, length
    if args.representation:
        if args.sample_rate is None:
            raise ConfigError("--representation needs --sample-rate (or pass --checkpoint)")
        rep = CompressedSTFT() if args.representation == "stft" else Waveform()
        return rep, args.sample_rate, length
    manifest = _manifest_beside(path)
    if manifest is not None:
        rep = representation_from_dict(manifest["representation"])
        sr = args.sample_rate or int(manifest["sample_rate"])
        return rep, sr, length if length is not None else manifest.get("length")
    if x.ndim == 3:  # a waveform needs nothing but its rate
        if args.sample_rate is None:
            raise ConfigError(f"'{path}' is a waveform: pass --sample-rate (or --checkpoint)")
        return Waveform(), args.sample_rate, length
    raise ConfigError(
        f"'{path}' is a model-space tensor {tuple(x.shape)} and there is no {MANIFEST} beside "
        f"it: pass --checkpoint, or --representation stft --sample-rate RATE [--length N]"
    )


def decode(rep, x: torch.Tensor, length: Optional[int], path: Path) -> torch.Tensor:
    """(N, C, *S) in ``rep``'s space -> peak-safe (N, 1, T) waveforms."""
    per_frame = tuple(rep.encoded_shape(1)[:-1])  # (C,) or (C, F): all but the time axis
    if tuple(x.shape[1:-1]) != per_frame:
        raise DataError(
            f"'{path}' has shape {tuple(x.shape)}, which is not a batch of {rep!r}: expected "
            f"(N, {', '.join(map(str, per_frame))}, time)"
        )
    if length is None:  # the shortest waveform with this many frames
        length = (x.shape[-1] - 1) * rep.hop_length if isinstance(rep, CompressedSTFT) else x.shape[-1]
    if not torch.isfinite(x).all():
        raise DataError(f"'{path}' contains NaN or inf values")
    with torch.no_grad():
        wav = rep.decode(x, int(length)).float()
    if not torch.isfinite(wav).all():
        raise DataError(f"'{path}' decodes to non-finite audio")
    return limit_peaks(wav)


def export_tensors(args) -> List[Path]:
    if args.length is not None and args.length < 1:
        raise ConfigError(f"--length must be >= 1 sample, got {args.length}")
    if args.sample_rate is not None and args.sample_rate < 1:
        raise ConfigError(f"--sample-rate must be positive, got {args.sample_rate}")
    out = Path(args.out)
    jobs: List[Tuple[Path, torch.Tensor, object, int, Optional[int]]] = []
    for path in find_tensor_files(args.inputs):
        x = as_batch(load_array(path), path)
        rep, sr, length = resolve_representation(args, path, x)
        jobs.append((path, x, rep, sr, length))
    targets = [
        [out / (f"{p.stem}.wav" if len(x) == 1 else f"{p.stem}_{k:03d}.wav") for k in range(len(x))]
        for p, x, *_ in jobs
    ]
    flat = [t for ts in targets for t in ts]
    if len(set(flat)) != len(flat):
        raise ConfigError("two inputs share a file name (stem); export them to different --out folders")
    _check_free(flat, args.overwrite)
    written = []
    for (path, x, rep, sr, length), names in zip(jobs, targets, strict=True):
        wav = decode(rep, x, length, path)
        for name, w in zip(names, wav, strict=True):
            written.append(save(name, w, sr))
    return written


# --------------------------------------------------------------------------------------------
# (b) dataset
# --------------------------------------------------------------------------------------------
def export_dataset(args) -> List[Path]:
    from scoreaudio.config import compose
    from scoreaudio.data.corpora import build_manifest
    from scoreaudio.data.datasets import NoiseMixer, SegmentDataset

    if args.num < 1:
        raise ConfigError(f"--num must be >= 1, got {args.num}")
    if args.noise is not None and args.snr is None:
        raise ConfigError("--noise needs --snr (the SNR in dB to mix it at)")
    cfg = compose(args.recipe, args.overrides)
    d = cfg.data
    metas = build_manifest(cfg)[args.split]
    if not metas:
        raise DataError(f"{d.dataset}: the {args.split} split is empty; pick another --split")
    metas = metas[: args.num]
    paired = any(m.noisy_path for m in metas)
    if paired and args.snr is not None:
        raise ConfigError(f"{d.dataset} has its own noisy recordings (exported as NNN_noisy.wav); drop --snr")
    kind = args.noise or "white"
    mixer = (
        None
        if args.snr is None
        else NoiseMixer(
            kinds=[kind], snr_db_min=args.snr, snr_db_max=args.snr, sample_rate=int(d.sample_rate)
        )
    )
    ds = SegmentDataset(
        metas,
        int(d.sample_rate),
        None,
        normalize=str(d.normalize),  # whole files
        peak_level=float(d.peak_level),
        rms_db=float(d.rms_db),
        noise_mixer=mixer,
        train=False,
    )
    out = Path(args.out)
    noisy = paired or mixer is not None
    kinds = ("clean", "noisy") if noisy else ("clean",)
    _check_free(
        [out / f"{k:03d}_{what}.wav" for k in range(len(ds)) for what in kinds] + [out / MANIFEST],
        args.overwrite,
    )
    written, files = [], []
    for k in range(len(ds)):
        ex = ds[k]
        clean = ex["clean"]
        pair = [clean] + ([ex["noisy"]] if noisy else [])
        peak = max(float(t.abs().max()) for t in pair)
        gain = PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0  # one gain for the pair: peak-safe, SNR kept
        entry = {
            "source": ds.metas[k].path,
            "speaker": ds.metas[k].speaker,
            "duration": ds.metas[k].duration,
            "clean": f"{k:03d}_clean.wav",
        }
        written.append(save(out / entry["clean"], clean * gain, int(d.sample_rate)))
        if noisy:
            entry["noisy"] = f"{k:03d}_noisy.wav"
            written.append(save(out / entry["noisy"], ex["noisy"] * gain, int(d.sample_rate)))
        files.append(entry)
    write_json(
        out / MANIFEST,
        {
            "created_by": "tools/export_wavs.py dataset",
            "settings": {
                "recipe": str(args.recipe),
                "overrides": list(args.overrides),
                "dataset": str(d.dataset),
                "split": args.split,
                "num": len(ds),
                "sample_rate": int(d.sample_rate),
                "normalize": str(d.normalize),
                "snr_db": args.snr,
                "noise": kind if mixer else None,
                "noisy_from": "corpus" if paired else ("mixed" if mixer else None),
            },
            "files": files,
        },
    )
    return written


def _check_free(paths: Sequence[Path], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        raise OutputExistsError(f"{existing[0]} exists; pass --overwrite or another --out folder")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="export_wavs.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    t = sub.add_parser("tensors", help="saved waveform or model-space tensors (.pt/.npy) -> WAVs")
    t.add_argument("inputs", nargs="+", help=".pt/.npy files, or folders holding them")
    t.add_argument(
        "--checkpoint", help="take the representation and sample rate from this checkpoint or run directory"
    )
    t.add_argument(
        "--representation",
        choices=["stft", "waveform"],
        help="the representation (stft: the default CompressedSTFT settings)",
    )
    t.add_argument("--sample-rate", type=int, help="sample rate of the WAVs, Hz")
    t.add_argument("--length", type=int, help="waveform length in samples (crop or zero-pad)")
    dset = sub.add_parser("dataset", help="a recipe's dataset examples (clean, and noisy at an SNR) -> WAVs")
    dset.add_argument("recipe", help="recipe YAML or name (e.g. recipes/quickstart.yaml)")
    dset.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.root=PATH"
    )
    dset.add_argument("--split", choices=["train", "valid", "test"], default="valid", help="default: valid")
    dset.add_argument("--num", type=int, default=8, help="examples to export (default: 8)")
    dset.add_argument("--snr", type=float, help="also write a noisy version mixed at this SNR, dB")
    dset.add_argument(
        "--noise", choices=["white", "pink", "brown"], help="noise colour for --snr (default: white)"
    )
    for q in (t, dset):
        q.add_argument("--out", default="exported", help="output folder (default: exported/)")
        q.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        written = export_tensors(args) if args.what == "tensors" else export_dataset(args)
    except ScoreAudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} WAV file{'s' if len(written) != 1 else ''} to {args.out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
