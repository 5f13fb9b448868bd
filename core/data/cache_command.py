"""``python -m core cache``: the on-disk cache's size, and ``--clear`` to delete it.

The cache holds what :mod:`core.data.activations` extracted and :mod:`core.interpret.embed`
projected, under ``core.paths.cache_dir() / "arrays"`` (``$EXPLORER_CACHE``
or ``<repo>/.cache``); the explorer's sidebar shows and clears the same
folder. Everything in it is recomputed when next asked for.

    python -m core cache            # 12.3 MB in 41 files under .cache/arrays
    python -m core cache --clear
"""

from __future__ import annotations

import argparse

from core.data.cache import ArrayCache, default_cache, format_size

__all__ = ["describe", "configure", "run"]


def describe(cache: ArrayCache) -> str:
    """One line: the cache's size, files and folder."""
    n_files = sum(1 for p in cache.root.rglob("*") if p.is_file()) if cache.root.is_dir() else 0
    return f"{format_size(cache.size_bytes())} in {n_files} files under {cache.root}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", action="store_true", help="delete every stored array")


def run(args: argparse.Namespace) -> int:
    cache = default_cache()
    print(describe(cache))
    if args.clear:
        print(f"cleared {format_size(cache.clear())}")
    return 0
