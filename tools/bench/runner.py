"""Running suites in order: metadata first, each suite's table printed as it finishes, and (with a
JSON path) the results so far rewritten after every row, so a run stopped by a time limit still
leaves its numbers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from bench.markdown import display_tables
from bench.meta import busy_warning, metadata
from bench.results import to_jsonable, write_json
from bench.settings import Settings
from bench.suites import SUITE_FUNCS


def run_suites(names: Sequence[str], s: Settings, partial_json: Optional[Path] = None) -> Dict[str, Any]:
    """Run the named suites in order; returns {"metadata": ..., "suites": {name: result}}.

    With ``partial_json``, the results so far (finished suites and the running suite's finished rows)
    are written there after every row, so a run stopped by a time limit still leaves its numbers.
    """
    if s.threads:
        torch.set_num_threads(int(s.threads))
    results: Dict[str, Any] = {"metadata": metadata(s), "suites": {}}
    warning = busy_warning(results["metadata"])
    if warning:
        results["metadata"]["warning"] = warning
        s.log(f"WARNING: {warning}")
    for name in names:
        t0 = time.perf_counter()
        if partial_json is not None:

            def on_row(name=name):
                running = {"rows": s.live_rows, "in_progress": True}
                write_json(partial_json, {**results, "suites": {**results["suites"], name: running}})

            s.on_row = on_row
        try:
            res = SUITE_FUNCS[name](s)
        except Exception as e:  # keep the other suites' results
            import traceback

            traceback.print_exc(file=sys.stderr)
            res = {"rows": [], "columns": [], "notes": [f"FAILED: {type(e).__name__}: {e}"], "error": str(e)}
        res["wall_s"] = time.perf_counter() - t0
        results["suites"][name] = res
        print(f"\n## {name}\n")
        for table in display_tables(name, res):
            print(table)
        for n in res.get("notes", []):
            print(f"- {n}")
        sys.stdout.flush()
    results["metadata"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return to_jsonable(results)
