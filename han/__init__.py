"""han: a DLMS/COSEM HAN push-data decoder and logger (the application package)."""

__version__ = "0.1.0"
