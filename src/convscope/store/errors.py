"""The run store's error: a :class:`ConvscopeError`, so the CLI prints it as one line."""

from __future__ import annotations

from convscope.errors import ConvscopeError


class StoreError(ConvscopeError):
    """A run store is missing, damaged or asked for something it does not hold."""
