#!/usr/bin/env python3
"""A private Redis for the tests: `redis-server` (Debian package) on 127.0.0.1 on a free
port, with no persistence, its files in a temporary directory, stopped at exit. It can be
stopped and started again on the same port (Redis down, Redis restarted with no data).
A missing redis-server fails loudly: these tests are never skipped."""
import atexit
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisService:
    def __init__(self):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server; "
                               "scripts/install-deps.sh installs it)")
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-redis-"))
        self.port = free_port()
        self.proc = None
        atexit.register(self.close)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        """Starts redis-server (empty: nothing is saved between runs) and waits for PING."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "yes",
             "--maxmemory-policy", "noeviction", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited at start: " + self.proc.stderr.read().decode()
                                   + self.log())
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer PING within 10 s: " + self.log())

    def stop(self):
        """Stops it at once (SIGKILL: nothing is saved, as in a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def command(self, *args):
        """One command over RESP; returns str, int, None or a list."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            payload = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                payload += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(payload)
            reader = s.makefile("rb")
            return _read_reply(reader)


def _read_reply(reader):
    line = reader.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError("redis error: " + rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = reader.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(reader) for _ in range(n)]
    raise OSError("unexpected reply from redis: %r" % line)


if __name__ == "__main__":
    service = RedisService().start()
    print(service.url, service.command("PING"))
    service.close()
