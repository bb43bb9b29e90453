"""``Settings``: everything a suite needs; ``Settings.make`` fills the defaults for a device and --quick."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional


@dataclass
class Settings:
    """Everything a suite needs; ``Settings.make`` fills the defaults for a device and --quick."""

    device: str = "cpu"
    presets: List[str] = field(default_factory=lambda: ["tiny", "small"])
    backbones: List[str] = field(default_factory=lambda: ["unet2d", "wavenet"])
    quick: bool = False
    repeats: int = 5  # timed pairs per figure
    isolate: bool = True  # a fresh process per train / denoise configuration (clean peak RSS)
    compile: bool = False  # also measure torch.compile (train, sample)
    ab: List[str] = field(default_factory=list)  # layout, sync
    threads: Optional[int] = None
    matmul_n: int = 2048  # size of the reference matrix product
    matmul_inner: int = 1  # products per reference sample (so one sample lasts long enough)
    # train: (batch, crop seconds) per backbone; None = the recipe's (GPU) or quickstart's (CPU)
    train_batch: Optional[int] = None
    train_seconds: Optional[float] = None
    # sample
    sample_seconds: float = 2.0  # length of each generated sample
    sample_batches: List[int] = field(default_factory=lambda: [1, 8])
    nfes: List[int] = field(default_factory=lambda: [30, 50, 100, 1000])
    sample_budget_s: float = 30.0  # a run predicted to take longer is measured shorter and extrapolated
    # denoise
    checkpoints: List[str] = field(default_factory=list)
    denoise_seconds: List[float] = field(default_factory=lambda: [4.0, 60.0, 600.0])
    denoise_methods: Optional[List[str]] = None  # None = every method the checkpoint supports
    denoise_steps: Optional[int] = None  # None = SpeechDenoiser's default per method
    denoise_budget_s: float = 900.0  # a length predicted to take longer is skipped
    # scale
    scale_seconds: List[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0])
    scale_batches: List[int] = field(default_factory=lambda: [1, 2, 4, 8])
    scale_preset: Optional[str] = None  # None = the last of `presets`
    log: Callable[[str], None] = field(
        default=lambda msg: print(msg, file=sys.stderr, flush=True), repr=False, compare=False
    )
    #: called after every finished row (run_suites writes partial JSON with it)
    on_row: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)
    live_rows: List[Dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    def new_rows(self) -> List[Dict[str, Any]]:
        """A fresh row list for a suite, visible to run_suites' partial JSON while the suite runs."""
        self.live_rows = []
        return self.live_rows

    @classmethod
    def make(cls, device: str = "auto", quick: bool = False, **kw) -> "Settings":
        from scoreaudio.errors import ConfigError
        from scoreaudio.utils.device import resolve_device

        try:
            dev = resolve_device(device, setting="--device")
        except ConfigError as e:
            raise SystemExit(str(e)) from None
        s = cls(device=str(dev), quick=quick)
        if dev.type == "cuda":
            s.matmul_n, s.matmul_inner = 8192, 10
            s.sample_batches = [1, 64]
            s.sample_budget_s = 120.0
        if quick:
            s.repeats = 3
            s.matmul_n = 1024 if dev.type == "cpu" else 4096
            s.nfes = [30, 50, 100]
            s.sample_seconds = 1.0
            s.sample_budget_s = 5.0 if dev.type == "cpu" else 20.0
            s.denoise_seconds = [2.0, 8.0, 32.0]
            s.denoise_budget_s = 60.0
            s.scale_seconds = [0.25, 0.5, 1.0]
            s.scale_batches = [1, 2, 4]
            if dev.type == "cpu":
                s.train_batch, s.train_seconds = 2, 0.25
                s.sample_batches = [1, 4]
        for k, v in kw.items():
            if not hasattr(s, k):
                raise ValueError(f"unknown setting {k!r}")
            setattr(s, k, v)
        return s

    def to_json(self) -> Dict[str, Any]:
        d = asdict(replace(self, log=None, on_row=None, live_rows=[]))
        for k in ("log", "on_row", "live_rows"):
            d.pop(k, None)
        return d

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Settings":
        """The settings a worker process was given (``to_json``'s dict; unknown keys ignored)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
