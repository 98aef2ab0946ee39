"""What the command line adds to the library's errors: the option that gives a missing key.

The decoders say what is missing in words (:class:`~decoders.errors.KeyMissing`
names it in ``key``) and never name an option of ours; wherever such an
error reaches a user (``han decode``, ``han profiles``, ``han security``,
``han diagnose``, the daemon's log) :func:`advise` adds the option as a note.
"""

from __future__ import annotations

from typing import TypeVar

from decoders.errors import KeyMissing

#: KeyMissing.key -> the option that gives that key (the environment and key files are in the README)
KEY_OPTIONS = {
    "encryption": "--key",
    "authentication": "--auth-key",
    "dedicated": "--dedicated-key",
    "broadcast": "--broadcast-key",
}

E = TypeVar("E", bound=BaseException)


def advise(err: E) -> E:
    """Add to ``err`` how to give the key it misses (once, however often it is advised); returns ``err``."""
    if isinstance(err, KeyMissing):
        option = KEY_OPTIONS.get(err.key or "")
        if option is not None:
            # said after the words for the key: "... needs the X key; give it with --x", or, when the
            # error goes on with what else can be done, "... needs the X key (--x); or ..."
            note = f"({option})" if err.otherwise else f"give it with {option}"
            if note not in getattr(err, "__notes__", ()):
                err.add_note(note)
    return err


__all__ = ["KEY_OPTIONS", "advise"]
