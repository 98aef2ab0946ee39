"""Association layer: ACSE PDUs (AARQ/AARE/RLRQ/RLRE), HLS authentication, ECC, BER.

Only the diagnosis and the security helpers use it: the push path
(:mod:`decoders.stream` and everything it imports) never does, nor ``construct``.
"""
