"""The ``han`` command line: a thin dispatcher.

Only the module of the chosen sub-command is imported, so ``han decode`` never
pays for (or needs) the database and MQTT clients of other commands.  Every
error reaches the user as one line; a Python traceback only with ``HAN_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: name -> (module, one-line help).  Add a command by adding a row.
COMMANDS: dict[str, tuple[str, str]] = {
    "decode": ("han.commands.decode", "decode hex dumps or captures of pushed frames"),
    "ports": ("han.commands.ports", "list the serial ports and their USB adapters, to find the meter's"),
    "probe": ("han.commands.probe", "find a meter's serial settings, list and security on a port, and the han run line"),
    "run": ("han.commands.run", "log every push from a serial port (the daemon) to SQLite and other sinks"),
    "bridge": ("han.commands.bridge", "forward raw frames from a serial port to an MQTT broker (at the meter)"),
    "status": ("han.commands.status", "show what the daemon is doing (from its state directory)"),
    "state": ("han.commands.state", "look after the daemon's state: invocation counters"),
    "simulate": ("han.commands.simulate", "a simulated meter writing encrypted pushes to a port, pty, file or stdout"),
    "report": ("han.commands.report", "energy per local hour, day or month from the store, with quality"),
    "demo": ("han.commands.demo", "the whole logger on a simulated meter, no hardware needed"),
    "diagnose": ("han.commands.diagnose", "explain an association log (AARQ/AARE, HLS, glo-/ded- keys, errors)"),
    "security": ("han.commands.security", "security helpers: GMAC, protect/unprotect APDUs, key wrap"),
    "profiles": ("han.commands.profiles", "list the meter profiles, or make your own from a capture (--template)"),
}


class UsageError(Exception):
    """A problem with the command line (exit status 2); a configuration's is han.settings.ConfigError (also 2)."""


class _VersionAction(argparse.Action):
    """``--version``: reads the installed metadata only when asked (start-up stays cheap)."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:  # noqa: A002
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        from .version import version_line

        print(version_line())
        parser.exit()


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="han",
        description="DLMS/COSEM HAN push-data decoder and logger.",
        epilog="Run 'han COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the distribution's name and version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".")
        if name == command:
            importlib.import_module(module).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    try:
        parser = _build_parser(command)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        module = importlib.import_module(COMMANDS[args.command][0])
        return int(module.run(args) or 0)
    except UsageError as exc:
        print(f"han {command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `han decode ... | head`)
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        settings = sys.modules.get("han.settings")  # loaded by whoever can raise its ConfigError
        if settings is not None and isinstance(exc, settings.ConfigError):
            print(f"han {command}: {exc}", file=sys.stderr)
            return 2
        if os.environ.get("HAN_DEBUG"):
            raise
        from decoders.errors import DecodeError

        if isinstance(exc, DecodeError):
            from .advice import advise

            print(f"han: {advise(exc).one_line()}", file=sys.stderr)
            return 1
        print(f"han: internal error: {type(exc).__name__}: {exc} (set HAN_DEBUG=1 for details)", file=sys.stderr)
        return 70


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
