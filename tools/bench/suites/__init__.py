"""The benchmark suites, one module each; every ``run(settings)`` returns a result dict:

``rows`` (one dict per measurement), ``columns`` ((row key, header) pairs for the table), ``notes``
(how to read it), and for suites that fit exponents ``fits`` and ``fit_columns``; ``skipped`` or
``error`` when the suite could not run. Importing this package registers the suites' workers.
"""

from __future__ import annotations

from bench.suites import denoise, matmul, sample, scale, train

SUITE_FUNCS = {
    "matmul": matmul.run,
    "train": train.run,
    "sample": sample.run,
    "denoise": denoise.run,
    "scale": scale.run,
}
SUITES = tuple(SUITE_FUNCS)
