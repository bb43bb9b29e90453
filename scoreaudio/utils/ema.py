"""Exponential moving average of weights, parameterised by a half-life in optimiser steps."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(half_life: float, step: int) -> float:
    """Per-step decay for an EMA whose weight on the past halves every ``half_life`` steps.

    decay = 0.5 ** (1 / half_life) (EDM's ema_halflife, in steps rather than images). Early in
    training the average is warmed up with min(decay, (1 + step) / (10 + step)) so it is not
    dominated by the random initial weights.
    """
    if half_life <= 0:
        return 0.0
    return min(0.5 ** (1.0 / half_life), (1.0 + step) / (10.0 + step))


class EMA:
    """A shadow copy of a module whose parameters track an EMA of the live ones.

    Buffers (e.g. ``sigma_data``) are copied, not averaged. The shadow is an ordinary
    ``nn.Module`` in eval mode, so sampling code can call it like the model.
    """

    def __init__(self, model: nn.Module, half_life: float):
        self.half_life = float(half_life)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = ema_decay(self.half_life, step)
        ema_params = list(self.module.parameters())
        live_params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, live_params, 1.0 - decay)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
