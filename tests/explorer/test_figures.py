"""The explorer's figure builders: pure functions checked against reference computations."""

from __future__ import annotations

import csv
import io

import numpy as np
import plotly.graph_objects as go
import pytest

from core.audio.features import AudioConfig, feature_steps, mel_frequencies_hz
from explorer import figures

CFG = AudioConfig()


def validated(fig: go.Figure) -> go.Figure:
    """Rebuild with plotly's full validation (the grid figures skip it when built)."""
    return go.Figure(fig.to_dict())


def axis_titles(fig: go.Figure) -> list[str]:
    layout = fig.to_dict()["layout"]
    return [v.get("title", {}).get("text") or "" for k, v in layout.items()
            if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict)]


def test_hz_to_band_hits_band_centres_and_edges():
    centres = mel_frequencies_hz(CFG)
    np.testing.assert_allclose(figures.hz_to_band(centres, CFG), np.arange(CFG.n_mels), atol=1e-9)
    assert figures.hz_to_band(CFG.fmin_hz, CFG) == pytest.approx(-0.5)
    assert figures.hz_to_band(CFG.fmax, CFG) == pytest.approx(CFG.n_mels - 0.5)
    f = np.linspace(CFG.fmin_hz, CFG.fmax, 500)
    assert np.all(np.diff(figures.hz_to_band(f, CFG)) > 0)


def test_hz_ticks_are_spread_and_labelled_in_hz():
    ticks = figures.hz_ticks(CFG)
    vals = np.array(ticks["tickvals"])
    assert np.all(np.diff(vals) >= 0.06 * CFG.n_mels)
    assert all(t.endswith("Hz") for t in ticks["ticktext"])
    assert "Hz" in ticks["title"]["text"]


def test_envelope_matches_bucket_min_max():
    y = np.random.default_rng(0).standard_normal(1003).astype(np.float32)
    index, low, high = figures.envelope(y, n_buckets=10)
    size = int(np.ceil(1003 / 10))
    assert len(index) == len(low) == len(high) <= 10
    for i, start in enumerate(index):
        chunk = y[start:start + size]
        assert low[i] == chunk.min() and high[i] == chunk.max()


def test_shrink_is_a_block_mean():
    X = np.arange(24, dtype=np.float32).reshape(4, 6)
    out = figures.shrink(X, max_rows=2, max_cols=3)
    expected = X.reshape(2, 2, 3, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out, expected)
    assert figures.shrink(X, max_rows=10, max_cols=10) is not None
    np.testing.assert_array_equal(figures.shrink(X, max_rows=10, max_cols=10), X)
    assert figures.shrink(np.ones((128, 431)), max_rows=64, max_cols=108).shape == (64, 108)


@pytest.mark.parametrize("order", figures.CHANNEL_ORDERS)
def test_strongest_channels_match_a_loop(order):
    maps = np.random.default_rng(1).random((7, 3, 5)).astype(np.float32)
    score = {"mean": lambda m: m.mean(), "max": lambda m: m.max(), "variance": lambda m: m.var()}[order]
    expected = sorted(range(7), key=lambda c: -score(maps[c]))[:4]
    assert list(figures.strongest_channels(maps, n=4, order=order)) == expected


def test_strongest_channels_refuses_an_unknown_order():
    from core.errors import InputError

    with pytest.raises(InputError, match="order"):
        figures.strongest_channels(np.zeros((2, 2, 2)), n=1, order="median")


def test_se_weights_marks_the_most_boosted_and_suppressed():
    w = np.array([0.5, 0.9, 0.1, 0.6, 0.05, 0.95, 0.4, 0.3])
    fig = figures.se_weights(w, n_marked=2)
    colours = fig.data[0].marker.color
    assert [i for i, c in enumerate(colours) if c == "#d62728"] == [1, 5]
    assert [i for i, c in enumerate(colours) if c == "#1f77b4"] == [2, 4]
    assert "excitation weight (0-1)" in axis_titles(fig)


def test_top_k_bars_lists_the_best_first_and_colours_the_truth():
    probs = np.array([0.1, 0.5, 0.05, 0.3, 0.05])
    fig = figures.top_k_bars(probs, list("abcde"), k=3, true_label=3)
    assert list(fig.data[0].y) == ["a", "d", "b"]  # bottom-up: best on top
    assert list(fig.data[0].marker.color) == ["#1f77b4", "#2ca02c", "#1f77b4"]


