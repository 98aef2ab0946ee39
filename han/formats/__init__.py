"""Output views of decoded pushes: one module per format, no decoding logic in them."""

FORMATS = ("table", "json", "jsonl", "csv", "xml")
