"""The user guide's hf_text / hf_image example runs as written on tiny models in its folders."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

GUIDE = Path(__file__).parents[3] / "docs" / "user-guide.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def test_the_hugging_face_example_runs_offline(bert, vit, tmp_path, monkeypatch):
    (code,) = [c for c in FENCE.findall(GUIDE.read_text()) if '"hf_image"' in c]
    monkeypatch.chdir(tmp_path)
    shutil.copytree(bert, tmp_path / "models" / "bert-tiny")
    shutil.copytree(vit, tmp_path / "models" / "vit-small")
    rng = np.random.default_rng(0)
    y = np.arange(12) % 2
    files = []
    for i, label in enumerate(y):
        pixels = rng.integers(0, 100, (20, 28, 3)) + 120 * label
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / f"{i}.png")
        files.append(str(tmp_path / f"{i}.png"))
    files[3] = None
    frame = pd.DataFrame(
        {
            "review__text": np.where(y == 1, "great fun film", "dull awful"),
            "photo__file": files,
            "tab__a": rng.normal(size=12),
        }
    )
    namespace = {"frame": frame, "y": y}
    exec(compile(code, str(GUIDE), "exec"), namespace)  # noqa: S102 - the guide's example
    model = namespace["model"]
    assert model.layout_.kinds == {"review": "text", "photo": "image"}
    assert not model._prepare(frame, reset=False).mask[3, list(model.layout_.names).index("photo")]
    assert np.isfinite(model.predict_proba(frame)).all()
