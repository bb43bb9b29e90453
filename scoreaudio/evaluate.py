"""Score enhanced audio against clean references: ``scoreaudio evaluate``.

    scoreaudio evaluate --reference CLEAN_DIR --estimate ENH_DIR [--noisy NOISY_DIR] [-o results.csv]

Files are matched by their path relative to each folder, without the extension (``a/b.wav`` in
the reference folder matches ``a/b.flac`` in the estimate folder). Every file is read as mono
(mean over channels); an estimate (or noisy file) at another rate than its reference is resampled
to the reference's rate, and both are cropped to the shorter length. PESQ, ESTOI and DNSMOS work at
16 kHz (soxr HQ resampling; :mod:`scoreaudio.metrics`). Writes a per-file CSV (with a ``notes``
column saying why a value is NaN) and, beside it, a JSON with the summary (mean and t-based 95%
interval per metric over the finite values, and ``n_nan`` / ``n_inf``: the files left out, e.g. the
-inf SI-SDR of a silent estimate), the tool versions, the resampling used and the unmatched files.
A name with an unreadable file (corrupt, empty, NaN/inf samples) is skipped and named on stderr;
the rest are still scored and written, and the command then exits with status 1.
``-o X.csv`` writes X.csv and X.json; ``-o X.json`` the same pair. Existing files are not replaced
unless ``--overwrite`` (as in generate and denoise).

Generated audio (no clean partner) is scored as speech instead:

    scoreaudio evaluate --generated GEN_DIR --reference DIR_OR_RECIPE [-o OUT.json] [--max-files N]

prints a Markdown table of three rows (generated, reference, white noise of the reference's
lengths and loudness) with the voiced and pause shares, spectral flatness, DNSMOS and the Fréchet
log-mel distance to the reference (:mod:`scoreaudio.generation_metrics`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .errors import AudioError, ScoreAudioError
from .metrics import (
    EVAL_RATE,
    RESAMPLER,
    MetricWarning,
    _require,
    dnsmos,
    estoi,
    log_spectral_distance,
    mean_ci95,
    metric_versions,
    pesq_wb,
    si_sdr,
)

#: Metrics by name; ``dnsmos`` adds three columns (ovrl, sig, bak).
METRICS = ("si_sdr", "pesq", "estoi", "lsd", "dnsmos")
DEFAULT_METRICS = ("si_sdr", "pesq", "estoi", "lsd")
_PACKAGES = {"pesq": ("pesq",), "estoi": ("pystoi",), "dnsmos": ("onnxruntime", "speechmos.dnsmos")}
_LABELS = {"pesq": "PESQ", "estoi": "ESTOI", "dnsmos": "DNSMOS"}


@dataclass
class EvalResult:
    rows: List[Dict[str, object]]  # one per matched file: "file", metric columns, "notes"
    summary: Dict[str, Dict[str, float]]  # column -> {n, mean, ci_low, ci_high}
    unmatched: Dict[str, List[str]]  # "reference" / "estimate" / "noisy" -> relative names without a partner
    meta: Dict[str, object] = field(default_factory=dict)
    skipped: Dict[str, str] = field(
        default_factory=dict
    )  # name -> why it was not scored (an unreadable file)


def _index(folder: Path) -> Dict[str, Path]:
    from .audio.io import find_audio_files

    if not folder.is_dir():
        raise ScoreAudioError(f"folder not found: '{folder}'")
    out: Dict[str, Path] = {}
    for p in find_audio_files(folder):
        key = p.relative_to(folder).with_suffix("").as_posix()
        if key in out:
            raise ScoreAudioError(
                f"'{out[key]}' and '{p}' have the same name apart from the extension; keep one of them"
            )
        out[key] = p
    return out


def match_files(
    reference: Path, estimate: Path, noisy: Optional[Path] = None
) -> Tuple[List[Tuple[str, Path, Path, Optional[Path]]], Dict[str, List[str]]]:
    """``[(name, ref, est, noisy_or_None)]`` for names present in reference and estimate (and noisy,
    when given), and the names each folder has without a partner."""
    ref, est = _index(Path(reference)), _index(Path(estimate))
    noi = _index(Path(noisy)) if noisy is not None else None
    names = sorted(set(ref) & set(est) & (set(noi) if noi is not None else set(ref)))
    unmatched = {"reference": sorted(set(ref) - set(names)), "estimate": sorted(set(est) - set(names))}
    if noi is not None:
        unmatched["noisy"] = sorted(set(noi) - set(names))
    matches = [(n, ref[n], est[n], noi[n] if noi is not None else None) for n in names]
    return matches, unmatched


def _read(path: Path, rate: Optional[int]) -> Tuple[np.ndarray, int]:
    from .audio.io import load

    wav, sr = load(path, rate)
    return wav[0].numpy().astype(np.float64), sr


def score_signals(
    est: np.ndarray, ref: np.ndarray, sample_rate: int, metrics: Sequence[str]
) -> Tuple[Dict[str, float], List[str]]:
    """Metric columns of one (estimate, reference) pair at ``sample_rate`` and the reasons for NaNs."""
    n = min(len(est), len(ref))
    est, ref = est[:n], ref[:n]
    out: Dict[str, float] = {}
    notes: List[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetricWarning)
        if "si_sdr" in metrics:
            if n == 0 or np.max(np.abs(ref)) < 1e-6:
                out["si_sdr"] = math.nan
                notes.append("si_sdr: silent reference")
            else:
                out["si_sdr"] = float(si_sdr(torch.from_numpy(est), torch.from_numpy(ref)))
                if out["si_sdr"] == -math.inf:
                    notes.append("si_sdr: silent estimate (-inf)")
        if "pesq" in metrics:
            out["pesq"] = pesq_wb(est, ref, sample_rate)
        if "estoi" in metrics:
            out["estoi"] = estoi(est, ref, sample_rate)
        if "lsd" in metrics:
            out["lsd"] = float(log_spectral_distance(est, ref, sample_rate)) if n else math.nan
        if "dnsmos" in metrics:
            d = dnsmos(est, sample_rate)
            out.update({"dnsmos_ovrl": d["ovrl"], "dnsmos_sig": d["sig"], "dnsmos_bak": d["bak"]})
    notes += [
        str(w.message).replace("; reported as NaN", "")
        for w in caught
        if issubclass(w.category, MetricWarning)
    ]
    return out, notes


def check_metrics(metrics: Sequence[str]) -> List[str]:
    """Validate metric names and that their packages import (before any file is scored)."""
    metrics = list(dict.fromkeys(metrics))
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ScoreAudioError(f"unknown metric(s) {bad}; valid: {', '.join(METRICS)}")
    for m in metrics:
        for module in _PACKAGES.get(m, ()):
            _require(module, _LABELS[m])
    return metrics


def evaluate(
    reference, estimate, noisy=None, *, metrics: Sequence[str] = DEFAULT_METRICS, progress: bool = False
) -> EvalResult:
    """Score every matched file; see the module docstring.

    A name whose reference, estimate or noisy file cannot be read (missing, empty, corrupt,
    NaN/inf samples) is left out and listed in ``skipped`` with the reason, so one bad file costs
    its own row only; ScoreAudioError when no file at all could be scored."""
    metrics = check_metrics(metrics)
    matches, unmatched = match_files(Path(reference), Path(estimate), None if noisy is None else Path(noisy))
    if not matches:
        raise ScoreAudioError(
            f"no file names in common between '{reference}' and '{estimate}'"
            + (f" and '{noisy}'" if noisy is not None else "")
            + "; files are matched by relative path without extension"
        )
    it = matches
    if progress:
        from tqdm import tqdm

        it = tqdm(matches, unit="file", desc="evaluate", file=sys.stderr, disable=None)
    rows: List[Dict[str, object]] = []
    skipped: Dict[str, str] = {}
    for name, ref_p, est_p, noi_p in it:
        try:
            ref, sr = _read(ref_p, None)
            est, _ = _read(est_p, sr)
            noi = _read(noi_p, sr)[0] if noi_p is not None else None
        except AudioError as e:
            skipped[name] = str(e)
            continue
        row: Dict[str, object] = {"file": name}
        notes: List[str] = []
        if abs(len(est) - len(ref)) > max(1, int(0.01 * sr)):
            notes.append(f"lengths differ ({len(est)} vs {len(ref)} samples): cropped to the shorter")
        values, why = score_signals(est, ref, sr, metrics)
        row.update(values)
        notes += why
        if noi is not None:
            nv, nwhy = score_signals(noi, ref, sr, metrics)
            row.update({f"noisy_{k}": v for k, v in nv.items()})
            notes += [f"noisy {w}" for w in nwhy]
            if "si_sdr" in values:
                row["si_sdr_i"] = values["si_sdr"] - nv["si_sdr"]
        row["notes"] = "; ".join(dict.fromkeys(notes))
        rows.append(row)
    if not rows:
        name, why = next(iter(skipped.items()))
        raise ScoreAudioError(f"none of the {len(matches)} matched file(s) could be read, e.g. {name}: {why}")
    columns = [c for c in rows[0] if c not in ("file", "notes")]
    summary = {c: mean_ci95(r.get(c, math.nan) for r in rows) for c in columns}
    meta = {
        "reference": str(reference),
        "estimate": str(estimate),
        "noisy": None if noisy is None else str(noisy),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": metrics,
        "files": len(rows),
        "skipped": skipped,
        "resampling": {
            "pesq/estoi/dnsmos": f"each signal to {EVAL_RATE} Hz with {RESAMPLER} when at another rate",
            "estimate/noisy": f"to the reference's rate with {RESAMPLER} when it differs",
            "channels": "mono: mean over channels",
        },
        "pesq_mode": "wb (ITU-T P.862.2)",
        "estoi": "pystoi extended=True",
        "lsd": "mean over frames of the RMS over bins of the 10 log10 power difference; 32 ms Hann, 8 ms hop",
        "interval": "mean +- t(0.975, n-1) * sd / sqrt(n) over the files with a finite value; "
        "n_nan and n_inf count the files left out",
        "versions": metric_versions(),
    }
    return EvalResult(rows, summary, unmatched, meta, skipped)


def output_paths(output) -> Tuple[Path, Path]:
    """``(csv, json)`` for ``-o``: X.csv or X.json both give the pair X.csv + X.json, so the two
    never land on one path; any other name (``-o precious.wav``) or a folder is refused."""
    out = Path(output)
    if out.is_dir():
        raise ScoreAudioError(f"-o {out} is a folder; give a file name such as {out / 'results.csv'}")
    if out.suffix.lower() not in (".csv", ".json"):
        raise ScoreAudioError(
            f"-o {out}: give a .csv name (the summary .json is written beside it), "
            f"e.g. -o {out.with_suffix('.csv')}"
        )
    return out.with_suffix(".csv"), out.with_suffix(".json")


def _check_overwrite(paths: Sequence[Path], overwrite: bool) -> None:
    """OutputExistsError for the first existing ``-o`` file unless ``overwrite``; the CLI calls it
    before scoring, so a refusal costs no compute (generate's check_outputs is for --out folders)."""
    from .generation import OutputExistsError

    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{existing[0]} exists; pass --overwrite or another -o file")


def write_results(result: EvalResult, output, *, overwrite: bool = True) -> Tuple[Path, Path]:
    """Per-file CSV and the summary JSON (:func:`output_paths` of ``output``), each written
    atomically: a failed write leaves the previous file, never half of one."""
    from .utils.files import atomic_write

    csv_path, json_path = output_paths(output)
    _check_overwrite((csv_path, json_path), overwrite)
    cols = ["file"] + [c for c in result.rows[0] if c not in ("file", "notes")] + ["notes"]

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in result.rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    payload = dict(result.meta, summary=result.summary, unmatched=result.unmatched, csv=csv_path.name)
    text = json.dumps(_finite(payload), indent=1, default=str) + "\n"
    atomic_write(csv_path, write_csv)
    atomic_write(json_path, lambda tmp: Path(tmp).write_text(text))
    return csv_path, json_path


def _finite(obj):
    """NaN/inf -> None, recursively (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def format_table(summary: Dict[str, Dict[str, float]]) -> str:
    """A plain-text table: metric, n (finite values averaged), nan and inf (files left out), mean,
    95% interval."""
    lines = [f"{'metric':<18} {'n':>5} {'nan':>4} {'inf':>4} {'mean':>9}  95% interval", "-" * 62]
    for c, s in summary.items():
        ci = "" if math.isnan(s["ci_low"]) else f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]"
        mean = "nan" if math.isnan(s["mean"]) else f"{s['mean']:.3f}"
        lines.append(f"{c:<18} {s['n']:>5} {s.get('n_nan', 0):>4} {s.get('n_inf', 0):>4} {mean:>9}  {ci}")
    return "\n".join(lines)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reference",
        required=True,
        metavar="CLEAN_DIR",
        help="folder of clean reference files; with --generated: a folder of speech or a "
        "recipe (e.g. quickstart) whose --reference-split is the reference",
    )
    p.add_argument(
        "--estimate",
        default=None,
        metavar="ENH_DIR",
        help="folder of enhanced files (same relative names); required unless --generated",
    )
    p.add_argument(
        "--noisy",
        default=None,
        metavar="NOISY_DIR",
        help="folder of the noisy inputs: adds noisy_* columns and si_sdr_i (the improvement)",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="results.csv",
        help="per-file CSV (the summary JSON is written beside it; a .json name gives the "
        "same pair); default: print only",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing -o files")
    p.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help=f"comma-separated, from {', '.join(METRICS)} (default: %(default)s; dnsmos is slower)",
    )
    gen = p.add_argument_group("generated audio (scored as speech, without clean partners)")
    gen.add_argument(
        "--generated",
        default=None,
        metavar="GEN_DIR",
        help="folder of generated audio: prints voiced/pause share, flatness, DNSMOS and the "
        "Fréchet log-mel distance beside --reference and white noise; -o writes JSON",
    )
    gen.add_argument(
        "--max-files",
        type=int,
        default=None,
        metavar="N",
        help="at most N files per set, evenly spaced (default: 100)",
    )
    gen.add_argument(
        "--reference-split",
        default="valid",
        choices=("train", "valid", "test"),
        help="the split of a recipe --reference (default: valid)",
    )
    gen.add_argument(
        "--reference-override",
        action="append",
        default=[],
        metavar="key=value",
        help="config override for a recipe --reference (repeatable), e.g. data.root=PATH",
    )
    gen.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (the slow part)")


def run_generated_cli(args: argparse.Namespace) -> int:
    """``--generated`` mode: score a folder of generated audio as speech (see the module docstring)."""
    from .generation_metrics import DEFAULT_MAX_FILES, markdown_table, score_generated

    if args.estimate is not None or args.noisy is not None:
        raise ScoreAudioError(
            "--generated scores audio without clean partners; drop --estimate/--noisy "
            "(or drop --generated to score enhanced files)"
        )
    out = Path(args.output) if args.output else None
    if out is not None:
        if out.is_dir():
            raise ScoreAudioError(f"-o {out} is a folder; give a file name such as {out / 'speech.json'}")
        _check_overwrite([out], args.overwrite)  # before the (slow) scoring
    result = score_generated(
        args.generated,
        args.reference,
        max_files=DEFAULT_MAX_FILES if args.max_files is None else args.max_files,
        split=args.reference_split,
        overrides=args.reference_override,
        with_dnsmos=not args.no_dnsmos,
    )
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(markdown_table(result))
    if out is not None:
        from .utils.files import atomic_write

        text = json.dumps(_finite(result), indent=1, ensure_ascii=False) + "\n"  # NaN -> null: strict JSON
        atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        print(f"wrote {out}")
    return 0


def run_cli(args: argparse.Namespace) -> int:
    if args.generated is not None:
        return run_generated_cli(args)
    if args.estimate is None:
        raise ScoreAudioError(
            "--estimate ENH_DIR is required (or pass --generated GEN_DIR to score generated audio as speech)"
        )
    metrics = [m.strip() for m in str(args.metrics).split(",") if m.strip()]
    if args.output:  # before the (slow) scoring
        _check_overwrite(output_paths(args.output), args.overwrite)
    result = evaluate(args.reference, args.estimate, args.noisy, metrics=metrics, progress=True)
    for name, why in result.skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    for side, names in result.unmatched.items():
        if names:
            shown = ", ".join(names[:5]) + (f" (and {len(names) - 5} more)" if len(names) > 5 else "")
            print(f"unmatched in {side}: {len(names)} file(s): {shown}", file=sys.stderr)
    nan_rows = [r for r in result.rows if r.get("notes")]
    if nan_rows:
        first = nan_rows[0]
        print(
            f"{len(nan_rows)} file(s) with notes (see the CSV), e.g. {first['file']}: {first['notes']}",
            file=sys.stderr,
        )
    for c, s in result.summary.items():
        left_out = s["n_nan"] + s["n_inf"]
        if left_out:
            print(
                f"{c}: {left_out} of {len(result.rows)} file(s) left out of the mean "
                f"({s['n_nan']} NaN, {s['n_inf']} inf)",
                file=sys.stderr,
            )
    skipped = f", {len(result.skipped)} skipped (unreadable; see above)" if result.skipped else ""
    print(f"{len(result.rows)} file(s) scored{skipped}")
    print(format_table(result.summary))
    if args.output:
        csv_path, json_path = write_results(result, args.output, overwrite=args.overwrite)
        print(f"wrote {csv_path} and {json_path}")
    # Status 1, as in denoise: the results are written, but not for every file.
    return 1 if result.skipped else 0
