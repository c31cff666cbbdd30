"""The misbehaving test HTTP server itself: content, Range, faults, redirects, counts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from hublayer.testing import FileServer
from hublayer.testing._server import Request, Response

BODY = bytes(range(256)) * 400  # 102,400 bytes


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def test_serves_files_from_its_folder_and_routes(
    file_server: FileServer, client: httpx.Client
) -> None:
    assert file_server.root is not None
    (file_server.root / "sub").mkdir()
    (file_server.root / "sub" / "a.bin").write_bytes(BODY)
    file_server.add("/mem", b"memory")
    file_server.add_json("/api", {"versionNumber": 3})
    assert client.get(file_server.url("/sub/a.bin")).content == BODY
    assert client.get(file_server.url("/mem")).content == b"memory"
    assert client.get(file_server.url("/api")).json() == {"versionNumber": 3}
    assert client.get(file_server.url("/missing")).status_code == 404
    assert client.get(file_server.url("/../../etc/passwd")).status_code == 404
    head = client.head(file_server.url("/sub/a.bin"))
    assert (head.headers["content-length"], head.content) == (str(len(BODY)), b"")


def test_range_on_and_off(file_server: FileServer, client: httpx.Client) -> None:
    file_server.add("/b", BODY)
    part = client.get(file_server.url("/b"), headers={"Range": "bytes=100-"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-{len(BODY) - 1}/{len(BODY)}"
    assert part.content == BODY[100:]
    etag = part.headers["etag"]
    stale = client.get(file_server.url("/b"), headers={"Range": "bytes=5-", "If-Range": '"x"'})
    assert (stale.status_code, len(stale.content)) == (200, len(BODY))
    fresh = client.get(file_server.url("/b"), headers={"Range": "bytes=5-9", "If-Range": etag})
    assert (fresh.status_code, fresh.content) == (206, BODY[5:10])
    file_server.range_support = False
    whole = client.get(file_server.url("/b"), headers={"Range": "bytes=100-"})
    assert (whole.status_code, whole.content) == (200, BODY)
    assert "accept-ranges" not in whole.headers


def test_fail_answers_the_next_requests_with_an_error(
    file_server: FileServer, client: httpx.Client
) -> None:
    file_server.add("/b", BODY)
    file_server.fail(times=2, status=503, path="/b", retry_after=1)
    first = client.get(file_server.url("/b"))
    assert (first.status_code, first.headers["retry-after"]) == (503, "1")
    assert client.get(file_server.url("/b")).status_code == 503
    assert client.get(file_server.url("/b")).status_code == 200
    assert file_server.count("/b") == 3


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_drop_and_truncate_cut_the_body_with_full_length_announced(
    file_server: FileServer, client: httpx.Client, kind: str
) -> None:
    file_server.add("/b", BODY)
    getattr(file_server, kind)(1000, path="/b")
    received = bytearray()

    def read_all() -> None:
        with client.stream("GET", file_server.url("/b")) as response:
            assert response.headers["content-length"] == str(len(BODY))
            for chunk in response.iter_raw():
                received.extend(chunk)

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        read_all()
    assert received == BODY[:1000]
    assert client.get(file_server.url("/b")).content == BODY  # only once


def test_slow_and_stall_delay_the_bytes(file_server: FileServer, client: httpx.Client) -> None:
    file_server.add("/b", BODY[:20_000])
    file_server.slow(100_000, path="/b")
    start = time.monotonic()
    assert client.get(file_server.url("/b")).content == BODY[:20_000]
    assert time.monotonic() - start >= 0.15
    file_server.slow(None, path="/b")
    file_server.stall(0.3, after=10, path="/b")
    start = time.monotonic()
    assert client.get(file_server.url("/b")).content == BODY[:20_000]
    assert time.monotonic() - start >= 0.25


def test_redirect_chains_across_paths_and_host_names(
    file_server: FileServer, client: httpx.Client
) -> None:
    file_server.add("/final", b"done")
    file_server.redirect("/a", "/b")
    file_server.redirect("/b", "/final", host="localhost", status=307)
    response = client.get(
        file_server.url("/a") + "?tf-hub-format=compressed", follow_redirects=True
    )
    assert response.content == b"done"
    assert [str(r.url).split("/")[2].split(":")[0] for r in response.history] == [
        "127.0.0.1",
        "127.0.0.1",
    ]
    assert response.url.host == "localhost"
    assert response.url.query == b"tf-hub-format=compressed"
    assert [file_server.count(p) for p in ("/a", "/b", "/final")] == [1, 1, 1]


def test_dynamic_routes_and_the_request_log(file_server: FileServer, client: httpx.Client) -> None:
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return Response(body=f"call {len(seen)}".encode())

    file_server.add("/dyn", answer)
    assert client.get(file_server.url("/dyn"), headers={"X-Test": "1"}).content == b"call 1"
    assert client.get(file_server.url("/dyn")).content == b"call 2"
    assert seen[0].headers["X-Test"] == "1"
    assert [r.path for r in file_server.log] == ["/dyn", "/dyn"]
    file_server.reset()
    assert (file_server.log, file_server.count("/dyn")) == ([], 0)


def test_port_is_free_and_stop_releases_it() -> None:
    server = FileServer().start()
    port = server.port
    assert port > 0
    server.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    with FileServer() as again:
        again.add("/x", b"x")
        assert httpx.get(again.url("/x")).content == b"x"
