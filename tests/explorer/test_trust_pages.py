"""How far to trust a page (Streamlit AppTest): an out-of-distribution upload is flagged where its prediction
and explanations are shown, and a dataset of classes the model does not know is said at once.

Model: the shipped SE-CNN (its novelty score ships in ``checkpoints/secnn/novelty/``); data: the ``env``
fixture's small demo set, and a class-folder dataset of synthesised clips with new class names.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.interpret.novelty import CAPTION
from core.paths import CHECKPOINTS_DIR
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "explorer" / "app.py")
TIMEOUT_S = 120
EXPLORER_ENV = {"clips_per_class": 2}
NEW_CLASSES = ("zero", "one", "two")

pytestmark = pytest.mark.skipif(not (CHECKPOINTS_DIR / "secnn" / "novelty").is_dir(),
                                reason="the shipped SE-CNN carries no novelty score")


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = ["secnn"]
    at.run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def warnings_text(at: AppTest) -> str:
    return "\n".join(w.value for w in at.warning)


def wav_bytes(y: np.ndarray, sr: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def unknown_class_folder(root: Path) -> Path:
    """Three new classes of five synthesised clips each (one per fold): tones, chirps, noise."""
    from core.audio.ood_sets import ood_clips

    for name, kind in zip(NEW_CLASSES, ("tones", "chirps", "noise")):
        (root / name).mkdir(parents=True)
        for i, y in enumerate(ood_clips(kind, 5, seed=3, sr=22050, duration_s=2.0)):
            sf.write(root / name / f"{name}-{i}.wav", y, 22050)
    return root


def test_an_out_of_distribution_upload_is_flagged_on_clip_attribution_and_review(env):
    from core.audio.ood_sets import ood_clips

    at = start()
    no_exception(at)
    assert "unlike the training data" not in warnings_text(at)  # a demo clip: familiar
    chirp = ood_clips("chirps", 1, seed=5)[0]
    at.file_uploader(key="_uploader").set_value(("chirp.wav", wav_bytes(chirp, 44100), "audio/wav"))
    at.run()
    no_exception(at)
    assert at.session_state["clip_origin"] == "upload"
    assert "secnn: this clip is unlike the training data: its classes may not apply" in warnings_text(at)
    at.switch_page("views/attribution.py").run()
    no_exception(at)
    assert CAPTION in warnings_text(at)
    at.switch_page("views/review.py").run()
    no_exception(at)
    assert "your upload chirp.wav" in warnings_text(at) and "unlike the training data" in warnings_text(at)
    assert any("How far to trust the ranking" in c.value for c in [*at.caption, *at.warning])


def test_a_dataset_of_unknown_classes_is_said_at_once_and_embeddings_use_its_labels(env, tmp_path):
    folder = unknown_class_folder(tmp_path / "digits")
    at = start()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(folder)).run()
    no_exception(at)
    sentence = "secnn knows none of the 3 classes of this dataset (one, two, zero)"
    for page in ("views/errors.py", "views/review.py"):
        began = time.perf_counter()
        at.switch_page(page).run()
        no_exception(at)
        assert sentence in warnings_text(at), page
        assert time.perf_counter() - began < 5, page  # nothing was computed before saying it
        assert not at.get("plotly_chart")
    at.switch_page("views/embeddings.py").run()
    no_exception(at)
    assert sentence in warnings_text(at)
    assert at.radio(key="embeddings_colour").options == ["true class"]  # no right / wrong
    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    names = {t["name"] for t in traces}
    assert {f"{name} (1)" for name in NEW_CLASSES} <= names  # fold 5: one clip of each, coloured by its label
    assert all(s == "circle" for t in traces for s in t["marker"].get("symbol", [])
               if isinstance(t["marker"].get("symbol"), list))  # no point drawn as a mistake
    assert any("Coloured by the dataset's own labels" in c.value for c in at.caption)
    assert not any("predicted right" in c.value for c in at.caption)
    assert any("clips (" in c.value and "unlike secnn's training data" in c.value for c in [*at.caption, *at.warning])
