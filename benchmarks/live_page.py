"""Load time of the live page: ``python -m benchmarks.live_page [--loads N]``.

``han run --http`` on a pty with 2½ hours of simulated pushes (tests/livekit.py), headless
Chromium (tests/pagekit.py) opening the page ``--loads`` times with its cache disabled.
For each load: the time from the navigation's start to the page's first complete figures
(``window.hanReadyMs``: power, phases, last hour, today, the month, capacity drawn) and to
the load event.  Also the page's weight (every file under han/web/static).  Printed, never
asserted; the target is 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

import pagekit  # noqa: E402 - the tests' browser harness
from livekit import LiveDaemon  # noqa: E402 - the tests' daemon with --http on a pty

STATIC = ROOT / "han" / "web" / "static"
READY = "document.body.dataset.ready === '1'"


def weight() -> dict:
    files = {p.name: p.stat().st_size for p in sorted(STATIC.iterdir()) if p.is_file()}
    return {"files": files, "total_kb": round(sum(files.values()) / 1024, 1)}


def measure(loads: int = 10) -> dict:
    with tempfile.TemporaryDirectory(prefix="han-page-") as tmp:
        with LiveDaemon(Path(tmp)) as han, pagekit.Browser(width=412, height=915) as b:
            han.start_pushing(1.0)  # a live meter, so the port never goes quiet
            b.goto(han.url + "/")  # warm-up: the daemon's first store reads
            b.wait_for(READY, "the first load")
            ready, loaded = [], []
            for _ in range(loads):
                b.goto(han.url + "/")
                b.wait_for(READY, "the page's figures")
                ready.append(b.eval("window.hanReadyMs"))
                loaded.append(b.eval("performance.getEntriesByType('navigation')[0].loadEventEnd"))
            outside = b.outside_requests(han.url)
    ready.sort()
    return {
        "loads": loads,
        "ready_ms_median": round(statistics.median(ready), 1),
        "ready_ms_max": round(ready[-1], 1),
        "load_event_ms_median": round(statistics.median(loaded), 1),
        "outside_requests": len(outside),
        "weight": weight(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.live_page", description=__doc__.splitlines()[0])
    ap.add_argument("--loads", type=int, default=10)
    args = ap.parse_args(argv)
    if pagekit.available() is None:
        print("chromium is not installed (Debian package chromium)", file=sys.stderr)
        return 2
    print(json.dumps(measure(args.loads), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
