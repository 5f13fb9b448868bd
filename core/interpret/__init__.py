"""Interpretation methods, one module per method; nothing here imports Streamlit.

* :mod:`core.interpret.attention` — one head's attention for a query, as boxes; the layers x heads grid.
* :mod:`core.interpret.rollout` — attention rollout (Abnar & Zuidema), stereo side by side.
* :mod:`core.interpret.cam`, :mod:`core.interpret.gradcam` — the CAM pipeline and Grad-CAM.
* :mod:`core.interpret.nmf` — NMF-style decoders of a tap's activations, and classic NMF.
* :mod:`core.interpret.attention_relevance` — attention weighted by its gradient (Chefer et al., 2021).
* :mod:`core.interpret.last_attention` — the last layer's attention from the class token.
* :mod:`core.interpret.integrated_gradients`, :mod:`core.interpret.occlusion` — model-agnostic references.
* :mod:`core.interpret.registry` — every method once (id, needs, parameters, map): what the report, the pages and the scorecard iterate over.
* :mod:`core.interpret.faithfulness` — deletion and insertion curves, pointing game, distractor hits.
* :mod:`core.interpret.baselines` — energy map, smooth random maps, pointing-game chance, bootstrap intervals.
* :mod:`core.interpret.sanity` — cascading model-parameter randomisation (Adebayo et al., 2018), verdict on |rho|.
* :mod:`core.interpret.paired` — paired comparisons with bootstrap intervals: beats, ties or loses.
* :mod:`core.interpret.listen` — a map's top cells as sound (STFT masked, the clip's phase), masked in and out.
* :mod:`core.interpret.lmac_metrics` — L-MAC's AI, AD, AG, FF and Fid-In.
* :mod:`core.interpret.stereo` — left/right inputs that keep the level difference; how a map pair leans.
* :mod:`core.interpret.maps` — what the heatmap methods share (resizing, scaling, token grids).
* :mod:`core.interpret.report` — ``python -m core explain-report``.
* :mod:`core.interpret.shortcut_report` — ``python -m core shortcut-report``: the planted-shortcut positive control.

Every heatmap is an ``np.ndarray`` of shape ``(n_mels, n_frames)`` (or a batch of
them), row 0 the lowest mel band, scaled to [0, 1], NaN where the method
covers no cell (frames a conv block's pooling or the patch grid rounds away).
"""
