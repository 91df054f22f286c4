"""``make run``: the quick default suite, leaderboard printed, report written to ``bench-out/``.

UCI Multiple Features (two views) and BasicMotions (two sensor sequences), every distinct
installed fusion method and weighting scheme (one axis at a time) with the scikit-learn reference
rows, 3-fold CV, a Gaussian-noise sweep and the removed-modality table, on every core; grouped
verdicts per data set, and the ranking with its critical-difference diagram across them.
Same as ``fusekit bench --n-jobs -1 --out bench-out``.
"""

from __future__ import annotations

import sys

from fusekit.bench.cli import build_parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(
        [
            "bench",
            "--n-jobs",
            "-1",
            "--out",
            "bench-out",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
