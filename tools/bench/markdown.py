"""The Markdown of a benchmark result: one table per suite (the sample suite pivoted to a column per
NFE budget), its fits, its notes, and a line naming the machine and the command."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

from bench.stats import median


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a"
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1e5:
            return f"{v:.3g}"
        if a >= 100:
            return f"{v:.0f}"
        if a >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    if isinstance(v, int) and abs(v) >= 100000:
        return f"{v / 1e6:.2f}M"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v)
    return str(v).replace("|", "\\|")


def md_table(rows: List[Dict[str, Any]], columns: Sequence[Tuple[str, str]]) -> str:
    if not rows:
        return "(no rows)\n"
    cols = [(k, h) for k, h in columns if any(k in r for r in rows)]
    pct = {"utilisation", "utilisation_compiled", "forward_utilisation", "overhead"}
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for k, _ in cols:
            v = r.get(k)
            if k in pct and isinstance(v, float) and math.isfinite(v):
                cells.append(f"{100 * v:.1f}%")
            elif k == "error" or (k == "skipped" and v):
                cells.append(fmt(v))
            else:
                cells.append(fmt(v))
        if "error" in r:
            cells[-1] = f"FAILED: {fmt(r['error'])[:120]}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sample_table(rows: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Tuple[str, str]]]:
    """The sample suite as one row per (model, batch, sampler) with an RTF column per NFE budget."""
    nfes = sorted({r["nfe_requested"] for r in rows})
    groups: Dict[Tuple[Any, ...], List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["preset"], r["batch"], r["sampler"]), []).append(r)
    out = []
    for (preset, batch, sampler), rs in groups.items():
        row = {
            "preset": preset,
            "batch": batch,
            "audio_s": rs[0]["audio_s"],
            "sampler": sampler,
            "gflop_per_eval": rs[0]["gflop_per_eval"],
            "overhead": median([r["overhead"] for r in rs]),
            "utilisation": median([r["utilisation"] for r in rs]),
        }
        for r in rs:
            row[f"rtf@{r['nfe_requested']}"] = r["rtf"]
        extrap = [r["measured_nfe"] for r in rs if r["extrapolated"]]
        full = ", ".join(str(r["nfe"]) for r in rs if not r["extrapolated"])
        row["measured"] = (
            "all"
            if not extrap
            else (f"{full}; rest from {min(extrap)} NFE" if full else f"none: all from {min(extrap)} NFE")
        )
        if "compile_speedup" in rs[0]:
            row["compile_speedup"] = rs[0]["compile_speedup"]
        out.append(row)
    cols = [("preset", "model"), ("batch", "batch"), ("audio_s", "audio s"), ("sampler", "sampler")]
    cols += [(f"rtf@{n}", f"RTF @{n} NFE") for n in nfes]
    cols += [
        ("measured", "measured NFE"),
        ("overhead", "sampler overhead"),
        ("utilisation", "utilisation"),
        ("gflop_per_eval", "GFLOP/eval"),
        ("compile_speedup", "compile speed-up (forward)"),
    ]
    return out, cols


def display_tables(name: str, res: Dict[str, Any]) -> List[str]:
    """The Markdown tables of one suite's result."""
    tables = []
    if res.get("columns") and res.get("rows"):
        if name == "sample":
            tables.append(md_table(*sample_table(res["rows"])))
        else:
            tables.append(md_table(res["rows"], res["columns"]))
    if res.get("fits"):
        tables.append(md_table(res["fits"], res["fit_columns"]))
    return tables


def render_markdown(results: Dict[str, Any], heading_level: int = 3) -> str:
    meta = results["metadata"]
    h = "#" * heading_level
    out = [
        f"Measured {meta['date']} on {meta['device_name']} ({meta['device']}, {meta['threads']} threads, "
        f"{meta['cpu_count']} CPUs), torch {meta['torch']}, git {meta['git_revision']}, load average "
        f"{', '.join(f'{x:.1f}' for x in meta['load_average'] or [])} at the start"
        + (" (`--quick`)" if meta["settings"]["quick"] else "")
        + ". Produced by `python tools/benchmark.py "
        + " ".join(results["suites"])
        + "`."
    ]
    if meta.get("warning"):
        out.append(f"**Caveat:** {meta['warning']}.")
    out.append("")
    for name, res in results["suites"].items():
        out.append(f"{h} {name}")
        out.append("")
        out.extend(display_tables(name, res))
        for n in res.get("notes", []):
            out.append(f"- {n}")
        out.append("")
    return "\n".join(out)
