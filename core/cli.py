"""``python -m core <command>``: everything that is not the app.

Each command lives in its own module, which defines ``configure(parser)`` and
``run(args) -> int``. Bad input (an :class:`~core.errors.InputError`) ends the
command with status 2 and one line naming the file and the problem.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import InputError

# command name -> (module, one-line help)
COMMANDS = {
    "make-demo-data": ("core.audio.demo_data", "synthesise the bundled demo sound set"),
    "make-speech-data": ("core.audio.speech_data", "spoken digits by six espeak-ng voices (needs espeak-ng), in .cache/"),
    "make-shortcut-data": ("core.audio.shortcut_data", "the demo set with a planted tone in one class (positive control)"),
    "shortcut-report": ("core.interpret.shortcut_report", "does a model use the planted tone, and which map finds it"),
    "get-data": ("core.data.get_data", "download a public dataset (esc50) when you ask, verify it and open it"),
    "train": ("core.training.train", "train a model on a dataset folder"),
    "evaluate": ("core.training.evaluate", "evaluate a checkpoint on one fold of a dataset"),
    "predict": ("core.training.predict", "top-k predictions of a checkpoint for audio files"),
    "explain-report": ("core.interpret.report", "how faithful each explanation method is"),
    "se-ablation": ("core.interpret.se_ablation", "how much an SE-CNN relies on its per-clip channel reweighting"),
    "label-issues": ("core.review.label_issues", "rank a dataset's clips by how likely their label is wrong"),
    "fit-novelty": ("core.interpret.novelty", "fit a checkpoint's novelty score (clips unlike its training data) and save it"),
    "novelty-report": ("core.interpret.novelty_report", "how well the novelty scores tell made-up sounds from a test fold"),
    "fit-decoders": ("core.interpret.decoder_fit", "fit NMF-style decoders for every tap of a checkpoint"),
    "decoder-report": ("core.interpret.decoder_report", "score a checkpoint's saved decoders on held-out clips"),
    "warm-cache": ("core.warm_cache", "compute what the pages read on their first visit of the demo set (once)"),
    "bench": ("core.bench", "measure the speed of the pipeline, the models and the explorer"),
    "cache": ("core.data.cache_command", "the on-disk cache's size; --clear deletes it"),
    "add-model": ("core.models.user_models", "check a model adapter (your own PyTorch model) and register it"),
}
# commands that run a whole dataset through a model (core.data.activations.extract): --engine, --scheduler
EXTRACTING = ("evaluate", "label-issues", "fit-decoders", "decoder-report", "fit-novelty", "novelty-report")


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("extraction engine")
    group.add_argument("--engine", choices=("local", "dask"), default="local",
                       help="local: this process; dask: each shard of 64 clips a task on a Dask cluster "
                            "(pip install 'dask[distributed]'), same arrays and cache")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="with --engine dask: the scheduler's address (tcp://host:8786); default: a local cluster")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (the others stay cheap to list)."""
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module_name, help_text) in COMMANDS.items():
        parser_of_command = sub.add_parser(name, help=help_text, description=help_text)
        if name != command:
            continue
        module = importlib.import_module(module_name)
        module.configure(parser_of_command)
        if name in EXTRACTING:
            _add_engine_options(parser_of_command)
        parser_of_command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in COMMANDS), None)
    args = build_parser(command).parse_args(argv)
    try:
        if args.command in EXTRACTING:
            from core.data.activations import use_engine

            with use_engine(args.engine, args.scheduler):
                return int(args.run(args) or 0)
        return int(args.run(args) or 0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
