"""Downloads over HTTP(S) for the dataset sources: atomic, size-checked, with progress.

Tested against a server on 127.0.0.1 that the tests start themselves (no mirror is
reachable where convscope is built).
"""

from __future__ import annotations

import contextlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.data.idx import read_idx
from convscope.data.registry import (
    CHUNK,
    DEFAULT_TIMEOUT,
    SOURCE_DOWNLOAD,
    DatasetInfo,
    ProgressFn,
    SplitInfo,
    one_line,
)
from convscope.errors import DataError

if TYPE_CHECKING:
    from convscope.data.datasets import _Context


def _content_length(response: Any) -> int | None:
    """The response's Content-Length as an int, or None when absent or invalid."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def http_download(
    url: str,
    dest: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: ProgressFn | None = None,
    description: str = "",
) -> Path:
    """Stream ``url`` into ``dest``; a network error or short body is a DataError."""
    request = urllib.request.Request(url, headers={"User-Agent": "convscope"})
    done, total = 0, None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as out:
            total = _content_length(response)
            if progress:
                progress(0, total, description or url)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total, description or url)
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: HTTP {exc.code} {one_line(exc.reason)}") from exc
    except urllib.error.URLError as exc:
        raise DataError(f"{url}: {one_line(str(exc.reason))}") from exc
    except http.client.IncompleteRead as exc:
        raise DataError(f"{url}: connection closed after {done} bytes (truncated)") from exc
    except (http.client.HTTPException, OSError) as exc:
        raise DataError(f"{url}: {one_line(str(exc) or type(exc).__name__)}") from exc
    if total is not None and done != total:
        raise DataError(f"{url}: received {done} of {total} bytes (truncated download)")
    return dest


def _read_download(path: Path, url: str) -> np.ndarray:
    """Read a downloaded IDX file; errors name the URL, not the temporary file."""
    try:
        return read_idx(path)
    except DataError as exc:
        raise DataError(f"{url}: {str(exc).removeprefix(f'{path}: ')}") from exc


def download_file(
    ctx: _Context,
    split: SplitInfo,
    file_name: str,
    check: Callable[[DatasetInfo, SplitInfo, np.ndarray, str], None],
    tmp: Path,
    bad: set[str],
) -> np.ndarray:
    """Get one verified array from the first working mirror; note each failure."""
    reasons = []
    for mirror, url in zip(ctx.mirrors, ctx.info.urls(file_name, ctx.mirrors), strict=True):
        if mirror in bad:
            continue
        dest = tmp / (file_name + ".gz")
        try:
            http_download(
                url,
                dest,
                timeout=ctx.timeout,
                progress=ctx.progress,
                description=f"{ctx.info.name}: {file_name}.gz",
            )
            array = _read_download(dest, url)
            check(ctx.info, split, array, url)
            return array
        except DataError as exc:
            bad.add(mirror)
            ctx.failures.append((SOURCE_DOWNLOAD, str(exc)))
            reasons.append(str(exc))
        finally:
            with contextlib.suppress(FileNotFoundError):
                dest.unlink()
    raise DataError(
        f"no mirror gave a verified {file_name}"
        + ("" if reasons else " (every mirror had already failed)")
    )
