"""The app as a whole: the error contract, health, static files, the base URL, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException

from convscope import __version__
from convscope.errors import ConvscopeError, ModelError
from convscope.serve import static
from convscope.serve.app import create_app, normalized_base_url
from convscope.serve.state import ServeConfig
from convscope.store import StoreError
from tests.serve.conftest import make_client

# --- the error contract ---------------------------------------------------------------


@pytest.fixture
def failing(tmp_path: Path):
    """A client of an app with extra routes that fail in each way there is."""
    app = create_app(ServeConfig(store=tmp_path / "runs"))

    @app.get("/test/mistake")
    def mistake() -> None:
        raise ConvscopeError("the layer 'conv9' does not exist; did you mean conv2?")

    @app.get("/test/unknown-run")
    def unknown_run() -> None:
        raise StoreError("no run 'abc' in this store")

    @app.get("/test/unknown-model")
    def unknown_model() -> None:
        raise ModelError("unknown model 'lenot'; did you mean lenet?")

    @app.get("/test/http")
    def http() -> None:
        raise HTTPException(409, "busy\nnow")

    @app.get("/test/bug")
    def bug() -> None:
        raise ZeroDivisionError("secret detail")

    @app.get("/test/typed")
    def typed(count: int) -> dict:
        return {"count": count}

    with _client(app) as client:
        yield client


def _client(app):
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


def test_user_mistake_is_400_with_the_cli_line(failing) -> None:
    answer = failing.get("/test/mistake")
    assert answer.status_code == 400
    assert answer.json() == {"error": "the layer 'conv9' does not exist; did you mean conv2?"}


@pytest.mark.parametrize("path", ["/test/unknown-run", "/test/unknown-model"])
def test_unknown_thing_is_404(failing, path: str) -> None:
    answer = failing.get(path)
    assert answer.status_code == 404
    assert set(answer.json()) == {"error"}


def test_http_exception_keeps_its_status_in_one_line(failing) -> None:
    answer = failing.get("/test/http")
    assert answer.status_code == 409
    assert answer.json() == {"error": "busy now"}


def test_bad_parameter_is_400_naming_it(failing) -> None:
    answer = failing.get("/test/typed", params={"count": "many"})
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert "count" in message and "\n" not in message
    missing = failing.get("/test/typed")
    assert missing.status_code == 400 and "count" in missing.json()["error"]


def test_bug_is_500_without_traceback(failing) -> None:
    answer = failing.get("/test/bug")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error (a bug): ZeroDivisionError"}
    assert "secret" not in answer.text and "Traceback" not in answer.text


def test_unknown_route_and_method(failing) -> None:
    answer = failing.get("/api/nothing")
    assert answer.status_code == 404 and "/api/nothing" in answer.json()["error"]
    answer = failing.post("/api/health")
    assert answer.status_code == 405 and set(answer.json()) == {"error"}


# --- health, lifespan ----------------------------------------------------------------------


def test_health(tmp_path: Path) -> None:
    with make_client(ServeConfig(store=tmp_path / "none")) as client:
        answer = client.get("/api/health")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "version": __version__}


def test_lifespan_closes_the_workers(tmp_path: Path) -> None:
    app = create_app(ServeConfig(store=tmp_path / "none"))
    with _client(app) as client:
        assert client.get("/api/health").status_code == 200
    with pytest.raises(RuntimeError):
        app.state.convscope.executor.submit(print)


# --- static files -------------------------------------------------------------------------


def test_root_without_a_build_says_how_to_build(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(static, "package_static_dir", lambda: None)
    with make_client(ServeConfig(store=tmp_path)) as client:
        answer = client.get("/")
        asset = client.get("/assets/index-abcdefgh.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "the dashboard's front end is not built: run `make setup`" in answer.text.replace(
        "<code>", "`"
    ).replace("</code>", "`")
    assert asset.status_code == 404 and set(asset.json()) == {"error"}


@pytest.fixture
def built(tmp_path: Path, monkeypatch):
    """A client of an app whose front end is a small fake build in a temporary folder."""
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>built</title>")
    (root / "assets" / "index-BQ3x9Kza.js").write_text("console.log(1)")
    (root / "assets" / "index-Cx7_Ab-9.css").write_text("body{}")
    (root / "assets" / "logo.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("secret")
    monkeypatch.setattr(static, "package_static_dir", lambda: root)
    with make_client(ServeConfig(store=tmp_path / "runs")) as client:
        yield client


def test_built_index_and_assets(built) -> None:
    index = built.get("/")
    assert index.status_code == 200 and "<title>built</title>" in index.text
    assert index.headers["cache-control"] == "no-cache"
    script = built.get("/assets/index-BQ3x9Kza.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "immutable" in script.headers["cache-control"]
    style = built.get("/assets/index-Cx7_Ab-9.css")
    assert style.headers["content-type"].startswith("text/css")
    logo = built.get("/assets/logo.svg")
    assert logo.headers["content-type"] == "image/svg+xml"
    assert logo.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "name", ["../secret.txt", "../../secret.txt", ".hidden", "missing.js", "a/../../index.html"]
)
def test_asset_outside_or_missing_is_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    with pytest.raises(ConvscopeError):
        static.asset_path(root, name)


def test_asset_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "assets" / "link.js").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ConvscopeError):
        static.asset_path(root, "link.js")


def test_package_static_dir_is_inside_the_package() -> None:
    found = static.package_static_dir()
    if found is not None:
        assert found.parts[-3:] == ("convscope", "serve", "static")


# --- base URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["proxy/8765", "/proxy/8765", "/proxy/8765/", " proxy/8765/ "])
def test_normalized_base_url(given: str) -> None:
    assert normalized_base_url(given) == "/proxy/8765/"
    assert normalized_base_url("/") == "/" == normalized_base_url("")


def test_base_url_prefixed_and_plain(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(static, "package_static_dir", lambda: None)
    config = ServeConfig(store=tmp_path / "runs", base_url="/proxy/8765/")
    with make_client(config) as client:
        assert client.get("/proxy/8765/api/health").json()["ok"] is True
        assert client.get("/api/health").json()["ok"] is True
        page = client.get("/proxy/8765/")
        assert page.status_code == 200 and "not built" in page.text
        bare = client.get("/proxy/8765", follow_redirects=False)
        assert bare.status_code == 307 and bare.headers["location"] == "/proxy/8765/"
        slash = client.get("/proxy/8765/api/runs/", follow_redirects=False)
        assert slash.status_code == 307
        assert "/proxy/8765/api/runs" in slash.headers["location"]
        plain = client.get("/api/runs/", follow_redirects=False)
        assert "/proxy/8765/api/runs" in plain.headers["location"]


# --- OpenAPI ----------------------------------------------------------------------------------

OUR_ROUTES = {
    ("get", "/api/health"),
    ("get", "/api/runs"),
    ("get", "/api/runs/{ref}"),
    ("get", "/api/runs/{ref}/metrics"),
    ("get", "/api/runs/{ref}/embedding"),
    ("get", "/api/runs/{ref}/probe"),
    ("get", "/api/runs/{ref}/probe/sprite.png"),
    ("get", "/api/studies"),
    ("get", "/api/studies/{name}"),
    ("get", "/api/events"),
    # the model explorer's part of the contract
    ("get", "/api/models"),
    ("get", "/api/models/{model}/layers"),
    ("get", "/api/models/{model}/graph"),
    ("get", "/api/models/{model}/kernels"),
    ("get", "/api/models/{model}/kernels.png"),
    ("get", "/api/models/{model}/features"),
    ("get", "/api/models/{model}/features.png"),
    ("get", "/api/models/{model}/explain"),
    ("get", "/api/models/{model}/attribute.png"),
    ("post", "/api/models/{model}/maximize"),
    ("get", "/api/jobs/{job_id}"),
    ("post", "/api/images"),
    ("get", "/api/image.png"),
}
"""Every route of DESIGN.md's HTTP contract (``GET /``, the app itself, is a static page)."""


def test_openapi_lists_every_route_of_the_contract(tmp_path: Path) -> None:
    with make_client(ServeConfig(store=tmp_path / "runs")) as client:
        schema = client.get("/openapi.json").json()
    listed = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert listed >= OUR_ROUTES
    embedding = schema["paths"]["/api/runs/{ref}/embedding"]["get"]
    assert {p["name"] for p in embedding["parameters"]} == {"ref", "layer", "method", "epoch"}
