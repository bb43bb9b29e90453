"""Command line: ``scoreaudio denoise INPUT... -o OUTPUT`` (files or folders, any rate, any
channel count), around :class:`scoreaudio.denoise.SpeechDenoiser`."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .denoise import (
    DEFAULT_CONDITIONAL_METHOD,
    DEFAULT_STEPS,
    DEFAULT_UNCONDITIONAL_METHOD,
    LOCAL_CHUNK_SECONDS,
    METHODS,
    MIN_SECONDS,
    SpeechDenoiser,
    smallest_chunk_seconds,
)
from .denoise_methods import check_method, check_steps
from .errors import AudioError, ScoreAudioError
from .utils.files import file_id

__all__ = ["check_chunking", "configure_parser", "plan_outputs", "run_cli"]


_WRITABLE = (".wav", ".flac", ".ogg")


def plan_outputs(inputs: Sequence[Union[str, Path]], output: Union[str, Path]) -> List[Tuple[Path, Path]]:
    """``(src, dst)`` pairs for ``scoreaudio denoise``.

    * One folder input: its audio files (recursive) go to ``output/<relative path>``.
    * One file input: to ``output`` itself when that ends in .wav/.flac/.ogg and is not a folder,
      else to ``output/<file name>``.
    * Several inputs: each folder to ``output/<folder name>/<relative path>``, each file to
      ``output/<file name>``.

    The extension is kept when it can be written (.wav, .flac, .ogg), else .wav. When ``output``
    lies inside a folder input, the files already under ``output`` are left out of that folder's
    inputs (they are an earlier run's results, not recordings; a note says how many). Raises
    ScoreAudioError for a missing input, an input without audio, two inputs that would write
    the same file, or an output that is one of the inputs (denoising in place would replace the
    original recordings, with or without --overwrite).
    """
    from .audio.io import AUDIO_EXTS, find_audio_files

    output = Path(output)
    out_root = output.resolve()
    several = len(inputs) > 1
    pairs: List[Tuple[Path, Path]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            files = find_audio_files(p)
            if out_root != p.resolve() and out_root.is_relative_to(p.resolve()):
                ours = [f for f in files if f.resolve().is_relative_to(out_root)]
                if ours:
                    print(
                        f"note: leaving out {len(ours)} file(s) under '{output}', the output folder inside "
                        f"'{p}'",
                        file=sys.stderr,
                    )
                    files = [f for f in files if f not in ours]
            if not files:
                raise ScoreAudioError(f"no audio files ({', '.join(AUDIO_EXTS)}) under '{p}'")
            base = output / p.resolve().name if several else output
            pairs += [(f, base / f.relative_to(p)) for f in files]
        elif p.is_file():
            if not several and output.suffix.lower() in _WRITABLE and not output.is_dir():
                pairs.append((p, output))
            else:
                pairs.append((p, output / p.name))
        else:
            raise ScoreAudioError(f"input not found: '{p}'; pass audio files or folders")
    pairs = [(s, d if d.suffix.lower() in _WRITABLE else d.with_suffix(".wav")) for s, d in pairs]
    seen: Dict[Path, Path] = {}
    for s, d in pairs:
        key = d.resolve()
        if key in seen:
            raise ScoreAudioError(
                f"'{seen[key]}' and '{s}' would both be written to '{d}'; denoise them into different folders"
            )
        seen[key] = s
    sources = {file_id(s) for s, _ in pairs} - {None}
    for s, d in pairs:
        if file_id(d) in sources:
            raise ScoreAudioError(
                f"'{d}' is an input: denoising in place would replace the original "
                f"recording; give -o a path outside the inputs"
            )
    return pairs


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="audio files and/or folders (searched recursively)"
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output folder (a folder input's tree is mirrored in it), or a file name for one file input",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint file, run directory or .safetensors weights (default: the built-in "
        "denoiser shipped with the package)",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        help=f"denoising method (default: {DEFAULT_CONDITIONAL_METHOD} for conditional checkpoints, "
        f"else {DEFAULT_UNCONDITIONAL_METHOD})",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="network calls per chunk for posterior/refined/conditional (default: "
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items())
        + ")",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available) | cpu | cuda | cuda:N")
    level = p.add_mutually_exclusive_group()
    level.add_argument(
        "--noise-std", type=float, default=None, help="noise std of the inputs (default: estimated per file)"
    )
    level.add_argument(
        "--snr-db", type=float, default=None, help="SNR of the inputs in dB (default: estimated)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for posterior/conditional sampling")
    p.add_argument(
        "--chunk-seconds",
        type=float,
        default=None,
        help=f"chunk length for long files (default {LOCAL_CHUNK_SECONDS:g} s for networks local in "
        f"time, else the training crop; at least {MIN_SECONDS:g} s)",
    )
    p.add_argument(
        "--overlap-seconds",
        type=float,
        default=None,
        help="overlap between chunks (default 0.5 s, at most a quarter of the chunk)",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="chunks per network call (default 4 CPU, 16 CUDA)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


#: Overlap between chunks when only --chunk-seconds is given: this, at most a quarter of the chunk.
DEFAULT_OVERLAP_SECONDS = 0.5


def check_chunking(
    den: SpeechDenoiser, chunk_seconds: Optional[float], overlap_seconds: Optional[float]
) -> Tuple[float, float]:
    """``(chunk, overlap)`` seconds for ``den`` from --chunk-seconds / --overlap-seconds (None:
    the denoiser's own choice); ScoreAudioError naming the usable range otherwise."""
    least = smallest_chunk_seconds(den)
    chunk = den.chunk_seconds if chunk_seconds is None else float(chunk_seconds)
    if not (math.isfinite(chunk) and chunk >= least - 1e-9):
        raise ScoreAudioError(
            f"a chunk of {chunk:g} s (--chunk-seconds) is too short for this model; the "
            f"smallest usable value is {least:g} s: use --chunk-seconds {least:g} or more"
        )
    if overlap_seconds is None:
        overlap = den.overlap_seconds if chunk_seconds is None else min(DEFAULT_OVERLAP_SECONDS, 0.25 * chunk)
    else:
        overlap = float(overlap_seconds)
    if not (math.isfinite(overlap) and 0 <= overlap < chunk):
        raise ScoreAudioError(
            f"--overlap-seconds {overlap:g} must be at least 0 and below the chunk of "
            f"{chunk:g} s; use e.g. --overlap-seconds {0.25 * chunk:g}"
        )
    return chunk, overlap


def _denoise_file_reporting(
    den: SpeechDenoiser, src: Path, dst: Path, write: Callable[[str], None], **kwargs
) -> None:
    """``den.denoise_file`` with each warning it raises (a silent input is returned unchanged)
    written as one plain ``warning: FILE: message`` line instead of Python's two-line form with
    a source line, which means nothing to someone running the command."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)  # one per file, not once per session
        try:
            den.denoise_file(src, dst, **kwargs)
        finally:
            for message in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
                write(f"warning: {src}: {message}")


def run_cli(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .utils.device import resolve_device

    pairs = plan_outputs(args.inputs, args.output)
    existing = [d for _, d in pairs if d.exists()]
    if existing and not args.overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ScoreAudioError(f"'{existing[0]}' exists{more}; pass --overwrite or another -o")
    device = resolve_device(args.device, setting="--device")
    # Loaded with its own chunking, then checked against the model: the smallest usable chunk
    # depends on its rate and STFT.
    den = SpeechDenoiser.from_pretrained(args.checkpoint, device=device, batch_size=args.batch_size)
    den.chunk_seconds, den.overlap_seconds = check_chunking(den, args.chunk_seconds, args.overlap_seconds)
    method = check_method(args.method, den.methods, den.default_method, den.conditional)
    steps = check_steps(method, args.steps)
    print(
        f"denoising {len(pairs)} file(s) with {den.checkpoint} ({method}, {steps} step(s), {den.device})",
        file=sys.stderr,
    )
    failed = 0
    for i, (src, dst) in enumerate(tqdm(pairs, unit="file", desc="denoise", file=sys.stderr, disable=None)):
        gen = torch.Generator(device=den.device).manual_seed(int(args.seed) + i)
        try:
            _denoise_file_reporting(
                den,
                src,
                dst,
                lambda line: tqdm.write(line, file=sys.stderr),
                overwrite=args.overwrite,
                method=method,
                steps=steps,
                generator=gen,
                noise_std=args.noise_std,
                snr_db=args.snr_db,
            )
        except AudioError as e:
            failed += 1
            tqdm.write(f"skipped {src}: {e}", file=sys.stderr)
    skipped = f"; {failed} skipped" if failed else ""
    print(f"wrote {len(pairs) - failed} file(s) under {args.output}{skipped}")
    return 1 if failed else 0
