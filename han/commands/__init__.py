"""One module per ``han`` sub-command; each defines ``configure(parser)`` and ``run(args) -> int``."""
