"""Datasets and what is computed over them: dataset layouts, activations of a whole dataset in
resumable shards, the on-disk cache, the Dask engine, downloads, uploads and remembered settings."""
