"""The end-to-end job of case (i) done with dlms-cosem: hex lines in, JSON lines out.

Run by ``benchmarks.run`` with the peers interpreter (``--peers-python``), never
imported by han: ``python benchmarks/peer_jsonl.py CAPTURE.hex EK AK > out.jsonl``.
One HDLC frame per line; each push comes out as one JSON object with the
ciphering header fields, the notification's date-time and the body's values
(OBIS codes as dotted text, other octet strings as hex).  It uses only
dlms-cosem's public API, as ``benchmarks/peers.py`` does, and does less than
``han decode`` (no names, units, scalers or profiles).
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from dlms_cosem.dlms_data import DlmsDataParser
    from dlms_cosem.hdlc import frames
    from dlms_cosem.protocol.xdlms import DataNotification, GeneralGlobalCipher

    path, ek, ak = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])

    def plain(item):
        value = getattr(item, "value", item)
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, (bytes, bytearray)):
            if len(value) == 6:
                return ".".join(map(str, value))
            return value.hex()
        return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)

    out = sys.stdout
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            frame = frames.UnnumberedInformationFrame.from_bytes(bytes.fromhex(line))
            ggc = GeneralGlobalCipher.from_bytes(frame.payload[3:])
            dn = DataNotification.from_bytes(ggc.to_plain_apdu(ek, ak))
            body = DlmsDataParser().parse(dn.body)
            record = {
                "system_title": ggc.system_title.hex().upper(),
                "invocation_counter": ggc.invocation_counter,
                "security_control": int(ggc.security_control.to_bytes()[0]),
                "timestamp": dn.date_time.isoformat() if dn.date_time else None,
                "values": plain(body),
            }
            out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
