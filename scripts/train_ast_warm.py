"""Train the shipped AST warm-started from an earlier AST checkpoint (see checkpoints/README.md).

    python scripts/train_ast_warm.py INIT_CHECKPOINT -- <python -m core train arguments>

Every model the training builds is first given the weights of INIT_CHECKPOINT
that fit (:func:`core.training.warm_start.warm_start`); the rest of the run is
``python -m core train`` unchanged.
"""

import sys

import core.models
from core.cli import main
from core.training.warm_start import warm_start

init, rest = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
_build = core.models.build_model


def build_warm(*args, **kwargs):
    net = _build(*args, **kwargs)
    if build_warm.busy:  # the checkpoint warm_start itself loads
        return net
    build_warm.busy = True
    try:
        report = warm_start(net, init)
    finally:
        build_warm.busy = False
    print(f"warm start from {init}: {len(report['copied'])} tensors copied, resized {report['resized']}, "
          f"kept as initialised {report['kept']}", file=sys.stderr)
    return net


build_warm.busy = False
core.models.build_model = build_warm
sys.exit(main(["train", *rest]))
