"""Link layer: HDLC, M-Bus and raw-APDU framers, GBT block reassembly, CRCs, the receive buffer they share (noise accounting)."""
