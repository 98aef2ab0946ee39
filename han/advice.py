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


#: the note where keys come from a key file per meter (han run --keys, a head-end)
KEYS_FILE_NOTE = "add the meter's keys to the --keys file"


def advise(err: E, *, keys_file: bool = False) -> E:
    """Add to ``err`` how to give the key it misses (once, however often it is advised); returns ``err``.

    ``keys_file``: the keys come from ``--keys FILE`` (one table per meter), so the advice is to add
    the meter there, not a command-line option that would give one key to every meter."""
    if isinstance(err, KeyMissing):
        option = KEY_OPTIONS.get(err.key or "")
        if option is not None and keys_file:
            note = f"({KEYS_FILE_NOTE})" if err.otherwise else KEYS_FILE_NOTE
            if note not in getattr(err, "__notes__", ()):
                err.add_note(note)
        elif option is not None:
            # said after the words for the key: "... needs the X key; give it with --x", or, when the
            # error goes on with what else can be done, "... needs the X key (--x); or ..."
            note = f"({option})" if err.otherwise else f"give it with {option}"
            if note not in getattr(err, "__notes__", ()):
                err.add_note(note)
    return err


__all__ = ["KEY_OPTIONS", "KEYS_FILE_NOTE", "advise"]
