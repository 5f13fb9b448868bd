"""The explorer's pages run end to end (Streamlit AppTest) on the bundled default.

The bundled demo set is made small (2 clips per class) in a temporary cache,
and two tiny random-weight checkpoints (an SE-CNN and an 8-layer AST) are
found through ``$EXPLORER_CHECKPOINTS``; the sidebar is pointed at them so the
tests do not depend on the shipped checkpoints.
"""

from __future__ import annotations

import json

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "explorer" / "app.py")
TIMEOUT_S = 60
MODELS = ["tiny-secnn", "tiny-ast"]

EXPLORER_ENV = {"clips_per_class": 2, "ast": {"dim": 16, "depth": 8, "heads": 8, "mlp_ratio": 1.0}}


def start(page: str | None = None, *, timeout_s: float = TIMEOUT_S) -> AppTest:
    """The app on its default page, or switched to ``page`` (e.g. "views/layers.py")."""
    at = AppTest.from_file(APP, default_timeout=timeout_s)
    at.session_state["models"] = list(MODELS)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def charts(at: AppTest) -> list:
    return list(at.get("plotly_chart"))


def wav_bytes(y: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format="WAV", subtype=subtype)
    return buffer.getvalue()


def test_clip_page(env):
    at = start()
    no_exception(at)
    assert [t.value for t in at.main.title] == ["Clip"]
    assert at.markdown[0].value.startswith("A clip as the models hear it")  # the page's intro
    assert {"Predictions", "Look closer"} <= {s.value for s in at.subheader}
    assert any("true class" in m.value for m in at.markdown)
    # the first visit draws only the clip: waveform, spectrogram, 2 x predictions
    assert len(charts(at)) == 4 and len(at.get("audio")) == 1
    section = at.segmented_control(key="clip_section")
    assert section.value is None
    section.set_value("Preprocessing, step by step").run()
    no_exception(at)
    assert len(charts(at)) == 5 and len(at.get("audio")) == 1  # the four steps are one figure
    section.set_value("Augmented").run()
    no_exception(at)
    # augmented spectrogram, 2 x augmented predictions; the steps are gone
    assert len(charts(at)) == 4 + 3 and len(at.get("audio")) == 2  # the clip and its augmented version
    # sidebar: dataset, clip and models
    assert at.sidebar.radio[0].value == "demo"
    assert at.sidebar.multiselect[0].value == MODELS
    assert len(at.sidebar.selectbox(key="_w_clip_id").options) == 20
    assert not at.error


def test_clip_choice_persists_across_pages(env):
    at = start()
    clip_box = at.sidebar.selectbox(key="_w_clip_id")
    chosen = clip_box.options[5].split(" ")[0]
    clip_box.set_value(chosen).run()
    no_exception(at)
    assert any(chosen in m.value for m in at.markdown)
    at.switch_page("views/layers.py").run()
    no_exception(at)
    assert at.session_state["clip_id"] == chosen
    assert any(chosen in m.value for m in at.markdown)


def test_bad_uploads_keep_the_previous_clip_then_a_good_one_is_explained(env):
    at = start()
    previous = at.session_state["clip_id"]
    bad = [
        ("notes.txt", b"hello", "text/plain"),  # wrong type
        ("fake.wav", b"this is not audio at all" * 10, "audio/wav"),  # audio name, not audio
        ("cut.wav", wav_bytes(np.zeros(4410, dtype=np.float32), 44100)[:30], "audio/wav"),  # truncated header
        ("tiny.wav", wav_bytes(np.zeros(1, dtype=np.float32), 44100), "audio/wav"),  # one sample
    ]
    for name, data, mime in bad:
        at.file_uploader(key="_uploader").set_value((name, data, mime))
        at.run()
        no_exception(at)
        assert len(at.error) == 1 and at.error[0].value.startswith(name + ":"), [e.value for e in at.error]
        assert at.session_state["clip_origin"] == "dataset"
        assert at.session_state["clip_id"] == previous
        assert len(charts(at)) == 4  # the previous clip is still explained: waveform, spectrogram, 2 x top-5
    t = np.arange(22050) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 880 * t)], axis=1).astype(np.float32)
    at.file_uploader(key="_uploader").set_value(("tone.wav", wav_bytes(stereo, 22050), "audio/wav"))
    at.run()
    no_exception(at)
    assert not at.error
    assert at.session_state["clip_origin"] == "upload"
    assert any("tone.wav" in m.value for m in at.markdown)
    assert any("stereo" in c.value and "22050 Hz" in c.value for c in at.caption)
    assert len(charts(at)) == 4
    at.segmented_control(key="clip_section").set_value("Augmented").run()  # the upload is augmented too
    no_exception(at)
    assert len(charts(at)) == 4 + 3 and len(at.get("audio")) == 2
    at.switch_page("views/attribution.py").run()  # other pages explain the upload too
    no_exception(at)
    assert any("tone.wav" in m.value for m in at.markdown)
    at.sidebar.button(key="_back_to_dataset").click().run()
    no_exception(at)
    assert at.session_state["clip_origin"] == "dataset"
    assert any(previous in m.value for m in at.markdown)


