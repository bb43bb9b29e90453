"""``scoreaudio data info|check``: what a corpus holds, and which of its files are bad."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from ..audio.io import load
from ..errors import AudioError
from ..utils.silence import SILENT_INPUT_PEAK
from .corpora import build_manifest, resolve_root
from .manifest import SPLITS


def _table(header: Sequence[str], rows: List[Sequence[str]]) -> str:
    """Plain-text table: columns padded to their widest cell; numbers right-aligned."""
    cols = list(zip(*([header] + [list(map(str, r)) for r in rows])))
    widths = [max(len(c) for c in col) for col in cols]
    numeric = [all(_is_number(c) for c in col[1:]) and len(col) > 1 for col in cols]

    def fmt(cells):
        padded = (c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric))
        return "  ".join(padded).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])]
    lines += [fmt(list(map(str, r))) for r in rows]
    return "\n".join(lines)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def data_info(cfg) -> str:
    """A plain-text summary of the corpus of ``cfg.data``: per split, utterances, total hours,
    sample rates found, number of speakers, and files whose header could not be read."""
    manifest = build_manifest(cfg)
    rows = []
    for split in SPLITS:
        metas = manifest[split]
        ok = [m for m in metas if m.sample_rate > 0]
        hours = sum(m.duration for m in ok) / 3600.0
        rates = ",".join(str(r) for r in sorted({m.sample_rate for m in ok})) or "-"
        speakers = len({m.speaker for m in metas if m.speaker is not None})
        paired = sum(1 for m in metas if m.noisy_path)
        rows.append([split, len(metas), f"{hours:.3f}", rates, speakers, paired, len(metas) - len(ok)])
    head = f"dataset: {cfg.data.dataset}   root: {resolve_root(cfg)}"
    if cfg.data.max_files is not None:
        head += f"   (capped at data.max_files={cfg.data.max_files} per split)"
    table = _table(["split", "utterances", "hours", "sample rates", "speakers", "pairs", "unreadable"], rows)
    return head + "\n" + table


def _problem(path: str) -> str:
    """'' when the file reads fine and is not silent, else a short reason."""
    try:
        wav, _ = load(path)
    except AudioError as e:
        reason = getattr(e, "reason", "unreadable")
        return f"{reason}: {e}"
    if float(np.max(np.abs(wav.numpy()))) < SILENT_INPUT_PEAK:
        return f"silent: peak below {SILENT_INPUT_PEAK}"
    return ""


def data_check(cfg) -> Tuple[str, int]:
    """Read every file of the corpus once (clean and noisy partners) and list the bad ones.

    Bad = missing, unreadable, empty (zero bytes or zero samples), NaN/inf samples, or silent
    (peak below 1e-4). Does not stop at the first. Returns ``(report, number_of_bad_files)``.
    """
    manifest = build_manifest(cfg)
    rows, checked = [], 0
    for split in SPLITS:
        for m in manifest[split]:
            for kind, path in (("clean", m.path), ("noisy", m.noisy_path)):
                if not path:
                    continue
                checked += 1
                problem = _problem(path)
                if problem:
                    reason, _, detail = problem.partition(": ")
                    rows.append([split, m.id if kind == "clean" else f"{m.id} (noisy)", reason, path])
    head = f"dataset: {cfg.data.dataset}   root: {resolve_root(cfg)}   checked {checked} file(s): "
    if not rows:
        return head + "all OK", 0
    return head + f"{len(rows)} bad\n" + _table(["split", "id", "problem", "path"], rows), len(rows)
