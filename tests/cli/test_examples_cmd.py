"""``convscope examples``: the JSON the library gives, the figure, and one-line mistakes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convscope
from tests.cli import assert_user_error, run

KEYS = ["model", "weights", "layer", "channel", "images", "count", "statistic", "top", "bottom"]


def test_json_is_the_library_result(capsys) -> None:
    status, out, err = run(capsys, "examples", "lenet5", "--layer", "conv2d_2", "--channel",
                           "4", "--image", "mnist:test:0-200", "--top", "5", "--json")  # fmt: skip
    assert status == 0, err
    data = json.loads(out)
    assert list(data) == KEYS
    expected = convscope.top_activations("lenet5", "conv2d_2", "mnist:test:0-200", 5, channel=4)
    assert data == json.loads(json.dumps(expected.to_dict()))
    assert len(data["top"]) == len(data["bottom"]) == 5 and data["count"] == 200
    assert [e["activation"] for e in data["top"]] == sorted(
        (e["activation"] for e in data["top"]), reverse=True
    )


def test_out_writes_the_figure_and_the_default_set_is_said(capsys, tmp_path) -> None:
    out = tmp_path / "examples.png"
    status, stdout, err = run(capsys, "examples", "lenet5", "--layer", "dense_1", "--channel",
                              "3", "--out", str(out), "--batch-size", "128")  # fmt: skip
    assert status == 0 and stdout == ""
    assert "ranking the stratified sample of mnist (500 images)" in err
    assert f"wrote {out}" in err.splitlines()  # a line of its own
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"))
    assert width > 900 and 350 < height < width  # nine images across, two labelled rows
    assert pixels.std() > 20  # images drawn, not a blank page


def table(capsys, monkeypatch, columns: int, *argv: str) -> tuple[list[str], str]:
    """The table ``examples lenet5 --layer conv2d_1 --channel 0 ARGV`` prints ``columns``
    wide: its lines (right-stripped), and its caption as one line of text."""
    monkeypatch.setenv("COLUMNS", str(columns))
    status, out, err = run(capsys, "examples", "lenet5", "--layer", "conv2d_1", "--channel", "0",
                           *argv)  # fmt: skip
    assert status == 0, err
    lines = [line.rstrip() for line in out.splitlines()]
    below = lines[next(i for i, line in enumerate(lines) if line.startswith("└")) + 1 :]
    return lines, " ".join(" ".join(below).split())


def test_a_table_without_out_or_json(capsys, monkeypatch) -> None:
    lines, caption = table(capsys, monkeypatch, 120, "--image", "mnist:test:0-30", "--top", "2")
    out = "\n".join(lines)
    assert "most" in out and "least" in out and "mnist:test:" in out and "untrained" in out.lower()
    assert "mean activation over 30 images (mnist:test:0-30)" in caption


@pytest.mark.parametrize("columns", [50, 80])
def test_the_title_is_one_line_and_each_note_starts_a_line(capsys, monkeypatch, columns) -> None:
    lines, caption = table(capsys, monkeypatch, columns, "--image", "mnist:test:0", "--top", "3")
    assert lines[0].strip() == "lenet5 conv2d_1 channel 0" and lines[1].startswith("┏")
    assert all(len(line) <= columns for line in lines)
    starts = [line.split(" ", 1)[0] for line in lines]
    assert "1" in starts and "Untrained" in starts  # the one-image note, then the weights'
    assert "1 image: nothing to rank; give a range such as mnist:test:0-500" in caption
    assert "1 images" not in caption and "not active" not in caption
    assert [line.split("│")[1].strip() for line in lines if "mnist:test:0 " in line] == ["only"]


def test_a_top_past_half_the_set_lists_each_image_once(capsys, monkeypatch) -> None:
    lines, caption = table(capsys, monkeypatch, 100, "--image", "mnist:test:0-5", "--top", "3")
    rows = [line.split("│") for line in lines if line.startswith("│")]
    assert [row[1].strip() for row in rows] == ["all", "", "", "", ""]  # one block, no "least"
    assert sorted(row[3].strip() for row in rows) == [f"mnist:test:{i}" for i in range(5)]
    values = [float(row[5]) for row in rows]
    assert values == sorted(values, reverse=True)
    note = "the set has 5 images, too few for 3 at each end: all 5 shown once, most to least active"
    assert note in caption
    lines, caption = table(capsys, monkeypatch, 100, "--image", "mnist:test:0-5", "--top", "9")
    assert "the set has 5 images: all 5 shown once, most to least active" in caption
    status, out, _ = run(capsys, "examples", "lenet5", "--layer", "conv2d_1", "--channel", "0",
                         "--image", "mnist:test:0-5", "--top", "9", "--json")  # fmt: skip
    data = json.loads(out)  # JSON keeps both ends, each capped to the set
    assert status == 0 and len(data["top"]) == len(data["bottom"]) == 5


def test_wrote_starts_its_own_line_after_the_progress_bar(tmp_path) -> None:
    """On a terminal (stderr a 50-column pty) the bar is drawn; ``wrote F`` follows on a
    line of its own."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 50, 0, 0))
    out = tmp_path / "f.png"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "convscope", "examples", "lenet5", "--layer", "conv2d_1",
         "--channel", "0", "--image", "mnist:test:0-300", "--batch-size", "50",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=follower, env={**env, "TERM": "xterm"},
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    stdout, _ = process.communicate(timeout=120)
    terminal = b"".join(chunks).decode()
    assert process.returncode == 0, terminal
    assert stdout == b"" and Path(out).stat().st_size > 0
    assert "300/300" in terminal  # the bar was drawn
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal).replace("\r\n", "\n")
    assert re.search(rf"\nwrote {re.escape(str(out))}\n$", text), repr(text[-200:])


def test_mistakes_exit_2_with_one_line_and_write_nothing(capsys, tmp_path) -> None:
    out = tmp_path / "never.png"
    base = ["examples", "lenet5", "--image", "mnist:test:0-20", "--out", str(out)]
    assert_user_error(
        run(capsys, *base, "--layer", "conv2d_3", "--channel", "0"),
        "no layer 'conv2d_3'",
        "did you mean conv2d_2, conv2d_1",
    )
    assert_user_error(
        run(capsys, *base, "--layer", "conv2d_2", "--channel", "16"),
        "channel 16 is out of range",
        "0-15",
    )
    assert_user_error(
        run(capsys, *base, "--layer", "conv2d_2", "--channel", "1", "--top", "0"),
        "--top must be at least 1",
    )
    assert_user_error(
        run(capsys, *base, "--layer", "conv2d_2", "--channel", "1", "--batch-size", "0"),
        "--batch-size must be at least 1",
    )
    assert_user_error(
        run(capsys, "examples", "lenet5", "--layer", "conv2d_2", "--channel", "one"),
        "argument --channel",
    )
    bad_name = str(tmp_path / "f.txt")  # refused before the default set is even made
    assert_user_error(
        run(
            capsys, "examples", "lenet5", "--layer", "conv2d_2", "--channel", "1", "--out", bad_name
        ),
        "f.txt",
        "must end in .png",
    )
    assert_user_error(
        run(capsys, "examples", "torchvision:resnet18", "--layer", "layer1", "--channel", "1"),
        "no default image set",
        "--image SPEC",
    )
    assert not out.exists()
