"""Sensor sequences: accelerometer + gyroscope time series with sequence backbones (BasicMotions).

    python examples/sensor_sequences.py            # full run (about 15 s on one core)
    python examples/sensor_sequences.py --quick    # a few seconds (also FUSEKIT_EXAMPLES_QUICK=1)

Each sample is two 3-axis smartwatch signals of 100 steps, ``(n, 100, 3)`` per modality; the
4 classes are Standing, Running, Walking, Badminton. Each modality gets its own sequence encoder
(``backbone={...}``, parameters routed per modality with ``backbone__<modality>__<param>``), and
the encodings are fused either by concatenation of the time-pooled vectors or by MulT-style
cross-modal attention over the time steps. Recordings of different lengths are given
as lists of ``(T_i, 3)`` arrays, and the model predicts recordings longer than those it was
trained on.
"""

from __future__ import annotations

import argparse

import numpy as np
from _quick import example_parser

from fusekit import FusionClassifier, Modalities
from fusekit.datasets import load_basic_motions


def parse_args() -> argparse.Namespace:
    parser = example_parser(
        __doc__.splitlines()[0], "shorter sequences and few epochs, for the test suite"
    )
    return parser.parse_args()


def main(quick: bool) -> None:
    X_train, y_train = load_basic_motions("train")  # 40 recordings, the data set's own split
    X_test, y_test = load_basic_motions("test")  # 40 recordings
    if quick:  # every 4th step: (n, 25, 3)
        X_train = Modalities({m: x[:, ::4] for m, x in X_train.items()})
        X_test = Modalities({m: x[:, ::4] for m, x in X_test.items()})
    print({m: x.shape for m, x in X_train.items()}, "classes:", sorted(set(y_train)))

    common = dict(
        backbone={"accelerometer": "gru", "gyroscope": "conv1d"},
        backbone__hidden=32,  # every backbone that has a 'hidden' parameter
        backbone__gyroscope__kernel_size=5,  # the gyroscope's conv1d only
        max_epochs=3 if quick else 40,
        batch_size=16,
        random_state=0,
    )
    for fusion in ["concat", "crossmodal"]:
        model = FusionClassifier(fusion=fusion, **common).fit(X_train, y_train)
        print(f"{fusion:10s} test accuracy {model.score(X_test, y_test):.3f}")

    # Recordings of different lengths: one (T_i, 3) array per recording, padded inside with
    # all-NaN steps; the step mask reaches the GRU (packed sequences), the conv1d and the pooling.
    halves = Modalities(
        {m: [row[: len(row) // 2] for row in x[:5]] + list(x[5:]) for m, x in X_test.items()}
    )
    same = (model.predict(halves)[:5] == model.predict(X_test)[:5]).sum()
    print(f"half-length recordings: {same} of 5 predictions unchanged")
    # Longer than any training recording: gru and conv1d accept any length (accepts_any_length).
    doubled = Modalities(
        {m: [np.concatenate([row, row]) for row in x[:5]] for m, x in X_test.items()}
    )
    print("double-length recordings predicted:", model.predict(doubled))


if __name__ == "__main__":
    main(parse_args().quick)
