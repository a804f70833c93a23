"""`InputError`: the base of every error that a caller's input causes.

A bad name, option, file or directory raises an `InputError` (or, for a path
that is not there, `FileNotFoundError`) whose message alone says what is
wrong and what to change. The scripts print such errors as one line
(``<script>: error: <message>``, exit status 2; see `agents.cli`) and keep the
traceback of every other exception: those are bugs, not input.
"""

from __future__ import annotations


class InputError(ValueError):
    """A value, name, file or directory given by the caller cannot be used.

    The message names what was given and what to do instead. A subclass of
    ``ValueError``, so code that catches ``ValueError`` keeps working.
    """
