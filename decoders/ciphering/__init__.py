"""Ciphering layer: the security header and control byte, AES-GCM, suites, key wrap, general-ciphering."""
