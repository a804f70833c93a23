"""Compatibility module: the evaluation harness lives in `agents.evaluation`; this re-exports it."""

from agents.evaluation import *  # noqa: F403
from agents.evaluation import __all__ as __all__
