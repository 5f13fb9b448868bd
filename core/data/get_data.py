"""``python -m core get-data esc50``: download a public dataset, only when asked, and open it.

Nothing here runs unless a user names the dataset (on the command line or with
the sidebar's button); the app and the tests never download on their own.

The steps, each safe to interrupt:

1. **Download** ``url`` to ``<dest>/<archive>.part`` with a progress bar. A
   ``.part`` left by a cut connection or a killed run is resumed with an HTTP
   ``Range`` request (a server that ignores the range sends the whole file
   again, and the part is restarted). A connection cut mid-file is retried
   from where it stopped, a few times, within the same call.
2. **Verify** the whole file. Always: its SHA-256 is computed and printed,
   the zip's central directory and every member's CRC-32 are checked
   (:meth:`zipfile.ZipFile.testzip`), and the archive must hold ESC-50's
   layout (``<top>/meta/esc50.csv`` and ``<top>/audio/*.wav``). When a
   checksum is given (``--sha256``) or pinned in :data:`SOURCES`, the file must
   match it. The upstream project publishes no checksum, so none is pinned by
   default: without ``--sha256``, what is verified is that the file is a whole,
   uncorrupted zip in ESC-50's layout, not that it is the very archive the
   authors published. A file that fails is deleted (``.part`` included).
3. **Rename** the verified ``.part`` to the archive's name, **extract** into a
   temporary folder beside the destination, and rename the dataset folder into
   place; the archive is then removed. A failure at any step leaves no archive
   and no dataset folder behind (only a ``.part`` that a rerun resumes).

Offline (no DNS, no route, connection refused or timed out), it raises
:class:`~core.errors.InputError` with one line, so the command exits with
status 2.

    python -m core get-data esc50                      # into .cache/data/ESC-50-master
    python -m core get-data esc50 --sha256 HEX         # refuse anything but that archive
    python -m core get-data esc50 --url URL --dest DIR # a mirror, another folder
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import InputError

__all__ = ["Source", "SOURCES", "download", "extract_archive", "get_dataset", "configure", "run"]

CHUNK_BYTES = 1 << 16
RETRIES = 3  # resumes of a cut connection within one call


@dataclass(frozen=True)
class Source:
    """Where a dataset's archive is and what it must hold.

    Attributes
    ----------
    name : str
        The id users type (``"esc50"``).
    url : str
        The archive's address.
    archive : str
        The file name it is saved under.
    sha256 : str or None
        The archive's SHA-256 when it is known; ``None``: not pinned (see the module docstring).
    required : tuple of str
        Paths inside the archive's top folder that its layout needs.
    """

    name: str
    url: str
    archive: str
    sha256: str | None
    required: tuple[str, ...]


SOURCES = {
    "esc50": Source(
        name="esc50",
        url="https://github.com/karolpiczak/ESC-50/archive/master.zip",
        archive="ESC-50-master.zip",
        sha256=None,  # GitHub builds this zip from the branch; upstream publishes no checksum
        required=("meta/esc50.csv", "audio/"),
    ),
}


def default_dest() -> Path:
    """``core.paths.cache_dir() / "data"``."""
    from core.paths import cache_dir

    return cache_dir() / "data"


# -- download ------------------------------------------------------------------------------


def _offline(url: str, error: BaseException) -> InputError:
    reason = getattr(error, "reason", error)
    return InputError(url, f"cannot reach the server ({reason}); check the connection or give --url of a "
                           f"reachable copy")


def _open(url: str, start: int, timeout_s: float):
    headers = {"User-Agent": "audio-classifier-explorer", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # nothing past what we have: the part is whole (or stale)
            return None
        raise InputError(url, f"the server answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _offline(url, error) from None


def _total_of(response, start: int) -> int | None:
    """The whole file's size from ``Content-Range`` (206) or ``Content-Length`` (200)."""
    match = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", ""))
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    return int(length) + (start if response.status == 206 else 0) if length else None


def download(url: str, path: str | Path, *, timeout_s: float = 30.0, retries: int = RETRIES,
             on_progress: Callable[[int, int | None], None] | None = None, progress: bool = False) -> Path:
    """Download ``url`` to ``path + ".part"``, resuming what is already there.

    Parameters
    ----------
    url : str
    path : str or Path
        The archive's final name; bytes go to ``<path>.part``.
    timeout_s : float > 0
        Socket timeout per connection.
    retries : int >= 0
        Resumes after a connection cut mid-file, within this call.
    on_progress : callable or None
        ``on_progress(done_bytes, total_bytes_or_None)`` after each chunk.
    progress : bool
        A tqdm bar in the terminal.

    Returns
    -------
    Path
        The ``.part`` file, whole (as long as the server said), not yet verified.

    Raises
    ------
    InputError
        Offline, an HTTP error, or a connection still cut after ``retries``
        resumes (the ``.part`` stays, for the next call to resume).
    """
    from tqdm.auto import tqdm

    part = Path(str(path) + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    bar = None
    try:
        for attempt in range(retries + 1):
            start = part.stat().st_size if part.exists() else 0
            response = _open(url, start, timeout_s)
            if response is None:
                return part
            with response:
                if start and response.status != 206:  # the server ignored the range: start again
                    start = 0
                total = _total_of(response, start)
                if bar is None:
                    bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=part.name[:-5],
                               disable=not progress)
                else:
                    bar.reset(total=total)
                    bar.update(start)
                done = start
                try:
                    with open(part, "ab" if start else "wb") as f:
                        while chunk := response.read(CHUNK_BYTES):
                            f.write(chunk)
                            done += len(chunk)
                            bar.update(len(chunk))
                            if on_progress is not None:
                                on_progress(done, total)
                except (http.client.IncompleteRead, ConnectionError, socket.timeout, OSError) as error:
                    if attempt == retries:
                        raise InputError(url, f"the download was cut at {done} of {total or '?'} bytes "
                                              f"({error.__class__.__name__}); run again to resume") from None
                    continue
            if total is None or done >= total:
                return part
            if attempt == retries:
                raise InputError(url, f"the download was cut at {done} of {total} bytes; run again to resume")
        return part
    finally:
        if bar is not None:
            bar.close()


