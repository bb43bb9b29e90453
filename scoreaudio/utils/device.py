"""Which device to run on: "auto" means CUDA when there is a GPU, else the CPU."""
from __future__ import annotations

from typing import Optional, Union

import torch

from ..errors import ConfigError


def resolve_device(device: Union[str, torch.device, None] = None, *, setting: str = "device",
                   local_rank: Optional[int] = None) -> torch.device:
    """``None``/"auto" -> CUDA when available, else the CPU; anything else as given, checked.

    ``local_rank`` (a process started by torchrun) makes "auto" and a bare "cuda" mean
    ``cuda:<local_rank>``. ``setting`` is what the device was given as ("--device",
    "train.device"), for the error: a ConfigError when CUDA is asked for and there is none.
    """
    if device is None or str(device) == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda") if local_rank is None else torch.device("cuda", local_rank)
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{setting}={device} but CUDA is not available here; use {setting}=cpu or auto")
        if local_rank is not None and dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev
