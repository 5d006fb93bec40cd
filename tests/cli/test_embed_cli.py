"""``convscope embed``: scores as JSON, the pictures and animations as files, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from convscope.cli.app import main


def test_embed_json_and_files(recorded_runs, tmp_path: Path, capsys) -> None:
    root, ids = recorded_runs
    out, gif, scores = tmp_path / "maps.png", tmp_path / "maps.gif", tmp_path / "scores.svg"
    argv = ["embed", *ids, "--layer", "hidden", "--method", "pca", "--store", str(root)]
    status = main(
        [*argv, "--out", str(out), "--gif", str(gif), "--scores-out", str(scores), "--json"]
    )
    captured = capsys.readouterr()
    assert status == 0
    data = json.loads(captured.out)
    assert [d["run"] for d in data] == ids
    assert [e["epoch"] for e in data[0]["epochs"]] == [0, 1, 2]
    assert set(data[0]["epochs"][2]) >= {"knn_hidden", "knn_map", "silhouette", "trustworthiness"}
    assert out.stat().st_size > 10_000 and scores.read_text().startswith("<?xml")
    with Image.open(gif) as image:
        assert image.n_frames == 3
    assert f"wrote {gif}" in captured.err


def test_a_study_name_embeds_all_its_runs(recorded_runs, capsys) -> None:
    root, ids = recorded_runs
    argv = ["embed", "tiny", "--layer", "hidden", "--method", "pca", "--store", str(root)]
    assert main([*argv, "--json"]) == 0
    assert [d["run"] for d in json.loads(capsys.readouterr().out)] == ids


def test_embed_mp4_with_ffmpeg(recorded_runs, tmp_path: Path, capsys) -> None:
    assert shutil.which("ffmpeg"), "make setup installs ffmpeg for the MP4 animation"
    root, ids = recorded_runs
    video = tmp_path / "maps.mp4"
    argv = ["embed", ids[0], "--layer", "hidden", "--method", "pca", "--store", str(root)]
    assert main([*argv, "--animation", str(video), "--json"]) == 0
    capsys.readouterr()
    head = video.read_bytes()[:12]
    assert head[4:8] == b"ftyp" and video.stat().st_size > 2_000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layer", "hiden"], "hidden"),
        (["--layer", "hidden", "--animation", "maps.avi"], ".gif or .mp4"),
        (["--layer", "hidden", "--out", "maps.jpg"], ".png"),
    ],
)
def test_embed_mistakes_are_one_line(recorded_runs, tmp_path: Path, capsys, extra, message) -> None:
    root, ids = recorded_runs
    extra = [str(tmp_path / e) if e.startswith("maps.") else e for e in extra]
    status = main(["embed", ids[0], "--method", "pca", "--store", str(root), *extra])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("convscope: error:") and err.count("\n") == 1
    assert message in err
    assert not list(tmp_path.iterdir())
