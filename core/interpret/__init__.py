"""Interpretation methods, one module per method; nothing here imports Streamlit.

* :mod:`core.interpret.attention` — one head's attention for a query, as boxes; the layers x heads grid.
* :mod:`core.interpret.rollout` — attention rollout (Abnar & Zuidema), stereo side by side.
* :mod:`core.interpret.cam`, :mod:`core.interpret.gradcam` — the CAM pipeline and Grad-CAM.
* :mod:`core.interpret.nmf` — NMF-style decoders of a tap's activations, and classic NMF.
* :mod:`core.interpret.faithfulness` — deletion and insertion curves, pointing game.
* :mod:`core.interpret.maps` — what the heatmap methods share (resizing, scaling, token grids).
* :mod:`core.interpret.report` — ``python -m core explain-report``.

Every heatmap is an ``np.ndarray`` of shape ``(n_mels, n_frames)`` (or a batch of
them), row 0 the lowest mel band, scaled to [0, 1].
"""
