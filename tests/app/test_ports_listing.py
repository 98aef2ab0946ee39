"""``han ports``: the ports of this machine (whatever it has), their stable names, and the message when there are none.

No USB adapter is plugged into a test machine, so the listing is checked
against pyserial's own list here, the by-id names against real symlinks in
a temporary directory, and the rendering of a USB adapter from its fields.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from han.commands.ports import render
from han.portlist import PortInfo, _links_in, serial_ports, stable_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_han_ports_lists_what_pyserial_finds_or_says_what_to_check():
    from serial.tools import list_ports

    found = serial_ports()
    r = subprocess.run([sys.executable, "-m", "han", "ports", "--json"], capture_output=True, text=True, cwd=ROOT)
    listed = json.loads(r.stdout)
    assert [p["device"] for p in listed] == [p.device for p in found]
    assert {p["device"] for p in listed} <= {p.device for p in list_ports.comports()}
    if listed:
        assert r.returncode == 0
        text = subprocess.run([sys.executable, "-m", "han", "ports"], capture_output=True, text=True, cwd=ROOT).stdout
        assert all(p["device"] in text for p in listed)
    else:
        assert r.returncode == 1
        assert "no serial ports found. Check:" in r.stderr and "lsusb" in r.stderr and "dialout" not in r.stdout


def test_by_id_names_are_found_from_real_links(tmp_path, pty):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    target = os.path.realpath(pty.link)
    os.symlink(target, by_id / "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0")
    assert stable_name(pty.link, str(by_id)) == str(by_id / "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0")
    assert stable_name("/dev/ttyNONE", str(by_id)) == "/dev/ttyNONE"
    assert _links_in(str(tmp_path / "missing")) == {}


def test_a_usb_adapter_is_shown_with_what_identifies_it():
    port = PortInfo(
        device="/dev/ttyUSB0",
        description="FT232R USB UART",
        vid=0x0403,
        pid=0x6001,
        serial_number="A50285BI",
        manufacturer="FTDI",
        location="1-1.3",
        by_id="/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
        links=("/dev/ttyHAN",),
    )
    assert render([port]) == [
        "/dev/ttyUSB0  ->  use /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
        "  adapter  FT232R USB UART",
        "  maker    FTDI",
        "  USB id   0403:6001 at USB 1-1.3",
        "  serial   A50285BI",
        "  by-id    /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
        "  link     /dev/ttyHAN",
    ]
    d = port.as_dict()
    assert d["usb_id"] == "0403:6001" and d["stable"] == port.by_id and d["links"] == ["/dev/ttyHAN"]
    console = PortInfo(device="/dev/ttyAMA0", description="built-in serial port (UART)", links=("/dev/serial1",), console=True)
    assert render([console])[0] == "/dev/ttyAMA0  ->  use /dev/serial1"
    assert "the system console is on this port" in render([console])[-1]
