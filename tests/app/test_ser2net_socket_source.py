"""``socket://HOST:PORT`` (ser2net's raw TCP port) as a source: read, lost, reconnected with back-off.

A real TCP server on loopback plays ser2net; a second source (a pty) runs beside it in the same
daemon, each its own stream with its own framer.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta

from daemonkit import KEYS, START, Pty, accepted, run_config, start, stop, wait_until

from han.simulator import KamstrupSimulator

from han.sources.spec import parse_source


async def serve(frames: list[bytes], port: int = 0):
    """A ser2net stand-in: sends ``frames`` to the first client and keeps the line open until it closes."""
    clients: list = []

    async def client(reader, writer):
        clients.append(writer)
        if len(clients) == 1:
            for f in frames:
                writer.write(f)
                await writer.drain()
                await asyncio.sleep(0.01)
        await reader.read()  # until the daemon or the server hangs up

    server = await asyncio.start_server(client, "127.0.0.1", port)
    server.clients = clients
    return server


async def hang_up(server) -> None:
    for w in server.clients:
        w.close()
    server.close()
    await server.wait_closed()


def test_a_socket_source_reconnects_and_reads_beside_a_pty(tmp_path):
    asyncio.run(_main(tmp_path))


async def _main(tmp_path) -> None:
    net = KamstrupSimulator(KEYS, meter_number=27182818, seed=21, counter_start=1)
    tty = KamstrupSimulator(KEYS, meter_number=31415926, seed=22, counter_start=1)
    batch = lambda sim, n: [sim.frame(START + timedelta(seconds=10 * sim.pushes)) for _ in range(n)]  # noqa: E731
    server = await serve(batch(net, 10))
    port = server.sockets[0].getsockname()[1]
    pty = Pty(str(tmp_path / "ttyHAN"))
    specs = (parse_source(f"socket://127.0.0.1:{port}"), parse_source(pty.link))
    cfg = run_config(tmp_path, pty.link, sources=specs)
    try:
        d, task = await start(cfg)
        for f in batch(tty, 5):
            await pty.write(f)
        await wait_until(lambda: accepted(d) >= 15, "the first ten from the socket and five from the pty")
        await hang_up(server)
        server = await serve(batch(net, 10), port)  # ser2net back on the same port
        await wait_until(lambda: accepted(d) >= 25, "the socket source to reconnect")
        net_source = d.sources[0]
        assert net_source.kind == "socket" and net_source.reconnects >= 1
        assert {s for s in d.ingest.streams} >= {f"socket://127.0.0.1:{port}", pty.link}
        assert await stop(d, task) == 0
    finally:
        await hang_up(server)
        pty.close()
    rows = [json.loads(line) for line in (tmp_path / "pushes.jsonl").read_text().splitlines()]
    seen = Counter((r["meter"], r["security"]["invocation_counter"]) for r in rows)
    assert len(rows) == 25 and max(seen.values()) == 1
    assert Counter(r["meter_id"] for r in rows) == {str(net.meter_number): 20, str(tty.meter_number): 5}
