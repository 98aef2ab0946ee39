"""decoders.frozen.quick_init: the same frozen dataclass, built by a quicker __init__."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field

import pytest

from decoders.frozen import quick_init


@dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str
    c: tuple = ()
    d: bytes = field(default=b"", repr=False, compare=False)


@quick_init
@dataclass(frozen=True, slots=True)
class Quick:
    a: int
    b: str
    c: tuple = ()
    d: bytes = field(default=b"", repr=False, compare=False)


def test_it_builds_what_the_dataclass_init_builds():
    assert inspect.signature(Quick.__init__).parameters.keys() == inspect.signature(Plain.__init__).parameters.keys()
    for args, kw in (((1, "x"), {}), ((1,), {"b": "y", "d": b"z"}), ((), {"a": 2, "b": "q", "c": (1,)})):
        q, p = Quick(*args, **kw), Plain(*args, **kw)
        assert [getattr(q, f.name) for f in dataclasses.fields(Quick)] == [getattr(p, f.name) for f in dataclasses.fields(Plain)]
        assert repr(q).replace("Quick", "Plain") == repr(p)
    with pytest.raises(TypeError):
        Quick(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Quick(1, "x", e=3)  # type: ignore[call-arg]


def test_it_stays_frozen_comparable_hashable_and_copyable():
    q = Quick(1, "x", (2,), b"k")
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.a = 3  # type: ignore[misc]
    assert q == Quick(1, "x", (2,), b"other") and hash(q) == hash(Quick(1, "x", (2,)))
    assert dataclasses.replace(q, a=5) == Quick(5, "x", (2,))
    assert pickle.loads(pickle.dumps(q)) == q and copy.deepcopy(q) == q


def test_classes_that_need_more_keep_their_own_init():
    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            object.__setattr__(self, "a", self.a + 1)

    for cls in (Factory, Post):
        init = cls.__init__
        assert quick_init(cls).__init__ is init
    assert Post(1).a == 2
