"""The errors of the retrieval index: each is a :class:`RetrievalError` whose message is a sentence for a person,
saying what to do.

Every failure of the index reaches the caller as one of them, whether the store is an embedded directory or a
server (:mod:`retrieval.store`) and whatever the index was doing (:mod:`retrieval.index`).
"""

from __future__ import annotations

# What the messages of a damaged or outdated index tell a person to run.
REBUILD_COMMAND = "concierge index --rebuild"


class RetrievalError(Exception):
    """The retrieval index cannot be used; the message is a sentence for a person, saying what to do."""


class IndexMissingError(RetrievalError):
    """No index has been built at the configured place."""


class IndexMismatchError(RetrievalError):
    """The index was built with another embedding model, dimension or schema version."""


class IndexLockedError(RetrievalError):
    """Another process is writing the index."""


class IndexCorruptError(RetrievalError):
    """The embedded store cannot be read or written (damaged files, or a program outside Concierge using them)."""


class IndexUnavailableError(RetrievalError):
    """The Chroma server cannot be reached."""
