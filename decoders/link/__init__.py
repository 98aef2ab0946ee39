"""Link layer: HDLC, M-Bus and raw-APDU framers, GBT block reassembly, CRCs, noise accounting."""
