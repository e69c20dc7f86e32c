"""The servers the test suite and the benchmarks talk to: PostgreSQL and Redis.

On a development machine of this project's kind both already run (PostgreSQL at
127.0.0.1:5432 with trust auth, Redis at 127.0.0.1:6379). Elsewhere the suite must not assume
them: :func:`postgres_url` and :func:`redis_url` answer with the running server when it answers,
and otherwise start a throwaway one of their own (Debian's ``postgresql`` and ``redis-server``
packages, which ``make test`` installs when missing) in a temporary folder, listening only on a
Unix socket in that folder — no port to race for — and stopped when the process exits.

``GATEWAY_TEST_PG_URL`` and ``GATEWAY_TEST_REDIS_URL`` name other servers explicitly; once a
throwaway server is started, its URL is put there too, so the ``gateway`` processes a test
spawns reach the same server.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.testing.waiting import wait_for_sync

__all__ = [
    "PG_URL_ENV",
    "REDIS_URL_ENV",
    "database_url",
    "postgres_url",
    "redis_url",
]

PG_URL_ENV = "GATEWAY_TEST_PG_URL"
REDIS_URL_ENV = "GATEWAY_TEST_REDIS_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
START_DEADLINE = 60.0


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` pointed at the database ``name`` (host, port, socket folder kept)."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def postgres_url() -> str:
    """The admin URL of a PostgreSQL server that answers, starting a throwaway one if needed."""
    configured = os.environ.get(PG_URL_ENV)
    if configured:
        return configured
    if _postgres_answers(DEFAULT_PG_URL):
        return DEFAULT_PG_URL
    url = _ThrowawayPostgres().start()
    os.environ[PG_URL_ENV] = url
    return url


def redis_url() -> str:
    """The URL of a Redis server that answers, starting a throwaway one if needed."""
    configured = os.environ.get(REDIS_URL_ENV)
    if configured:
        return configured
    if _tcp_answers("127.0.0.1", 6379):
        return DEFAULT_REDIS_URL
    url = _start_redis()
    os.environ[REDIS_URL_ENV] = url
    return url


# -- PostgreSQL ---------------------------------------------------------------------------------
def _postgres_answers(url: str) -> bool:
    """Whether a server answers at ``url`` (a blocking probe: callable inside or outside a loop)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.Error:
        return False


def _pg_bin(program: str) -> str:
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), reverse=True)
    if not candidates:
        raise RuntimeError(
            f"no PostgreSQL server answers at {DEFAULT_PG_URL} and {program} is not installed: "
            "install Debian's postgresql package (make test does) or set "
            f"{PG_URL_ENV} to a server the tests may create databases on"
        )
    return candidates[0]


class _ThrowawayPostgres:
    """initdb + pg_ctl in a temporary folder, on a Unix socket only; removed at exit."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="gateway-test-pg-"))
        self.data = self.folder / "data"
        self.user: str | None = None
        if os.geteuid() == 0:  # initdb refuses to run as root: use the package's own account
            self.user = "postgres"
            pwd.getpwnam(self.user)
            shutil.chown(self.folder, user=self.user)

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> str:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = f"-c listen_addresses='' -k {self.folder} -c fsync=off -c max_connections=200"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"),
                  "-w", "start")
        atexit.register(self.stop)
        self._run(_pg_bin("createdb"), "-h", str(self.folder), "-U", "postgres", "test")
        return f"postgresql://postgres@/test?host={self.folder}"

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except (subprocess.CalledProcessError, RuntimeError):
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


# -- Redis --------------------------------------------------------------------------------------
def _tcp_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _start_redis() -> str:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(server).exists():
        raise RuntimeError(
            f"no Redis answers at {DEFAULT_REDIS_URL} and redis-server is not installed: install "
            f"Debian's redis-server package (make test does) or set {REDIS_URL_ENV}"
        )
    folder = Path(tempfile.mkdtemp(prefix="gateway-test-redis-"))
    sock = folder / "redis.sock"
    process = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with status {process.returncode}")
        return sock.exists()

    wait_for_sync(ready, deadline=START_DEADLINE, what="redis-server's socket")
    return f"unix://{sock}?db=0"
