"""npbigram/download.py: the dataset download, from a server on 127.0.0.1."""

import hashlib
import http.server
import runpy
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from hypothesis import strategies as st
from npbigram import DatasetError, ensure_dataset
from npbigram.data.download import TINYSHAKESPEARE_URL, download

SCRIPT = Path(__file__).resolve().parent.parent / "data" / "tinyshakespeare" / "prepare.py"

any_text = st.text(st.characters(exclude_categories=()), min_size=1)  # lone surrogates too


# ----------------------------------------------------------------------------------------------
# download, from a server on 127.0.0.1

PAYLOAD = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path == "/input.txt":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/dropped.txt":  # the connection drops after half the file
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.close_connection = True
        elif self.path == "/error.txt":
            self.send_error(500, "Internal Server Error")
        else:
            self.send_error(404, "Not Found")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """Base URL of an HTTP server on an ephemeral port; server.requests lists the paths asked."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def url_of(server, path):
    return f"http://127.0.0.1:{server.server_port}{path}"


def unreachable_url():
    """A URL on a port that was free a moment ago: nothing listens there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/input.txt"


def test_download_writes_the_checked_file(server, tmp_path):
    dest = tmp_path / "data" / "tinyshakespeare" / "input.txt"
    assert download(url_of(server, "/input.txt"), dest, PAYLOAD_SHA256, timeout=10) == dest
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["input.txt"]  # no temporary left


def test_ensure_dataset_downloads_only_when_missing(server, tmp_path):
    dest = tmp_path / "input.txt"
    url = url_of(server, "/input.txt")
    asked = len(server.requests)
    assert ensure_dataset(dest, url, PAYLOAD_SHA256, timeout=10) == dest
    assert ensure_dataset(dest, url, PAYLOAD_SHA256, timeout=10) == dest
    assert len(server.requests) == asked + 1
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("path, sha256, message", [
    ("/input.txt", "0" * 64, f"its SHA-256 is {PAYLOAD_SHA256}, expected {'0' * 64}; "
                             "nothing was written"),
    ("/error.txt", PAYLOAD_SHA256, "HTTP 500 Internal Server Error"),
    ("/missing.txt", PAYLOAD_SHA256, "HTTP 404 Not Found"),
    ("/dropped.txt", PAYLOAD_SHA256, "IncompleteRead"),
])


def test_failed_download_leaves_nothing_behind(server, tmp_path, path, sha256, message):
    dest = tmp_path / "data" / "input.txt"
    url = url_of(server, path)
    with pytest.raises(DatasetError, match=rf"could not download|downloaded {url}") as failure:
        ensure_dataset(dest, url, sha256, timeout=10)
    assert message in str(failure.value)
    assert f"download it yourself from {url} and pass --data PATH" in str(failure.value)
    assert list(tmp_path.iterdir()) == []  # not even the folder


def test_unreachable_url_is_a_clear_error(tmp_path):
    url = unreachable_url()
    dest = tmp_path / "input.txt"
    with pytest.raises(DatasetError, match=r"could not download .*are you offline\?"):
        download(url, dest, PAYLOAD_SHA256, timeout=10)
    assert list(tmp_path.iterdir()) == []


def test_failed_download_keeps_an_existing_file(server, tmp_path):
    dest = tmp_path / "input.txt"
    dest.write_bytes(b"previous")
    with pytest.raises(DatasetError, match="SHA-256"):
        download(url_of(server, "/input.txt"), dest, "0" * 64, timeout=10)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["input.txt"]


# ----------------------------------------------------------------------------------------------
# data/tinyshakespeare/prepare.py, the script the README names


def test_the_tinyshakespeare_script_downloads_checks_and_reports(tinyshakespeare, tmp_path,
                                                                 monkeypatch, capsys):
    """The script, copied into a folder of its own, fetches input.txt beside itself: here from
    a local copy of tinyshakespeare standing in for the download (a file:// URL), whose
    SHA-256 is the real file's."""
    script = tmp_path / "data" / "tinyshakespeare" / "prepare.py"
    script.parent.mkdir(parents=True)
    script.write_bytes(SCRIPT.read_bytes())
    asked, urlopen = [], urllib.request.urlopen

    def local_copy(url, timeout):
        asked.append(url)
        return urlopen(tinyshakespeare.resolve().as_uri(), timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", local_copy)
    runpy.run_path(str(script), run_name="__main__")
    assert asked == [TINYSHAKESPEARE_URL]
    assert (script.parent / "input.txt").read_bytes() == tinyshakespeare.read_bytes()
    assert capsys.readouterr().out == (f"{script.parent / 'input.txt'}: 1,115,394 characters, "
                                       f"vocabulary of 65\n")
