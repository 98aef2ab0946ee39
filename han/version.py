"""Which han this is, for ``han --version``: the distribution's name and installed version.

The distribution is ``han-logger``: the package index's ``han`` is an unrelated project, and the
amshan library (which Home Assistant's amshan integration installs) ships a top-level module
``han``.  The command and the import package stay ``han``, so han lives in an environment of its
own (pipx, a virtual environment, or the Debian package's /opt/han).
"""

from __future__ import annotations

from . import __version__

DISTRIBUTION = "han-logger"


def installed_version() -> str | None:
    """The version pip recorded for han-logger, or None when han runs from a source tree."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def version_line() -> str:
    """``han-logger 0.1.0``, with a note when the metadata and the imported code disagree."""
    installed = installed_version()
    if installed is None:
        return f"{DISTRIBUTION} {__version__} (not installed: running from a source tree)"
    if installed != __version__:
        return (
            f"{DISTRIBUTION} {installed} (but the imported han package is {__version__}: "
            "a stale or mixed install; reinstall han-logger into an environment of its own)"
        )
    return f"{DISTRIBUTION} {installed}"
