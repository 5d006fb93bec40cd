"""The built dashboard (``make frontend``) as the package ships it: relative, offline, complete.

The page must work under any path prefix and without a network, so every asset the
built ``index.html`` names is a relative file that exists, and nothing (script, style,
font, image) comes from another host.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "convscope" / "serve" / "static"
FRONTEND = ROOT / "frontend"


@pytest.fixture(scope="module")
def index_html() -> str:
    index = STATIC / "index.html"
    if not index.is_file():
        pytest.fail("the dashboard is not built: run `make frontend` (make setup does it)")
    return index.read_text(encoding="utf-8")


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_every_asset_is_relative_and_present(index_html: str) -> None:
    refs = [r for r in _references(index_html) if not r.startswith("data:")]
    assert refs, "the built page names no assets"
    for ref in refs:
        assert ref.startswith("./assets/"), (
            f"{ref}: not relative (base './' keeps path prefixes working)"
        )
        assert (STATIC / ref).is_file(), f"{ref}: named by index.html but not built"


def test_nothing_comes_from_the_network(index_html: str) -> None:
    assert not [r for r in _references(index_html) if re.match(r"(https?:)?//", r)]
    for css in (STATIC / "assets").glob("*.css"):
        text = css.read_text(encoding="utf-8")
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), (
            f"{css.name} loads from the network"
        )
        assert "@import" not in text, f"{css.name} imports another style sheet"


def test_the_lock_file_pins_what_package_json_asks_for() -> None:
    package = json.loads((FRONTEND / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((FRONTEND / "package-lock.json").read_text(encoding="utf-8"))
    wanted = {**package.get("dependencies", {}), **package.get("devDependencies", {})}
    locked = lock["packages"][""]
    assert {**locked.get("dependencies", {}), **locked.get("devDependencies", {})} == wanted
    for name, version in wanted.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
