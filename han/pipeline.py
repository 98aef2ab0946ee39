"""The sans-IO decode pipeline: bytes → frames → plain APDUs → :class:`~obis.push.Push`.

``PushDecoder`` is what ``han decode`` and the daemon drive, and what a
library user wants (``from han import PushDecoder, Keys``)::

    from han import InterpretOptions, Keys, PushDecoder

    dec = PushDecoder(Keys(ek=..., ak=...), options=InterpretOptions(country="NO"))  # or a KeyRing
    for item in dec.feed(chunk):          # any chunking
        if isinstance(item, Push): ...    # else a DecodeError with .offset
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace

from decoders.xdlms import axdr
from decoders.xdlms.apdu import parse_data_notification
from decoders.xdlms.dsmr import Telegram, looks_like_telegram, parse_telegram
from decoders.errors import DecodeError
from decoders.ciphering.control import SecurityControl
from decoders.ciphering.security import Keys
from decoders.stream import DecodedApdu, KeyLookup, StreamDecoder
from obis.interpret import InterpretOptions, Interpreter
from obis.push import Push, SecurityInfo

UNVERIFIED_NOTE = "UNVERIFIED: decrypted without checking the authentication tag (no authentication key given)"


class PushDecoder:
    def __init__(
        self,
        keys: Keys | KeyLookup | None = None,
        *,
        transport: str = "auto",
        system_title: bytes | None = None,
        allow_unauthenticated: bool = False,
        allow_unverified: bool = False,
        options: InterpretOptions | None = None,
        keep_layers: bool = False,
        interpreter: Interpreter | None = None,
    ) -> None:
        """``keys``: one meter's keys, or a key lookup such as a :class:`~han.keyring.KeyRing` (several
        meters: each frame gets the keys of the system title it carries).

        ``options`` (country, profile, time zone, multipliers, CT ratio, profile catalogue) say how
        pushes are interpreted; the decoder keeps one :class:`~obis.interpret.Interpreter` for them.
        ``keep_layers`` keeps every layer that carried a push in ``Push.layers`` (for ``--explain``).
        """
        self.stream: StreamDecoder = _GuardedStream(
            keys,
            transport=transport,
            system_title=system_title,
            allow_unauthenticated=allow_unauthenticated,
            allow_unverified=allow_unverified,
            annotate=keep_layers,
        )
        #: ``interpreter``: one shared by many decoders (a head-end's streams: its caches are kept once)
        self.interpreter = interpreter if interpreter is not None else Interpreter(options)
        self.keep_layers = keep_layers

    @property
    def transport(self) -> str:
        return self.stream.transport

    def feed(self, data: bytes | bytearray | memoryview) -> list[Push | DecodeError]:
        return [self._finish(x) for x in self.stream.feed(data)]

    def flush(self) -> list[Push | DecodeError]:
        return [self._finish(x) for x in self.stream.flush()]

    def end_message(self) -> list[Push | DecodeError]:
        """A message ended (one MQTT message): its unfinished frame is reported now."""
        return [self._finish(x) for x in self.stream.end_message()]

    def _finish(self, item: DecodedApdu | DecodeError) -> Push | DecodeError:
        if isinstance(item, DecodeError):
            return item
        try:
            push = to_push(item, self.interpreter)
        except DecodeError as exc:
            exc.at(item.offset).partial = item
            return exc
        except Exception as exc:  # noqa: BLE001 - a bug on one frame must not end a stream (or the daemon)
            return internal_error(exc, item.offset)
        if self.keep_layers:
            push = replace(push, layers=item)
        return push


class _GuardedStream(StreamDecoder):
    """A stream decoder whose unexpected exceptions become one frame's error: a bug must not end the stream."""

    def decode_apdu(self, apdu: bytes, *, link=None, offset: int = 0, links=(), gbt=None) -> DecodedApdu:
        try:
            return super().decode_apdu(apdu, link=link, offset=offset, links=links, gbt=gbt)
        except DecodeError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug on one frame must not end the stream
            raise internal_error(exc, offset) from None


def internal_error(exc: Exception, offset: int | None = None) -> DecodeError:
    """An unexpected exception while decoding one frame, as a countable error value."""
    if os.environ.get("HAN_DEBUG"):
        raise exc
    err = DecodeError(
        f"internal error on this frame: {type(exc).__name__}: {exc} (a bug: please report it with the frame;"
        " HAN_DEBUG=1 shows the traceback)",
        reason="internal_error",
        offset=offset,
    )
    return err


def to_push(decoded: DecodedApdu, interpreter: Interpreter | None = None) -> Push:
    """The push of a decoded APDU; ``interpreter`` default: a new one with the default options."""
    c = decoded.ciphered
    security = None
    if c is not None:
        security = SecurityInfo(
            system_title=c.system_title,
            invocation_counter=c.invocation_counter,
            security_control=c.security_control,
            verified=decoded.verified,
            tag=c.tag,
        )
    content = decoded.telegram or decoded.notification
    return _push(content, decoded.apdu, security, interpreter if interpreter is not None else Interpreter())


def push_from_apdu(apdu: bytes, security: SecurityInfo | None, interpreter: Interpreter | None = None) -> Push:
    """The push of a plain APDU that already passed its checks (the daemon's journal keeps these).

    ``interpreter`` is the caller's (one per thread: see :func:`thread_interpreter`); default: a new one
    with the default options.  Raises DecodeError.
    """
    if looks_like_telegram(apdu):
        content = parse_telegram(apdu)
    else:
        content = parse_data_notification(apdu, _thread_templates())  # a journal holds the same lists again and again
    return _push(content, apdu, security, interpreter if interpreter is not None else Interpreter())


_local = threading.local()


def _thread_templates() -> axdr.Templates:
    """This thread's template cache for :func:`push_from_apdu` (the daemon's sink threads call it)."""
    templates = getattr(_local, "templates", None)
    if templates is None:
        templates = _local.templates = axdr.Templates()
    return templates


def thread_interpreter(options: InterpretOptions) -> Interpreter:
    """This thread's interpreter for ``options`` (the daemon's sink threads rebuild pushes with it).

    An interpreter's caches are not shared between threads; one per thread and options object.
    """
    held = getattr(_local, "interpreter", None)
    if held is None or held.options is not options:
        held = _local.interpreter = Interpreter(options)
    return held


def _push(content, apdu: bytes, security: SecurityInfo | None, interpreter: Interpreter) -> Push:
    if isinstance(content, Telegram):
        push = interpreter.telegram(content, security=security, apdu=apdu)
    else:
        push = interpreter.interpret(content, security=security, apdu=apdu)
    if security is not None and SecurityControl.of(security.security_control).authenticated and not security.verified:
        push = replace(push, notes=push.notes + (UNVERIFIED_NOTE,))
    return push
