"""The command line of tools/benchmark.py: parse, run the suites (or re-render saved JSON), write
stdout, --json, --markdown and the perf block of docs/performance.md (or ``--readme``); ``--worker`` runs
one isolated measurement."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import bench
from bench import REPO
from bench.isolation import WORKER_TAG, WORKERS
from bench.markdown import render_markdown
from bench.readme import PERF_DOC, update_perf_section
from bench.results import read_results, to_jsonable, write_json
from bench.runner import run_suites
from bench.settings import Settings
from bench.suites import SUITES
from bench.workloads import BACKBONES


def perf_target(args: argparse.Namespace) -> Path:
    """The file whose perf block --update-readme rewrites: ``--readme``, else docs/performance.md of
    this checkout (:data:`bench.readme.PERF_DOC`)."""
    return Path(args.readme) if args.readme else REPO / PERF_DOC


def _ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> List[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="tools/benchmark.py",
        description=bench.__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("suites", nargs="*", help=f"any of {', '.join(SUITES)}, or all (default: all)")
    p.add_argument(
        "--presets", default="tiny,small", help="comma-separated: tiny, small, base (default: tiny,small)"
    )
    p.add_argument("--backbones", default="unet2d,wavenet", help="comma-separated: unet2d, wavenet")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, shorter inputs, no 1,000-NFE runs")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (train, sample)")
    p.add_argument("--ab", default="", help="comma-separated A/B experiments in train: layout, sync")
    p.add_argument("--repeats", type=int, help="timed pairs per figure (default 5; 3 with --quick)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="denoise: a run directory or .pt (repeatable); default: 2-step temp runs",
    )
    p.add_argument("--nfes", type=_ints, help="sample: network evaluations, e.g. 30,50,100,1000")
    p.add_argument("--sample-batches", type=_ints, help="sample: batch sizes, e.g. 1,8")
    p.add_argument(
        "--sample-seconds", type=float, help="sample: length of each sample (default 2; 1 with --quick)"
    )
    p.add_argument(
        "--sample-budget",
        dest="sample_budget_s",
        type=float,
        help="sample: seconds a run may take before it is measured shorter and extrapolated",
    )
    p.add_argument("--denoise-seconds", type=_floats, help="denoise: input lengths, e.g. 4,60,600")
    p.add_argument(
        "--denoise-budget",
        dest="denoise_budget_s",
        type=float,
        help="denoise: a length predicted to take longer than this many seconds is skipped",
    )
    p.add_argument(
        "--denoise-steps",
        type=int,
        help="denoise: steps for posterior/conditional (default: SpeechDenoiser's)",
    )
    p.add_argument(
        "--no-isolate",
        action="store_true",
        help="measure train/denoise configurations in this process "
        "(faster; where Linux cannot reset the peak RSS, CPU memory is then a lower bound)",
    )
    p.add_argument("--json", type=Path, help="write all results and metadata as JSON")
    p.add_argument("--markdown", type=Path, help="write the tables as Markdown")
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="write the tables between <!-- perf:start --> and <!-- perf:end --> of "
        f"{PERF_DOC.as_posix()} (or --readme), adding the markers at its end if missing",
    )
    p.add_argument(
        "--readme",
        type=Path,
        default=None,
        metavar="FILE.md",
        help=f"the Markdown file --update-readme writes (default: {PERF_DOC.as_posix()})",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        action="append",
        default=[],
        help="measure nothing: render the results of earlier --json files (repeatable; suites "
        "of later files win) to stdout / --markdown / --update-readme",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-spec", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = WORKERS[args.worker](json.loads(args.worker_spec))
        print(WORKER_TAG + json.dumps(to_jsonable(result)), flush=True)
        return 0
    if args.from_json:
        md = render_markdown(read_results(args.from_json))
        print(md)
        if args.markdown:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(md)
        if args.update_readme:
            update_perf_section(md, perf_target(args))
        return 0
    names = list(args.suites) or ["all"]
    if "all" in names:
        names = list(SUITES)
    bad = [n for n in names if n not in SUITES]
    if bad:
        raise SystemExit(f"unknown suite(s) {', '.join(bad)}; valid: {', '.join(SUITES)}, all")
    kw: Dict[str, Any] = {
        "presets": [p.strip() for p in args.presets.split(",") if p.strip()],
        "backbones": [b.strip() for b in args.backbones.split(",") if b.strip()],
        "compile": args.compile,
        "ab": [a.strip() for a in args.ab.split(",") if a.strip()],
        "isolate": not args.no_isolate,
        "checkpoints": list(args.checkpoint),
    }
    for b in kw["backbones"]:
        if b not in BACKBONES:
            raise SystemExit(f"unknown backbone {b!r}; valid: {', '.join(BACKBONES)}")
    for a in kw["ab"]:
        if a not in ("layout", "sync"):
            raise SystemExit(f"unknown --ab experiment {a!r}; valid: layout, sync")
    if args.repeats:
        kw["repeats"] = args.repeats
    if args.threads:
        kw["threads"] = args.threads
    s = Settings.make(args.device, args.quick, **kw)
    for key in (
        "nfes",
        "sample_batches",
        "sample_seconds",
        "sample_budget_s",
        "denoise_seconds",
        "denoise_budget_s",
        "denoise_steps",
    ):
        value = getattr(args, key)
        if value is not None:
            setattr(s, key, value)
    results = run_suites(names, s, partial_json=args.json)
    md = render_markdown(results)
    if args.json:
        write_json(args.json, results)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(md)
    if args.update_readme:
        target = update_perf_section(md, perf_target(args))
        s.log(f"{target}: performance section updated between the perf markers")
    failed = [n for n, r in results["suites"].items() if r.get("error")]
    return 1 if failed else 0
