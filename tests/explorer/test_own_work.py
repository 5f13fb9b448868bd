"""The app with a user's own work (AppTest): a CSV dataset folder and a checkpoint folder opened in the sidebar and
remembered across restarts, folds defaulting to the checkpoint's test fold, colouring by a metadata column, a
long recording cut into windows, and a short clip's padding stated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "explorer" / "app.py")
TIMEOUT_S = 90

EXPLORER_ENV = {"clips_per_class": 2}


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _digits(root: Path) -> Path:
    """labels.csv beside audio/, three speakers as folds, two words, 0.5 s at 8 kHz."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(3):
        for w, word in enumerate(("one", "two")):
            for take in range(2):
                path = f"audio/{s}_{word}_{take}.wav"
                (root / "audio").mkdir(parents=True, exist_ok=True)
                t = np.arange(4000) / 8000
                sf.write(root / path, (0.3 * np.sin(2 * np.pi * (300 + 400 * w + 30 * s) * t)
                                       + 0.01 * rng.standard_normal(t.size)).astype(np.float32), 8000)
                rows.append(f"{path},{word},{s + 1},spk{s}\n")
    (root / "labels.csv").write_text("path,label,fold,speaker\n" + "".join(rows))
    return root


def _checkpoint(folder: Path, classes, test_fold: int) -> Path:
    import torch

    from core.audio.features import AudioConfig
    from core.models.checkpoint import save_checkpoint
    from core.models import build_model

    torch.manual_seed(0)
    cfg = AudioConfig(sr=8000, n_mels=32, n_fft=512, hop_length=128, n_frames=63)  # a fitted 1 s front end
    model = build_model("secnn", {"channels": [4, 4, 4, 4, 4], "head": [8]}, n_classes=len(classes))
    return save_checkpoint(folder, model, cfg, list(classes), {"test_fold": test_fold})


def test_a_csv_folder_and_a_checkpoint_folder_open_and_are_remembered(env, tmp_path, monkeypatch):
    from core.audio.demo_data import default_demo_dir

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))  # no demo set here: it must not be built
    digits = _digits(tmp_path / "digits")
    mine = _checkpoint(tmp_path / "mine" / "digits-secnn", ["one", "two"], test_fold=3)

    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["dataset_source"] = "folder"
    at.session_state["dataset_folder"] = str(digits)
    at.session_state["_checkpoint_folders_open"] = True  # the sidebar's box opened
    at.run()
    no_exception(at)
    at.sidebar.text_input(key="_checkpoint_folder").set_value(str(tmp_path / "nowhere")).run()
    at.sidebar.button(key="_open_checkpoint_folder").click().run()
    assert any("nowhere" in e.value and "folder not found" in e.value for e in at.sidebar.error)
    at.sidebar.text_input(key="_checkpoint_folder").set_value(str(mine)).run()
    at.sidebar.button(key="_open_checkpoint_folder").click().run()
    no_exception(at)
    assert "digits-secnn (secnn)" in at.sidebar.multiselect[0].options
    assert at.session_state["models"][0] == "digits-secnn"  # an opened checkpoint is picked

    # a restart: a new session finds the dataset folder and the checkpoint folder again
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.run()
    no_exception(at)
    assert at.sidebar.radio[0].value == "folder" and at.sidebar.text_input[0].value == str(digits)
    assert at.session_state["models"][0] == "digits-secnn"  # the user's own checkpoint is the default pick
    assert any("a CSV of paths and labels layout: 12 clips, 2 classes, folds 1-3" in c.value for c in at.sidebar.caption)
    assert len(at.sidebar.selectbox(key="_w_clip_id").options) == 12
    assert not default_demo_dir().exists()
    # the 0.5 s clip in the 1 s window: its padding share is stated
    assert any("49 % of the model's input is padding" in c.value for c in at.caption)
    # ... and the Layers page shades it in every column of its grid, and says so
    at.switch_page("views/layers.py").run()
    no_exception(at)
    assert any("49 % of the model's input is padding" in c.value and "Grey: padding." in c.value for c in at.caption)
    grey = [s for s in charts(at)[0]["layout"]["shapes"] if s.get("fillcolor", "").startswith("rgba(128, 128, 128")]
    assert len(grey) == 4 and all(0.5 <= s["x0"] <= 0.52 for s in grey), grey

    at.switch_page("views/embeddings.py").run()
    no_exception(at)
    assert at.selectbox(key="_w_dataset_fold").value == 3  # the checkpoint's test fold, not 5
    colour = at.radio(key="embeddings_colour")
    assert "speaker" in colour.options
    colour.set_value("speaker").run()
    no_exception(at)
    names = {t.get("name", "") for t in charts(at)[0]["data"]}
    assert {"spk2 (4)"} <= names  # fold 3 is speaker 2's four clips
    assert not default_demo_dir().exists()


