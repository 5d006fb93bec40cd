"""Helpers for the CLI tests: run ``convscope`` in-process and check the user-error contract."""

from __future__ import annotations

import pytest

from convscope.cli.app import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (status, stdout, stderr)."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def assert_user_error(result: tuple[int, str, str], *fragments: str) -> None:
    """Exit 2, nothing on stdout, one ``convscope: error:`` line holding every fragment."""
    status, out, err = result
    assert status == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("convscope: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]
