"""A reviewer's verdicts on clips, kept in an embedded SQLite database, and the review as CSV or HTML.

One verdict per (dataset fingerprint, clip, model, checkpoint fingerprint): what
the reviewer concluded about a clip the model got wrong or whose label is
suspect (:data:`VERDICTS`), with a free-text note. Every change is saved at
once, in its own transaction (``BEGIN IMMEDIATE``), so a restart, a second
browser tab or a killed process loses nothing. The database runs in WAL mode
with a busy timeout, so two sessions writing at once wait for each other
instead of failing.

A database that cannot be used (corrupt, locked past the timeout, written by
a newer version of this code, or in a folder that cannot be written) raises
:class:`~core.errors.InputError` naming the file and the problem; the app shows
it and goes on without the store.

>>> import tempfile
>>> store = VerdictStore(Path(tempfile.mkdtemp()) / "verdicts.sqlite")
>>> key = dict(dataset="74683f6a72585acd", clip_id="5-00003-A-5.wav", model="secnn", checkpoint="c0ffee")
>>> _ = store.save(Verdict(**key, verdict="label error", note="a rising whistle, labelled falling"))
>>> VerdictStore(store.path).get(**key).verdict  # another connection (tab, process) reads it back
'label error'
"""

from __future__ import annotations

import base64
import csv
import html
import io
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from core.errors import InputError

__all__ = ["VERDICTS", "SCHEMA_VERSION", "DB_NAME", "Verdict", "VerdictStore", "default_store_path",
           "verdicts_csv", "ReportItem", "report_html", "map_png", "wav_bytes"]

