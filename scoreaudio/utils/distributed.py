"""Distributed training: the process's rank and device, and the few collectives the trainer uses.

``torchrun --nproc_per_node=K -m scoreaudio.train RECIPE`` starts K processes (NCCL on GPUs, gloo
on CPUs); without it the world is one process and every helper here is the identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .device import resolve_device

__all__ = ["Dist", "broadcast", "ranks_identical", "setup"]


@dataclass
class Dist:
    """This process's place in the run: rank, world size, local rank and device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device_cfg: str) -> Dist:
    """Pick the device; join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_cfg, setting="train.device", local_rank=local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, device)


def broadcast(obj, d: Dist):
    """Rank 0's ``obj`` on every rank (itself when not distributed)."""
    if d.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def ranks_identical(model: torch.nn.Module, d: Dist) -> bool:
    """Whether every rank holds the same weights (DDP sanity check at the end of a run)."""
    if d.world == 1:
        return True
    with torch.no_grad():
        flat = torch.cat([p.detach().flatten().double() for p in model.parameters()])
        mine = torch.stack(
            [
                flat.sum(),
                (
                    flat * torch.arange(1, flat.numel() + 1, device=flat.device, dtype=torch.float64).sin()
                ).sum(),
            ]
        )
        gathered = [torch.zeros_like(mine) for _ in range(d.world)]
        dist.all_gather(gathered, mine)
    return all(torch.equal(g, gathered[0]) for g in gathered)