def test_a_broken_checkpoint_is_reported_and_the_other_model_still_works(env):
    broken = env["root"] / "checkpoints" / "broken"
    broken.mkdir()
    (broken / "checkpoint.json").write_text("{not json")
    try:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
        at.session_state["models"] = ["broken", "tiny-secnn"]
        at.run()
        no_exception(at)
        assert any("malformed JSON" in e.value for e in at.error)
        assert at.get("plotly_chart")  # the clip and tiny-secnn's predictions are still drawn
        at.switch_page("views/layers.py").run()
        no_exception(at)
        assert any(e.value.startswith(str(broken)) for e in at.error)
    finally:
        (broken / "checkpoint.json").unlink()
        broken.rmdir()


def test_layers_page(env):
    at = start("views/layers.py")
    no_exception(at)
    assert [t.value for t in at.main.title] == ["Layers"]
    slider = at.select_slider(key="_w_tap")
    assert slider.value == "block3"  # the middle conv block
    assert len(charts(at)) == 1
    # an SE tap: bars with the boosted and suppressed channels named
    slider.set_value("block3.se").run()
    no_exception(at)
    assert at.session_state["tap"] == "block3.se"
    assert any(c.value.startswith("Most boosted:") for c in at.caption)
    assert not [w for w in list(at.slider) + list(at.radio) if w.key in ("layers_n", "layers_order")]  # no effect
    # two layers side by side
    at.radio(key="layers_compare").set_value("another layer").run()
    no_exception(at)
    assert len(charts(at)) == 2
    at.select_slider(key="layers_second_tap").set_value("block2").run()
    assert at.slider(key="layers_n").value == 12  # the second layer has feature maps: the controls are back
    # channel count and order are the user's
    at.radio(key="layers_compare").set_value("another clip").run()
    at.select_slider(key="_w_tap").set_value("block2").run()
    at.slider(key="layers_n").set_value(8).run()
    at.radio(key="layers_order").set_value("variance").run()
    no_exception(at)
    assert len(charts(at)) == 2


# Pages that score their map (deletion curves, smooth random draws, the randomisation sanity check) on first draw.
SCORING_TIMEOUT_S = 180