def test_patch_from_selection():
    assert figures.patch_from_selection(None) is None
    assert figures.patch_from_selection({"selection": {"points": []}}) is None
    assert figures.patch_from_selection({"selection": {"points": [{"x": 1.0}]}}) is None
    state = {"selection": {"points": [{"customdata": 3}, {"customdata": [17]}], "point_indices": [3, 17]}}
    assert figures.patch_from_selection(state) == 17
    assert figures.patch_from_selection({"points": [{"customdata": 4.0}]}) == 4


def test_arc_path_joins_the_ends_and_bulges_perpendicular_in_axis_units():
    path = figures.arc_path(0.0, 10.0, 2.0, 10.0, bend=0.25, x_span=4.0, y_span=100.0)
    parts = path.replace("M", "").replace("Q", "").split()
    (x0, y0), (cx, cy), (x1, y1) = [tuple(map(float, p.split(","))) for p in parts]
    assert (x0, y0, x1, y1) == (0.0, 10.0, 2.0, 10.0)
    assert cx == pytest.approx(1.0)
    assert cy == pytest.approx(10.0 + 0.25 * (2.0 / 4.0) * 100.0)


def _patch_boxes(n_freq=2, n_time=3):
    t_edges = np.linspace(0, CFG.clip_duration_s, n_time + 1)
    f_edges = np.geomspace(100, 10000, n_freq + 1)
    return np.array([(t_edges[t], t_edges[t + 1], f_edges[f], f_edges[f + 1])
                     for f in range(n_freq) for t in range(n_time)])


def _segments(trace) -> list[tuple[np.ndarray, np.ndarray]]:
    """The None-separated pieces of a line trace, as (x, y) arrays."""
    out, xs, ys = [], [], []
    for x, y in zip(list(trace.x) + [None], list(trace.y) + [None]):
        if x is None:
            if xs:
                out.append((np.array(xs, dtype=float), np.array(ys, dtype=float)))
            xs, ys = [], []
        else:
            xs.append(x)
            ys.append(y)
    return out


