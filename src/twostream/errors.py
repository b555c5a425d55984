"""The project's one exception type for what a user can fix: a bad path, value, file or video.

``twostream <command>`` prints a ``UserError`` as one line and exits with status 2; any other exception
is a bug and keeps its traceback. It subclasses ``ValueError``, so ``except ValueError`` still sees it.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input, named in the message (the file, the key, the video, and what is allowed)."""
