"""The README's picture of the live page: ``python -m benchmarks.live_page_screenshot docs/img/live-page.png``.

Starts ``han run --http`` on a pty with today's simulated pushes (one a minute since the
meter's midnight, at least three hours), opens the page in headless Chromium at a phone's
width and saves a PNG of the whole page.  ``--url URL`` photographs a page already served
instead (no daemon started); ``--dark`` prefers the dark scheme; ``--capacity RULE``
the capacity-tariff rule shown (default ``no-elvia``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

import pagekit  # noqa: E402 - the tests' browser harness
from livekit import LiveDaemon  # noqa: E402 - the tests' daemon with --http on a pty

READY = "document.body.dataset.ready === '1'"


def shoot(url: str, out: str, width: int, dark: bool) -> None:
    with pagekit.Browser(width=width, height=900) as b:
        if dark:
            b.color_scheme("dark")
        b.goto(url)
        b.wait_for(READY, "the page's figures")
        time.sleep(1.5)  # a push or two over the event stream
        b.screenshot(out)
        outside = b.outside_requests(url.rstrip("/"))
        if outside:
            raise SystemExit(f"the page loaded from outside: {outside}")


def minutes_today(zone: str = "Europe/Copenhagen") -> int:
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo(zone))
    return max(180, now.hour * 60 + now.minute)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.live_page_screenshot", description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the PNG to write (the README's is docs/img/live-page.png)")
    ap.add_argument("--url", help="photograph this page instead of starting han run --http")
    ap.add_argument("--width", type=int, default=412, help="CSS pixels (default 412, a phone)")
    ap.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    ap.add_argument("--capacity", default="no-elvia", metavar="RULE",
                    help="the capacity-tariff rule the page shows (default no-elvia; '' for none)")
    args = ap.parse_args(argv)
    if pagekit.available() is None:
        print("chromium is not installed (Debian package chromium)", file=sys.stderr)
        return 2
    if args.url:
        shoot(args.url, args.out, args.width, args.dark)
    else:
        with tempfile.TemporaryDirectory(prefix="han-page-") as tmp:
            extra = ("--http-capacity", args.capacity) if args.capacity else ()
            with LiveDaemon(Path(tmp), history_minutes=minutes_today(), extra=extra) as han:
                han.start_pushing(1.0)
                shoot(han.url + "/", args.out, args.width, args.dark)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