def sha256_of(path: str | Path) -> str:
    """The file's SHA-256, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_archive(path: Path, source: Source) -> str:
    """The archive's top folder, after checking it is a whole zip in the source's layout."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise InputError(path, f"not a whole zip archive ({error})") from None
    if bad is not None:
        raise InputError(path, f"the archive is corrupt (CRC mismatch in {bad})")
    for name in names:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts:
            raise InputError(path, f"the archive holds an unsafe path: {name}")
    tops = {PurePosixPath(n).parts[0] for n in names if n.strip("/")}
    for top in sorted(tops):
        if all(any(n.startswith(f"{top}/{r}") for n in names) for r in source.required):
            return top
    raise InputError(path, f"not {source.name}'s layout: no folder with {' and '.join(source.required)}")


def extract_archive(archive: str | Path, dest: str | Path, *, source: Source) -> Path:
    """Extract a checked archive's top folder to ``dest/<top>``, renamed into place when whole.

    Returns
    -------
    Path
        The dataset folder.
    """
    archive, dest = Path(archive), Path(dest)
    top = _check_archive(archive, source)
    target = dest / top
    for stale in dest.glob(f".{top}.*.tmp"):  # left by a killed extraction
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".{top}.", suffix=".tmp"))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp, members=[n for n in z.namelist() if n.startswith(f"{top}/")])
        os.replace(tmp / top, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def get_dataset(name: str = "esc50", *, dest: str | Path | None = None, url: str | None = None,
                sha256: str | None = None, timeout_s: float = 30.0, retries: int = RETRIES,
                on_progress: Callable[[int, int | None], None] | None = None, progress: bool = False,
                log: Callable[[str], None] | None = None) -> Path:
    """Download, verify and extract a dataset; returns a folder that :func:`core.data.datasets.open_dataset` opens.

    A dataset folder already in ``dest`` is returned as it is, without
    downloading.

    Parameters
    ----------
    name : {"esc50"}
    dest : str, Path or None
        Folder for the archive and the dataset (``None``: :func:`default_dest`).
    url : str or None
        Another address for the same archive (a mirror, a local copy over HTTP).
    sha256 : str or None
        The archive's expected SHA-256 (hex); overrides the pinned one. ``None``
        with nothing pinned: the zip's integrity and layout are checked, not its identity.
    timeout_s, retries, on_progress, progress
        As in :func:`download`.
    log : callable or None
        Receives one-line notes (the archive's SHA-256, what was checked).

    Returns
    -------
    Path

    Raises
    ------
    InputError
        An unknown name, offline, a cut download, a checksum mismatch, a corrupt
        archive or one in another layout. Nothing but a resumable ``.part`` is left.
    """
    if name not in SOURCES:
        raise InputError(name, f"not a dataset we can fetch; one of {', '.join(SOURCES)}")
    source = SOURCES[name]
    expected = (sha256 or source.sha256 or "").strip().lower() or None
    if expected is not None and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise InputError("--sha256", f"{sha256!r} is not 64 hex digits")
    dest = Path(default_dest() if dest is None else dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    say = log or (lambda line: None)
    existing = dest / source.archive.removesuffix(".zip")
    if _has_layout(existing, source):
        say(f"{existing} is already there; nothing downloaded")
        return existing

    archive = dest / source.archive
    part = download(url or source.url, archive, timeout_s=timeout_s, retries=retries,
                    on_progress=on_progress, progress=progress)
    try:
        digest = sha256_of(part)
        if expected is not None and digest != expected:
            raise InputError(url or source.url, f"SHA-256 mismatch: got {digest}, expected {expected}; "
                                                "the download was deleted")
        _check_archive(part, source)
    except InputError:
        part.unlink(missing_ok=True)
        raise
    say(f"archive SHA-256 {digest} ({'matches the pinned checksum' if expected else 'not pinned: pass --sha256 to pin it'}); "
        "zip CRCs and layout checked")
    os.replace(part, archive)
    try:
        folder = extract_archive(archive, dest, source=source)
    finally:
        archive.unlink(missing_ok=True)
    return folder


def _has_layout(folder: Path, source: Source) -> bool:
    return folder.is_dir() and all((folder / r).exists() for r in source.required)


# -- command line --------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=sorted(SOURCES), help="which dataset to fetch")
    parser.add_argument("--dest", type=Path, default=None,
                        help="folder for the archive and the dataset (default: the cache folder, .cache/data)")
    parser.add_argument("--url", default=None, help="another address of the same archive (a mirror)")
    parser.add_argument("--sha256", default=None, help="the archive's expected SHA-256; anything else is refused")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a silent connection gives up")


def run(args: argparse.Namespace) -> int:
    from core.data.datasets import open_dataset

    folder = get_dataset(args.dataset, dest=args.dest, url=args.url, sha256=args.sha256, timeout_s=args.timeout,
                         progress=True, log=print)
    data = open_dataset(folder)
    print(f"{folder}: {data.describe()}")
    return 0