VERDICTS = ("label error", "ambiguous", "model error", "correct after all")
SCHEMA_VERSION = 1
DB_NAME = "review.sqlite"
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS verdicts (
    dataset TEXT NOT NULL,
    clip_id TEXT NOT NULL,
    model TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    verdict TEXT,
    note TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL DEFAULT '',
    predicted TEXT NOT NULL DEFAULT '',
    dataset_root TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    PRIMARY KEY (dataset, clip_id, model, checkpoint)
);
"""


@dataclass(frozen=True)
class Verdict:
    """One saved verdict.

    Attributes
    ----------
    dataset : str
        The dataset's fingerprint (:meth:`core.data.datasets.Dataset.fingerprint`).
    clip_id : str
    model : str
        The checkpoint's name as the user sees it (its folder name).
    checkpoint : str
        The checkpoint's fingerprint (:func:`core.data.cache.checkpoint_fingerprint`).
    verdict : str or None
        One of :data:`VERDICTS`, or ``None`` when only a note was written.
    note : str
    label, predicted : str
        The clip's label and the model's prediction when the verdict was saved.
    dataset_root : str
        Where the dataset was (for the report's audio).
    updated_at : float
        Seconds since the epoch.
    """

    dataset: str
    clip_id: str
    model: str
    checkpoint: str
    verdict: str | None
    note: str = ""
    label: str = ""
    predicted: str = ""
    dataset_root: str = ""
    updated_at: float = 0.0


COLUMNS = tuple(f.name for f in fields(Verdict))


def default_store_path() -> Path:
    """``core.paths.cache_dir() / "review.sqlite"``."""
    from core.paths import cache_dir

    return cache_dir() / DB_NAME


def _problem(error: sqlite3.Error) -> str:
    text = str(error)
    if "locked" in text or "busy" in text:
        return f"the database is locked by another program ({text}); close it or pick another file"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"not a readable SQLite database ({text}); it may be corrupt: move it away or pick another file"
    if "unable to open" in text or "readonly" in text or "read-only" in text:
        return f"cannot be opened for writing ({text}); pick a file in a folder you can write to"
    return f"the database cannot be used ({text})"


class VerdictStore:
    """Verdicts in one SQLite file; every method opens its own connection (safe from any thread).

    Parameters
    ----------
    path : str or Path or None
        The database file (created with its folder when missing); ``None``
        means :func:`default_store_path`.
    timeout_s : float > 0
        How long a write waits for another writer before giving up.

    Raises
    ------
    InputError
        The file is corrupt, locked, from a newer schema version, or cannot be
        created or written.
    """

    def __init__(self, path: str | Path | None = None, *, timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path) if path is not None else default_store_path()
        self.timeout_s = float(timeout_s)
        if self.path.is_dir():
            raise InputError(self.path, "is a folder; give the database's file name")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(self.path.parent, f"cannot create the folder ({error.strerror})") from None
        self._init_schema()

    # -- connections --------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
            con.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            return con
        except sqlite3.Error as error:
            raise InputError(self.path, _problem(error)) from None

    @contextmanager
    def _session(self):
        """A connection for one unit of work: a database error becomes InputError; an open transaction is rolled back."""
        con = self._connect()
        try:
            yield con
        except sqlite3.Error as error:
            raise InputError(self.path, _problem(error)) from None
        finally:
            if con.in_transaction:
                con.execute("ROLLBACK")
            con.close()

    def _init_schema(self) -> None:
        with self._session() as con:
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise InputError(self.path, f"cannot switch the database to WAL mode (got {mode!r})")
            con.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            row = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] if row else None
            if version is None:
                con.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif int(version) > SCHEMA_VERSION:
                con.execute("ROLLBACK")
                raise InputError(self.path, f"written by a newer version of the explorer (schema {version}; this "
                                            f"one reads {SCHEMA_VERSION}); update it or pick another file")
            con.execute("COMMIT")

    # -- reading and writing ------------------------------------------------------

    def save(self, verdict: Verdict) -> Verdict:
        """Insert or replace one verdict in its own transaction; returns it with ``updated_at`` set.

        Raises
        ------
        InputError
            An unknown verdict, or a database that cannot be written now.
        """
        if verdict.verdict is not None and verdict.verdict not in VERDICTS:
            raise InputError("verdict", f"{verdict.verdict!r} is not one of {', '.join(VERDICTS)}")
        row = Verdict(**{**asdict(verdict), "updated_at": time.time()})
        with self._session() as con:
            con.execute("BEGIN IMMEDIATE")
            con.execute(f"INSERT OR REPLACE INTO verdicts ({', '.join(COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(COLUMNS))})", tuple(asdict(row).values()))
            con.execute("COMMIT")
        return row

    def get(self, *, dataset: str, clip_id: str, model: str, checkpoint: str) -> Verdict | None:
        """The verdict on a clip for one model and checkpoint, or ``None``."""
        rows = self._select("WHERE dataset = ? AND clip_id = ? AND model = ? AND checkpoint = ?",
                            (dataset, clip_id, model, checkpoint))
        return rows[0] if rows else None

    def all(self, *, dataset: str | None = None, model: str | None = None,
            checkpoint: str | None = None) -> list[Verdict]:
        """Every verdict (optionally of one dataset, model or checkpoint), oldest change first."""
        where, args = [], []
        for column, value in (("dataset", dataset), ("model", model), ("checkpoint", checkpoint)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        return self._select(("WHERE " + " AND ".join(where)) if where else "", tuple(args))

    def _select(self, where: str, args: tuple) -> list[Verdict]:
        with self._session() as con:
            rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM verdicts {where} ORDER BY updated_at",
                               args).fetchall()
        return [Verdict(*row) for row in rows]


# ---------------------------------------------------------------------------
# export


def verdicts_csv(verdicts: Iterable[Verdict]) -> bytes:
    """The verdicts as CSV (UTF-8, a header row of :data:`COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for v in verdicts:
        writer.writerow([getattr(v, c) for c in COLUMNS])
    return buffer.getvalue().encode("utf-8")


def wav_bytes(y: np.ndarray, sr: int) -> bytes:
    """A mono or (n_channels, n_samples) clip as 16-bit WAV bytes."""
    import soundfile as sf

    y = np.asarray(y, dtype=np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, y.T if y.ndim == 2 else y, int(sr), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _colours(values01: np.ndarray, stops: Sequence[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    x = np.clip(values01, 0.0, 1.0)
    positions = np.array([s[0] for s in stops])
    rgb = np.array([s[1] for s in stops], dtype=np.float64)
    return np.stack([np.interp(x, positions, rgb[:, c]) for c in range(3)], axis=-1)


_GREYS = ((0.0, (0, 0, 0)), (1.0, (235, 235, 235)))
_HEAT = ((0.0, (40, 0, 80)), (0.5, (220, 50, 40)), (1.0, (255, 235, 60)))


def map_png(S: np.ndarray, heat: np.ndarray | None = None, *, scale: int = 2) -> bytes:
    """A spectrogram (low frequencies at the bottom) as a PNG, with a heat map blended over it.

    Parameters
    ----------
    S : np.ndarray [shape=(n_mels, n_frames)]
        Any scale; shown between its 1st and 99th percentile, in grey.
    heat : np.ndarray [shape=(n_mels, n_frames)] in [0, 1] (NaN: not covered), or None
        Blended in (weight = heat) from purple through red to yellow.
    scale : int >= 1
        Each cell becomes ``scale`` x ``scale`` pixels.

    Returns
    -------
    bytes
        A PNG file.
    """
    from PIL import Image

    S = np.asarray(S, dtype=np.float64)
    lo, hi = np.percentile(S, [1, 99]) if S.size else (0.0, 1.0)
    rgb = _colours((S - lo) / max(hi - lo, 1e-12), _GREYS)
    if heat is not None:
        h = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float64), nan=0.0), 0.0, 1.0)  # NaN: not covered
        rgb = rgb * (1 - 0.7 * h[..., None]) + _colours(h, _HEAT) * 0.7 * h[..., None]
    image = Image.fromarray(np.flipud(rgb).astype(np.uint8))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@dataclass
class ReportItem:
    """One clip of the HTML report: its verdict, and optional figures (PNG bytes) and audio (WAV bytes)."""

    verdict: Verdict
    figures: list[tuple[str, bytes]]
    audio_wav: bytes | None = None
    details: str = ""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def report_html(items: Sequence[ReportItem], *, title: str = "Error review", intro: str = "") -> str:
    """One self-contained HTML page: every clip's verdict, note, figures and audio, embedded.

    Figures are PNG and audio WAV, both as base64 ``data:`` URIs, so the file
    opens offline and can be mailed as it is.

    Returns
    -------
    str
    """
    e = html.escape
    counts = {v: sum(1 for it in items if it.verdict.verdict == v) for v in VERDICTS}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:auto;"
        "padding:1em}} .clip{{border-top:1px solid #ccc;padding:.8em 0}} figure{{display:inline-block;margin:.3em}}"
        " figcaption{{font-size:.85em;color:#444}} .verdict{{font-weight:bold}} table{{border-collapse:collapse}}"
        " td,th{{border:1px solid #ccc;padding:.2em .6em}}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(intro)}</p>" if intro else "",
        "<table><tr>" + "".join(f"<th>{e(v)}</th>" for v in VERDICTS) + "<th>no verdict</th></tr><tr>"
        + "".join(f"<td>{counts[v]}</td>" for v in VERDICTS)
        + f"<td>{sum(1 for it in items if it.verdict.verdict is None)}</td></tr></table>",
    ]
    for it in items:
        v = it.verdict
        parts.append(f"<div class='clip'><h2>{e(v.clip_id)}</h2>")
        parts.append(f"<p>label <b>{e(v.label)}</b>, predicted <b>{e(v.predicted)}</b> by {e(v.model)} "
                     f"(checkpoint {e(v.checkpoint[:12])}); saved "
                     f"{e(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(v.updated_at)))}</p>")
        parts.append(f"<p class='verdict'>verdict: {e(v.verdict or 'none')}</p>")
        if v.note:
            parts.append(f"<p class='note'>note: {e(v.note)}</p>")
        if it.details:
            parts.append(f"<p>{e(it.details)}</p>")
        if it.audio_wav:
            parts.append(f"<audio controls src='{_data_uri(it.audio_wav, 'audio/wav')}'></audio>")
        for caption, png in it.figures:
            parts.append(f"<figure><img alt='{e(caption)}' src='{_data_uri(png, 'image/png')}'>"
                         f"<figcaption>{e(caption)}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# the review queue and its context


QUEUE_ORDERS = ("suspicion", "confidence", "clip")


def review_queue(issues, *, n_suspects: int = 10, order: str = "suspicion") -> list[int]:
    """The clips to review: the model's mistakes and the suspected label errors, in the order asked.

    Parameters
    ----------
    issues : core.review.label_issues.LabelIssues
        With ``model_proba`` (the checkpoint's own probabilities).
    n_suspects : int >= 0
        The top of the label-error ranking always joins the queue (as well as
        every clip confident learning flags).
    order : {"suspicion", "confidence", "clip"}
        Most suspect label first (the ranking of :mod:`core.review.label_issues`);
        most confident wrong answer first (clips the model gets right last);
        or by clip id.

    Returns
    -------
    list of int
        Indices into ``issues.clip_ids``.
    """
    if order not in QUEUE_ORDERS:
        raise InputError("order", f"{order!r} is not one of {', '.join(QUEUE_ORDERS)}")
    if issues.model_proba is None:
        raise InputError("model", "was trained on other classes than this dataset's, so its mistakes cannot be "
                                  "listed; pick a model trained on these classes")
    predicted = issues.model_proba.argmax(axis=1)
    wrong = predicted != issues.labels
    rank = np.empty(len(issues.order), dtype=np.int64)
    rank[issues.order] = np.arange(len(issues.order))
    chosen = wrong | issues.flagged | (rank < int(n_suspects))
    idx = np.flatnonzero(chosen)
    if order == "suspicion":
        return sorted(idx.tolist(), key=lambda i: rank[i])
    if order == "confidence":
        confidence = issues.model_proba[np.arange(len(predicted)), predicted]
        return sorted(idx.tolist(), key=lambda i: (not wrong[i], -confidence[i], i))
    return sorted(idx.tolist(), key=lambda i: issues.clip_ids[i])


def nearest_clips(vectors: np.ndarray, query: int, candidates: np.ndarray, *, k: int = 5) -> list[int]:
    """The ``k`` candidates closest to clip ``query`` (Euclidean, on standardised vectors), nearest first.

    Parameters
    ----------
    vectors : np.ndarray [shape=(N, D)]
    query : int
    candidates : np.ndarray of int
        Indices allowed (the query itself is always left out).

    Examples
    --------
    >>> v = np.array([[0.0], [1.0], [5.0], [2.0]])
    >>> nearest_clips(v, 0, np.arange(4), k=2)
    [1, 3]
    """
    V = np.asarray(vectors, dtype=np.float64)
    V = (V - V.mean(axis=0)) / (V.std(axis=0) + 1e-8)
    cand = np.asarray([c for c in np.asarray(candidates).tolist() if c != query], dtype=np.int64)
    if cand.size == 0:
        return []
    d = np.linalg.norm(V[cand] - V[query], axis=1)
    return cand[np.argsort(d, kind="stable")[:k]].tolist()


def average_input(records: Sequence, cfg, *, cache=None) -> np.ndarray | None:
    """The mean of the clips' model inputs (:func:`core.audio.features.log_mel`), or ``None`` for no clips.

    Kept in the on-disk cache (``cache``, default :func:`core.data.cache.default_cache`), keyed by the
    records and the preprocessing.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)] or None
    """
    from core.data.cache import dataset_fingerprint, default_cache
    from core.data.datasets import load_features

    if not records:
        return None
    cache = default_cache() if cache is None else cache
    return cache.get_or_compute(
        checkpoint="", dataset=dataset_fingerprint(records), preprocessing=cfg.to_dict(),
        extra={"what": "average-input"},
        compute=lambda: {"mean": load_features(list(records), cfg, progress=False).mean(axis=0)},
    )["mean"]
