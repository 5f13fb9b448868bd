"""Core of the audio classifier explorer: preprocessing, models, taps and interpretation.

Nothing in this package imports Streamlit; the explorer's pages call into it.
"""

__version__ = "0.1.0"
