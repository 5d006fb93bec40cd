"""Pretrained weights by name or URL: ``--weights imagenet``, ``IMAGENET1K_V2``, ``https://...``.

Each library's own download and cache are used. torchvision's weights and any
``--weights URL`` go through ``torch.hub`` into
``$TORCH_HOME/hub/checkpoints/<file name of the URL>`` (default ``~/.cache/torch``);
timm's through ``huggingface_hub`` into the Hugging Face cache (``HF_HOME``,
``HF_HUB_CACHE``). A file already in the cache is used as it is, with no network, as
``torch.hub`` does; a library's weights that have to be downloaded are checked against
the sha256 prefix in their file name. convscope fetches the file itself, with the same
functions and into the same place, before the library loads it, so that a failed
download is one line naming the URL and the exact path where a file downloaded
elsewhere may be put, and so that nothing but JSON reaches stdout (``torch.hub`` prints
"Downloading ..." there).

``efficientnet-lite0``'s ImageNet weights come from an installed package
(:mod:`convscope.models.efficientnet`), not from a download.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import re
import sys
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from convscope.errors import ModelError
from convscope.models.loaded import LoadedModel
from convscope.naming import close_matches

IMAGENET = "imagenet"

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:_Weights\.[A-Za-z0-9_]+)?")

WITH_PRETRAINED = "resnet50, efficientnet-lite0, torchvision:NAME and timm:NAME"
"""The models ``--weights imagenet`` works for, in words."""


def is_url(text: str) -> bool:
    """Whether a ``--weights`` value is a URL (``http://`` or ``https://``)."""
    return text.startswith(("http://", "https://"))


def is_weights_name(text: str) -> bool:
    """Whether a ``--weights`` value names library weights rather than a file.

    A name is a bare word (``imagenet``, ``IMAGENET1K_V2``, ``ResNet50_Weights.IMAGENET1K_V2``,
    a timm tag such as ``ra_in1k``): no dot suffix, no folder. A file that exists wins.
    """
    from convscope.data.spec import path_exists

    return bool(_NAME.fullmatch(text)) and not path_exists(Path(text))


def hub_checkpoint_path(url: str) -> Path:
    """Where ``torch.hub`` keeps the file of ``url``: ``<hub dir>/checkpoints/<file name>``."""
    import torch.hub

    name = os.path.basename(urlparse(url).path)
    if not name:
        raise ModelError(f"{url}: the URL names no file (it ends with /); give the file's URL")
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def fetch_url(url: str, *, what: str, check_hash: bool) -> Path:
    """The cached file of ``url``, downloaded with ``torch.hub`` when not yet there.

    ``check_hash`` checks a download against the sha256 prefix in its file name
    (``resnet50-11ad3fa6.pth``), as torchvision does; a cached file is used as it is.
    """
    import torch.hub

    path = hub_checkpoint_path(url)
    if path.is_file():
        return path
    hash_prefix = None
    if check_hash:
        match = torch.hub.HASH_REGEX.search(path.name)
        hash_prefix = match.group(1) if match else None
    if sys.stderr.isatty():  # a notice and a progress bar for a person, not for logs
        print(f"convscope: downloading {what} from {url} to {path}", file=sys.stderr, flush=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix, progress=sys.stderr.isatty())
    except urllib.error.HTTPError as exc:  # the server answered, but not with the file
        raise ModelError(
            f"cannot download {what} from {url}: the server answered HTTP {exc.code} "
            f"({exc.reason}); check the URL"
        ) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError is an OSError
        raise ModelError(
            f"cannot download {what} from {url} ({_reason(exc)}); without a network, download "
            f"that file elsewhere and put it at {path}"
        ) from exc
    except RuntimeError as exc:  # torch.hub: 'invalid hash value (expected ..., got ...)'
        raise ModelError(f"{url}: the download is damaged ({_reason(exc)}); try again") from exc
    return path


def cached_hash_matches(path: Path) -> bool | None:
    """Whether a cached file's sha256 starts with the prefix its name carries
    (``resnet50-11ad3fa6.pth``); None when the name carries none.

    torch.hub checks only what it downloads; a file put into the cache by hand (as the
    offline message invites) is checked here on every use, so a wrong file is never
    reported as the library's weights.
    """
    import hashlib

    import torch.hub

    match = torch.hub.HASH_REGEX.search(path.name)
    if match is None:
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest().startswith(match.group(1))


def _unverified(label: str, path: Path) -> str:
    """The weights label of a cached file whose sha256 does not match its name, and a warning."""
    import warnings

    from convscope.errors import ConvscopeWarning

    warnings.warn(
        f"{path} does not match the sha256 its name carries: it is not the published "
        f"{label} weights file (delete it to download them again)",
        ConvscopeWarning,
        stacklevel=3,
    )
    return f"{IMAGENET} ({label}, unverified: {path.name} does not match its sha256)"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else ""
    if len(text) > 160:  # a long library message: cut at a word, and say it was cut
        text = text[:160].rsplit(" ", 1)[0] + " ..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_pretrained(model: LoadedModel, name: str) -> None:
    """Replace ``model``'s weights with the pretrained weights ``name`` of its library.

    ``imagenet`` is the library's default weights for the model; torchvision models also
    take an enum name (``IMAGENET1K_V1``), timm models a pretrained tag (``ra_in1k``).
    Sets ``model.weights`` to what was loaded, e.g. ``imagenet (IMAGENET1K_V2)``.
    """
    source = model.build.get("source")
    if source == "zoo":
        from convscope.models.efficientnet import WEIGHTS_DISTRIBUTION
        from convscope.models.registry import zoo

        entry = zoo().get(model.build.get("name", ""))
        pretrained = entry.pretrained if entry is not None else None
        if pretrained == "torchvision":
            _torchvision(model, model.build["name"], name)
            return
        if pretrained == WEIGHTS_DISTRIBUTION:
            _efficientnet_lite0(model, name)
            return
    elif source == "torchvision":
        _torchvision(model, model.build["name"], name)
        return
    elif source == "timm":
        _timm(model, model.build["name"], name)
        return
    not_a_file = "" if name.lower() == IMAGENET else f"; there is no file {name!r} either"
    raise ModelError(
        f"{model.name} has no pretrained weights to take by name ({name!r}); --weights "
        f"{IMAGENET} works for {WITH_PRETRAINED}; give this model a weights file or URL "
        f"instead{not_a_file}"
    )


def load_from_url(model: LoadedModel, url: str) -> None:
    """Download a state dict or checkpoint with ``torch.hub`` (cached) and load it."""
    from convscope.models.loading import load_weights

    path = fetch_url(url, what="weights", check_hash=False)
    load_weights(model, path)
    model.weights = f"url {url}"


# --------------------------------------------------------------------------- torchvision


def _torchvision(model: LoadedModel, tv_name: str, name: str) -> None:
    import torchvision.models as tvm

    from convscope.models import torchvision_models as tv

    member = tv.torchvision_weights(tv_name, name, model=model.name)
    what = f"torchvision's {tv_name} weights {member.name}"
    path = fetch_url(member.url, what=what, check_hash=True)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torch.hub's messages are not output
            module = tvm.get_model(tv_name, weights=member)
    except Exception as exc:  # a damaged or wrong file in the cache, whatever torch raises
        raise ModelError(
            f"{path}: not usable as {what} ({_reason(exc)}); delete it to download it again"
        ) from exc
    model.module = module
    model.input_spec = tv.imagenet_input_spec(tv_name, member)
    model.class_names = tv.imagenet_class_names(tv_name, member) or model.class_names
    model.dataset = "imagenet"
    if model.build.get("source") == "torchvision":
        kwargs = tv.architecture_kwargs(tv_name, member)
        model.build = {k: v for k, v in model.build.items() if k not in ("kwargs", "pretrained")}
        if kwargs:
            model.build["kwargs"] = kwargs
    verified = cached_hash_matches(path) is not False
    model.weights = f"{IMAGENET} ({member.name})" if verified else _unverified(member.name, path)


# --------------------------------------------------------------------------- timm


HF_FILES = ("model.safetensors", "pytorch_model.bin")
"""The files timm looks for in a Hugging Face repository, in its order."""


def _timm(model: LoadedModel, timm_name: str, name: str) -> None:
    import timm

    arch, _, tag = timm_name.partition(".")
    tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{arch}.*")]
    tags = [t for t in tags if t]
    if not tags:
        raise ModelError(f"timm has no pretrained weights for {arch}")
    default = timm.models.get_pretrained_cfg(arch).tag or tags[0]
    if name.lower() != IMAGENET:
        if name not in tags:
            raise ModelError(
                f"timm:{arch} has no pretrained weights named {name!r}: timm has "
                f"{', '.join(tags)}, and {IMAGENET} (its default, {default})"
                f"{close_matches(name, [IMAGENET, *tags])}"
            )
        tag = name
    tag = tag or default
    full = f"{arch}.{tag}"
    cfg = timm.models.get_pretrained_cfg(full)
    path = _timm_file(full, cfg)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            module = timm.create_model(
                full, pretrained=True, pretrained_cfg_overlay={"file": str(path)}
            )
    except Exception as exc:
        raise ModelError(
            f"{path}: not usable as timm's {full} weights ({_reason(exc)}); delete it to "
            "download it again"
        ) from exc
    from convscope.models.loading import timm_input_spec

    model.module = module
    model.input_spec = timm_input_spec(module)
    if getattr(module, "num_classes", None) == 1000:
        from convscope.models.torchvision_models import imagenet_class_names

        model.class_names = imagenet_class_names("resnet50")
        model.dataset = "imagenet"
    model.build = {**model.build, "name": full}
    model.weights = f"{IMAGENET} ({full})"


def _timm_file(full: str, cfg: Any) -> Path:
    """The weights file of a timm pretrained config: cached, or downloaded now."""
    repo = getattr(cfg, "hf_hub_id", None)
    url = getattr(cfg, "url", None)
    legacy = hub_checkpoint_path(url) if url else None  # timm's older .pth download
    if legacy is not None and legacy.is_file():
        return legacy
    # from the Hugging Face hub the file is safetensors: a hand-fetched one goes here
    drop_in = _timm_drop_in(full) if repo or legacy is None else legacy
    if drop_in.is_file():
        return drop_in
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for filename in HF_FILES:
            cached = try_to_load_from_cache(repo, filename)
            if isinstance(cached, str) and Path(cached).is_file():
                return Path(cached)
        return _hf_download(full, repo, drop_in)
    if url:
        return fetch_url(url, what=f"timm's {full} weights", check_hash=True)
    raise ModelError(f"timm's {full} weights have no download location")


def _timm_drop_in(full: str) -> Path:
    """Where a timm weights file fetched by hand may be put: the torch hub checkpoints."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / f"{full}.safetensors"


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence a library's retry warnings: the failure is reported in one line."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _hf_download(full: str, repo: str, drop_in: Path) -> Path:
    from huggingface_hub import hf_hub_download

    url = f"https://huggingface.co/{repo}/resolve/main/{HF_FILES[0]}"
    if sys.stderr.isatty():
        print(f"convscope: downloading timm's {full} weights from {url}", file=sys.stderr)
    try:
        with _quiet("huggingface_hub"), contextlib.redirect_stdout(sys.stderr):
            return Path(hf_hub_download(repo, HF_FILES[0]))
    except Exception as exc:  # offline, missing file, HTTP errors: huggingface_hub's own types
        raise ModelError(
            f"cannot download timm's {full} weights from {url} ({_reason(exc)}); without a "
            f"network, download that file elsewhere and put it at {drop_in}"
        ) from exc


# --------------------------------------------------------------------------- efficientnet-lite0


def _efficientnet_lite0(model: LoadedModel, name: str) -> None:
    from importlib.metadata import version

    from convscope.models import efficientnet as eff
    from convscope.models.loading import load_state_dict

    if name.lower() not in (IMAGENET, "default"):
        raise ModelError(
            f"{model.name} has one set of pretrained weights, {IMAGENET}; got {name!r}"
        )
    state = eff.imagenet_state_dict(model.module)
    load_state_dict(model.module, state, source=str(eff.weights_path()))
    model.input_spec = eff.INPUT_SPEC
    model.weights = f"{IMAGENET} ({eff.WEIGHTS_DISTRIBUTION} {version(eff.WEIGHTS_DISTRIBUTION)})"