def test_attention_grid_draws_arcs_boxes_and_hoverable_patches():
    boxes = _patch_boxes()
    rng = np.random.default_rng(2)
    weights = rng.random((2, 3, len(boxes)))
    S = rng.standard_normal((CFG.n_mels, CFG.n_frames)).astype(np.float32)
    raw = figures.attention_grid(S, CFG, weights=weights, layers=[1, 4], heads=[1, 2, 3],
                                 patch_boxes=boxes, query=4, top_k=2)
    fig = validated(raw)
    dx, dy = figures.grid_offsets(CFG)
    lines = [t for t in fig.data if getattr(t, "mode", None) == "lines"]
    arcs = [seg for t in lines if t.line.color not in ("orange", "cyan") for seg in _segments(t)]
    assert len(arcs) == 2 * 3 * 2  # top 2 in each of 6 cells
    # the first cell (layer 1, head 1: top left, so offset dy up) links the query to its two strongest patches
    qx = (boxes[4, 0] + boxes[4, 1]) / 2
    first = [(x, y) for x, y in arcs if x[0] < dx and y[0] > dy]
    assert len(first) == 2 and all(x[0] == pytest.approx(qx, abs=1e-4) for x, _ in first)  # sent to 4 decimals
    targets = sorted(np.argsort(-weights[0, 0])[:2])
    np.testing.assert_allclose(sorted(x[-1] for x, _ in first), sorted((boxes[targets, 0] + boxes[targets, 1]) / 2),
                               atol=1e-4)
    widest = max((t for t in lines if t.line.color not in ("orange", "cyan")), key=lambda t: t.line.width)
    strongest = np.unravel_index(np.argmax(weights), weights.shape)
    assert any(x[-1] - strongest[1] * dx == pytest.approx((boxes[strongest[2], 0] + boxes[strongest[2], 1]) / 2,
                                                          abs=1e-4)
               for x, _ in _segments(widest))
    cyan = [seg for t in lines if t.line.color == "cyan" for seg in _segments(t)]
    assert len(cyan) == 6 and np.allclose([x.min() % dx for x, _ in cyan], boxes[4, 0], atol=1e-4)
    # no WebGL and nothing selectable: the query is picked on the rollout map
    assert not [t for t in raw.data if t.type == "scattergl" or getattr(t, "mode", None) == "markers"]
    # one invisible heatmap names each patch on hover: at patch p's centre in cell (r, c), p's own weight
    (hover,) = [t for t in raw.data if t.type == "heatmap"]
    assert {rgba for _, rgba in hover.colorscale} == {"rgba(0,0,0,0)"} and hover.hoverongaps is False
    z, custom, hx, hy = np.asarray(hover.z), np.asarray(hover.customdata), np.asarray(hover.x), np.asarray(hover.y)
    tx, ty = (boxes[:, 0] + boxes[:, 1]) / 2, figures.hz_to_band((boxes[:, 2] + boxes[:, 3]) / 2, CFG)
    assert np.isfinite(z).sum() == weights.size and np.all(np.isnan(z[:, np.isnan(z).all(axis=0)]))
    for r, c, p in [(0, 0, 4), (1, 2, 0), (0, 1, len(boxes) - 1)]:
        oy = (1 - r) * dy
        i = np.argmin(np.abs(hy - (ty[p] + oy)))
        j = np.argmin(np.abs(hx - (tx[p] + c * dx)))
        assert custom[i, j].tolist() == [p, [1, 4][r], [1, 2, 3][c]]
        assert z[i, j] == pytest.approx(weights[r, c, p], rel=1e-6)  # hovered as "weight %{z}"
    assert custom.dtype == np.int16 and z.dtype == np.float32 and "%{z" in hover.hovertemplate  # compact in JSON
    # one picture behind all six cells (the spectrogram sent once), gaps between the cells left transparent
    (image,) = fig.layout.images
    picture = _png(image.source)
    assert picture[..., 3].mean() / 255 > 0.85
    column = picture[:, :, 3].max(axis=0) > 0
    assert (np.diff(column.astype(int)) == -1).sum() == 2  # three columns of cells, two gaps between them
    assert image.sizex == pytest.approx(3 * dx - (dx - CFG.n_frames * CFG.hop_length / CFG.sr))
    # frequency labels in Hz on each row; no tick marks
    assert fig.layout.yaxis.ticks == "" and all(t.endswith("Hz") for t in fig.layout.yaxis.ticktext)
    assert len(fig.layout.yaxis.tickvals) == 2 * len(set(fig.layout.yaxis.ticktext))


def _png(uri: str) -> np.ndarray:
    import base64

    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_overlay_draws_the_spectrogram_as_one_grey_picture_under_the_heat():
    S = np.tile(np.arange(CFG.n_mels, dtype=np.float32)[:, None], (1, CFG.n_frames))  # louder up the bands
    raw = figures.overlay(S, np.random.default_rng(7).random(S.shape), CFG)
    fig = validated(raw)
    assert [t.type for t in fig.data] == ["heatmap"]  # only the heat is hovered
    (image,) = fig.layout.images
    assert (image.xref, image.yref, image.layer) == ("x", "y", "below")
    assert image.sizex == pytest.approx(CFG.n_frames * CFG.hop_length / CFG.sr)
    assert image.y - image.sizey == pytest.approx(-0.5)
    grey = _png(image.source)
    assert grey.shape[0] == CFG.n_mels and grey[0, 0] == 255 and grey[-1, 0] == 0  # top row = highest band
    # the heat is sent at display resolution: block means over the same extent, hovered at their centres
    (heat,) = raw.data
    z = np.asarray(heat.z)
    assert z.shape[0] <= figures.OVERLAY_ROWS and z.shape[1] <= figures.OVERLAY_COLS and z.dtype == np.float32
    assert heat.x[-1] < image.sizex and heat.y[-1] < CFG.n_mels - 0.5 and heat.y[0] > -0.5
    assert list(fig.layout.yaxis.range) == [-0.5, CFG.n_mels - 0.5]


