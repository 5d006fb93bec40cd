"""Errors that mean "the user asked for something that cannot be done".

The CLI turns a :class:`ConvscopeError` into one line on stderr and exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ConvscopeError(Exception):
    """A user's mistake or an unusable input: the message says what to do."""


class DataError(ConvscopeError):
    """A dataset or data file is missing, corrupt or fails its checksum."""


class ImageError(ConvscopeError):
    """An image cannot be read or converted to what a model expects."""


class ModelError(ConvscopeError):
    """A model cannot be found, built or loaded."""


class LayerError(ConvscopeError):
    """A layer name does not exist in a model."""


class ConvscopeWarning(UserWarning):
    """Something convscope itself wants the user to know; the CLI shows it as one line.

    Warnings of convscope's dependencies are hidden by the CLI unless ``CONVSCOPE_DEBUG=1``.
    """
