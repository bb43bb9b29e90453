"""`scoreaudio report DIR`: one self-contained HTML page to listen to and look at a folder of audio.

For every WAV under ``DIR`` (recursively, sorted by relative path) the page holds an
``<audio controls>`` player and the spectrogram picture, both embedded as base64 data URIs, so the
single file can be mailed or archived. A ``sample_000.png`` beside ``sample_000.wav`` is used as
its picture; missing pictures are drawn with :func:`~scoreaudio.audio.features.spectrogram_png`
(in memory: the folder is not modified). The settings of every ``manifest.json`` found are listed,
and for a run directory (one with ``metrics.jsonl``) the loss curves are drawn: the training loss
per logging step and the validation loss at each fixed sigma.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .errors import DataError, ScoreAudioError

#: The audio a report embeds (browsers play WAV everywhere; generate writes WAV).
REPORT_EXTS = (".wav",)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 0.9em; }
.item { margin: 1em 0 1.6em 0; } .item h3 { font-size: 1em; margin: 0 0 0.3em 0; font-family: monospace; }
.item audio { width: 100%; max-width: 640px; display: block; margin-bottom: 0.3em; }
.item img, .curves img { max-width: 100%; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ddd; padding: 2px 8px;
        text-align: left; vertical-align: top; font-family: monospace; }
.error { color: #b00; } pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
"""


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def _generation_summary(m: dict) -> str:
    """One line with what a ``scoreaudio generate`` manifest measured ("" for other manifests)."""
    plan, ckpt = m.get("sampler_plan"), m.get("checkpoint")
    if not isinstance(plan, dict) or not isinstance(ckpt, dict):
        return ""
    text = (
        f"{plan.get('name')}: {plan.get('nfe')} network evaluations over a ladder of "
        f"{plan.get('ladder_length')} levels; real-time factor {m.get('rtf', float('nan')):.3g} on "
        f"{m.get('timings', {}).get('device', '?')}; checkpoint {ckpt.get('path')} "
        f"(step {ckpt.get('step')}, sha256 {str(ckpt.get('sha256'))[:12]}...)"
    )
    return f'<p class="meta">{html.escape(text)}</p>'


_SPEECH_COLUMNS = (
    ("voiced_share", "voiced share"),
    ("pause_share", "pause share"),
    ("spectral_flatness", "spectral flatness"),
)


def _speech_measures_table(m: dict) -> str:
    """A table of the per-file speech measures a generate manifest holds ("" when it has none)."""
    listed = m.get("files") if isinstance(m.get("files"), list) else []
    files = [f for f in listed if isinstance(f, dict) and any(k in f for k, _ in _SPEECH_COLUMNS)]
    if not files:
        return ""

    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"

    head = "<tr><th>file</th>" + "".join(f"<th>{label}</th>" for _, label in _SPEECH_COLUMNS) + "</tr>"
    rows = "".join(
        f"<tr><td>{html.escape(str(f.get('wav', '?')))}</td>"
        + "".join(f"<td>{cell(f.get(k))}</td>" for k, _ in _SPEECH_COLUMNS)
        + "</tr>"
        for f in files
    )
    note = (
        '<p class="meta">Is it speech? Voiced share: pYIN-voiced frames among those with energy '
        "(speech ~0.7-0.95, noise ~0); pause share: frames 40 dB below the loudest; flatness: "
        "0 tone, ~0.56 white noise (scoreaudio.generation_metrics).</p>"
    )
    return note + f'<table class="speech">{head}{rows}</table>'


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _flatten(d: object, prefix: str = "") -> List[Tuple[str, object]]:
    if isinstance(d, dict):
        out: List[Tuple[str, object]] = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}{k}.")
        return out
    return [(prefix[:-1], d)]


