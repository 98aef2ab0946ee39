"""Turn a decoded DataNotification (or DSMR telegram) into a :class:`~obis.push.Push`.

One job per module:

* :mod:`.extract` - the list shapes: entries, list id and shape of a body;
* :mod:`.values` - value conversion: plain and raw values, scalers, CT factors, times;
* :mod:`.selection` - which profile a list is, and the names of its codes;
* :mod:`.analysis` - what a body means apart from its values (one recipe per register);
* :mod:`.plans` - analyses cached per list, applied to each push's values;
* :mod:`.dsmr` - the DSMR text telegram mapping;
* :mod:`.options` and :mod:`.interpreter` - :class:`InterpretOptions` and :class:`Interpreter`.

A profile (chosen by list id, shape, registers present, manufacturer and
country, or forced) supplies names, units and scalers; a scaler on the wire
always wins.  Nothing is dropped and nothing is guessed: a register no
profile knows comes out with its OBIS code, a generic name when the code is
a common one, and its raw value; a value with no OBIS code and no layout
keeps its position.  The push then says which profile (if any) matched.
"""

from __future__ import annotations

from .analysis import INVALID_CLOCK_NOTE
from .extract import SHAPES, Entry, Extracted, extract, extract_entries
from .interpreter import Interpreter, interpret, interpret_telegram
from .options import InterpretOptions
from .values import ct_factor, plain_value, raw_value, scale

__all__ = [
    "INVALID_CLOCK_NOTE",
    "SHAPES",
    "Entry",
    "Extracted",
    "InterpretOptions",
    "Interpreter",
    "ct_factor",
    "extract",
    "extract_entries",
    "interpret",
    "interpret_telegram",
    "plain_value",
    "raw_value",
    "scale",
]
