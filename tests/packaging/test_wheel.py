"""The wheel a user installs: it carries the built dashboard, installs, and serves it.

The wheel is built from a copy of the checkout (its files and the front end that
``make frontend`` built), so nothing is written into the checkout and no stale
``build/`` folder can slip into it. It is installed with pip, dependencies included,
into a fresh venv whose only other packages are a read-only view of the project's
environment (torch and the rest, not a second 5 GB copy):

- the new venv has no packages of its own and no pip;
- a ``.pth`` file in its site-packages adds a folder of symbolic links to everything in
  the project's site-packages *except* convscope (its dist-info and the editable
  install's finder). A ``.pth`` line is appended to ``sys.path`` after the venv's own
  site-packages, so what pip installs into the venv comes first; ``.pth`` files inside
  the linked folder are not run, so the checkout's editable convscope stays invisible;
- ``pip install WHEEL`` in the new venv then finds every dependency already satisfied
  (or installs a missing one into the venv) and installs convscope from the wheel.

Then ``NEW/bin/convscope serve --port 0`` runs from an empty working directory and
must serve the built page (not the "not built" one) and ``/api/health``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "convscope" / "serve" / "static"
URL_LINE = re.compile(r"^convscope dashboard: (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops it\)$")


def run(*command: str | Path, timeout: float, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def source_copy(target: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) and the built front end."""
    listed = run("git", "ls-files", "-co", "--exclude-standard", "-z", timeout=60, cwd=ROOT)
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    shutil.copytree(STATIC, target / STATIC.relative_to(ROOT))
    return target


def environment_view(site_packages: Path, view: Path) -> Path:
    """A folder of links to ``site_packages``'s entries, leaving convscope's own out."""
    view.mkdir()
    for entry in site_packages.iterdir():
        name = entry.name.lower()
        if name.startswith(("convscope", "__editable__")) or name.endswith(".pth"):
            continue
        if name == "__pycache__":
            continue
        (view / entry.name).symlink_to(entry)
    return view


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL"))}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", **extra}


@pytest.mark.slow
def test_the_wheel_carries_the_dashboard_installs_and_serves_it(tmp_path: Path) -> None:
    started = time.monotonic()
    if shutil.which("make") and shutil.which("npm"):
        run("make", "--no-print-directory", "frontend", timeout=600, cwd=ROOT)
    assert (STATIC / "index.html").is_file(), "no front-end build: run `make frontend`"
    built_js = sorted(p.name for p in (STATIC / "assets").glob("*.js"))
    assert built_js, "the front-end build has no script"

    # the wheel, from a copy of the checkout
    source = source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", dist, source, timeout=180, env=clean_env(),
    )  # fmt: skip
    (wheel,) = dist.glob("convscope-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        index_html = archive.read("convscope/serve/static/index.html").decode()
    assert "convscope/serve/static/index.html" in names
    wheel_js = sorted(
        n.rsplit("/", 1)[1]
        for n in names
        if n.startswith("convscope/serve/static/assets/") and n.endswith(".js")
    )
    assert wheel_js == built_js
    assert all(f"assets/{name}" in index_html for name in wheel_js if name.startswith("index-"))

    # a fresh venv over a view of the project's environment, without convscope
    import torch

    site_packages = Path(torch.__file__).resolve().parents[1]
    new = tmp_path / "new-venv"
    run(sys.executable, "-m", "venv", "--without-pip", new, timeout=120)
    (new_site,) = (new / "lib").glob("python3*/site-packages")
    view = environment_view(site_packages, tmp_path / "project-env")
    (new_site / "project_env.pth").write_text(f"{view}\n")
    python = new / "bin" / "python"
    work = tmp_path / "work"
    work.mkdir()
    env = clean_env(CONVSCOPE_HOME=str(tmp_path / "home"))
    missing = subprocess.run(
        [python, "-c", "import convscope"], capture_output=True, text=True, cwd=work, env=env
    )
    assert missing.returncode != 0, "convscope is importable before the wheel is installed"

    run(python, "-m", "pip", "install", "--quiet", wheel, timeout=300, cwd=work, env=env)
    where = run(
        python,
        "-c",
        "import convscope, importlib.metadata as m; "
        "print(convscope.__file__); print(m.distribution('convscope')._path)",
        timeout=120,
        cwd=work,
        env=env,
    ).stdout.split()
    assert all(Path(p).resolve().is_relative_to(new_site.resolve()) for p in where), where
    assert (new_site / "convscope" / "serve" / "static" / "index.html").is_file()

    # the installed command serves the built page
    process = subprocess.Popen(
        [new / "bin" / "convscope", "serve", "--port", "0", "--store", tmp_path / "runs"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=work,
        env=env,
    )
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))
        reader.start()
        reader.join(90)
        assert lines and lines[0], f"no URL printed; stderr: {process.stderr.read()}"
        match = URL_LINE.match(lines[0].rstrip("\n"))
        assert match, lines[0]
        url = match[1]
        deadline = time.monotonic() + 30
        while True:  # the URL is printed just before uvicorn answers
            try:
                health = httpx.get(f"{url}api/health", timeout=10)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["ok"] is True
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.text == index_html, "/ is not the built page of the wheel"
        assert "not built" not in page.text
        script = re.search(r'src="\./(assets/[^"]+\.js)"', page.text)
        assert script, page.text
        asset = httpx.get(f"{url}{script[1]}", timeout=10)
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, process.stderr.read()
    assert time.monotonic() - started < 300
