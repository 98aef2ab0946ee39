"""han: a DLMS/COSEM HAN push-data decoder and logger.

The library API (see the README, "Using han from Python")::

    from han import DecodeError, InterpretOptions, Keys, Push, PushDecoder

    decoder = PushDecoder(Keys(ek=..., ak=...), options=InterpretOptions(country="NO"))
    for item in decoder.feed(chunk) + decoder.flush():
        if isinstance(item, Push): ...          # else a DecodeError value, with .offset

The names are imported when first used, so ``import han`` (and the command
line's start-up) stays cheap.
"""

from __future__ import annotations

import importlib
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: `import han` stays cheap

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "PushDecoder": "han.pipeline",
    "push_from_apdu": "han.pipeline",
    "Keys": "decoders.ciphering.security",
    "KeyRing": "han.keyring",
    "key_id": "han.keyring",
    "Push": "obis.push",
    "Register": "obis.push",
    "SecurityInfo": "obis.push",
    "InterpretOptions": "obis.interpret",
    "Interpreter": "obis.interpret",
    "Obis": "obis.code",
    "Profile": "obis.profiles",
    "profile_by_name": "obis.profiles",
    "catalogue": "obis.profiles",
    "load_profiles": "obis.profile_file",
    "DecodeError": "decoders.errors",
    "NotAFrame": "decoders.errors",
    "SecurityError": "decoders.errors",
    "KeyMissing": "decoders.errors",
    "TRANSPORTS": "decoders.stream",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'han' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from decoders.errors import DecodeError, KeyMissing, NotAFrame, SecurityError
    from decoders.ciphering.security import Keys
    from decoders.stream import TRANSPORTS
    from obis.code import Obis
    from obis.interpret import InterpretOptions, Interpreter
    from obis.profile_file import load_profiles
    from obis.profiles import Profile, catalogue, profile_by_name
    from obis.push import Push, Register, SecurityInfo

    from .keyring import KeyRing, key_id
    from .pipeline import PushDecoder, push_from_apdu
