"""xDLMS layer: A-XDR data, the APDUs meters push, the one table of APDU tags, COSEM date-time, error PDUs, DSMR text."""
