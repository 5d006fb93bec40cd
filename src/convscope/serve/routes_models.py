"""The dashboard's model routes: thin HTTP views over the probes the CLI uses."""

from fastapi import APIRouter

router = APIRouter()
