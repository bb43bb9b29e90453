"""Benchmark results as strict JSON (NaN and inf become null) and back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Sequence

from bench.files import write_text_atomic


def to_jsonable(o: Any) -> Any:
    """``o`` with only JSON types left: NaN and inf as None, lists of (key, header) string pairs as
    lists, anything else unknown as its str()."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): to_jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        if o and all(isinstance(x, tuple) and len(x) == 2 and all(isinstance(y, str) for y in x) for x in o):
            return [list(x) for x in o]
        return [to_jsonable(x) for x in o]
    if isinstance(o, (str, int, float, bool)) or o is None:
        return o
    return str(o)


def write_json(path: Path, results: Dict[str, Any]) -> None:
    """``results`` as indented strict JSON, written atomically (partial results are rewritten often)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(to_jsonable(results), indent=2) + "\n")


def read_results(paths: Sequence[Path]) -> Dict[str, Any]:
    """The results of earlier ``--json`` files in one dict: the first file's metadata, the suites of
    all of them (a suite in a later file wins), (key, header) pairs as tuples again."""
    results: Dict[str, Any] = {"metadata": None, "suites": {}}
    for path in paths:
        loaded = json.loads(Path(path).read_text())
        results["metadata"] = results["metadata"] or loaded["metadata"]
        results["suites"].update(loaded["suites"])
    for res in results["suites"].values():  # JSON turned (key, header) pairs into lists
        for k in ("columns", "fit_columns"):
            if k in res:
                res[k] = [tuple(c) for c in res[k]]
    return results
