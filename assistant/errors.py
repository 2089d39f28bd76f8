"""The assistant's errors: one small hierarchy, turned into CLI messages and HTTP bodies at the edges."""

from __future__ import annotations


class AssistantError(Exception):
    """Base of every error the assistant reports to a user.

    Attributes:
        message: A sentence a user can act on.
        status: The HTTP status an API edge should answer with.

    """

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(AssistantError):
    """The question, history or request is malformed."""

    status = 400


class SourceError(AssistantError):
    """A source file cannot be read or holds no usable text."""

    status = 422


class IndexError_(AssistantError):  # noqa: N801, N818 - the name mirrors the builtin it must not shadow
    """The index is missing, locked by another ingest, or inconsistent."""

    status = 503


class BackendError(AssistantError):
    """A generative backend failed or is misconfigured."""

    status = 502


class ConfigError(AssistantError):
    """A setting has a value the assistant cannot use."""

    status = 500
