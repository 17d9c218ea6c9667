"""Errors a user can act on. The CLI prints their message and exits with their code: no traceback."""

from __future__ import annotations


class LeadscoreError(Exception):
    """Base for errors caused by input, config or state rather than by a bug."""

    exit_code = 1


class ConfigError(LeadscoreError, ValueError):
    """The params file is missing, unreadable or invalid. The message names the key at fault."""

    exit_code = 2


class DataError(LeadscoreError):
    """An input file is missing, empty or malformed. The message names the file and column."""

    exit_code = 3


class ModelError(LeadscoreError):
    """The model to score with is missing or does not match the features."""

    exit_code = 4


class RegistryError(LeadscoreError):
    """The MLflow tracking store or registry cannot be reached, or is damaged: nothing is promoted and
    nothing is scored with a model it cannot vouch for."""

    exit_code = 5


class FeedbackError(DataError, ValueError):
    """A rep's feedback, or a user of the feedback database, is invalid (a verdict, reason, grade, author ...),
    or the database cannot be used. The message names the field at fault."""
