"""The README's "Your own model" adapter runs: extracted from the README, registered, loaded, explained."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from core.models.checkpoint import load_checkpoint
from core.cli import main
from core.interpret.registry import usable

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_adapter() -> str:
    section = README.read_text().split("## Your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one complete adapter"
    return blocks[0]


def test_the_readme_adapter_registers_and_is_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    adapter = tmp_path / "my_model.py"
    adapter.write_text(readme_adapter())
    namespace: dict = {}
    exec(compile(adapter.read_text(), str(adapter), "exec"), namespace)
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in namespace["MyNet"](3).state_dict().items()}
    save_file(state, str(tmp_path / "my_weights.safetensors"))
    command = re.search(r"python -m core (add-model .*)", README.read_text()).group(1).split()
    command = [str(tmp_path / a) if a.endswith((".py", ".safetensors")) else a for a in command]
    assert main(command) == 0
    assert "conv_block1" in capsys.readouterr().out
    loaded = load_checkpoint("mine")
    x = loaded.input(np.zeros(16000 * 5, np.float32), 16000)
    assert x.shape == (1, 64, 501)
    reference = namespace["MyNet"](3)
    reference.load_state_dict(state)
    with torch.no_grad():  # the registered weights were loaded, not fresh random ones
        torch.testing.assert_close(loaded.model(torch.from_numpy(x)[None]), reference(torch.from_numpy(x)[None]))
    assert usable(loaded, "Attribution") == ["Grad-CAM", "integrated gradients", "occlusion", "SmoothGrad",
                                             "deletion curve", "the map as sound (kept and removed cells)"]
