"""``make run``: the quick default suite, leaderboard printed, report written to ``bench-out/``.

UCI Multiple Features (two views), every installed fusion method and weighting scheme (one axis
at a time), 3-fold CV, a Gaussian-noise sweep and the removed-view table, on every core.
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
