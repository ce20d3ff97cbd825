"""Errors every TrialGuard process may raise, below every component that raises them."""

from __future__ import annotations


class ConfigurationError(Exception):
    """A setting that cannot work, named with what is wrong with it; the process exits."""
