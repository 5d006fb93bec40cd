"""The model explorer's tiles routes (see docs/dashboard/api.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
