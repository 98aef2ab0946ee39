"""Named OBIS codes (IEC 62056-6-1): each code the profiles and names use, written once.

Codes are given on channel B = 0 (electricity) or the abstract channel;
Kamstrup lists send theirs on channel 1: :func:`channel` moves a code
there (``channel(ACTIVE_POWER_IMPORT, 1)`` is 1-1:1.7.0).
"""

from __future__ import annotations

from dataclasses import replace

from .code import Obis


def channel(code: Obis, b: int) -> Obis:
    """``code`` on channel ``b`` (the B value group)."""
    return replace(code, b=b)


# -- abstract objects (A = 0) --------------------------------------------------------------------
CLOCK = Obis(0, 0, 1, 0, 0)
LOGICAL_DEVICE_NAME = Obis(0, 0, 42, 0, 0)
PUSH_SETUP = Obis(0, 0, 25, 9, 0)
LIMITER_THRESHOLD = Obis(0, 0, 17, 0, 0)
METER_ID = Obis(0, 0, 96, 1, 0)
METER_ID_2 = Obis(0, 0, 96, 1, 1)
METER_ID_3 = Obis(0, 0, 96, 1, 2)
METER_ID_4 = Obis(0, 0, 96, 1, 3)
METER_ID_5 = Obis(0, 0, 96, 1, 4)
METER_TYPE = Obis(0, 0, 96, 1, 7)
DISCONNECTOR_STATE = Obis(0, 0, 96, 3, 10)
LONG_POWER_FAILURES = Obis(0, 0, 96, 7, 9)
POWER_FAILURES = Obis(0, 0, 96, 7, 21)
TEXT_MESSAGE = Obis(0, 0, 96, 13, 0)
MESSAGE_CODE = Obis(0, 0, 96, 13, 1)
CURRENT_TARIFF = Obis(0, 0, 96, 14, 0)
GAS_READING = Obis(0, 1, 24, 2, 1)  #: DSMR: the gas meter on M-Bus channel 1

# -- electricity identification (A = 1, C = 0 or 96) ------------------------------------------------
METER_NUMBER = Obis(1, 0, 0, 0, 1)
METER_ID_GS1 = Obis(1, 0, 0, 0, 5)
FIRMWARE_VERSION = Obis(1, 0, 0, 2, 0)
VERSION_INFORMATION = Obis(1, 0, 0, 2, 8)  #: DSMR 1-3:0.2.8
#: the list version identifier: every maker's list id is output under this code
LIST_ID = Obis(1, 1, 0, 2, 129)
ELECTRICITY_METER_TYPE = Obis(1, 0, 96, 1, 1)
POWER_FAILURE_LOG = Obis(1, 0, 99, 97, 0)

# -- power (D = 7) -------------------------------------------------------------------------------
ACTIVE_POWER_IMPORT = Obis(1, 0, 1, 7, 0)
ACTIVE_POWER_EXPORT = Obis(1, 0, 2, 7, 0)
REACTIVE_POWER_IMPORT = Obis(1, 0, 3, 7, 0)
REACTIVE_POWER_EXPORT = Obis(1, 0, 4, 7, 0)
POWER_FACTOR = Obis(1, 0, 13, 7, 0)
ACTIVE_POWER_IMPORT_L1 = Obis(1, 0, 21, 7, 0)
ACTIVE_POWER_IMPORT_L2 = Obis(1, 0, 41, 7, 0)
ACTIVE_POWER_IMPORT_L3 = Obis(1, 0, 61, 7, 0)
ACTIVE_POWER_EXPORT_L1 = Obis(1, 0, 22, 7, 0)
ACTIVE_POWER_EXPORT_L2 = Obis(1, 0, 42, 7, 0)
ACTIVE_POWER_EXPORT_L3 = Obis(1, 0, 62, 7, 0)
CURRENT_L1 = Obis(1, 0, 31, 7, 0)
CURRENT_L2 = Obis(1, 0, 51, 7, 0)
CURRENT_L3 = Obis(1, 0, 71, 7, 0)
VOLTAGE_L1 = Obis(1, 0, 32, 7, 0)
VOLTAGE_L2 = Obis(1, 0, 52, 7, 0)
VOLTAGE_L3 = Obis(1, 0, 72, 7, 0)
POWER_FACTOR_L1 = Obis(1, 0, 33, 7, 0)
POWER_FACTOR_L2 = Obis(1, 0, 53, 7, 0)
POWER_FACTOR_L3 = Obis(1, 0, 73, 7, 0)

# -- energy (D = 8; E = tariff) --------------------------------------------------------------------
ACTIVE_ENERGY_IMPORT = Obis(1, 0, 1, 8, 0)
ACTIVE_ENERGY_IMPORT_T1 = Obis(1, 0, 1, 8, 1)
ACTIVE_ENERGY_IMPORT_T2 = Obis(1, 0, 1, 8, 2)
ACTIVE_ENERGY_EXPORT = Obis(1, 0, 2, 8, 0)
ACTIVE_ENERGY_EXPORT_T1 = Obis(1, 0, 2, 8, 1)
ACTIVE_ENERGY_EXPORT_T2 = Obis(1, 0, 2, 8, 2)
REACTIVE_ENERGY_IMPORT = Obis(1, 0, 3, 8, 0)
REACTIVE_ENERGY_EXPORT = Obis(1, 0, 4, 8, 0)
ACTIVE_ENERGY_IMPORT_L1 = Obis(1, 0, 21, 8, 0)
ACTIVE_ENERGY_IMPORT_L2 = Obis(1, 0, 41, 8, 0)
ACTIVE_ENERGY_IMPORT_L3 = Obis(1, 0, 61, 8, 0)
ACTIVE_ENERGY_EXPORT_L1 = Obis(1, 0, 22, 8, 0)
ACTIVE_ENERGY_EXPORT_L2 = Obis(1, 0, 42, 8, 0)
ACTIVE_ENERGY_EXPORT_L3 = Obis(1, 0, 62, 8, 0)
