"""A model written outside the project, brought in from the README alone: what the adapter promises holds.

``tests/adapters/tfgru/``: a time-first CNN (a conv/BN/ReLU stem, three separable blocks in one
``nn.Sequential``, from a sibling file ``blocks.py``) with a GRU head, at 22.05 kHz with 40 mel bands from
50 Hz and ``n_fft`` 1024. It is registered, then run through every command; what it cannot do is refused in
one line with status 2 before any clip is computed. Also: a registered model's weights and modules are part of
what it is (a change is refused until registered again, and gives another cache key), wrong-shape weights are
one line, and ``taps=`` entries are checked against the shape they record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from core.data.cache import checkpoint_fingerprint
from core.models.checkpoint import load_checkpoint
from core.cli import main
from core.models.adapter import load_adapter
from core.models.user_models import add_model

ADAPTERS = Path(__file__).resolve().parents[1] / "adapters"
TFGRU = ADAPTERS / "tfgru" / "tfgru.py"


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    from core.audio.demo_data import make_demo_data

    return make_demo_data(tmp_path_factory.mktemp("demo") / "demo", clips_per_class=3, workers=1, show_bar=False)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    return tmp_path


def random_weights(adapter: Path, path: Path, seed: int = 0) -> Path:
    spec = load_adapter(adapter)
    torch.manual_seed(seed)
    for module in spec.model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    save_file({k: v.contiguous() for k, v in spec.model.state_dict().items()}, str(path))
    return path


def one_line_status_2(argv, capsys, *words) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def test_a_sequential_of_three_blocks_gives_three_taps_and_the_stem_is_read_after_its_relu(cache):
    from core.models.taps import extract

    add_model(TFGRU, random_weights(TFGRU, cache / "w.safetensors"), "tfgru")  # `from blocks import` works
    loaded = load_checkpoint("tfgru")
    convs = [t for t in loaded.model.taps() if t.kind == "conv"]
    assert [t.name for t in convs] == ["stem", "features.0", "features.1", "features.2", "rnn"]
    assert {t.view for t in convs[:4]} == {"time-first"}
    x = torch.from_numpy(loaded.input(np.random.default_rng(0).standard_normal(22050 * 5).astype(np.float32),
                                      22050))[None]
    out = extract(loaded.model, x, ["stem", "features.0"])
    net = loaded.model.net
    with torch.no_grad():  # the block's output after BN and ReLU, drawn (C, F, T): time-first transposed
        stem = net.stem(x)
        torch.testing.assert_close(out["stem"], stem.transpose(2, 3))
        torch.testing.assert_close(out["features.0"], net.features[0](stem).transpose(2, 3))
    assert out["stem"].min() >= 0  # after the ReLU, not the raw convolution


def test_input_receives_exactly_clip_seconds_of_samples_and_n_fft_is_the_adapters(cache):
    adapter = cache / "counting.py"
    adapter.write_text(TFGRU.read_text().replace(
        "def to_input(y: np.ndarray, sr: int) -> np.ndarray:\n",
        "SEEN = []\n\n\ndef to_input(y: np.ndarray, sr: int) -> np.ndarray:\n    SEEN.append(len(y))\n"))
    shutil.copy(TFGRU.parent / "blocks.py", cache / "blocks.py")
    add_model(adapter, random_weights(adapter, cache / "w.safetensors"), "counting")
    loaded = load_checkpoint("counting")
    assert loaded.audio_cfg.n_fft == 1024 and loaded.audio_cfg.fmin_hz == 50.0
    loaded.input(np.zeros(300_000, np.float32), 22050)
    assert loaded.input_fn.__globals__["SEEN"][-1] == 5 * 22050  # 110,250: not a whole number of hops more


def test_evaluate_sees_replaced_weights_and_an_edited_module_is_refused(cache, small_demo, capsys):
    folder = cache / "mine"
    shutil.copytree(TFGRU.parent, folder)
    adapter, weights = folder / "tfgru.py", random_weights(folder / "tfgru.py", cache / "w.safetensors")
    evaluate = ["evaluate", "--checkpoint", "mine", "--data", str(small_demo), "--fold", "3", "--no-progress"]
    assert main(["add-model", "--adapter", str(adapter), "--weights", str(weights), "--name", "mine"]) == 0
    assert main(evaluate + ["--out", str(cache / "a.json")]) == 0
    key_before = checkpoint_fingerprint(load_checkpoint("mine").folder)

    state = load_file(str(weights))
    state["classifier.bias"] = torch.zeros_like(state["classifier.bias"])
    state["classifier.bias"][3] = 100.0  # the new weights say class 3 for every clip
    save_file(state, str(weights))
    assert checkpoint_fingerprint(cache / "cache" / "models" / "mine") != key_before  # the key covers the bytes
    one_line_status_2(evaluate, capsys, str(weights), "changed since model 'mine' was registered", "--replace")
    assert main(["add-model", "--adapter", str(adapter), "--weights", str(weights), "--name", "mine",
                 "--replace"]) == 0
    assert main(evaluate + ["--out", str(cache / "b.json")]) == 0
    a, b = (json.loads((cache / f"{k}.json").read_text()) for k in "ab")
    assert set(b["y_pred"]) == {3} and b["y_pred"] != a["y_pred"]

    (folder / "blocks.py").write_text((folder / "blocks.py").read_text() + "\n# edited\n")
    one_line_status_2(evaluate, capsys, str(folder / "blocks.py"), "module the adapter imports")


def test_wrong_shape_weights_are_one_line_and_status_2(cache, capsys):
    weights = random_weights(TFGRU, cache / "w.safetensors")
    state = load_file(str(weights))
    state["classifier.weight"] = torch.zeros(5, state["classifier.weight"].shape[1])
    save_file(state, str(weights))
    one_line_status_2(["add-model", "--adapter", str(TFGRU), "--weights", str(weights), "--name", "bad"], capsys,
                      "classifier.weight (5, 16) in the file, (10, 16) in the model")


def test_a_taps_entry_that_cannot_be_read_as_a_map_is_refused_with_its_shape(cache, capsys):
    adapter = cache / "linear_tap.py"
    text = TFGRU.read_text().replace("n_fft=CFG.n_fft)", "n_fft=CFG.n_fft, taps={'frames': 'proj'})")
    text = text.replace("        self.classifier = nn.Linear(hidden, n_classes)\n",
                        "        self.classifier = nn.Linear(hidden, n_classes)\n        self.proj = nn.Linear(hidden, hidden)\n")
    text = text.replace("return self.classifier(h.mean(dim=1))", "return self.classifier(self.proj(h).mean(dim=1))")
    adapter.write_text(text)
    shutil.copy(TFGRU.parent / "blocks.py", cache / "blocks.py")
    one_line_status_2(["add-model", "--adapter", str(adapter), "--name", "lin"], capsys,
                      "tap 'frames' (proj) is read as a conv tap", "(1, 27, 16)")


def test_every_command_runs_or_says_in_one_line_why_not(cache, small_demo, capsys):
    data = str(small_demo)
    assert main(["add-model", "--adapter", str(TFGRU), "--weights",
                 str(random_weights(TFGRU, cache / "w.safetensors")), "--name", "tfgru"]) == 0
    clip = sorted((small_demo / "audio").glob("*.wav"))[0]
    assert main(["predict", "--checkpoint", "tfgru", str(clip)]) == 0
    assert main(["evaluate", "--checkpoint", "tfgru", "--data", data, "--fold", "3", "--no-progress"]) == 0
    assert main(["label-issues", "--checkpoint", "tfgru", "--data", data, "--top", "3"]) == 0
    one_line_status_2(["explain-report", "--checkpoint", "tfgru", "--data", data, "--fold", "3", "--limit", "2"],
                      capsys, "needs an input laid out (1, n_mels, n_frames), this model's is time-mel")
    one_line_status_2(["se-ablation", "--checkpoint", "tfgru", "--data", data, "--fold", "3"], capsys, "no squeeze-and-excitation")
    one_line_status_2(["fit-decoders", "--checkpoint", "tfgru", "--data", data], capsys,
                      "time-mel", "is not a (1, n_mels=40, n_frames) spectrogram")
    one_line_status_2(["train", "--model", "secnn", "--data", data, "--test-fold", "3", "--epochs", "1",
                       "--out", str(cache / "student"), "--teacher", "tfgru"], capsys,
                      "takes another input than the student")
    assert not (cache / "student").exists()


def test_decoders_read_a_mel_time_adapters_own_input(cache, small_demo):
    """A mel-time adapter's decoders reconstruct its own input's mel bands (offered on the page, fitted by the CLI)."""
    from core.interpret.registry import usable
    from core.data.datasets import open_dataset
    from core.interpret.decoder_fit import tap_data

    crnn = ADAPTERS / "crnn.py"
    add_model(crnn, random_weights(crnn, cache / "w.safetensors"), "crnn")
    loaded = load_checkpoint("crnn")
    assert usable(loaded, "Decoders") == ["NMF-style decoders"]
    records = open_dataset(small_demo).records[:2]
    acts, X = tap_data(loaded, records, ["conv_block1"], progress=False)
    from core.data.datasets import load_mono
    from core.interpret.nmf import nonnegative_target

    inputs = np.stack([loaded.input(load_mono(r, loaded.audio_cfg), loaded.audio_cfg.sr)[0] for r in records])
    assert X.shape == (2, 32, 313) and np.allclose(X, nonnegative_target(inputs))


def test_a_taps_entry_on_an_undiscovered_block_keeps_the_models_axes(cache):
    """A time-first block named in ``taps=`` is viewed time-first like the discovered ones: (C, F, T) on the page."""
    adapter = cache / "named_tap.py"
    adapter.write_text(TFGRU.read_text().replace("n_fft=CFG.n_fft)", "n_fft=CFG.n_fft, taps={'first': 'features.0'})"))
    shutil.copy(TFGRU.parent / "blocks.py", cache / "blocks.py")
    entry = add_model(adapter, None, "named")
    assert entry["taps"]["first"] == {"kind": "conv", "view": "time-first", "shape": [1, 8, 20, 108]}
