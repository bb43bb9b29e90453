"""Run logging: one line to the terminal, metrics to JSONL + CSV (+ TensorBoard when installed)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional


def log(message: str) -> None:
    """Print a progress message to stderr (stdout stays clean for data)."""
    print(message, file=sys.stderr, flush=True)


class MetricsWriter:
    """Appends metric rows to ``run_dir/metrics.jsonl`` and mirrors each split to ``metrics_<split>.csv``.

    On resume (``resume_step`` > 0) rows logged after that step by the interrupted process are
    dropped first, so the curves continue as if the run had never stopped.
    """

    def __init__(self, run_dir: Path, *, enabled: bool = True, resume_step: int = 0):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.rows: Dict[str, List[dict]] = {}
        self._tb = None
        if not enabled:
            return
        if self.path.is_file():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if resume_step and row.get("step", 0) <= resume_step:
                    kept.append(row)
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            for r in kept:
                self.rows.setdefault(r["split"], []).append(r)
        self._file = open(self.path, "a")
        try:  # TensorBoard is optional: only when the tensorboard package is installed
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step or None)
        except Exception:
            self._tb = None

    def write(self, split: str, row: dict) -> None:
        if not self.enabled:
            return
        row = {"split": split, **row}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        rows = self.rows.setdefault(split, [])
        rows.append(row)
        self._write_csv(split, rows)
        if self._tb is not None:
            for k, v in row.items():
                if k not in ("split", "step") and isinstance(v, (int, float)):
                    self._tb.add_scalar(f"{split}/{k}", v, row["step"])

    def _write_csv(self, split: str, rows: List[dict]) -> None:
        columns: List[str] = []
        for r in rows:
            columns += [k for k in r if k not in columns]
        path = self.path.with_name(f"metrics_{split}.csv")
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


def read_metrics(run_dir: Path, split: Optional[str] = None) -> List[dict]:
    """The metric rows of a run (optionally of one split), in order."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if split is None or row.get("split") == split:
            rows.append(row)
    return rows


def progress_bar(enabled: bool, start: int, total: int):
    """A tqdm bar over training steps from ``start`` of ``total`` (None when not ``enabled``:
    other ranks, or no terminal to draw on)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=start,
        unit="step",
        dynamic_ncols=True,
        disable=None,
        desc="train",
        mininterval=1.0,
    )
