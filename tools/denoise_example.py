"""Draw one benchmark mixture before and after denoising: the README's spectrogram picture.

    python tools/denoise_example.py --recipe recipes/denoiser.yaml --override data.root=SPEECH \\
        --noise-dir NOISE --noise real --snr 5 --out docs/denoise_example.png

The mixture is one of ``tools/benchmark_denoise.py``'s (same files, same seed, same noise draw:
``--files``, ``--seconds``, ``--seed`` and the noise folder as given there), so the SI-SDR in the
titles is that file's cell of the benchmark. Three panels on one colour scale: the noisy input,
the denoised output of ``--method`` (default: the checkpoint's own), and the clean speech.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

TOOLS = Path(__file__).resolve().parent
if str(TOOLS) not in sys.path:  # benchmark_denoise (its mixtures) lives next to this file
    sys.path.insert(0, str(TOOLS))

import benchmark_denoise as bd  # noqa: E402  (after the path set-up above)

from scoreaudio.cli import run  # noqa: E402
from scoreaudio.errors import ScoreAudioError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="denoise_example.py", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--checkpoint",
        default="default",
        help="run dir, .pt, .safetensors or a built-in model name (default: %(default)s)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--recipe", default=None, help="take clean speech from this recipe's test split")
    src.add_argument("--clean-dir", default=None, help="take clean speech from this folder instead")
    p.add_argument("--override", nargs="*", default=[], metavar="key=value", help="overrides for --recipe")
    p.add_argument("--noise-dir", default=None, help="noise recordings (their test half), for --noise real")
    p.add_argument("--noise-layout", default="folder", choices=bd.NOISE_LAYOUTS)
    p.add_argument("--noise", default="real", choices=bd.NOISE_KINDS)
    p.add_argument(
        "--snr",
        type=float,
        default=5.0,
        choices=(0.0, 5.0, 10.0),
        help="dB, one of the benchmark's (default: %(default)s)",
    )
    p.add_argument("--file", type=int, default=0, help="which of the benchmark's files (default: the first)")
    p.add_argument("--files", type=int, default=16, help="as --files of the benchmark (default: %(default)s)")
    p.add_argument(
        "--seconds", type=float, default=8.0, help="as --seconds of the benchmark (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--babble-talkers", type=int, default=4)
    p.add_argument("--method", default=None, help="denoising method (default: the checkpoint's)")
    p.add_argument("--out", default="denoise_example.png", help="PNG to write (default: %(default)s)")
    return p


def run_cli(args: argparse.Namespace) -> int:
    from scoreaudio.audio.features import spectrograms_png
    from scoreaudio.denoise import SpeechDenoiser
    from scoreaudio.metrics import si_sdr
    from scoreaudio.pretrained import load_pretrained

    if args.noise == "real" and not args.noise_dir:
        raise ScoreAudioError(
            "--noise real needs --noise-dir (a folder of noise recordings); or pick "
            "--noise white, pink or babble"
        )
    pre = load_pretrained(args.checkpoint, device="cpu")
    den = SpeechDenoiser.from_pretrained(pre.path, device="cpu")
    sr = den.sample_rate
    paths, source = bd.clean_paths(args, pre.cfg)
    # the benchmark's own choice of files and of mixtures, so this picture is one of its cells
    clean = bd.load_clean(
        bd._spread(sorted(paths), max(args.files * 2, args.files + 4)), sr, None, args.seconds
    )
    clean = bd._spread(clean, args.files)
    if not 0 <= args.file < len(clean):
        raise ScoreAudioError(
            f"--file {args.file}: the {source} gives {len(clean)} usable files; use 0 to {len(clean) - 1}"
        )
    real = (
        bd.RealNoise(bd.real_noise_files(args.noise_layout, args.noise_dir), sr)
        if args.noise == "real"
        else None
    )
    mixes = bd.make_mixtures(
        clean,
        bd.NOISE_KINDS[:3] + (("real",) if real else ()),
        [0.0, 5.0, 10.0],
        args.seed,
        args.babble_talkers,
        real,
    )
    mix = next(
        m
        for m in mixes
        if m["file"] == clean[args.file][0] and m["noise"] == args.noise and m["snr"] == args.snr
    )
    kw = {"method": args.method} if args.method else {}
    out = den(mix["noisy"].astype(np.float32), sr, **kw)

    def db(x) -> float:
        return float(
            si_sdr(
                torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(mix["clean"], dtype=torch.float32)
            )
        )

    method = args.method or den.default_method
    panels = [
        (
            mix["noisy"],
            f"noisy: {args.noise} noise at {args.snr:g} dB SNR (SI-SDR {db(mix['noisy']):.1f} dB)",
        ),
        (out, f"denoised: scoreaudio {method} (SI-SDR {db(out):.1f} dB)"),
        (mix["clean"], f"clean: {mix['file']}"),
    ]
    path = spectrograms_png(panels, sr, Path(args.out))
    print(
        f"{path}: {mix['file']}, {args.noise} at {args.snr:g} dB; SI-SDR {db(mix['noisy']):.2f} -> "
        f"{db(out):.2f} dB"
    )
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(run_cli, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
