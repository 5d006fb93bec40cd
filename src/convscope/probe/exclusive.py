"""One probe at a time on one model: probes called from several threads stay correct.

A probe borrows the model it looks into: forward hooks on shared modules (ours and
Captum's) fire for every thread's forward pass, and the probes switch eval mode and
``requires_grad`` for their duration. Two probes on one module at once would see each
other's activations and restore each other's flags (measured: maximize, attribute and
feature maps from six threads on one ``lenet5`` gave wrong numbers or autograd errors).
So every probe holds the module's lock while it runs; probes of different models still
run in parallel. The locks live in a weak mapping, so a model that is dropped takes its
lock with it, and nothing is stored on the user's module.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from torch import nn

F = TypeVar("F", bound=Callable[..., Any])

_locks: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def module_lock(module: nn.Module) -> threading.RLock:
    """The lock probes of ``module`` hold (re-entrant: a probe may call another)."""
    with _locks_guard:
        lock = _locks.get(module)
        if lock is None:
            lock = _locks[module] = threading.RLock()
        return lock


@contextmanager
def exclusive(model: Any) -> Iterator[None]:
    """Hold the lock of ``model`` (a :class:`LoadedModel` or an ``nn.Module``) in the block."""
    module = getattr(model, "module", model)
    if not isinstance(module, nn.Module):
        yield
        return
    with module_lock(module):
        yield


def one_at_a_time(probe: F) -> F:
    """Decorate a probe whose first argument is the model: it runs holding its lock.

    The model may also be given as a MODEL string (``"lenet5"``, ``"run:ID@3"``,
    ``"net.ckpt"``), loaded as :func:`convscope.load_model` loads it, so every probe
    takes its model the same way.
    """

    @functools.wraps(probe)
    def run(model: Any, *args: Any, input_shape: Any = None, **kwargs: Any) -> Any:
        model = as_model(model, input_shape)
        with exclusive(model):
            return probe(model, *args, **kwargs)

    return run  # type: ignore[return-value]


def as_model(model: Any, input_shape: Any = None) -> Any:
    """A MODEL string loaded (see :func:`convscope.load_model`); a bare ``nn.Module`` with
    ``input_shape=(C, H, W)`` (or an ``input_spec`` attribute) made a LoadedModel, so it
    takes images like any other model; anything else as it is."""
    if isinstance(model, str):
        from convscope.models.loading import load_model

        return load_model(model, input_shape=input_shape)
    if isinstance(model, nn.Module) and (
        input_shape is not None or getattr(model, "input_spec", None) is not None
    ):
        from convscope.data.preprocess import InputSpec
        from convscope.models.loaded import LoadedModel

        declared = getattr(model, "input_spec", None)
        if input_shape is not None:
            spec = InputSpec(*(int(v) for v in input_shape))
        else:
            spec = declared if isinstance(declared, InputSpec) else InputSpec.from_dict(declared)
        classes = tuple(getattr(model, "class_names", ()) or ()) or None
        return LoadedModel(module=model, name=type(model).__name__, input_spec=spec,
                           class_names=classes)  # fmt: skip
    return model


def needs_loaded(model: Any, probe: str) -> None:
    """Refuse, in one line, a bare module where a probe must know the model's input."""
    from convscope.errors import ConvscopeError
    from convscope.models.loaded import LoadedModel

    if not isinstance(model, LoadedModel):
        raise ConvscopeError(
            f"{probe} needs the model's input: give a bare nn.Module with "
            "input_shape=(C, H, W), or load it with convscope.load_model"
        )