def test_attention_page(env):
    at = start("views/attention.py", timeout_s=SCORING_TIMEOUT_S)
    no_exception(at)
    assert [t.value for t in at.main.title] == ["Attention"]
    assert at.multiselect(key="attention_layers").value == [1, 4, 8]
    keys = [c.key for c in charts(at)]
    assert keys[:2] == ["attention_grid_chart", "attention_picker_chart"]  # the grid and the rollout map
    grid, picker = (json.loads(c.proto.spec) for c in charts(at)[:2])
    columns = [a["text"] for a in grid["layout"]["annotations"] if a["text"].startswith("head ")]
    assert columns == ["head 1", "head 2", "head 3", "head 4"]  # of 8: four cells across stay readable
    assert grid["layout"]["xaxis"]["tickfont"]["size"] >= 10
    dots = [t for t in picker["data"] if t.get("mode") == "markers"]  # the clickable patch centres: not drawn over
    assert dots and all(t["marker"]["line"]["width"] == 0 and t["marker"]["color"].endswith(",0.01)") for t in dots)
    at.selectbox(key="attention_heads").set_value("5-8").run()
    grid = json.loads(charts(at)[0].proto.spec)
    columns = [a["text"] for a in grid["layout"]["annotations"] if a["text"].startswith("head ")]
    assert columns == ["head 5", "head 6", "head 7", "head 8"]
    from core.data.datasets import open_dataset

    channels = sf.info(str(open_dataset(env["demo"]).record(at.session_state["clip_id"]).path)).channels
    assert len([r for r in at.radio if r.key == "attention_channel"]) == (channels == 2)  # mono: nothing to choose
    # the SE-CNN picked beside the AST is left out, and the page says why (core.interpret.registry)
    assert at.session_state["models"] == ["tiny-secnn", "tiny-ast"]
    assert any(c.value.startswith("Not shown on this page: **tiny-secnn**: attention per head and attention rollout need "
                                  "attention weights")
               for c in at.caption)
    # it opens on a patch (so arcs show at once): the strongest one on the clip's event box
    opened = at.session_state["query_patch"]
    assert isinstance(opened, int) and any(m.value.startswith(f"**Query:** patch {opened},") for m in at.markdown)
    assert [m.label for m in at.metric] == ["This map", "Random blobs", "Loudest cells"]
    assert len(at.success) + len(at.warning) == 1  # the sanity verdict, in words
    assert any("Sanity check" in v.value for v in list(at.success) + list(at.warning))
    # a click on a patch sets the query; simulate its effect
    at.session_state["query_patch"] = 17
    at.run()
    no_exception(at)
    assert any(m.value.startswith("**Query:** patch 17") for m in at.markdown)
    at.button(key="attention_cls").click().run()
    assert at.session_state["query_patch"] == "cls"
    assert any(m.value.startswith("**Query:** the class token") for m in at.markdown)
    at.selectbox(key="attention_head_fusion").set_value("max").run()
    at.slider(key="attention_discard_ratio").set_value(0.5).run()
    no_exception(at)


def test_attention_page_stereo_clip_shows_left_right_and_mix(env):
    from core.data.datasets import open_dataset

    stereo = [r.clip_id for r in open_dataset(env["demo"]).records if sf.info(str(r.path)).channels == 2]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = list(MODELS)
    at.session_state["clip_id"] = stereo[0]
    at.run()
    at.switch_page("views/attention.py").run()
    no_exception(at)
    assert "Left, right and mix-down" in [s.value for s in at.subheader]
    assert len(charts(at)) == 5
    at.radio(key="attention_channel").set_value("left").run()
    no_exception(at)
    mono = [r.clip_id for r in open_dataset(env["demo"]).records if sf.info(str(r.path)).channels == 1]
    at.session_state["clip_id"] = mono[0]
    at.run()
    no_exception(at)
    assert not [r for r in at.radio if r.key == "attention_channel"] and len(charts(at)) == 2  # nothing to choose


