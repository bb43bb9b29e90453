"""When a signal counts as silent. Two thresholds, because the two questions differ:

* :data:`SILENT_INPUT_PEAK` (1e-4, -80 dBFS): is there anything to work on? A training file, a
  checked file (``scoreaudio data check``) or a channel given to the denoiser that peaks below it
  holds no speech: training skips it, the check flags it, the denoiser returns it unchanged.
* :data:`SILENT_METRIC_PEAK` (1e-6, -120 dBFS): can a metric score it at all? Below it a reference
  or an estimate is numerically zero and PESQ / ESTOI / SI-SDR / DNSMOS are undefined (NaN with a
  warning). It is lower because a quiet but real estimate (a denoiser that removed too much) must
  still be scored, badly, rather than skipped.
"""

from __future__ import annotations

#: An input whose peak is below this holds no speech (skipped in training, flagged by the data check,
#: returned unchanged by the denoiser).
SILENT_INPUT_PEAK = 1e-4
#: A reference or estimate whose peak is below this is not scored by the metrics (NaN + warning).
SILENT_METRIC_PEAK = 1e-6
