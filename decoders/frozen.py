"""A quicker ``__init__`` for the frozen dataclasses made once per push.

A frozen dataclass sets each field in ``__init__`` with
``object.__setattr__(self, name, value)``, which checks its caller and looks
the name up on every call: about 85 ns a field, and a push makes some 60
fields of frames, headers, times and results (~8 % of ``han decode``'s
time).  :func:`quick_init` replaces that ``__init__`` with one of the same
signature and defaults that sets each slot through its own member
descriptor, half the cost.  The class stays a frozen dataclass (its
``__setattr__``, ``__eq__``, ``__hash__``, ``replace()`` and pickling are
untouched); a class whose fields need more than plain values and defaults
(factories, ``init=False``, keyword-only, ``__post_init__``) keeps its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING
from typing import TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Decorate a ``@dataclass(frozen=True, slots=True)`` class (put it above the dataclass decorator)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or any(
        f.default_factory is not MISSING or not f.init or f.kw_only for f in fields
    ):
        return cls
    names: dict[str, object] = {}
    params = []
    for f in fields:
        names[f"_set_{f.name}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        if f.default is MISSING:
            params.append(f.name)
        else:
            names[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    _set_{f.name}(self, {f.name})\n" for f in fields) or "    pass\n"
    made: dict[str, object] = {}
    exec(f"def __init__(self, {', '.join(params)}):\n{body}", names, made)  # noqa: S102 - as dataclasses itself does
    init = made["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    init.__module__ = cls.__module__  # type: ignore[attr-defined]
    init.__doc__ = cls.__init__.__doc__  # type: ignore[misc]
    cls.__init__ = init  # type: ignore[misc]
    return cls
