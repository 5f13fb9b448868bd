"""The names every part of the project shares for kinds of taps and models, in one place (no torch import).

>>> "tokens" in MAP_TAP_KINDS and "hf-ast" in TRAINABLE_KINDS
True
"""

from __future__ import annotations

__all__ = ["TAP_KINDS", "MAP_TAP_KINDS", "MODEL_KINDS", "BUILDABLE_KINDS", "TRAINABLE_KINDS", "HEAD_FUSIONS"]

TAP_KINDS = ("conv", "se", "attention", "tokens", "embedding", "logits")
MAP_TAP_KINDS = ("conv", "tokens")  # taps that read as a time x frequency map (Grad-CAM, decoders, time activations)

MODEL_KINDS = ("secnn", "ast", "hf-ast", "adapter")
BUILDABLE_KINDS = ("secnn", "ast")  # built from a config by this project (checkpoint.json + safetensors)
TRAINABLE_KINDS = BUILDABLE_KINDS + ("hf-ast",)  # what `train --model` takes (hf-ast: fine-tuned)

HEAD_FUSIONS = ("mean", "max", "min")  # how attention rollout fuses a layer's heads (core.interpret.rollout)
