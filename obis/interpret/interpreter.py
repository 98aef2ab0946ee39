"""The :class:`Interpreter`: a notification or telegram in, a :class:`~obis.push.Push` out, with its caches."""

from __future__ import annotations

from decoders.xdlms import axdr
from decoders.xdlms.apdu import DataNotification
from decoders.xdlms.dsmr import Telegram

from ..push import Push, SecurityInfo
from . import analysis
from .dsmr import TelegramPlans, telegram_push
from .options import InterpretOptions
from .plans import Plans
from .selection import Selector

DEFAULT_OPTIONS = InterpretOptions()


class Interpreter:
    """Names, scales and collects the registers of a meter's pushes, under one set of options.

    It remembers what lists mean (profile choices, code names, plans), so
    make one per decoder or sink worker and keep it: the caches are its own,
    bounded, and not shared between threads.
    """

    __slots__ = ("options", "_country", "_timezone", "_selector", "_plans", "_telegrams")

    def __init__(self, options: InterpretOptions | None = None) -> None:
        self.options = options if options is not None else DEFAULT_OPTIONS
        self._country, self._timezone = self.options.country, self.options.timezone
        self._selector = Selector(self.options.country, self.options.profiles)
        self._plans = Plans(self._analyse)
        self._telegrams: TelegramPlans | None = None  #: made with the first P1 telegram

    @property
    def plans(self) -> Plans:
        return self._plans

    def _analyse(self, body: axdr.Data, maker: str | None) -> analysis.Analysis:
        return analysis.analyse(body, maker, self.options, self._selector)

    def interpret(
        self, notification: DataNotification, *, security: SecurityInfo | None = None, apdu: bytes = b""
    ) -> Push:
        """The push of one notification.

        A notification whose body matched a template (see
        :class:`decoders.xdlms.axdr.Templates`) is interpreted by a cached plan for
        its list when there is one (see :class:`obis.interpret.plans.Plan`):
        the same result, computing only what the values change.
        """
        maker = security.manufacturer if security else None
        if notification.template is not None:
            plan = self._plans.plan_for(notification, maker)
            if plan is not None:
                return plan.push(notification, security, apdu, self._country, self._timezone)
        a = self._analyse(notification.body, maker)
        return analysis.analysed_push(a, notification, security, apdu, self.options)

    def telegram(self, telegram: Telegram, *, security: SecurityInfo | None = None, apdu: bytes = b"") -> Push:
        """The push of a DSMR text telegram (built from its layout's plan: see :class:`TelegramPlans`)."""
        plans = self._telegrams
        if plans is None:
            plans = self._telegrams = TelegramPlans(self.options)
        return plans.push(telegram, security, apdu)


def interpret(
    notification: DataNotification,
    options: InterpretOptions | None = None,
    *,
    security: SecurityInfo | None = None,
    apdu: bytes = b"",
) -> Push:
    """The push of one notification, analysed afresh (no cache kept): for one-off use.

    A stream of pushes goes through one :class:`Interpreter` instead.
    """
    options = options if options is not None else DEFAULT_OPTIONS
    a = analysis.analyse(notification.body, security.manufacturer if security else None, options,
                         Selector(options.country, options.profiles))  # fmt: skip
    return analysis.analysed_push(a, notification, security, apdu, options)


def interpret_telegram(
    telegram: Telegram,
    options: InterpretOptions | None = None,
    *,
    security: SecurityInfo | None = None,
    apdu: bytes = b"",
) -> Push:
    """The push of a DSMR text telegram."""
    return telegram_push(telegram, options if options is not None else DEFAULT_OPTIONS, security, apdu)
