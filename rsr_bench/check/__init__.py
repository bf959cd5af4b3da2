"""Regression checks of released checkpoints against committed baselines."""

from .compare import *  # noqa: F401,F403  (temporary during the move)
