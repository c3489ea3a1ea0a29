"""Do requests to this machine's loopback bypass a proxy set in the environment (HTTP_PROXY
without NO_PROXY), in the kit, the grader's waits, the lessons' helpers and the tests' helpers?"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading
import urllib.error
import urllib.request
from typing import Iterator

import pytest

from dockerkit.http import http
from dockerkit.net import free_port, is_loopback, is_loopback_url


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_proxy(monkeypatch) -> None:
    """A proxy that nothing serves: any request sent to it fails."""
    proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_the_dummy_proxy_is_in_effect(server, dead_proxy):
    """Would plain urllib send the loopback request to the proxy (what the helpers must avoid)?"""
    with pytest.raises(urllib.error.URLError):  # a fresh opener: urlopen's global one reads the env once
        urllib.request.build_opener().open(f"{server}/health", timeout=5)


def test_kit_requests_bypass_the_proxy(server, dead_proxy):
    assert http("GET", f"{server}/health", timeout=5).json() == {"status": "ok"}
    assert http("GET", server.replace("127.0.0.1", "localhost") + "/health", timeout=5).status == 200


def test_grader_waits_bypass_the_proxy(server, dead_proxy):
    from grader.wait import wait_for_http

    assert wait_for_http(f"{server}/health", timeout=5, http_timeout=2) < 5


def test_lesson_helpers_bypass_the_proxy(server, dead_proxy):
    from course.lessonkit import http_get, http_request, wait_http

    assert http_get(f"{server}/health").status == 200
    assert http_request("GET", f"{server}/health").body == '{"status": "ok"}'
    assert wait_http(f"{server}/health", timeout=5).status == 200


def test_test_helpers_bypass_the_proxy(server, dead_proxy):
    from tests.helpers import wait_http

    assert wait_http(f"{server}/health", timeout=5) == '{"status": "ok"}'


@pytest.mark.parametrize(
    "address, loopback",
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.org", False),
        ("", False),
    ],
)
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


def test_loopback_urls():
    assert is_loopback_url("http://127.0.0.1:8000/health")
    assert not is_loopback_url("http://genai-service:8000/health")
