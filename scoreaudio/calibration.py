"""Calibrating a prior's noise-level map on validation speech (the "state vs observation" gap).

A prior-based denoiser turns the waveform noise std of its input into the model-space sigma it
calls the network at (``representation.noise_std_in_model_space``). For a waveform state that map
is exact. For the compressed STFT it is not: white waveform noise is not Gaussian there, the STFT
is redundant, and how a *trained* model responds to the mismatch depends on the checkpoint
(measured: on one model x1 beat x2 by 2-7 dB though the exact-score analysis favours about x2).
So each unconditional checkpoint measures the best scale of that map on its own validation crops
and stores it as :attr:`NoiseLevels.noise_map_scale <scoreaudio.noise.NoiseLevels>` (key
``noise_map_scale`` of the checkpoint's ``sigmas``); :class:`scoreaudio.SpeechDenoiser` applies it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .metrics import si_sdr

__all__ = ["DEFAULT_SCALES", "DEFAULT_SNRS_DB", "calibrate_noise_map"]

#: Candidate scales of the map, a half-octave grid around 1 (the exact value for a waveform state).
DEFAULT_SCALES = (0.5, 0.71, 1.0, 1.41, 2.0, 2.83)
#: Input SNRs the calibration averages over, dB: the range users bring.
DEFAULT_SNRS_DB = (0.0, 5.0, 10.0)


@torch.no_grad()
def calibrate_noise_map(
    model,
    representation,
    clean: torch.Tensor,
    *,
    sigma_min: float,
    sigma_max: float,
    scales: Sequence[float] = DEFAULT_SCALES,
    snrs_db: Sequence[float] = DEFAULT_SNRS_DB,
    batch_size: int = 8,
    generator: torch.Generator | None = None,
) -> dict:
    """The scale k of the sigma map that maximises one-step (Tweedie) SI-SDR on ``clean``.

    Args:
        model: an unconditional score model with ``denoise(x, sigma)`` (model space).
        representation: encodes (B, 1, T) waveforms; ``noise_std_in_model_space`` is the map scaled.
        clean: (N, 1, T) clean validation waveforms, normalised as in training.
        sigma_min, sigma_max: the training range; scaled sigmas are clamped to it.
        scales: candidate k; snrs_db: input SNRs (white Gaussian noise, per-example power ratio).
        generator: draws the noise (the same noise for every k, so k is compared on equal terms).

    Returns:
        ``{"noise_map_scale": best k, "si_sdr_db": {k: mean SI-SDR over examples and SNRs},
        "input_si_sdr_db": the noisy inputs' mean}``.
    """
    if clean.ndim != 3 or clean.shape[1] != 1 or clean.shape[0] == 0:
        raise ValueError(f"clean must be a non-empty (N, 1, T) batch, got {tuple(clean.shape)}")
    device = clean.device
    power = clean.flatten(1).square().mean(dim=1).clamp_min(1e-12)  # (N,)
    noisy_sets = []
    for snr in snrs_db:
        std = (power / 10.0 ** (float(snr) / 10.0)).sqrt()  # (N,) waveform noise std for this SNR
        z = torch.randn(clean.shape, generator=generator, device=device, dtype=clean.dtype)
        noisy_sets.append((clean + std.view(-1, 1, 1) * z, std))
    scores = {}
    for k in scales:
        values = []
        for noisy, std in noisy_sets:
            sigma = torch.tensor(
                [float(representation.noise_std_in_model_space(float(s))) for s in std],
                device=device,
                dtype=clean.dtype,
            )
            sigma = (float(k) * sigma).clamp(sigma_min, sigma_max)
            for i in range(0, clean.shape[0], batch_size):
                sl = slice(i, i + batch_size)
                est = model.denoise(representation.encode(noisy[sl]), sigma[sl])
                wav = representation.decode(est, clean.shape[-1])
                values.append(si_sdr(wav[:, 0], clean[sl, 0]))
        scores[float(k)] = float(torch.cat(values).mean())
    inputs = torch.cat([si_sdr(noisy[:, 0], clean[:, 0]) for noisy, _ in noisy_sets])
    best = max(scores, key=scores.get)
    return {"noise_map_scale": best, "si_sdr_db": scores, "input_si_sdr_db": float(inputs.mean())}
