"""The model explorer's browse routes (see docs/dashboard/api.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