def test_event_boxes_are_white_dashed_and_the_query_cyan():
    from types import SimpleNamespace

    boxes = _patch_boxes()
    event = SimpleNamespace(t0_s=1.0, t1_s=2.0, f0_hz=200.0, f1_hz=2000.0)
    S = np.zeros((CFG.n_mels, CFG.n_frames), dtype=np.float32)
    fig = figures.patch_picker(S, CFG, patch_boxes=boxes, query=3, heat=np.ones_like(S), boxes=[event])
    lines = sorted((s.line.color, s.line.dash or "solid") for s in fig.layout.shapes)
    assert lines == [("cyan", "solid"), ("white", "dash")]


def test_attention_grid_for_the_class_token_fills_boxes_without_arcs():
    boxes = _patch_boxes()
    weights = np.random.default_rng(3).random((1, 2, len(boxes)))
    fig = validated(figures.attention_grid(np.zeros((CFG.n_mels, CFG.n_frames)), CFG, weights=weights, layers=[1],
                                           heads=[1, 2], patch_boxes=boxes, query=None, top_k=3))
    lines = [t for t in fig.data if getattr(t, "mode", None) == "lines"]
    assert lines and all(t.line.color == "orange" and t.fill == "toself" for t in lines)  # filled boxes, no arcs
    assert sum(len(_segments(t)) for t in lines) == 2 * 3


def test_channel_grid_draws_the_chosen_channels_on_a_shared_scale():
    maps = np.random.default_rng(4).random((6, 16, 53)).astype(np.float32)
    raw = figures.channel_grid(maps, [5, 0, 2], CFG, n_cols=2)
    fig = validated(raw)
    heat = [t for t in raw.data if t.type == "heatmap"]
    assert len(heat) == 3
    assert {t.zmin for t in heat} == {float(maps[[5, 0, 2]].min())}
    assert [a.text for a in fig.layout.annotations] == ["channel 5", "channel 0", "channel 2"]
    assert "time (s)" in axis_titles(fig) and "frequency (Hz, mel scale)" in axis_titles(fig)
    # one x axis per column and one y axis for all: the rows sit apart on it, top row highest, none overlapping
    assert [t.xaxis for t in heat] == ["x", "x2", "x"] and {t.yaxis for t in heat} == {"y"}
    assert not {"yaxis2", "xaxis3"} & set(fig.layout.to_plotly_json())
    (lo0, hi0), (lo1, hi1), (lo2, hi2) = [(min(t.y), max(t.y)) for t in heat]
    assert (lo0, hi0) == (lo1, hi1) and hi2 < lo0
    assert fig.layout.yaxis.range[0] <= lo2 and hi0 <= fig.layout.yaxis.range[1]
    # every row is labelled in Hz at the same heights within its panel
    vals, text = list(fig.layout.yaxis.tickvals), list(fig.layout.yaxis.ticktext)
    half = len(text) // 2
    assert len(vals) == len(text) == 2 * half and text[:half] == text[half:]
    assert np.allclose(np.subtract(vals[half:], vals[:half]), vals[half] - vals[0])


def test_clip_figures_carry_units():
    y = np.random.default_rng(5).standard_normal((2, 44100)).astype(np.float32) * 0.1
    wave = figures.waveform(y, 44100)
    assert len(wave.data) == 2 and "time (s)" in axis_titles(wave)
    steps = feature_steps(y[0], CFG)
    spec = figures.spectrogram(steps["db"], CFG)
    assert "time (s)" in axis_titles(spec) and any("Hz" in t for t in axis_titles(spec))
    assert spec.data[0].colorbar.title.text == "dB"
    assert spec.data[0].x[-1] <= steps["db"].shape[1] * CFG.hop_length / CFG.sr
    narrow = figures.spectrogram(steps["db"], CFG, max_cols=50)  # block-averaged, still over the whole clip
    rows, cols = np.shape(narrow.data[0].z)
    assert rows == CFG.n_mels and 25 <= cols <= 50 < steps["db"].shape[1]
    assert narrow.data[0].x[-1] == pytest.approx(spec.data[0].x[-1], abs=spec.data[0].x[-1] / 25)
    validated(figures.feature_steps(steps, CFG))
    over = figures.overlay(steps["fixed"], np.random.default_rng(6).random(steps["fixed"].shape), CFG)
    assert len(over.data) == 1 and len(over.layout.images) == 1 and "time (s)" in axis_titles(over)
    empty = figures.overlay(steps["fixed"], np.zeros(steps["fixed"].shape), CFG)  # stays transparent
    assert (empty.data[0].zmin, empty.data[0].zmax) == (0.0, 1.0)
    curve = figures.curve(np.linspace(0, 1, 5), np.linspace(1, 0, 5), x_label="share (0-1)", y_label="p (0-1)",
                          baseline=(np.linspace(0, 1, 5), np.full(5, 0.5)), y_range=(0, 1))
    assert len(curve.data) == 2 and list(curve.layout.yaxis.range) == [0, 1]


