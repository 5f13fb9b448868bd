"""Per-head attention for a query, and the layers x heads grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.interpret.attention import (attended_patches, attention_grid, query_token, query_weights, record_attention,
                                     shown_weights, strongest_patch)
from core.interpret.maps import PatchGeometry


@pytest.fixture
def attentions(tiny_attention):
    x = torch.randn(2, 1, 8, 12, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        _, attentions = tiny_attention(x, output_attentions=True)
    return attentions


def test_query_weights_are_the_row_of_the_right_layer_head_and_item(attentions):
    weights = query_weights(attentions, layer=2, head=1, query=4, item=1)
    np.testing.assert_array_equal(weights, attentions[1][1, 0, 1 + 4, 1:].double().numpy())
    cls = query_weights(attentions, layer=1, head=2, query="cls")
    np.testing.assert_array_equal(cls, attentions[0][0, 1, 0, 1:].double().numpy())


def test_top_patches_are_sorted_with_boxes(tiny_attention, attentions):
    links = attended_patches(attentions, layer=1, head=2, query="cls", patch_box=tiny_attention.patch_box, k=3)
    row = attentions[0][0, 1, 0, 1:].numpy()
    assert [link.patch for link in links] == list(np.argsort(-row)[:3])
    assert all(a.weight >= b.weight for a, b in zip(links, links[1:]))
    assert links[0].box == tiny_attention.patch_box(links[0].patch)
    assert len(attended_patches(attentions, layer=1, head=1, query=0, patch_box=tiny_attention.patch_box,
                                k=50)) == 6


def test_grid_defaults_to_existing_layers_of_1_4_8_and_all_heads(tiny_attention, attentions):
    grid = attention_grid(attentions, query=2, patch_box=tiny_attention.patch_box, k=2)
    assert list(grid) == [(1, 1), (1, 2)]  # the tiny model has 2 layers: only layer 1 of (1, 4, 8)
    grid = attention_grid(attentions, query=2, patch_box=tiny_attention.patch_box, layers=[1, 2], heads=[2])
    assert list(grid) == [(1, 2), (2, 2)]
    assert grid[(2, 2)][0].patch == int(attentions[1][0, 1, 3, 1:].argmax())


@pytest.mark.parametrize("kwargs", [dict(layer=0), dict(layer=3), dict(head=3), dict(query=6), dict(query="x"),
                                    dict(item=2)])
def test_out_of_range_arguments_are_input_errors(attentions, kwargs):
    args = dict(layer=1, head=1, query=0, item=0) | kwargs
    with pytest.raises(InputError):
        query_weights(attentions, **args)


def test_query_token_counts_special_tokens():
    assert query_token("cls", n_patches=6, n_special=2) == 0
    assert query_token(0, n_patches=6, n_special=2) == 2


def test_grid_on_the_real_ast_with_its_patch_boxes(real_ast, real_audio_cfg):
    x = torch.randn(1, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, attentions = real_ast(x, output_attentions=True)
    box = lambda p: real_ast.patch_box(p, real_audio_cfg)
    grid = attention_grid(attentions, query="cls", patch_box=box, k=3)
    assert list(grid) == [(1, 1), (1, 2)]
    links = grid[(1, 2)]
    assert links[0].patch == int(attentions[0][0, 1, 0, 1:].argmax())
    assert links[0].box == box(links[0].patch)
    assert links[0].t0_s < links[0].t1_s and links[0].f0_hz < links[0].f1_hz


def test_the_opening_patch_is_the_strongest_on_the_event_even_when_the_event_is_shorter_than_a_patch():
    """Planted: a loud distractor patch off the event, and a click 1 frame long that no patch centre touches."""
    geometry = PatchGeometry(patch_f=4, patch_t=4, stride_f=4, stride_t=4)
    heat = np.zeros((8, 16))
    heat[0:4, 12:16] = 1.0  # the strongest patch overall (index 3), off the event
    heat[4:8, 4:8] = 0.5  # patch 5 covers the click
    heat[4:8, 8:12] = 0.4  # patch 6: also on the event below, weaker
    event = np.zeros((8, 16), dtype=bool)
    event[5, 7] = True  # a click: one cell, at no patch's centre
    assert strongest_patch(heat, grid=(2, 4), geometry=geometry) == 3
    assert strongest_patch(heat, grid=(2, 4), geometry=geometry, event_cells=event) == 5
    event[5, 8:11] = True  # now patch 6 covers three times as much of the event as patch 5: only 6 competes
    assert strongest_patch(heat, grid=(2, 4), geometry=geometry, event_cells=event) == 6
    assert strongest_patch(heat, grid=(2, 4), geometry=geometry, event_cells=np.zeros((8, 16), bool)) == 3


def test_recorded_attention_forms_each_layer_as_the_manual_path_does(real_ast):
    x = torch.randn(2, 1, 32, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        _, full = real_ast(x, output_attentions=True)
    recorded = record_attention(real_ast, x)
    assert len(recorded) == len(full)
    for layer in range(len(full)):
        torch.testing.assert_close(recorded[layer], full[layer], atol=1e-6, rtol=1e-5)
    part = recorded.rows(2, heads=[1], rows=[0, 7])  # one head, two query rows of layer 2
    torch.testing.assert_close(part, full[1][:, [1]][:, :, [0, 7]], atol=1e-6, rtol=1e-5)


def test_shown_weights_are_the_full_matrices_query_rows_of_the_shown_layers_and_heads(real_ast):
    x = torch.randn(1, 1, 32, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, full = real_ast(x, output_attentions=True)
    recorded = record_attention(real_ast, x, dtype=torch.float16)
    for query in ("cls", 5):
        got = shown_weights(recorded, layers=(2,), heads=(2, 1), query=query)
        want = np.stack([[query_weights(full, layer=2, head=h, query=query) for h in (2, 1)]])
        assert got.shape == (1, 2, 32) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=2e-3)  # inputs kept in float16
        top = [np.argsort(-row, kind="stable")[:3] for row in got[0]]
        assert [list(t) for t in top] == [list(np.argsort(-row, kind="stable")[:3]) for row in want[0]]
    with pytest.raises(InputError):
        shown_weights(recorded, layers=(3,), heads=(1,), query="cls")
    with pytest.raises(InputError):
        shown_weights(recorded, layers=(1,), heads=(3,), query="cls")