def test_attribution_page(env):
    at = start("views/attribution.py", timeout_s=SCORING_TIMEOUT_S)
    no_exception(at)
    assert [t.value for t in at.main.title] == ["Attribution"]
    assert len(charts(at)) == 2  # Grad-CAM overlay and deletion curve
    labels = [m.label for m in at.metric]
    assert labels == ["This map", "Random blobs", "Loudest cells"]
    assert all(0.0 <= float(m.value) <= 1.0 for m in at.metric)
    assert any("smooth random blobs" in c.value and "loudness map" in c.value for c in at.caption)
    assert len(at.success) + len(at.warning) == 1  # the sanity verdict
    assert any(w.value.startswith("**Sanity check**") and "inconclusive" in w.value for w in at.warning)  # 1 clip: no verdict
    assert not any("beats" in c.value for c in at.caption)
    at.selectbox(key="_w_target_class").set_value(env["classes"][3]).run()
    no_exception(at)
    assert at.session_state["target_class"] == env["classes"][3]
    under_chance = [i.value for i in at.info if "under chance" in i.value]
    assert len(under_chance) <= 1
    at.toggle(key="attribution_listen").set_value(True).run()
    no_exception(at)
    assert len(at.get("audio")) == 2  # masked in and masked out, resynthesised with the clip's phase
    heard = [c.value for c in at.caption if "masked in" in c.value or "masked out" in c.value]
    assert len(heard) == 2 and all(f"probability of '{env['classes'][3]}'" in c for c in heard)
    # every map method of the registry is offered; its parameters become widgets, and it is scored the same way
    box = at.selectbox(key="attribution_method")
    assert box.value == "gradcam" and {"integrated gradients", "occlusion", "SmoothGrad"} <= set(box.options)
    box.set_value("smoothgrad").run()  # (a widget found before a run is stale after it)
    no_exception(at)
    at.slider(key="attribution_smoothgrad_n_samples").set_value(2).run()
    no_exception(at)
    assert [c.key for c in charts(at)] == ["attribution_overlay", "attribution_deletion"]
    assert [m.label for m in at.metric] == ["This map", "Random blobs", "Loudest cells"]
    assert len(at.success) + len(at.warning) == 1  # its sanity verdict
    # a method's own warning about its map: Integrated Gradients at 2 steps misses completeness on this clip
    at.selectbox(key="attribution_method").set_value("integrated-gradients").run()
    at.slider(key="attribution_integrated-gradients_n_steps").set_value(2).run()
    no_exception(at)
    assert any("misses the completeness axiom" in w.value for w in at.warning)
    # signed: the overlay's colour starts at the map's 0 (the stored one), not at its minimum, and the page says so
    overlay = next(c for c in charts(at) if c.key == "attribution_overlay")
    (heat,) = [t for t in json.loads(overlay.proto.spec)["data"] if t["type"] == "heatmap"]
    from core.interpret.stored import stored_map
    from core.models.checkpoint import load_checkpoint

    record = next(r for r in env["data"].records if r.clip_id == at.session_state["clip_id"])
    _, zero = stored_map(load_checkpoint(env["root"] / "checkpoints" / "tiny-secnn"), str(record.path),
                         "integrated-gradients", {"n_steps": 2}, 3, zero=True)
    assert 0.0 < zero < 1.0 and heat["zmin"] == pytest.approx(zero) and zero < heat["zmax"] <= 1.0
    assert any("is signed: only the cells that push the model towards" in c.value for c in at.caption)
    at.selectbox(key="attribution_method").set_value("gradcam").run()
    # an AST opens on its second-to-last layer: the last one's map is always empty
    at.radio(key="attribution_model").set_value("tiny-ast").run()
    no_exception(at)
    assert at.select_slider(key="_w_tap").value == "layer7"
    at.select_slider(key="_w_tap").set_value("layer8").run()
    no_exception(at)
    assert any(c.value.startswith("The map is empty (all zero)") for c in at.caption)


def test_pages_written_by_others_open(env):
    from explorer import state

    at = start()
    for page in ("embeddings", "decoders", "errors"):
        file = state.page_file(page)
        if not (REPO / "explorer" / file).is_file():
            continue  # still a placeholder page
        at.switch_page(file).run()
        no_exception(at)


def test_folder_dataset_with_a_wrong_layout_shows_an_error_and_keeps_working(env, tmp_path):
    (tmp_path / "loose.wav").write_bytes(b"")
    at = start()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(tmp_path)).run()
    no_exception(at)
    assert any(str(tmp_path) in e.value for e in at.sidebar.error)
    assert len(charts(at)) == 4  # the demo clip is still shown