def test_figure_download_falls_back_to_html_without_kaleido(monkeypatch):
    monkeypatch.setattr(figures.maps, "_has_kaleido", lambda: False)
    data, name, mime = figures.figure_download(figures.top_k_bars(np.array([0.2, 0.8]), ["a", "b"]), stem="bars")
    assert (name, mime) == ("bars.html", "text/html")
    html = data()
    assert html.lower().startswith(b"<!doctype html>") and b"Plotly.newPlot" in html


def test_table_csv_round_trips():
    rows = [(0, 0.5), (1, 0.25)]
    out = figures.table_csv(rows, ["channel", "weight"])
    parsed = list(csv.reader(io.StringIO(out.decode())))
    assert parsed == [["channel", "weight"], ["0", "0.5"], ["1", "0.25"]]


def test_query_heat_is_weight_against_uniform_and_follows_the_token_times():
    from core.audio.features import AudioConfig
    from explorer.figures.sequence import FULL_AT, attention_matrix, query_heat

    cfg = AudioConfig()
    T = 8
    w = np.full((1, T, T), 1 / T)
    w[0, 2] = 0.0
    w[0, 2, 5] = 1.0  # query 2 looks only at token 5
    edges = np.linspace(0, cfg.n_frames * cfg.hop_length / cfg.sr, T + 1)
    uniform = query_heat(w, edges, 0, cfg)
    assert uniform.shape == (cfg.n_mels, cfg.n_frames) and np.allclose(uniform, 1 / FULL_AT)  # faint, not full
    focused = query_heat(w, edges, 2, cfg)
    times = np.arange(cfg.n_frames) * cfg.hop_length / cfg.sr
    inside = (times >= edges[5]) & (times < edges[6])
    assert np.all(focused[:, inside] == 1.0) and np.all(focused[:, ~inside] == 0.0)
    go.Figure(attention_matrix(w, edges, query=2).to_dict())  # a valid figure


def test_reconstructions_are_pictures_on_the_clip_s_shared_db_scale():
    from explorer.figures import _common
    from explorer.figures import dataset as fd

    rng = np.random.default_rng(2)
    target = rng.uniform(-80, 0, (CFG.n_mels, 100)).astype(np.float32)
    loud = np.full_like(target, 10.0)  # above the clip's range: drawn at the scale's top colour
    fig = validated(fd.reconstructions(target, {"nonneg-linear": target * 0.5, "mel-gaussian": loud}, CFG,
                                       errors={"nonneg-linear": 0.25}))
    assert len(fig.layout.images) == 3 and [i.yref for i in fig.layout.images] == ["y", "y2", "y3"]
    (bar,) = fig.data  # the colour bar only: see-through, never hovered
    assert bar.opacity == 0.0 and bar.hoverinfo == "skip" and (bar.zmin, bar.zmax) == (target.min(), target.max())
    first = _png(fig.layout.images[0].source)
    expected = _common.to_rgb(target, _common.VIRIDIS, vmin=float(target.min()), vmax=float(target.max()))[::-1]
    np.testing.assert_array_equal(first, expected)  # row 0 = highest band
    top = np.array([int(v) for v in _common.VIRIDIS[-1][1][4:-1].split(",")], dtype=np.uint8)
    assert (_png(fig.layout.images[2].source) == top).all()
    assert "relative error 0.25" in [a.text for a in fig.layout.annotations][1]
    assert list(fig.layout.yaxis3.range) == [-0.5, CFG.n_mels - 0.5]


def _padding(fig: go.Figure) -> list[tuple]:
    """The grey padding rectangles: (x axis, y axis, x0, x1, y0, y1); a y axis' whole height is "y domain", 0, 1."""
    from explorer.figures.limits import PADDING_COLOUR

    return [(s.xref, s.yref, s.x0, s.x1, s.y0, s.y1) for s in fig.layout.shapes if s.fillcolor == PADDING_COLOUR]


