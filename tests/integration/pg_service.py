"""A private PostgreSQL server for one test run, on loopback only.

Usage from a test:

    from pg_service import PostgresService
    with PostgresService() as pg:
        url = pg.create_database("parity")   # postgresql://postgres@127.0.0.1:PORT/parity
        pg.sql("parity", "SELECT count(*) FROM batches")   # psql's unaligned output: "3"
        ...                                   # databases are dropped and the server stopped
                                              # when the block ends, also on failure

or around any command (the unit tests of the PostgreSQL ledger run this way):

    python3 pg_service.py run [--env NAME] [--durable] -- COMMAND ARGS...

which starts a server, creates a fresh database, runs COMMAND with its URL in $NAME
(default AIFINOPS_TEST_PG_URL), drops the database, stops the server and exits with
COMMAND's status. --durable keeps fsync and synchronous commit on (for benchmarks).

The cluster is made by `initdb` from /usr/lib/postgresql/<version>/bin into a temporary
directory (as the `postgres` OS user via `runuser` when we are root: the server refuses to
run as root), listens on 127.0.0.1 on a free port with its unix socket in that directory,
trusts loopback connections and is removed at the end. PostgreSQL missing is an error
(scripts/install-deps.sh installs it): these tests never pass by skipping.
"""

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEFAULT_VERSION = "15"
START_SECONDS = 60  # bounded wait for a slow, shared machine
_FAST_SETTINGS = [
    # A throwaway cluster: durability buys nothing, and tests run faster without it.
    "fsync=off", "synchronous_commit=off", "full_page_writes=off",
]


class PostgresNotAvailable(RuntimeError):
    """PostgreSQL's server binaries are not installed."""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresService:
    """One private PostgreSQL cluster. Not thread-safe; one per test process.

    durable=False (the default) turns fsync and synchronous commit off, which is right for
    tests; benchmarks pass durable=True to measure the settings a deployment runs with.
    """

    def __init__(self, version=DEFAULT_VERSION, durable=False, settings=()):
        self.bin_dir = f"/usr/lib/postgresql/{version}/bin"
        for tool in ("initdb", "postgres", "pg_ctl", "pg_isready", "createdb", "dropdb", "psql"):
            if not os.access(os.path.join(self.bin_dir, tool), os.X_OK):
                raise PostgresNotAvailable(
                    f"PostgreSQL {version} is not installed ({self.bin_dir}/{tool} missing); "
                    "run scripts/install-deps.sh (Debian package postgresql)")
        self.durable = durable
        self.settings = list(settings)
        self.host = "127.0.0.1"
        self.port = None
        self.user = "postgres"
        self.dir = None
        self._server = None
        self._databases = []
        self._as_postgres = os.geteuid() == 0

    # --- lifecycle ----------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _run_as_server_user(self, args, **kwargs):
        if self._as_postgres:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, check=True, **kwargs)

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="aifinops-pg-")
        atexit.register(self.stop)
        # A test runner's SIGTERM (a timeout) ends the process through atexit, which stops
        # the server, instead of leaving it running.
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        data = os.path.join(self.dir, "data")
        self._run_as_server_user(
            [os.path.join(self.bin_dir, "initdb"), "-D", data, "-U", self.user, "-E", "UTF8",
             "--locale=C", "--auth-host=trust", "--auth-local=trust", "--no-sync"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        last_error = ""
        for _ in range(3):  # the free port may be taken between choosing and binding
            self.port = _free_port()
            self._launch("wb")
            if self._wait_ready():
                return self
            last_error = self.log_tail()
            self._kill_server()
        raise RuntimeError("PostgreSQL did not start:\n" + last_error)

    def _launch(self, log_mode):
        args = [os.path.join(self.bin_dir, "postgres"), "-D", os.path.join(self.dir, "data"),
                "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.dir}", "-c", "max_connections=200"]
        for setting in ([] if self.durable else _FAST_SETTINGS) + self.settings:
            args += ["-c", setting]
        if self._as_postgres:
            args = ["runuser", "-u", "postgres", "--"] + args
        with open(os.path.join(self.dir, "server.log"), log_mode) as log:
            self._server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def pause(self):
        """Stops the server (pg_ctl stop -m fast: open connections are cut), keeping its data
        and port, as an outage would: resume() brings it back."""
        self._kill_server()

    def resume(self):
        """Starts a paused server again on the same port and data."""
        self._launch("ab")
        if not self._wait_ready():
            raise RuntimeError("PostgreSQL did not come back:\n" + self.log_tail())

    def _wait_ready(self):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                return False
            ready = subprocess.run(
                [os.path.join(self.bin_dir, "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if ready.returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def log_tail(self, lines=40):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def _kill_server(self):
        if self._server is None:
            return
        if self._server.poll() is None:
            data = os.path.join(self.dir, "data")
            try:
                self._run_as_server_user(
                    [os.path.join(self.bin_dir, "pg_ctl"), "stop", "-D", data, "-m", "fast", "-w", "-t", "30"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
            try:
                self._server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._server.send_signal(signal.SIGKILL)
                self._server.wait(timeout=30)
        self._server = None

    def stop(self):
        """Drops the databases made here, stops the server and removes its files."""
        if self.dir is None:
            return
        for name in list(self._databases):
            try:
                self.drop_database(name)
            except subprocess.CalledProcessError:
                pass
        self._kill_server()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # --- databases ----------------------------------------------------------------------
    def url(self, name):
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"

    def create_database(self, name):
        """A new empty database (dropped first when a previous run left it); its URL."""
        self.drop_database(name)
        subprocess.run([os.path.join(self.bin_dir, "createdb"), "-h", self.host, "-p", str(self.port),
                        "-U", self.user, name], check=True)
        self._databases.append(name)
        return self.url(name)

    def sql(self, name, statement):
        """Runs SQL in database `name` as the superuser; returns psql's unaligned output."""
        return subprocess.run([os.path.join(self.bin_dir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", name,
                               "-c", statement], check=True, capture_output=True, text=True).stdout.strip()

    def drop_database(self, name):
        subprocess.run([os.path.join(self.bin_dir, "dropdb"), "-h", self.host, "-p", str(self.port),
                        "-U", self.user, "--if-exists", "--force", name], check=True,
                       stderr=subprocess.DEVNULL)
        if name in self._databases:
            self._databases.remove(name)


def _main(argv):
    if len(argv) < 2 or argv[1] != "run" or "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[2:split], argv[split + 1:]
    env_name = "AIFINOPS_TEST_PG_URL"
    durable = "--durable" in options
    if durable:
        options.remove("--durable")
    if len(options) == 2 and options[0] == "--env":
        env_name = options[1]
    elif options:
        print(f"pg_service.py run: unknown options {options}", file=sys.stderr)
        return 2
    if not command:
        print("pg_service.py run: no command after --", file=sys.stderr)
        return 2
    with PostgresService(durable=durable) as pg:
        env = dict(os.environ)
        env[env_name] = pg.create_database("aifinops_test")
        # The command's own limit is ctest's; this bound only keeps a hung run from lasting.
        return subprocess.run(command, env=env, timeout=3600).returncode


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
