"""Real servers for the sink tests: Debian ``influxd`` 1.6.7, ``victoria-metrics`` and ``mosquitto``.

Each is started by this module on a free loopback port with a temporary
directory, waited for (readiness check, generous guard), and stopped by its
own PID at the end of the test session.  A test can stop and start a server
in the middle of a run (an outage); its data directory survives.  When a
binary is missing the tests that need it are skipped with a clear message
(CI installs the packages from ``.ci/apt-packages``).

Fixtures (session scope): ``influxd``, ``victoria``, ``mosquitto``.  The soak
(``python -m benchmarks.soak``) starts the same servers with the same classes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

GUARD = 30.0  #: failure guard for a server to come up (never a timing assertion)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, data: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


#: the prefix of every server's data directory (tests/keyleak.py searches these, and only these, for keys)
SERVER_DIR_PREFIX = "han-server-"

class Server:
    binary = ""
    package = ""

    def __init__(self) -> None:
        path = shutil.which(self.binary) or (f"/usr/sbin/{self.binary}" if os.path.exists(f"/usr/sbin/{self.binary}") else None)
        if path is None:
            pytest.skip(f"{self.binary} is not installed (apt-get install {self.package}; CI installs it)")
        self.path = path
        self.dir = tempfile.mkdtemp(prefix=f"{SERVER_DIR_PREFIX}{self.binary}-")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(self.dir, "server.log")

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        assert self.proc is None
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + GUARD
        while True:
            if self.proc.poll() is not None:
                with open(self.log, encoding="utf-8", errors="replace") as fh:
                    tail = fh.read()[-2000:]
                raise RuntimeError(f"{self.binary} exited with {self.proc.returncode}:\n{tail}")
            try:
                if self.ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.binary} not ready after {GUARD} s")
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(GUARD)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Influxd(Server):
    """InfluxDB 1.6.7: v1 ``/write`` and InfluxQL ``/query`` (no /api/v2/write)."""

    binary = "influxd"
    package = "influxdb"

    def __init__(self) -> None:
        super().__init__()
        self.rpc_port = free_port()
        self.conf = os.path.join(self.dir, "influxd.conf")
        d = self.dir
        with open(self.conf, "w", encoding="utf-8") as fh:
            fh.write(
                f'reporting-enabled = false\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
                f'[meta]\n  dir = "{d}/meta"\n'
                f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
                f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
                f"[monitor]\n  store-enabled = false\n"
                f'[logging]\n  level = "warn"\n'
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [self.path, "-config", self.conf]

    def ready(self) -> bool:
        return _http(self.url + "/ping")[0] == 204

    def query(self, q: str, db: str | None = None, epoch: str | None = "s") -> dict:
        params = {"q": q}
        if db:
            params["db"] = db
        if epoch:
            params["epoch"] = epoch
        status, body = _http(self.url + "/query", urllib.parse.urlencode(params).encode())
        data = json.loads(body)
        if status != 200:
            raise AssertionError(f"InfluxQL {q!r}: HTTP {status} {data}")
        return data

    def series(self, q: str, db: str) -> list[dict]:
        """The rows of the first statement as dicts (error -> AssertionError)."""
        result = self.query(q, db)["results"][0]
        if "error" in result:
            raise AssertionError(f"InfluxQL {q!r}: {result['error']}")
        rows = []
        for s in result.get("series", []):
            for v in s["values"]:
                row = dict(zip(s["columns"], v))
                row.update(s.get("tags") or {})
                rows.append(row)
        return rows


class Victoria(Server):
    """VictoriaMetrics: accepts influxdb-client's /api/v2/write; read back with /api/v1/export."""

    binary = "victoria-metrics"
    package = "victoria-metrics"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            self.path,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.dir}/data",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]

    def ready(self) -> bool:
        status, body = _http(self.url + "/health")
        return status == 200 and b"OK" in body

    def export(self, match: str, samples: int = 1) -> list[dict]:
        """Every series matching ``match``, once at least ``samples`` samples are searchable.

        VictoriaMetrics makes fresh rows searchable after a moment (force_flush shortens it);
        this polls with a generous guard and returns what it has then.
        """
        deadline = time.monotonic() + GUARD
        while True:
            _http(self.url + "/internal/force_flush")
            status, body = _http(self.url + "/api/v1/export", urllib.parse.urlencode({"match[]": match}).encode())
            assert status == 200, body
            series = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            if sum(len(s["timestamps"]) for s in series) >= samples or time.monotonic() > deadline:
                return series
            time.sleep(0.1)


class Mosquitto(Server):
    binary = "mosquitto"
    package = "mosquitto"

    def __init__(self) -> None:
        super().__init__()
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w", encoding="utf-8") as fh:
            # persistence: a subscriber's session (and its queued QoS 1 messages) survives a broker restart
            fh.write(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                f"persistence true\npersistence_location {self.dir}/\nautosave_interval 0\n"
                # a subscriber that falls behind (a backlog of thousands after an outage) gets every message
                "max_queued_messages 0\n"
                # as root mosquitto switches to user mosquitto, which cannot write the private temporary
                # directory: the persistence file would silently never be saved
                + ("user root\n" if os.geteuid() == 0 else "")
            )

    def argv(self) -> list[str]:
        return [self.path, "-c", self.conf]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
            s.sendall(bytes.fromhex("100c00044d5154540402003c0000"))  # CONNECT, clean session, empty client id
            return s.recv(4)[:1] == b"\x20"  # CONNACK


def _session_server(cls):
    server = cls()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def influxd():
    yield from _session_server(Influxd)


@pytest.fixture(scope="session")
def victoria():
    yield from _session_server(Victoria)


@pytest.fixture(scope="session")
def mosquitto():
    yield from _session_server(Mosquitto)


def fresh_db(influxd, name: str) -> str:
    """An empty InfluxDB 1.x database ``name`` on the test server (dropped first)."""
    influxd.query(f'DROP DATABASE "{name}"')
    influxd.query(f'CREATE DATABASE "{name}"')
    return name