def test_a_long_recording_gives_windows_and_the_pick_changes_the_attribution_map(env, tmp_path):
    from core.models.checkpoint import load_checkpoint
    from core.audio.windows import most_confident
    from core.training.predict import predict_windows

    root = tmp_path / "field"
    rng = np.random.default_rng(1)
    t = np.arange(20 * 8000) / 8000
    y = np.where(t < 10, 0.3 * np.sin(2 * np.pi * 500 * t), 0.3 * rng.standard_normal(t.size))
    (root / "dog").mkdir(parents=True)
    sf.write(root / "dog" / "long.wav", y.astype(np.float32), 8000)
    sf.write(root / "dog" / "short.wav", (0.3 * np.sin(2 * np.pi * 500 * t[:4000])).astype(np.float32), 8000)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = ["tiny-secnn"]
    at.session_state["dataset_source"] = "folder"
    at.session_state["dataset_folder"] = str(root)
    at.session_state["clip_id"] = "dog/long.wav"
    at.run()
    no_exception(at)
    assert "Windows over the recording" in [s.value for s in at.subheader]
    slider = at.select_slider(key="_w_clip_window")
    folder = str(Path(env["root"]) / "checkpoints" / "tiny-secnn")
    windows, proba = predict_windows(load_checkpoint(folder), root / "dog" / "long.wav")
    assert len(slider.options) == len(windows) == 16
    assert float(slider.value) == windows[most_confident(proba)].start_s  # opens on the most confident window

    at.switch_page("views/attribution.py").run()
    no_exception(at)
    before = charts(at)[0]
    assert any("[" in m.value and "s of a longer recording" in m.value for m in at.markdown)
    at.switch_page("views/clip.py").run()
    other = 15.0 if float(slider.value) < 8 else 0.0  # a window on the other sound
    at.select_slider(key="_w_clip_window").set_value(other).run()
    no_exception(at)
    at.switch_page("views/attribution.py").run()
    no_exception(at)
    after = charts(at)[0]
    assert any(f"{other:.1f}-{other + 5:.1f} s" in m.value for m in at.markdown)
    assert json.dumps(after) != json.dumps(before)  # the map's spectrogram and heat are the new window's

    # an upload past the 60 s loading limit is not refused: it is cut into windows too
    at.switch_page("views/clip.py").run()
    long = np.tile(y[:8000].astype(np.float32), 70)  # 70 s
    import io

    buffer = io.BytesIO()
    sf.write(buffer, long, 8000, format="WAV", subtype="PCM_16")
    at.file_uploader(key="_uploader").set_value(("seventy.wav", buffer.getvalue(), "audio/wav")).run()
    no_exception(at)
    assert at.session_state["clip_origin"] == "upload" and not at.error
    assert len(at.select_slider(key="_w_clip_window").options) == 66
    at.session_state["clip_origin"] = "dataset"

    # a 0.5 s clip: the overlay marks the padding and the caption gives its share
    at.switch_page("views/attribution.py")
    at.session_state["clip_id"] = "dog/short.wav"
    at.run()
    no_exception(at)
    assert any("90 % of the model's input is padding" in c.value for c in at.caption)
    layout = charts(at)[0]["layout"]
    assert any(a.get("text") == "padding" for a in layout.get("annotations", []))
