"""``han ports``: the serial ports of this machine, with their USB adapters, to find the meter's."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """examples:
  han ports                     the ports, one block each
  han ports --json              the same as JSON, for scripts
then: han probe --port /dev/serial/by-id/...   finds the meter's serial settings"""

NONE_FOUND = """han ports: no serial ports found. Check:
  - the USB adapter is plugged in: lsusb lists it, and 'dmesg | tail' says
    "... now attached to ttyUSB0" (or ttyACM0); if not, try another cable or socket
  - its driver is loaded (FTDI: ftdi_sio, CH340: ch341, PL2303: pl2303, CP210x: cp210x)
  - on a Raspberry Pi's GPIO pins: enable_uart=1 in /boot/firmware/config.txt and the
    serial console off (raspi-config, Interface Options, Serial Port)
  - a network adapter (ser2net, TCP HAN bridge) is no local port: use --port socket://HOST:PORT"""


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("--json", action="store_true", help="a JSON list, one object per port")


def render(ports) -> list[str]:
    """One block per port: its stable name first, then what identifies the adapter."""
    lines: list[str] = []
    for port in ports:
        lines.append(port.device + ("" if port.stable == port.device else f"  ->  use {port.stable}"))
        details = []
        if port.description:
            details.append(("adapter", port.description))
        if port.manufacturer:
            details.append(("maker", port.manufacturer))
        if port.usb_id:
            details.append(("USB id", port.usb_id + (f" at USB {port.location}" if port.location else "")))
        if port.serial_number:
            details.append(("serial", port.serial_number))
        if port.by_id:
            details.append(("by-id", port.by_id))
        for link in port.links:
            details.append(("link", link))
        if port.console:
            details.append(("note", "the system console is on this port: switch it off before a meter can use it"))
        lines += [f"  {label:8} {value}" for label, value in details]
    return lines


def run(args: argparse.Namespace) -> int:
    from ..portlist import serial_ports

    ports = serial_ports()
    if args.json:
        json.dump([p.as_dict() for p in ports], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif ports:
        for line in render(ports):
            print(line)
    if not ports:
        print(NONE_FOUND, file=sys.stderr)
        return 1
    return 0