def test_a_hugging_face_ast_folder_is_explained_too(env, tmp_path, monkeypatch):
    """A local ASTForAudioClassification folder is discovered and explained with its own features."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    folder = tmp_path / "hf-tiny"
    labels = {i: c for i, c in enumerate(env["classes"])}
    config = transformers.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, num_mel_bins=64, max_length=256, patch_size=16,
                                    frequency_stride=16, time_stride=16, num_labels=len(labels),
                                    id2label=labels, label2id={c: i for i, c in labels.items()})
    transformers.ASTForAudioClassification(config).eval().save_pretrained(folder)
    transformers.ASTFeatureExtractor(num_mel_bins=64, max_length=256).save_pretrained(folder)
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", os.environ["EXPLORER_CHECKPOINTS"] + os.pathsep + str(folder))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = ["hf-tiny"]
    at.run()
    no_exception(at)
    at.switch_page("views/attention.py").run()
    no_exception(at)
    assert at.multiselect(key="attention_layers").value == [1]  # of the default 1, 4, 8, the layers it has
    stereo = any(c.key == "attention_stereo_left" for c in charts(at))  # v2 clips may be stereo: L, R and mix
    assert len(charts(at)) == (5 if stereo else 2)
    at.switch_page("views/attribution.py").run()
    no_exception(at)


def test_more_bad_uploads_then_a_96k_float_file(env):
    """Empty, 3-channel, NaN and over-the-cap uploads are refused in words; 96 kHz float works. (A long upload is
    cut into windows: tests/explorer/test_own_work.py.)"""
    at = start()
    previous = at.session_state["clip_id"]
    nan = np.zeros(4410, dtype=np.float32)
    nan[10] = np.nan
    bad = [
        ("empty.wav", b"", "empty"),
        ("three.wav", wav_bytes(np.zeros((4410, 3), dtype=np.float32), 44100), "3 channels"),
        ("nan.wav", wav_bytes(nan, 44100, "FLOAT"), "NaN"),
        ("huge.wav", b"RIFF" + bytes(51 * 2**20), "limit is 50 MB"),
    ]
    for name, data, words in bad:
        at.file_uploader(key="_uploader").set_value((name, data, "audio/wav"))
        at.run()
        no_exception(at)
        assert len(at.error) == 1 and at.error[0].value.startswith(name + ":") and words in at.error[0].value, \
            [e.value for e in at.error]
        assert at.session_state["clip_id"] == previous and at.session_state["clip_origin"] == "dataset"
    t = np.arange(96000) / 96000
    y = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    at.file_uploader(key="_uploader").set_value(("hi-res.wav", wav_bytes(y, 96000, "FLOAT"), "audio/wav"))
    at.run()
    no_exception(at)
    assert not at.error and at.session_state["clip_origin"] == "upload"
    assert any("96000 Hz" in c.value for c in at.caption)
    at.switch_page("views/layers.py").run()  # the other pages explain it too
    no_exception(at)
    assert any("hi-res.wav" in m.value for m in at.markdown)


def test_the_app_shows_the_rollout_the_report_scores(env):
    """One computation: the Attention page's rollout of a clip is explain-report's map of it."""
    from core.data.datasets import load_mono
    from core.interpret.registry import report_runs
    from explorer import cached

    folder = cached.checkpoint_folders()["tiny-ast"]
    loaded = cached.checkpoint(folder)
    record = env["data"].records[0]
    x = torch.as_tensor(loaded.features(load_mono(record, loaded.audio_cfg)))[None, None]  # as explain-report
    runs = {run.name: run for run in report_runs(loaded, reference=False)}
    app = cached.rollout(folder, str(record.path))
    report = runs["rollout (mean)"].bind(loaded)(loaded.model, x, record.label)
    np.testing.assert_allclose(app, report, atol=1e-6)
    assert np.isnan(app).any() == np.isnan(report).any()
    fused = cached.rollout(folder, str(record.path), head_fusion="max", discard_ratio=0.9)
    report = runs["rollout (max, discard 0.9)"].bind(loaded)(loaded.model, x, record.label)
    np.testing.assert_allclose(fused, report, atol=1e-6)
    # and the Attribution page's Grad-CAM is the report's
    tap = next(run.params["tap"] for run in runs.values() if run.spec.id == "gradcam")
    app = cached.method_map(folder, str(record.path), "gradcam", cached.params_key({"tap": tap}), record.label)
    report = runs[f"grad-cam {tap}"].bind(loaded)(loaded.model, x, record.label)
    np.testing.assert_allclose(app, report, atol=1e-6)
