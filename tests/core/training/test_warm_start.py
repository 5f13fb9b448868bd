"""Warm start: matching tensors copied, position embeddings resized over the grid, a new head left fresh."""

import torch

from core.audio.features import AudioConfig
from core.models.checkpoint import save_checkpoint
from core.models import build_model
from core.training.warm_start import resize_positions, warm_start

SMALL = {"patch": 8, "stride_f": 8, "stride_t": 8, "dim": 16, "depth": 2, "heads": 2, "mlp_ratio": 1.0,
         "n_mels": 32, "n_frames": 43}


def test_resize_positions_keeps_special_tokens_and_grid_corners():
    pos = torch.randn(1, 1 + 2 * 3, 4)
    out = resize_positions(pos, (2, 3), (2, 5))
    assert out.shape == (1, 1 + 2 * 5, 4)
    torch.testing.assert_close(out[:, 0], pos[:, 0])
    old, new = pos[0, 1:].reshape(2, 3, 4), out[0, 1:].reshape(2, 5, 4)
    torch.testing.assert_close(new[:, 0], old[:, 0])
    torch.testing.assert_close(new[:, -1], old[:, -1])
    torch.testing.assert_close(new[:, 2], (old[:, 1]))  # the middle of 5 is the middle of 3
    torch.testing.assert_close(new[:, 1], (old[:, 0] + old[:, 1]) / 2)


def test_warm_start_from_an_unpadded_ast_into_a_padded_one_with_other_classes(tmp_path):
    torch.manual_seed(0)
    source = build_model("ast", {**SMALL, "pad": False}, n_classes=3)
    save_checkpoint(tmp_path / "old", source, AudioConfig(n_mels=32, n_frames=43), ["a", "b", "c"], {"note": "t"})
    torch.manual_seed(1)
    net = build_model("ast", SMALL, n_classes=4)
    fresh_head = net.head.weight.detach().clone()
    report = warm_start(net, tmp_path / "old")
    assert source.grid == (4, 5) and net.grid == (4, 6)
    assert report["resized"] == ["embed.pos"] and set(report["kept"]) == {"head.weight", "head.bias"}
    for name, tensor in source.state_dict().items():
        if name in report["copied"]:
            torch.testing.assert_close(net.state_dict()[name], tensor)
    assert "layers.1.attn.qkv.weight" in report["copied"] and "embed.patch.weight" in report["copied"]
    torch.testing.assert_close(net.head.weight, fresh_head)
