"""The guards: DNS-rebinding Host check, unsafe paths, the token, and no CORS."""

from __future__ import annotations

from pathlib import Path

import pytest

from convscope.serve.security import (
    TOKEN_COOKIE,
    TOKEN_MISSING,
    allowed_host,
    host_name,
    unsafe_path,
)
from convscope.serve.state import ServeConfig
from tests.serve.conftest import ThreadedServer, make_client, raw_request

# --- Host ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [("localhost:8765", "localhost"), ("[::1]:80", "[::1]"), ("127.0.0.1", "127.0.0.1")],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    "header", ["localhost", "localhost:1", "127.0.0.1:8765", "[::1]:8765", "LOCALHOST:2"]
)
def test_loopback_hosts_are_allowed(header: str) -> None:
    assert allowed_host(header, "127.0.0.1")


@pytest.mark.parametrize(
    "header", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "", None]
)
def test_other_hosts_are_refused(header: str | None) -> None:
    assert not allowed_host(header, "127.0.0.1")


def test_bound_name_and_wildcard() -> None:
    assert allowed_host("box.lan:8765", "box.lan")
    assert not allowed_host("other.lan:8765", "box.lan")
    assert allowed_host("anything:1", "0.0.0.0")  # a wildcard bind needs a token instead


def test_forged_host_gets_403(tmp_path: Path) -> None:
    with make_client(ServeConfig(store=tmp_path), base_url="http://evil.example") as client:
        answer = client.get("/api/health")
    assert answer.status_code == 403
    assert "evil.example" in answer.json()["error"]


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        b"/assets/../x",
        b"/..",
        b"/assets/./x",
        b"/assets/%2e%2e/x",
        b"/assets/%2E%2E/x",
        b"/assets/.%2e/x",
        b"/api/runs/a%2fb",
        b"/api/runs/a%2Fb",
        b"/assets/a%5cb",
        b"/assets/a\\b",
    ],
)
def test_unsafe_paths(path: bytes) -> None:
    assert unsafe_path(path)


@pytest.mark.parametrize(
    "path", [b"/", b"/api/runs/3fa2", b"/assets/index-BQ3x9Kza.js", b"/api/models/run%3Aab%4012"]
)
def test_safe_paths(path: bytes) -> None:
    assert not unsafe_path(path)


@pytest.mark.parametrize("path", ["/assets/%2e%2e/secret", "/api/runs/x%2F..%2Fy"])
def test_encoded_traversal_gets_400(tmp_path: Path, path: str) -> None:
    with make_client(ServeConfig(store=tmp_path)) as client:
        answer = client.get(path)
    assert answer.status_code == 400
    assert set(answer.json()) == {"error"}


# --- token ---------------------------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path: Path):
    with make_client(ServeConfig(store=tmp_path / "runs", token="s3cret")) as client:
        yield client


def test_no_token_is_401(guarded) -> None:
    answer = guarded.get("/api/health")
    assert answer.status_code == 401
    assert answer.json() == {"error": TOKEN_MISSING}
    assert guarded.get("/").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong"},
        {"X-Convscope-Token": "s3cre"},
        {"Cookie": f"{TOKEN_COOKIE}=nope"},
        {"Authorization": "Basic s3cret"},
    ],
)
def test_wrong_token_is_401(guarded, headers: dict[str, str]) -> None:
    assert guarded.get("/api/health", headers=headers).status_code == 401
    assert guarded.get("/api/health", params={"token": "wrong"}).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer s3cret"},
        {"X-Convscope-Token": "s3cret"},
        {"Cookie": f"{TOKEN_COOKIE}=s3cret"},
    ],
)
def test_token_in_a_header_or_cookie(guarded, headers: dict[str, str]) -> None:
    answer = guarded.get("/api/health", headers=headers)
    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers


def test_token_in_the_query_sets_a_strict_cookie(guarded) -> None:
    answer = guarded.get("/", params={"token": "s3cret"})
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}=s3cret")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    later = guarded.get("/api/health")  # the client now carries the cookie, like the page
    assert later.status_code == 200


def test_cookie_path_is_the_base_url(tmp_path: Path) -> None:
    config = ServeConfig(store=tmp_path, token="t", base_url="/proxy/8765/")
    with make_client(config) as client:
        answer = client.get("/proxy/8765/api/health", params={"token": "t"})
    assert "Path=/proxy/8765/" in answer.headers["set-cookie"]


# --- no CORS ---------------------------------------------------------------------------------


def test_no_cors_headers(tmp_path: Path) -> None:
    with make_client(ServeConfig(store=tmp_path)) as client:
        answer = client.get("/api/health", headers={"Origin": "http://evil.example"})
        preflight = client.options(
            "/api/runs",
            headers={
                "Origin": "http://evil.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-convscope-token",
            },
        )
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
    assert preflight.status_code >= 400
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-")]


# --- against a real server --------------------------------------------------------------------


def test_guards_on_a_real_server(tmp_path: Path) -> None:
    with ThreadedServer(ServeConfig(store=tmp_path / "runs")) as server:
        assert raw_request(server.port, "/api/health")[0] == 200
        assert raw_request(server.port, "/api/health", host="evil.example:80")[0] == 403
        assert raw_request(server.port, "/api/health", host="localhost:1234")[0] == 200
        for path in ("/assets/../../etc/passwd", "/assets/%2e%2e/x", "/api/runs/%2E%2E%2Fx"):
            status, body = raw_request(server.port, path)
            assert status == 400, path
            assert body.startswith('{"error"'), body


def test_another_sites_page_cannot_start_work(tmp_path) -> None:
    """No CORS keeps a page from reading answers; this keeps it from sending requests."""
    with make_client(ServeConfig(store=tmp_path / "runs")) as client:
        body = b'{"class": 3}'
        forged = client.post(
            "/api/models/lenet5/maximize",
            content=body,
            headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
        )
        assert forged.status_code == 403 and "another site" in forged.json()["error"]
        fetched = client.get("/api/runs", headers={"Sec-Fetch-Site": "cross-site"})
        assert fetched.status_code == 403
        same = client.get("/api/runs", headers={"Sec-Fetch-Site": "same-origin"})
        assert same.status_code == 200
        own_page = client.post("/api/images", content=b"", headers={"Origin": "http://127.0.0.1"})
        assert own_page.status_code == 400  # reaches the route: an empty upload
        assert client.get("/docs").status_code == 404  # FastAPI's CDN pages are off
