"""Exceptions users see. Each message names the file or thing at fault and what to do."""

from __future__ import annotations


class RsrBenchError(Exception):
    """Base class: a problem the user can fix, reported without a traceback by the CLI."""


class ConfigError(RsrBenchError):
    """A card, datasets file or option is malformed (unknown key, wrong type, bad value)."""


class UnknownNameError(RsrBenchError):
    """A method, dataset or metric name that is not registered (message has did-you-mean)."""


class ImageError(RsrBenchError):
    """An image could not be decoded or does not fit the policy (the message names the file)."""


class NotComputable(RsrBenchError):
    """A metric cannot be computed for this image (e.g. smaller than its block size)."""


class UnavailableError(RsrBenchError):
    """Something needed (weights, data) is not on this machine; message says how to get it."""
