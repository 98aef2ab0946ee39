"""Link layer: HDLC, M-Bus and raw-APDU framers (sharing one receive buffer), GBT block reassembly, CRCs."""