def test_grids_shade_the_padding_in_every_panel_and_nothing_without_it():
    from core.audio.frontend import ClipLimits
    from explorer.figures import dataset as fd
    from explorer.figures.limits import mark_limits

    rng = np.random.default_rng(5)
    end = figures.extent_s(CFG)
    maps = rng.random((6, 16, 53)).astype(np.float32)
    raw = figures.channel_grid(maps, [0, 1, 2, 3, 4], CFG, n_cols=3, padded_from_s=1.25)
    grid = validated(raw)
    # one rectangle per panel drawn, on that panel's column axis and over its own rows only (not the gaps)
    rows = {t.xaxis + str(i // 3): (min(t.y), max(t.y)) for i, t in enumerate(raw.data)}
    shaded = _padding(grid)
    assert [(x, y, x0, x1) for x, y, x0, x1, _, _ in shaded] == [(f"x{c}", "y", 1.25, end)
                                                                  for c in ("", "2", "3", "", "2")]
    for i, (x, _, _, _, y0, y1) in enumerate(shaded):
        low, high = rows[x + str(i // 3)]
        assert y0 < low < high < y1 and y1 - y0 == pytest.approx(CFG.n_mels)
    assert [a.text for a in grid.layout.annotations].count("padding") == 1
    assert not _padding(validated(figures.channel_grid(maps, [0, 1], CFG, n_cols=2)))

    boxes = _patch_boxes()
    S = rng.standard_normal((CFG.n_mels, CFG.n_frames)).astype(np.float32)
    att = validated(figures.attention_grid(S, CFG, weights=rng.random((2, 3, len(boxes))), layers=[1, 2],
                                           heads=[1, 2, 3], patch_boxes=boxes, query=0, padded_from_s=2.0))
    dx, dy = figures.grid_offsets(CFG)
    cells = sorted((round(x0 - 2.0, 6), round(y0 + 0.5, 6)) for _, _, x0, _, y0, _ in _padding(att))
    assert cells == sorted((round(c * dx, 6), round(r * dy, 6)) for r in range(2) for c in range(3))
    assert all(x1 - x0 == pytest.approx(end - 2.0) and y1 - y0 == pytest.approx(CFG.n_mels) for _, _, x0, x1, y0, y1 in _padding(att))

    target = rng.uniform(-80, 0, (CFG.n_mels, 100)).astype(np.float32)
    rec = validated(fd.reconstructions(target, {"nonneg-linear": target}, CFG, padded_from_s=0.5))
    duration = 100 * CFG.hop_length / CFG.sr
    assert _padding(rec) == [("x", "y domain", 0.5, pytest.approx(duration), 0, 1),
                             ("x2", "y2 domain", 0.5, pytest.approx(duration), 0, 1)]

    # the single maps (overlay, rollout picker) keep theirs, from the same function
    overlay = figures.overlay(S, np.zeros_like(S), CFG)
    mark_limits(overlay, ClipLimits(duration_s=1.0, padding_share=0.8, padded_from_s=1.0, empty_from_band=None,
                                    native_sr=CFG.sr), n_mels=CFG.n_mels, x_end_s=end)
    assert _padding(validated(overlay)) == [("x", "y domain", 1.0, end, 0, 1)]


def test_a_signed_overlay_colours_only_what_lies_above_its_zero_and_saturates_at_their_99th_percentile():
    S = np.zeros((CFG.n_mels, CFG.n_frames), dtype=np.float32)
    heat = np.full((64, 200), 0.2, dtype=np.float32)  # against the class: below the map's 0 at 0.5
    heat[:5, :] = 0.6  # 1,000 cells a little for the class ...
    heat[10, :3] = 1.0  # ... and three far out
    (trace,) = [t for t in figures.overlay(S, heat, CFG, zero=0.5).data if t.type == "heatmap"]
    # the colour starts at the 0, and is full at the 99th percentile of the cells above it: 0.6, not 1.0
    assert trace.zmin == pytest.approx(0.5) and trace.zmax == pytest.approx(0.6)
    (plain,) = [t for t in figures.overlay(S, heat, CFG).data if t.type == "heatmap"]
    assert (plain.zmin, plain.zmax) == (0.0, 1.0)  # an unsigned map: 0 to 1, as before
