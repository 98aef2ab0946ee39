"""The serial ports of this machine, with what a user needs to pick the meter's (``han ports``, ``han probe``).

pyserial's ``list_ports`` finds the ports and reads the USB adapter's
description, VID:PID and serial number from sysfs; this module adds the
stable names udev makes for them (``/dev/serial/by-id/usb-FTDI_…``, and
links such as ``/dev/serial0`` or a rule's ``/dev/ttyHAN``), hides the
placeholders the kernel keeps for built-in UARTs that are not fitted, and
marks a port that is the system console.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

BY_ID = "/dev/serial/by-id"


@dataclass(frozen=True)
class PortInfo:
    device: str  #: /dev/ttyUSB0
    description: str | None = None  #: the adapter's product name (USB), else the kind of port
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    location: str | None = None  #: USB bus path, e.g. 1-1.3
    by_id: str | None = None  #: the stable /dev/serial/by-id name, when udev made one
    links: tuple[str, ...] = field(default_factory=tuple)  #: other names in /dev (/dev/serial0, /dev/ttyHAN)
    console: bool = False  #: the kernel's console is on this port (not free for a meter)

    @property
    def usb_id(self) -> str | None:
        """VID:PID as lsusb prints it (``0403:6001``)."""
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def stable(self) -> str:
        """The name to configure: the by-id name (survives re-plugging), else a udev link, else the device."""
        return self.by_id or (self.links[0] if self.links else self.device)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["links"] = list(self.links)
        d["usb_id"] = self.usb_id
        d["stable"] = self.stable
        return d


def serial_ports(by_id_dir: str = BY_ID, dev_dir: str = "/dev") -> list[PortInfo]:
    """The serial ports present, sorted by device name."""
    from serial.tools import list_ports

    by_id = _links_in(by_id_dir)
    ports = []
    seen = set()
    for p in list_ports.comports(include_links=False):
        device = os.path.realpath(p.device)
        if device in seen or not _present(device):
            continue
        seen.add(device)
        usb = p.vid is not None
        description = p.description if p.description not in (None, "", "n/a") else None
        if description is None and not usb:
            description = "built-in serial port (UART)"
        ports.append(
            PortInfo(
                device=p.device,
                description=description,
                vid=p.vid,
                pid=p.pid,
                serial_number=p.serial_number or None,
                manufacturer=p.manufacturer or None,
                location=p.location or None,
                by_id=sorted(by_id.get(device, ()))[0] if by_id.get(device) else None,
                links=tuple(sorted(_dev_links(dev_dir, device))),
                console=_is_console(device),
            )
        )
    return sorted(ports, key=lambda x: x.device)


def stable_name(device: str, by_id_dir: str = BY_ID) -> str:
    """The /dev/serial/by-id name of ``device`` (or of what a link such as /dev/ttyUSB0 names), else ``device``."""
    names = _links_in(by_id_dir).get(os.path.realpath(device))
    return sorted(names)[0] if names else device


def describe(device: str) -> PortInfo | None:
    """What :func:`serial_ports` knows of ``device`` (a name or a link to it), or None."""
    real = os.path.realpath(device)
    for port in serial_ports():
        if os.path.realpath(port.device) == real:
            return port
    return None


def open_error(message: str) -> str:
    """Why a port did not open, in a few words, with what to do (for the one-shot commands)."""
    text = message.lower()
    if "permission denied" in text:
        return "permission denied (add yourself to group dialout: sudo usermod -aG dialout $USER, then log in again)"
    if "no such file" in text:
        return "no such port ('han ports' lists the ports)"
    if "lock" in text or "busy" in text:
        return "in use by another program (han run, ModemManager, a terminal?)"
    return message


def _links_in(directory: str) -> dict[str, list[str]]:
    """target device -> the symlinks in ``directory`` that name it."""
    out: dict[str, list[str]] = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for name in names:
        path = os.path.join(directory, name)
        if os.path.islink(path):
            out.setdefault(os.path.realpath(path), []).append(path)
    return out


def _dev_links(dev_dir: str, device: str) -> list[str]:
    """Symlinks directly in /dev that name ``device`` (udev SYMLINK+= rules, the Pi's serial0/serial1)."""
    return _links_in(dev_dir).get(device, [])


def _sys_attr(device: str, attr: str) -> str | None:
    try:
        with open(f"/sys/class/tty/{os.path.basename(device)}/{attr}", encoding="ascii") as fh:
            return fh.read().strip()
    except (OSError, ValueError):
        return None


def _present(device: str) -> bool:
    """False for the placeholder of a built-in UART that is not fitted (the kernel reports its type as 0)."""
    name = os.path.basename(device)
    if not name.startswith("ttyS"):
        return True
    return _sys_attr(device, "type") != "0"


def _is_console(device: str) -> bool:
    return _sys_attr(device, "console") == "Y"
