"""Which device to run on: "auto" means CUDA when there is a GPU, else the CPU."""

from __future__ import annotations

import re
from typing import Optional, Union

import torch

from ..errors import ConfigError

#: The device names a user may give (the same rule as the ``train.device`` setting's check).
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
VALID_DEVICES = "auto, cpu, cuda or cuda:N"


def resolve_device(
    device: Union[str, torch.device, None] = None,
    *,
    setting: str = "device",
    local_rank: Optional[int] = None,
) -> torch.device:
    """``None``/"auto" -> CUDA when available, else the CPU; "cpu", "cuda" or "cuda:N" as given, checked.

    ``local_rank`` (a process started by torchrun) makes "auto" and a bare "cuda" mean
    ``cuda:<local_rank>``. ``setting`` is what the device was given as ("--device",
    "train.device"), for the error: a ConfigError for a name that is not one of the above (torch
    would raise a bare RuntimeError), when CUDA is asked for and there is none, or for a GPU
    index this machine does not have.
    """
    if device is None or str(device) == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda") if local_rank is None else torch.device("cuda", local_rank)
    dev = _parse(device, setting)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{setting}={device} but CUDA is not available here; use {setting}=cpu or auto")
        if local_rank is not None and dev.index is None:
            dev = torch.device("cuda", local_rank)
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ConfigError(
                f"{setting}={device} but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1}); use {setting}=cuda or auto"
            )
    return dev


def _parse(device: Union[str, torch.device], setting: str) -> torch.device:
    """A checked ``torch.device`` of type cpu or cuda; ConfigError naming the valid forms otherwise."""
    if isinstance(device, torch.device):
        ok = device.type in ("cpu", "cuda")
    else:
        ok = isinstance(device, str) and DEVICE_PATTERN.fullmatch(device) is not None
    if not ok:
        raise ConfigError(
            f"{setting}={device} is not a device; use {VALID_DEVICES} "
            f"(e.g. {setting}=cuda:0 for the first GPU)"
        )
    return torch.device(device)
