"""Small files that are either wholly old or wholly new: temp file + fsync + rename.

Used for the state directory's invocation counters, sink checkpoints and the
status file.  A crash (even kill -9 or a power cut) leaves the previous
version or the new one, never a torn mix.
"""

from __future__ import annotations

import json
import os
from typing import Any


def atomic_write(path: str, data: bytes, *, mode: int = 0o600, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``sync`` fsyncs the file and its directory (durable across a power cut);
    without it the rename is still atomic across a crash of the process.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_json(path: str, obj: Any, *, sync: bool = True) -> None:
    atomic_write(path, (dumps(obj) + "\n").encode("utf-8"), sync=sync)


def dumps(obj: Any) -> str:
    """JSON with one top-level key per line, each value on its line.

    Python's C encoder does no indentation (``indent=`` takes the pure-Python one, about 15x
    slower): a head-end's status lists thousands of meters every few seconds."""
    if not isinstance(obj, dict) or not obj:
        return json.dumps(obj, sort_keys=True)
    lines = (f" {json.dumps(str(k))}: {json.dumps(obj[k], sort_keys=True)}" for k in sorted(obj))
    return "{\n" + ",\n".join(lines) + "\n}"


def read_json(path: str) -> Any | None:
    """The JSON in ``path``, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
