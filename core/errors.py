"""The one error type the explorer and the command line catch and show."""

from __future__ import annotations

from pathlib import Path

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from a user: a file, a folder, a checkpoint or a parameter.

    The message always names what was bad and why, as ``"<what>: <problem>"``,
    so that a page can show it and the command line can print it as one line.

    Parameters
    ----------
    what : str or Path
        The file, folder or parameter that was bad.
    problem : str
        What was wrong with it, in words a user reads.

    Examples
    --------
    >>> raise InputError("clip.wav", "the file is empty")
    Traceback (most recent call last):
    ...
    core.errors.InputError: clip.wav: the file is empty
    """

    def __init__(self, what: str | Path, problem: str):
        self.what = str(what)
        self.problem = problem
        super().__init__(f"{self.what}: {problem}")
