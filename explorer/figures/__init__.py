"""Plotly figures for the explorer's pages, built from plain arrays.

Pure functions: no Streamlit, no models, no file access, so each can be tested
on its own.

- :mod:`explorer.figures.maps`: one clip's figures (waveform, spectrogram,
  overlays, feature maps, the attention grid, ...), re-exported here, so a page
  writes ``figures.overlay(...)``;
- :mod:`explorer.figures.dataset`: the dataset-wide pages' figures
  (embeddings, decoders, errors): ``from explorer.figures import dataset as fd``;
- :mod:`explorer.figures.sequence`: attention over time steps (models without a patch grid);
- :mod:`explorer.figures._common`: what they share (fonts, margins, colour
  scales, Hz ticks).
"""

from explorer.figures.maps import *  # noqa: F401,F403
from explorer.figures.maps import __all__  # noqa: F401
