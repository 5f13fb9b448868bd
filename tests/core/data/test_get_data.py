"""``get-data``: download over HTTP from a server on the loopback address, resume, verify, extract, open.

The server (http.server in a thread) serves a small zip in ESC-50's layout
built here, honours ``Range`` requests and can cut its first answer mid-file.
Nothing touches the internet.
"""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.data.datasets import open_dataset
from core.errors import InputError
from core.data.get_data import get_dataset

REPO = Path(__file__).resolve().parents[3]


def esc50_zip(n_clips: int = 4) -> bytes:
    """A zip like GitHub's ESC-50-master.zip: ESC-50-master/{audio/*.wav, meta/esc50.csv, README.md}."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:  # stored: a cut lands mid-member
        z.writestr("ESC-50-master/README.md", "tiny ESC-50\n")
        for i in range(n_clips):
            name = f"{1 + i % 5}-{100 + i}-A-{i % 2}.wav"
            wav = io.BytesIO()
            sf.write(wav, (0.1 * rng.standard_normal(4410)).astype(np.float32), 44100, format="WAV")
            z.writestr(f"ESC-50-master/audio/{name}", wav.getvalue())
            rows.append(f"{name},{1 + i % 5},{i % 2},{'dog' if i % 2 == 0 else 'rain'},False,{100 + i},A")
        z.writestr("ESC-50-master/meta/esc50.csv", "\n".join(rows) + "\n")
    return buffer.getvalue()


class Server:
    """Serves ``payload`` at any path; ``cut_after`` bytes into the first answer it drops the connection."""

    def __init__(self, payload: bytes, cut_after: int | None = None, *, ranges: bool = True):
        self.payload, self.cut_after, self.ranges, self.honours_ranges = payload, cut_after, [], ranges
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                data, start = server.payload, 0
                header = self.headers.get("Range")
                server.ranges.append(header)
                if header and server.honours_ranges:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Content-Type", "application/zip")
                self.end_headers()
                body = data[start:]
                if server.cut_after is not None:
                    body, server.cut_after = body[:server.cut_after], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ESC-50-master.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def payload():
    return esc50_zip()


def test_a_full_download_opens_as_esc50(tmp_path, payload):
    seen = []
    with Server(payload) as server:
        folder = get_dataset("esc50", url=server.url, dest=tmp_path,
                             on_progress=lambda done, total: seen.append((done, total)))
    assert server.ranges == [None]
    data = open_dataset(folder)
    assert data.layout == "esc50" and len(data.records) == 4 and data.classes == ["dog", "rain"]
    assert seen[-1] == (len(payload), len(payload))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ESC-50-master"]  # no archive, no .part, no temp
    with Server(payload) as again:  # already there: nothing is fetched
        assert get_dataset("esc50", url=again.url, dest=tmp_path) == folder
    assert again.ranges == []


def test_a_cut_download_resumes_with_a_range_request(tmp_path, payload):
    cut = len(payload) // 3
    with Server(payload, cut_after=cut) as server:
        folder = get_dataset("esc50", url=server.url, dest=tmp_path, retries=1,
                             sha256=hashlib.sha256(payload).hexdigest())
    assert server.ranges == [None, f"bytes={cut}-"]
    assert open_dataset(folder).layout == "esc50"
    with zipfile.ZipFile(io.BytesIO(payload)) as z:  # the extracted files are the served ones
        for name in z.namelist():
            if not name.endswith("/"):
                assert (tmp_path / name).read_bytes() == z.read(name)


def test_a_part_left_by_a_killed_run_is_resumed(tmp_path, payload):
    (tmp_path / "ESC-50-master.zip.part").write_bytes(payload[:1000])
    with Server(payload) as server:
        folder = get_dataset("esc50", url=server.url, dest=tmp_path, sha256=hashlib.sha256(payload).hexdigest())
    assert server.ranges == ["bytes=1000-"]
    assert len(open_dataset(folder).records) == 4


def test_a_server_that_ignores_ranges_restarts_the_part(tmp_path, payload):
    (tmp_path / "ESC-50-master.zip.part").write_bytes(b"x" * 1000)  # would corrupt the file if appended to
    with Server(payload, ranges=False) as server:
        folder = get_dataset("esc50", url=server.url, dest=tmp_path, sha256=hashlib.sha256(payload).hexdigest())
    assert server.ranges == ["bytes=1000-"]  # asked, answered with the whole file (200)
    assert len(open_dataset(folder).records) == 4


def test_a_cut_with_no_retries_left_keeps_only_the_part(tmp_path, payload):
    with Server(payload, cut_after=500) as server, pytest.raises(InputError, match="run again to resume"):
        get_dataset("esc50", url=server.url, dest=tmp_path, retries=0)
    assert [p.name for p in tmp_path.iterdir()] == ["ESC-50-master.zip.part"]
    assert (tmp_path / "ESC-50-master.zip.part").read_bytes() == payload[:500]


def test_a_wrong_checksum_is_refused_and_leaves_nothing(tmp_path, payload):
    with Server(payload) as server, pytest.raises(InputError, match="SHA-256 mismatch"):
        get_dataset("esc50", url=server.url, dest=tmp_path, sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [b"not a zip at all" * 100, "layout"])
def test_a_corrupt_or_foreign_archive_is_refused_and_leaves_nothing(tmp_path, bad):
    if bad == "layout":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr("something/else.txt", "hi")
        bad = buffer.getvalue()
    with Server(bad) as server, pytest.raises(InputError, match="zip|layout"):
        get_dataset("esc50", url=server.url, dest=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_one_line_and_status_2(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "core", "get-data", "esc50", "--url",
                           f"http://127.0.0.1:{port}/x.zip", "--dest", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the server" in lines[0] and f"127.0.0.1:{port}" in lines[0], lines
    assert list(tmp_path.iterdir()) == []
