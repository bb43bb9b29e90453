"""The training data order, a pure function of (seed, step), and the batches built from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Dict, List, Optional, Sequence

import torch

from ..errors import DataError
from ..utils.tensor import derive_seed

__all__ = ["SKIPPED", "SkippedFiles", "StepBatchSampler", "collate"]

#: The key under which a training item lists the files it skipped to get to a usable one.
SKIPPED = "skipped"


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for each (step, micro-batch) from ``start_step``, a list of (index, draw_seed).

    The global draw number g = ((step * accum + micro) * world + rank) * batch + b walks through
    a fresh permutation of the files every epoch (epoch = g // n), so every file is seen once per
    epoch across all ranks; ``draw_seed`` = hash(seed, g) drives the random crop and noise mixing.
    """

    def __init__(
        self,
        n_items: int,
        batch_size: int,
        seed: int,
        start_step: int,
        total_steps: int,
        *,
        rank: int = 0,
        world: int = 1,
        accum: int = 1,
    ):
        self.n, self.batch, self.seed = n_items, batch_size, seed
        self.start, self.total, self.rank, self.world, self.accum = (
            start_step,
            total_steps,
            rank,
            world,
            accum,
        )
        self._perm_epoch, self._perm = -1, None

    def _index(self, g: int) -> int:
        epoch, pos = divmod(g, self.n)
        if epoch != self._perm_epoch:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, 1, epoch))
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=gen).tolist(), epoch
        return self._perm[pos]

    def __iter__(self) -> Iterator[List[tuple]]:
        for step in range(self.start, self.total):
            for micro in range(self.accum):
                g0 = ((step * self.accum + micro) * self.world + self.rank) * self.batch
                yield [(self._index(g), derive_seed(self.seed, 2, g)) for g in range(g0, g0 + self.batch)]

    def __len__(self) -> int:
        return max(0, self.total - self.start) * self.accum


def collate(items: Sequence[Dict]) -> Dict:
    """Stack the items' tensors; the files an item skipped (``"skipped"``: {path: reason}, see
    :class:`~scoreaudio.data.datasets.SegmentDataset`) are merged, not stacked."""
    out = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != SKIPPED}
    skipped = {p: why for it in items for p, why in it.get(SKIPPED, {}).items()}
    if skipped:
        out[SKIPPED] = skipped
    return out


class SkippedFiles:
    """Wraps the loader's batches: strips the skipped-file records off each batch and keeps them
    in the training process, so the log names each bad file once and ``summary.json`` and the
    checkpoint list them (``skipped_files``), whichever DataLoader worker read them.

    Errors a DataLoader worker re-raises carry the worker's whole traceback in their message;
    they are re-raised as one-line :class:`~scoreaudio.errors.DataError` s with its last line.
    """

    def __init__(
        self,
        batches: Iterator[Dict],
        known: Optional[Dict[str, str]] = None,
        on_new: Optional[Callable[[str, str], None]] = None,
    ):
        self.batches, self.files = batches, dict(known or {})
        self.on_new = on_new

    def __iter__(self):
        return self

    def record(self, path: str, why: str) -> None:
        """Note a skipped file met outside the batches (e.g. while picking the sigma settings)."""
        if path not in self.files:
            self.files[path] = why
            if self.on_new is not None:
                self.on_new(path, why)

    def __next__(self) -> Dict:
        try:
            batch = next(self.batches)
        except StopIteration:
            raise
        except Exception as e:
            text = str(e)
            if "Original Traceback" not in text:
                raise
            last = [ln for ln in text.strip().splitlines() if ln.strip()][-1]
            raise DataError(f"while loading training data: {last.split(': ', 1)[-1]}") from None
        for path, why in batch.pop(SKIPPED, {}).items():
            self.record(path, why)
        return batch
