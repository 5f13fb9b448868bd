"""A real-size Hugging Face AST with random weights, saved once per machine, for tests and the bench.

MIT's AudioSet AST (``MIT/ast-finetuned-audioset-10-10-0.4593``) is what many
users bring first. Its architecture is transformers' default ``ASTConfig``
(128 mel bins, 1024 frames, 16 x 16 patches at stride 10: a 12 x 101 grid
plus 2 special tokens, 768 wide, 12 layers x 12 heads) with 527 AudioSet
classes: 86.6 M parameters. :func:`mit_size_ast` builds that model from the
config with random weights (nothing is downloaded) and saves it as a user
would have it: ``save_pretrained`` (``config.json``, ``model.safetensors``)
and an ``ASTFeatureExtractor``'s ``preprocessor_config.json``.

The folder (about 350 MB) lives under :func:`core.paths.cache_dir`, outside
git; it is written to a temporary folder and renamed into place, so an
interrupted build never leaves a half-written model behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from core.paths import cache_dir

__all__ = ["MIT_AST_CLASSES", "MIT_AST_PARAMETERS", "mit_size_ast"]

MIT_AST_CLASSES = 527  # AudioSet's ontology
MIT_AST_PARAMETERS = 86_594_063  # ASTForAudioClassification(ASTConfig(num_labels=527)), counted
FOLDER_NAME = "mit-size-ast-random-seed0"


def mit_size_ast(root: str | Path | None = None, *, seed: int = 0) -> Path:
    """The folder of a MIT-size ``ASTForAudioClassification`` with random weights, built on first use.

    Parameters
    ----------
    root : str or Path or None
        Where the model folder goes; ``None`` is :func:`core.paths.cache_dir`.
    seed : int
        ``torch.manual_seed`` before the weights are initialised.

    Returns
    -------
    Path
        ``root / "mit-size-ast-random-seed{seed}"``, holding ``config.json``,
        ``model.safetensors`` and ``preprocessor_config.json``.
    """
    root = Path(root) if root is not None else cache_dir()
    folder = root / FOLDER_NAME.replace("seed0", f"seed{seed}")
    if (folder / "model.safetensors").is_file():
        return folder
    import torch
    import transformers

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = transformers.ASTConfig(num_labels=MIT_AST_CLASSES,
                                    id2label={i: f"audioset class {i}" for i in range(MIT_AST_CLASSES)},
                                    label2id={f"audioset class {i}": i for i in range(MIT_AST_CLASSES)})
    model = transformers.ASTForAudioClassification(config).eval()
    extractor = transformers.ASTFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    with tempfile.TemporaryDirectory(dir=root, prefix=".building-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        extractor.save_pretrained(tmp)
        if folder.exists():  # a folder without weights: an older, interrupted layout
            shutil.rmtree(folder)
        Path(tmp).rename(folder)
        Path(tmp).mkdir()  # for TemporaryDirectory's cleanup
    return folder