def _settings_table(values: dict) -> str:
    rows = []
    for key, value in _flatten(values):
        text = value if isinstance(value, str) else json.dumps(value)
        rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(text))}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def loss_curves_png(rows: Sequence[dict]) -> Optional[bytes]:
    """PNG bytes of the train loss and the validation loss per sigma against step (None: nothing logged)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy, no pyplot global state
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    train = [r for r in rows if r.get("split") == "train" and isinstance(r.get("loss"), (int, float))]
    valid = [r for r in rows if r.get("split") == "valid"]
    val_keys = sorted({k for r in valid for k in r if k.startswith("val_loss/")}, key=_sigma_of)
    if not train and not val_keys:
        return None
    fig = Figure(figsize=(11, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    if train:
        ax1.plot(
            [r["step"] for r in train],
            [r["loss"] for r in train],
            marker="." if len(train) < 50 else None,
            label="train loss (mean over the logging window)",
        )
        ax1.legend(fontsize=8)
    _log_axis_if_positive(ax1, [r["loss"] for r in train])
    ax1.set_title("training loss")
    ax1.set_xlabel("step")
    ax1.grid(alpha=0.3)
    values = []
    for k in val_keys:
        pts = [(r["step"], r[k]) for r in valid if isinstance(r.get(k), (int, float))]
        if pts:
            ax2.plot(
                [s for s, _ in pts],
                [v for _, v in pts],
                marker="o" if len(pts) < 50 else None,
                label=k.split("/", 1)[1],
            )
            values += [v for _, v in pts]
    if values:
        ax2.legend(fontsize=8, title="validation loss at")
    _log_axis_if_positive(ax2, values)
    ax2.set_title("validation loss per sigma")
    ax2.set_xlabel("step")
    ax2.grid(alpha=0.3)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _sigma_of(key: str) -> float:
    try:
        return float(key.split("=", 1)[1])
    except (IndexError, ValueError):
        return math.inf


def _log_axis_if_positive(ax, values: Sequence[float]) -> None:
    if values and all(v > 0 and math.isfinite(v) for v in values):
        ax.set_yscale("log")


def _spectrogram_bytes(wav_path: Path, tmp: Path) -> bytes:
    png = wav_path.with_suffix(".png")
    if png.is_file():
        return png.read_bytes()
    from .audio.features import spectrogram_png
    from .audio.io import load

    wav, sr = load(wav_path)
    out = spectrogram_png(wav, sr, tmp / "spec.png", title=wav_path.name)
    return out.read_bytes()


def _audio_item(path: Path, folder: Path, tmp: Path) -> str:
    from .audio.io import audio_info

    rel = path.relative_to(folder).as_posix()
    head = f'<div class="item"><h3>{html.escape(rel)}</h3>'
    try:
        frames, sr, ch = audio_info(path)
        img = _spectrogram_bytes(path, tmp)
    except ScoreAudioError as e:
        return head + f'<p class="error">cannot read: {html.escape(str(e))}</p></div>'
    info = f"{frames / sr:.2f} s, {sr} Hz, {ch} channel{'s' if ch != 1 else ''}"
    return (
        head + f'<p class="meta">{info}</p>'
        f'<audio controls preload="metadata" src="{_data_uri("audio/wav", path.read_bytes())}"></audio>'
        f'<img alt="spectrogram of {html.escape(rel)}" src="{_data_uri("image/png", img)}"></div>'
    )


def build_report(folder: Union[str, Path], *, title: Optional[str] = None) -> Tuple[str, Dict[str, int]]:
    """The HTML page for ``folder`` and counts ``{"audio", "manifests", "curves"}``.

    Raises:
        DataError: the folder does not exist, or holds neither WAV files nor run metrics.
    """
    from . import __version__
    from .audio.io import find_audio_files
    from .utils.logging import read_metrics

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"report: '{folder}' is not a folder; pass a run directory or a samples folder")
    wavs = find_audio_files(folder, REPORT_EXTS)
    metrics = read_metrics(folder)
    if not wavs and not metrics:
        raise DataError(
            f"report: no WAV files under '{folder}' and no metrics.jsonl in it; "
            f"pass a run directory or a folder written by 'scoreaudio generate'"
        )
    title = title or f"scoreaudio report: {folder.resolve().name}"
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="meta">{html.escape(str(folder.resolve()))} &middot; {len(wavs)} audio file'
        f"{'s' if len(wavs) != 1 else ''} &middot; made {time.strftime('%Y-%m-%d %H:%M')} by scoreaudio "
        f"{__version__}</p>"
    ]
    counts = {"audio": len(wavs), "manifests": 0, "curves": 0}

    if metrics:
        png = loss_curves_png(metrics)
        if png is not None:
            counts["curves"] = 1
            parts.append(
                f'<h2>Loss curves</h2><div class="curves"><img id="loss-curves" alt="loss curves" '
                f'src="{_data_uri("image/png", png)}"></div>'
            )
        summary = folder / "summary.json"
        if summary.is_file():
            parts.append(_details("summary.json", f"<pre>{html.escape(summary.read_text())}</pre>"))
        config = folder / "config.yaml"
        if config.is_file():
            parts.append(_details("config.yaml", f"<pre>{html.escape(config.read_text())}</pre>"))

    for mpath in sorted(folder.rglob("manifest.json"), key=lambda p: p.relative_to(folder).as_posix()):
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, json.JSONDecodeError) as e:
            parts.append(
                f'<p class="error">{html.escape(str(mpath))}: unreadable ({html.escape(str(e))})</p>'
            )
            continue
        if isinstance(manifest, dict):
            counts["manifests"] += 1
            settings = manifest.get("settings") if isinstance(manifest.get("settings"), dict) else {}
            rest = {k: v for k, v in manifest.items() if k not in ("settings", "files")}
            parts.append(
                f"<h2>Settings: {html.escape(mpath.relative_to(folder).as_posix())}</h2>"
                + _generation_summary(manifest)
                + _speech_measures_table(manifest)
                + (_settings_table(settings) if settings else "")
                + (
                    _details(f"everything else in {mpath.name} ({', '.join(rest)})", _settings_table(rest))
                    if rest
                    else ""
                )
            )

    if wavs:
        parts.append("<h2>Audio</h2>")
        with tempfile.TemporaryDirectory() as tmp:
            group = None
            for path in wavs:
                parent = path.parent.relative_to(folder).as_posix()
                if parent != group and parent != ".":
                    parts.append(f"<h3>{html.escape(parent)}/</h3>")
                group = parent
                parts.append(_audio_item(path, folder, Path(tmp)))
    parts.append("</body></html>\n")
    return "".join(parts), counts


def write_report(
    folder: Union[str, Path], out: Union[str, Path, None] = None, *, title: Optional[str] = None
) -> Path:
    """Write the report of ``folder`` to ``out`` (default ``folder/report.html``) atomically; returns it."""
    from .utils.files import atomic_write

    page, _ = build_report(folder, title=title)
    out = Path(out) if out is not None else Path(folder) / "report.html"
    atomic_write(out, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return out


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "folder",
        metavar="RUN_OR_SAMPLES_DIR",
        help="a run directory (loss curves + its samples) or any folder of WAV files",
    )
    p.add_argument("-o", "--out", help="the HTML file to write (default: RUN_OR_SAMPLES_DIR/report.html)")
    p.add_argument("--title", help="page title (default: the folder's name)")


def run_cli(args: argparse.Namespace) -> int:
    from .utils.logging import log

    path = write_report(args.folder, args.out, title=args.title)
    log(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it in a browser")
    return 0
