#!/usr/bin/env python3
"""A fleet of gateways end to end over loopback: several `aifinops gateway` replicas with one
config share limits, budgets and the response cache through a private Redis
(redis_service.py), and write to one ledger through their own spools. Checks the budget
bound across the fleet, a shared rate limit, the shared cache, kill -9 of a replica under
load, Redis down (redis_failure closed and open), a Redis restart (budgets re-seeded from the
ledger), and, when PostgreSQL is available to the tests (pg_service.py), the ledger down for
10 s under load."""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mock_upstream  # noqa: E402
from redis_service import RedisService  # noqa: E402

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")
KEYS = {"team-a": "sk-aif-fleet-team-a", "team-b": "sk-aif-fleet-team-b-rpm",
        "team-c": "sk-aif-fleet-team-c-budget", "team-d": "sk-aif-fleet-team-d-leases"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say this is a test"}]}
BUDGET = Decimal("0.0005")  # team-c, hard, per month
BUDGET_NAME = "team=team-c (month)"
# team-d, hard, per month: room for leases of about three requests of max_tokens 20
# (1/20 of the budget), and exhausted by a few hundred requests.
LEASE_BUDGET = Decimal("0.001")
LEASE_BUDGET_NAME = "team=team-d (month)"


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def request(port, body, key="team-a", headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json", "Authorization": "Bearer " + KEYS[key]}
    h.update(headers or {})
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=h)
        resp = conn.getresponse()
        data = resp.read()
        return resp, data
    finally:
        conn.close()


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.read().decode()
    finally:
        conn.close()


def metric(text, name):
    """The value of an unlabelled metric in Prometheus text, or 0."""
    m = re.search(r"^" + re.escape(name) + r" (\d+)$", text, re.M)
    return int(m.group(1)) if m else 0


def report(ledger, *args):
    p = subprocess.run([AIFINOPS, "report", "--db", ledger, "--format", "json", *args],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def month_start():
    now = datetime.now(timezone.utc)
    return int(datetime(now.year, now.month, 1, tzinfo=timezone.utc).timestamp())


class Fleet:
    """Gateway replicas with one config; each has its own spool directory."""

    def __init__(self, workdir, upstream_port, redis_url, ledger=None, failure="closed", extra="",
                 timeout_ms=300):
        self.dir = workdir
        self.ledger = ledger or str(workdir / "ledger.db")
        self.config = workdir / "gateway.yaml"
        self.config.write_text(f"""
listen: 127.0.0.1:0
ledger: "{self.ledger}"
threads: 1
redis: {redis_url}
redis_failure: {failure}
redis_prefix: "fleet:"
redis_timeout_ms: {timeout_ms}
upstreams:
  - {{name: openai, kind: openai, base_url: "http://127.0.0.1:{upstream_port}/v1", timeout_s: 10}}
routes:
  - {{model: "*", upstream: openai}}
keys:
  - id: team-a-chatbot
    key_sha256: "{sha(KEYS['team-a'])}"
    tags: {{team: team-a, project: chatbot}}
  - id: team-b-rpm
    key_sha256: "{sha(KEYS['team-b'])}"
    tags: {{team: team-b}}
    limits: {{rpm: 4}}
  - id: team-c-tight
    key_sha256: "{sha(KEYS['team-c'])}"
    tags: {{team: team-c}}
  - id: team-d-leases
    key_sha256: "{sha(KEYS['team-d'])}"
    tags: {{team: team-d}}
budgets:
  - {{scope: {{team: team-c}}, period: month, amount_usd: {BUDGET}, enforce: hard}}
  - {{scope: {{team: team-d}}, period: month, amount_usd: {LEASE_BUDGET}, enforce: hard}}
cache: {{enabled: true, ttl_s: 600, max_mb: 16}}
{extra}
""")
        self.procs = {}
        self.ports = {}
        self.logs = {}

    def start(self, n, env=None):
        """Starts replica n (or restarts it on its spool) and waits until it listens."""
        spool = self.dir / f"spool-{n}"
        self.logs[n] = self.dir / f"replica-{n}.log"
        with open(self.logs[n], "a") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([AIFINOPS, "gateway", "--config", str(self.config), "--spool-dir", str(spool)],
                                    stdout=subprocess.PIPE, stderr=log, text=True,
                                    env=dict(os.environ, **(env or {})))
        line = proc.stdout.readline()
        if "listening on" not in line:
            proc.wait(timeout=30)
            raise AssertionError(f"replica {n} did not start: {line}\n" + self.log(n))
        self.procs[n] = proc
        self.ports[n] = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        return self.ports[n]

    def log(self, n):
        return self.logs[n].read_text() if n in self.logs and self.logs[n].exists() else ""

    def stop(self, n, sig=signal.SIGTERM):
        proc = self.procs.get(n)
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=60)
        if proc and proc.stdout:
            proc.stdout.close()

    def stop_all(self, sig=signal.SIGTERM):
        for n in list(self.procs):
            self.stop(n, sig)

    def port_list(self):
        return [self.ports[n] for n in sorted(self.ports)]


class FleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = mock_upstream.start()
        cls.redis = RedisService().start()

    @classmethod
    def tearDownClass(cls):
        cls.upstream.shutdown()
        cls.redis.close()

    def setUp(self):
        self.redis.start()
        self.redis.command("FLUSHALL")
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-fleet-"))
        self.fleet = None
        self.upstream.received.clear()

    def tearDown(self):
        if self.fleet:
            self.fleet.stop_all(signal.SIGKILL)
        if self.redis.proc is not None:
            try:
                os.kill(self.redis.proc.pid, signal.SIGCONT)  # a test that froze it
            except ProcessLookupError:
                pass
        if not os.environ.get("FLEET_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_fleet(self, replicas=3, **kwargs):
        self.fleet = Fleet(self.dir, self.upstream.server_port, self.redis.url, **kwargs)
        for n in range(replicas):
            self.fleet.start(n)
        return self.fleet.port_list()

    def redis_budget_spent(self, name=BUDGET_NAME, field="s"):
        value = self.redis.command("HGET", f"fleet:b:{name}:{month_start()}", field)
        return Decimal(value or 0) / Decimal(10**9)

    def ledger_spend(self, *filters):
        return Decimal(str(report(self.fleet.ledger, *filters)["total"]))

    def wait_for(self, condition, seconds, what, state=None):
        """Polls `condition` until it holds; on time-out, fails naming `what` and, if given,
        the figures `state()` returns, so a failure says how far off it was."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        self.fail(f"{what} within {seconds} s" + (f": {state()}" if state else ""))

    # --- shared state ----------------------------------------------------------------

    def hammer(self, ports, key, each):
        """64 concurrent clients, `each` requests each (max_tokens 20), spread over the
        replicas; returns the statuses."""
        statuses = []
        lock = threading.Lock()

        def client(i):
            for j in range(each):
                status = request(ports[(i + j) % len(ports)], dict(CHAT, max_tokens=20), key=key)[0].status
                with lock:
                    statuses.append(status)

        with ThreadPoolExecutor(64) as pool:
            list(pool.map(client, range(64)))
        return statuses

    def test_hard_budget_holds_across_three_replicas_under_64_concurrent_clients(self):
        ports = self.start_fleet(3)
        # Up to 320 requests: three times the budget if it were not shared.
        statuses = self.hammer(ports, "team-c", 5)
        self.assertIn(429, statuses)
        self.assertIn(200, statuses)
        self.assertEqual(set(statuses), {200, 429}, statuses)
        self.fleet.stop_all()
        self.assertLessEqual(self.ledger_spend("--filter", "team=team-c"), BUDGET)
        self.assertEqual(report(self.fleet.ledger, "--filter", "team=team-c", "--metric", "requests")["total"],
                         statuses.count(200))
        # Every reservation was settled: what Redis counts is what the ledger has.
        self.assertEqual(self.redis_budget_spent(), self.ledger_spend("--filter", "team=team-c"))

    def test_leases_keep_the_hard_budget_across_three_replicas_and_settle_exactly(self):
        ports = self.start_fleet(3)
        statuses = self.hammer(ports, "team-d", 6)
        self.assertIn(429, statuses)
        self.assertEqual(set(statuses), {200, 429}, statuses)
        leased = sum(metric(get(p, "/metrics"), "aifinops_gateway_redis_leased_admissions_total") for p in ports)
        self.assertGreater(leased, 0)  # the replicas admitted from leases
        self.fleet.stop_all()  # settles every lease
        spend = self.ledger_spend("--filter", "team=team-d")
        self.assertLessEqual(spend, LEASE_BUDGET)
        self.assertEqual(report(self.fleet.ledger, "--filter", "team=team-d", "--metric", "requests")["total"],
                         statuses.count(200))
        # Each lease was settled with its requests' real cost, and gave back what it did not use.
        self.assertEqual(self.redis_budget_spent(LEASE_BUDGET_NAME), spend)
        self.assertEqual(self.redis_budget_spent(LEASE_BUDGET_NAME, "r"), 0)
        self.assertEqual(self.redis.command("ZCARD", "fleet:inflight"), 0)

    def test_a_refusal_names_the_budget_and_its_use_across_the_fleet(self):
        ports = self.start_fleet(2)
        for i in range(400):
            resp, data = request(ports[i % 2], dict(CHAT, max_tokens=5), key="team-c")
            if resp.status == 429:
                break
        else:
            self.fail("the budget was never exhausted")
        error = json.loads(data)["error"]
        self.assertEqual(error["code"], "budget_exceeded")
        self.assertIn("Budget exhausted: team=team-c, month:", error["message"])
        self.assertIn("of 0.0005 USD used", error["message"])
        self.assertGreaterEqual(int(resp.getheader("Retry-After")), 1)

    def test_an_rpm_limit_is_shared_by_the_replicas(self):
        ports = self.start_fleet(3)
        statuses = [request(ports[i % 3], CHAT, key="team-b")[0].status for i in range(6)]
        # rpm 4 for the key across the fleet (each replica alone would have allowed all six).
        self.assertEqual(statuses.count(200), 4, statuses)
        self.assertEqual(statuses[4:], [429, 429], statuses)

    def test_the_cache_is_shared_a_repeat_on_another_replica_is_a_hit(self):
        ports = self.start_fleet(2)
        body = dict(CHAT, temperature=0, messages=[{"role": "user", "content": "cache me across the fleet"}])
        first, first_data = request(ports[0], body)
        self.assertEqual(first.status, 200)
        self.assertIsNone(first.getheader("x-aifinops-cache"))
        second, second_data = request(ports[1], body)
        self.assertEqual(second.status, 200)
        self.assertEqual(second.getheader("x-aifinops-cache"), "hit")
        self.assertEqual(second_data, first_data)
        self.assertEqual(len(self.upstream.received), 1)  # the repeat never reached the upstream
        # Another team does not share it.
        third, _ = request(ports[1], body, key="team-b")
        self.assertIsNone(third.getheader("x-aifinops-cache"))

    # --- crashes and outages -----------------------------------------------------------

    def test_kill_9_of_one_replica_under_load_loses_no_served_request(self):
        ports = self.start_fleet(3)
        served = []
        failed = []
        stop = threading.Event()
        lock = threading.Lock()

        def client(i):
            for j in range(400):  # bounded: 16 clients x 400 requests, or 20 s
                if stop.is_set():
                    return
                try:
                    resp, _ = request(ports[(i + j) % 3], CHAT, timeout=10)
                    with lock:
                        (served if resp.status == 200 else failed).append(resp.status)
                except (OSError, http.client.HTTPException):
                    with lock:
                        failed.append("connection")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        self.fleet.stop(1, signal.SIGKILL)
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        self.assertGreater(len(served), 50)
        self.fleet.start(1)  # recovers its spool into the ledger before serving
        self.fleet.stop_all()
        recorded = report(self.fleet.ledger, "--metric", "requests")["total"]
        # Every response a client received completely is in the ledger; at most the requests
        # cut by the kill may be there too (served, but the client did not get the end).
        self.assertGreaterEqual(recorded, len(served))
        self.assertLessEqual(recorded, len(served) + failed.count("connection"))

    def test_redis_down_under_closed_refuses_with_503_and_counts_it(self):
        ports = self.start_fleet(2)
        self.assertEqual(request(ports[0], CHAT)[0].status, 200)
        self.redis.stop()
        # A replica may still admit from a lease it holds, for redis_lease_max_age_ms (1 s) at
        # most; then every request is refused.
        deadline = time.monotonic() + 5
        while True:
            resp, data = request(ports[0], CHAT)
            if resp.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(resp.status, 503, data)
        error = json.loads(data)["error"]
        self.assertEqual(error["code"], "limits_unavailable")
        self.assertIn("Redis", error["message"])
        self.assertEqual(resp.getheader("Retry-After"), "1")
        self.wait_for(lambda: request(ports[1], CHAT)[0].status == 503, 5, "replica 2 refusing with 503")
        metrics = get(ports[0], "/metrics")
        self.assertGreaterEqual(metric(metrics, "aifinops_gateway_redis_unavailable_refusals_total"), 1)
        self.assertGreaterEqual(metric(metrics, "aifinops_gateway_redis_errors_total"), 1)
        self.assertEqual(metric(metrics, "aifinops_gateway_redis_up"), 0)
        self.assertIn('status="503"', metrics)
        # Back (empty): budgets are seeded again and requests are served within seconds.
        self.redis.start()
        self.wait_for(lambda: request(ports[0], CHAT)[0].status == 200, 15, "served again after Redis returned")
        self.wait_for(lambda: request(ports[1], CHAT)[0].status == 200, 15, "replica 2 served again")
        self.fleet.stop_all()
        log = self.fleet.log(0)
        self.assertIn("requests are refused with 503", log)
        self.assertIn("is reachable again", log)
        self.assertLessEqual(log.count("requests are refused with 503"), 3, log)  # rate-limited

    def test_redis_down_under_open_admits_meters_and_reconciles_when_it_returns(self):
        ports = self.start_fleet(2, failure="open")
        small = dict(CHAT, max_tokens=5)
        for i in range(4):
            self.assertEqual(request(ports[i % 2], small, key="team-c")[0].status, 200)
        os.kill(self.redis.proc.pid, signal.SIGSTOP)  # unreachable, its data kept
        try:
            time.sleep(1.2)  # past redis_lease_max_age_ms: the leases held now admit no more
            for i in range(6):
                resp, data = request(ports[i % 2], small, key="team-c")
                self.assertEqual(resp.status, 200, data)
            metrics = get(ports[0], "/metrics") + get(ports[1], "/metrics")
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        opened = sum(int(v) for v in re.findall(r"^aifinops_gateway_redis_fail_open_requests_total (\d+)$",
                                                metrics, re.M))
        self.assertGreaterEqual(opened, 5)  # the first may have taken Redis's time-out, then local
        # Pushed into Redis once it is back: the fleet's count is the ledger's again.
        time.sleep(2.5)  # the spools drain every second
        self.wait_for(lambda: self.redis_budget_spent() == self.ledger_spend("--filter", "team=team-c"), 15,
                      "Redis's budget spend equal to the ledger's",
                      lambda: f"Redis {self.redis_budget_spent()}, ledger {self.ledger_spend('--filter', 'team=team-c')}")
        self.assertEqual(report(self.fleet.ledger, "--filter", "team=team-c", "--metric", "requests")["total"], 10)
        pushes = sum(metric(get(p, "/metrics"), "aifinops_gateway_redis_reconciled_pushes_total") for p in ports)
        self.assertGreaterEqual(pushes, 1)
        self.fleet.stop_all()
        self.assertIn("limited and metered by this gateway alone", self.fleet.log(0) + self.fleet.log(1))

    def test_a_redis_restart_reseeds_budgets_from_the_ledger(self):
        ports = self.start_fleet(2)
        for i in range(400):
            if request(ports[i % 2], dict(CHAT, max_tokens=5), key="team-c")[0].status == 429:
                break
        else:
            self.fail("the budget was never exhausted")
        # Settled in Redis (a thread sends settlements, leases within their max age) and
        # drained into the ledger (every second; slower on a loaded machine).
        in_sync = lambda: (self.redis_budget_spent(field="r") == 0 and
                           self.redis_budget_spent() == self.ledger_spend("--filter", "team=team-c"))
        why = lambda: (f"Redis spent {self.redis_budget_spent()}, reserved {self.redis_budget_spent(field='r')}, "
                       f"ledger {self.ledger_spend('--filter', 'team=team-c')}")
        self.wait_for(in_sync, 15, "nothing reserved and Redis's budget spend equal to the ledger's", why)
        # That 429 may have come while leases still held part of the budget; now that they are
        # settled, use up what they gave back, one request at a time (too slow to lease).
        for _ in range(100):
            time.sleep(0.25)
            if request(ports[0], dict(CHAT, max_tokens=5), key="team-c")[0].status == 429:
                break
        else:
            self.fail("the budget was never exhausted once the leases were settled")
        self.wait_for(in_sync, 15, "nothing reserved and Redis's budget spend equal to the ledger's", why)
        before = self.redis_budget_spent()
        self.assertGreater(before, BUDGET * Decimal("0.9"))
        self.redis.stop()
        self.redis.start()  # empty: no persistence
        # A replica seeds it from the ledger; until then, none admits against an empty budget.
        statuses = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status = request(ports[0], dict(CHAT, max_tokens=5), key="team-c")[0].status
            statuses.append(status)
            if status == 429:
                break
            time.sleep(0.1)
        self.assertEqual(statuses[-1], 429, statuses)
        self.assertNotIn(200, statuses)
        self.assertEqual(self.redis_budget_spent(), before)
        # The other replica finds Redis back at its next probe (backoff up to 2 s): 503 until then.
        self.wait_for(lambda: request(ports[1], dict(CHAT, max_tokens=5), key="team-c")[0].status == 429, 15,
                      "replica 2 refusing by the seeded budget")
        # Keys without a budget are served again.
        self.assertEqual(request(ports[1], CHAT)[0].status, 200)
        self.fleet.stop_all()
        logs = self.fleet.log(0) + self.fleet.log(1)
        self.assertEqual(logs.count("budgets seeded from the ledger"), 2, logs)  # at the start, after the restart

    # --- admission never blocks an I/O thread ---------------------------------------------

    def stall_redis(self, ms):
        """Keeps Redis busy for `ms` (one script looping on TIME) from a thread; returns it.
        Slower than a round trip, well within the fleet's time-out: admissions wait, none fail."""
        script = ("local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] "
                  "while true do local n = redis.call('TIME') "
                  "if n[1] * 1000000 + n[2] - s > tonumber(ARGV[1]) then return 1 end end")
        stall = threading.Thread(target=self.redis.command, args=("EVAL", script, 0, ms * 1000))
        stall.start()
        time.sleep(0.03)  # Redis is in the script from here on
        return stall

    def reservations_left(self):
        """Reservations Redis still holds: in flight, and reserved on team-c's budget."""
        budget = self.redis.command("HGET", f"fleet:b:{BUDGET_NAME}:{month_start()}", "r") or "0"
        return self.redis.command("ZCARD", "fleet:inflight"), int(budget)

    def test_while_an_admission_waits_for_redis_its_io_thread_serves_other_requests(self):
        # One replica, one I/O thread; leases off, so that every admission asks Redis.
        ports = self.start_fleet(1, timeout_ms=3000, extra="redis_lease: false")
        self.assertEqual(request(ports[0], CHAT)[0].status, 200)  # seeded, script loaded
        stall = self.stall_redis(800)
        statuses = []
        waiting = threading.Thread(target=lambda: statuses.append(request(ports[0], CHAT)[0].status))
        waiting.start()
        time.sleep(0.1)  # its admission is waiting for Redis now
        start = time.monotonic()
        health = get(ports[0], "/health")
        took = time.monotonic() - start
        still_waiting = waiting.is_alive()
        waiting.join()
        stall.join()
        self.assertIn("ok", health)
        # Blocked, the thread would have answered only after Redis (some 700 ms later).
        self.assertLess(took, 0.4)
        self.assertTrue(still_waiting, "the admission did not wait for Redis: the test proves nothing")
        self.assertEqual(statuses, [200])

    def test_a_client_that_disconnects_during_its_admission_has_its_reservation_settled(self):
        # Leases off: each of the five admissions is a reservation of its own in Redis.
        ports = self.start_fleet(1, timeout_ms=3000, extra="redis_lease: false")
        small = dict(CHAT, max_tokens=5)
        self.assertEqual(request(ports[0], small, key="team-c")[0].status, 200)
        first_id = int(self.redis.command("GET", "fleet:seq"))
        stall = self.stall_redis(600)
        body = json.dumps(small)
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as s:
                s.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
                           f"Authorization: Bearer {KEYS['team-c']}\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
                time.sleep(0.02)
            # closed while its admission waits for Redis
        stall.join()
        self.wait_for(lambda: int(self.redis.command("GET", "fleet:seq")) == first_id + 5, 10,
                      "the five admissions granted by Redis")
        self.wait_for(lambda: self.reservations_left() == (0, 0), 10, "every reservation settled")
        self.assertEqual(request(ports[0], small, key="team-c")[0].status, 200)

    def test_sigterm_while_admissions_wait_for_redis_answers_them_and_settles_every_reservation(self):
        ports = self.start_fleet(1, timeout_ms=3000)
        small = dict(CHAT, max_tokens=5)
        self.assertEqual(request(ports[0], small, key="team-c")[0].status, 200)
        stall = self.stall_redis(600)
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(lambda: request(ports[0], small, key="team-c")[0].status) for _ in range(4)]
            time.sleep(0.15)  # all four wait for Redis
            self.fleet.procs[0].send_signal(signal.SIGTERM)  # graceful: drains what is in flight
            statuses = [f.result() for f in futures]
        stall.join()
        self.assertEqual(self.fleet.procs[0].wait(timeout=30), 0, self.fleet.log(0))
        self.assertEqual(statuses, [200] * 4)
        self.assertEqual(self.reservations_left(), (0, 0))
        self.assertEqual(report(self.fleet.ledger, "--filter", "team=team-c", "--metric", "requests")["total"], 5)

    def test_two_replicas_cannot_share_a_spool_directory(self):
        self.start_fleet(1)
        p = subprocess.run([AIFINOPS, "gateway", "--config", str(self.fleet.config), "--spool-dir",
                            str(self.dir / "spool-0")], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("another gateway is using this spool directory", p.stderr)

    def test_the_redis_password_comes_from_the_environment_and_is_never_logged(self):
        self.redis.command("CONFIG", "SET", "requirepass", "fleet-s3cret")
        try:
            self.fleet = Fleet(self.dir, self.upstream.server_port, self.redis.url,
                               extra="redis_password_env: FLEET_REDIS_PASSWORD")
            p = subprocess.run([AIFINOPS, "gateway", "--config", str(self.fleet.config)], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 1)
            self.assertIn("redis_password_env: $FLEET_REDIS_PASSWORD is not set", p.stderr)
            port = self.fleet.start(0, env={"FLEET_REDIS_PASSWORD": "fleet-s3cret"})
            self.assertEqual(request(port, CHAT)[0].status, 200)
            self.fleet.stop_all()
            self.assertNotIn("fleet-s3cret", self.fleet.log(0))
        finally:
            subprocess.run(["redis-cli", "-p", str(self.redis.port), "-a", "fleet-s3cret", "--no-auth-warning",
                            "CONFIG", "SET", "requirepass", ""], capture_output=True, timeout=10)


class DeployFilesTest(unittest.TestCase):
    """deploy/: the Kubernetes manifests parse and fit together, the systemd units name the
    flags the gateway has, and the fleet's gateway.yaml starts a gateway."""
    DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

    def manifests(self):
        import yaml
        docs = []
        for path in sorted((self.DEPLOY / "k8s").glob("*.yaml")):
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
        return docs

    def test_the_kubernetes_manifests_parse_and_refer_to_each_other(self):
        docs = self.manifests()
        kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
        for needed in [("Deployment", "aifinops-gateway"), ("Service", "aifinops-gateway"),
                       ("ConfigMap", "aifinops-gateway"), ("Secret", "aifinops-gateway"),
                       ("Deployment", "redis"), ("Service", "redis")]:
            self.assertIn(needed, kinds)
        by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        deployment = by[("Deployment", "aifinops-gateway")]["spec"]
        pod = deployment["template"]["spec"]
        container = pod["containers"][0]
        self.assertEqual(deployment["selector"]["matchLabels"], deployment["template"]["metadata"]["labels"])
        self.assertEqual(by[("Service", "aifinops-gateway")]["spec"]["selector"],
                         deployment["template"]["metadata"]["labels"])
        self.assertIn("--spool-dir", container["args"])
        self.assertEqual(container["envFrom"][0]["secretRef"]["name"], "aifinops-gateway")
        self.assertEqual(pod["volumes"][0]["configMap"]["name"], "aifinops-gateway")
        config = by[("ConfigMap", "aifinops-gateway")]["data"]["gateway.yaml"]
        secret = by[("Secret", "aifinops-gateway")]["stringData"]
        for variable in re.findall(r"(?:api_key_env|redis_password_env): (\w+)", config):
            self.assertIn(variable, secret)
        self.assertIn("PGPASSWORD", secret)
        self.assertEqual(container["ports"][0]["containerPort"],
                         int(re.search(r"listen: 0\.0\.0\.0:(\d+)", config).group(1)))

    def test_the_systemd_units_use_flags_the_gateway_has(self):
        import configparser
        helptext = subprocess.run([AIFINOPS, "gateway", "--help"], capture_output=True, text=True).stdout
        for unit in (self.DEPLOY / "systemd").glob("*.service"):
            parser = configparser.ConfigParser(strict=False, interpolation=None)
            parser.read(unit)
            command = parser["Service"]["ExecStart"].split()
            self.assertEqual(command[0], "/usr/local/bin/aifinops")
            if command[1] == "gateway":
                for flag in (a for a in command if a.startswith("--")):
                    self.assertIn(flag, helptext)

    def test_the_fleet_config_starts_a_gateway(self):
        upstream = mock_upstream.start()
        redis = RedisService().start()
        work = Path(tempfile.mkdtemp(prefix="aifinops-deploy-"))
        try:
            import yaml
            configmap = yaml.safe_load((self.DEPLOY / "k8s" / "configmap.yaml").read_text())
            redis.command("CONFIG", "SET", "requirepass", "deploy-test")  # redis_password_env
            for text in ((self.DEPLOY / "gateway.fleet.yaml").read_text(), configmap["data"]["gateway.yaml"]):
                self.starts(text, work, redis, upstream)
        finally:
            upstream.shutdown()
            redis.close()
            shutil.rmtree(work, ignore_errors=True)

    def starts(self, text, work, redis, upstream):
        """Starts a gateway with `text` as its gateway.yaml and checks it serves."""
        # Only where it runs changes: the ledger, Redis and the upstreams are local here.
        text = re.sub(r"(?m)^ledger: .*$", f"ledger: {work / 'ledger.db'}", text)
        text = re.sub(r"(?m)^redis: .*$", f"redis: {redis.url}", text)
        text = re.sub(r"(?m)^listen: .*$", "listen: 127.0.0.1:0", text)
        text = re.sub(r"https://api\.[a-z]+\.com/v1", f"http://127.0.0.1:{upstream.server_port}/v1", text)
        (work / "gateway.yaml").write_text(text)
        fleet = Fleet.__new__(Fleet)
        fleet.dir, fleet.config, fleet.procs, fleet.ports, fleet.logs = work, work / "gateway.yaml", {}, {}, {}
        port = fleet.start(0, env={"REDIS_PASSWORD": "deploy-test", "OPENAI_API_KEY": "sk-x",
                                   "ANTHROPIC_API_KEY": "sk-ant-x"})
        self.assertEqual(get(port, "/health").strip(), '{"status":"ok"}')
        self.assertIn("aifinops_gateway_redis_up 1", get(port, "/metrics"))
        fleet.stop_all()


class PostgresFleetTest(unittest.TestCase):
    """The ledger in PostgreSQL (pg_service.py), down for 10 s while two replicas serve."""

    @classmethod
    def setUpClass(cls):
        from pg_service import PostgresService  # fails loudly when PostgreSQL is missing
        cls.upstream = mock_upstream.start()
        cls.redis = RedisService().start()
        cls.pg = PostgresService().start()

    @classmethod
    def tearDownClass(cls):
        cls.upstream.shutdown()
        cls.redis.close()
        cls.pg.stop()

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-fleet-pg-"))
        self.fleet = None

    def tearDown(self):
        if self.fleet:
            self.fleet.stop_all(signal.SIGKILL)
        if not os.environ.get("FLEET_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def test_postgres_down_for_10_s_under_load_every_served_request_is_in_the_ledger_once(self):
        url = self.pg.create_database("fleet")
        self.fleet = Fleet(self.dir, self.upstream.server_port, self.redis.url, ledger=url)
        ports = [self.fleet.start(n) for n in range(2)]
        served, failed = [], []
        lock = threading.Lock()
        stop = threading.Event()

        def client(i):
            deadline = time.monotonic() + 40
            for j in range(3000):  # bounded: 8 clients x 3000 requests, or 40 s
                if stop.is_set() or time.monotonic() > deadline:
                    return
                resp, _ = request(ports[(i + j) % 2], CHAT, timeout=10)
                with lock:
                    (served if resp.status == 200 else failed).append(resp.status)
                time.sleep(0.005)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            self.pg.pause()
            down_at = len(served)
            time.sleep(10)
            during = len(served) - down_at
            self.pg.resume()
            time.sleep(2)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        self.assertEqual(failed, [])  # the ledger being down never reaches the clients
        self.assertGreater(during, 100)
        # The spools catch up once PostgreSQL is back (retries pause up to 5 s).
        self.wait_for_ledger(url, len(served), 30)
        self.fleet.stop_all()
        self.assertEqual(report(url, "--metric", "requests")["total"], len(served))
        batches = self.pg.sql("fleet", "SELECT count(*), count(DISTINCT fingerprint) FROM batches "
                                       "WHERE source_kind = 'gateway'")
        total, distinct = batches.split("|")
        self.assertEqual(total, distinct)  # no spool file written twice
        logs = self.fleet.log(0) + self.fleet.log(1)
        self.assertIn("the records stay in", logs)
        self.assertIn("the ledger is writable again", logs)

    def wait_for_ledger(self, url, expected, seconds):
        deadline = time.monotonic() + seconds
        got = None
        while time.monotonic() < deadline:
            got = report(url, "--metric", "requests")["total"]
            if got >= expected:
                return
            time.sleep(0.5)
        self.fail(f"the ledger has {got} of {expected} served requests after {seconds} s")


if __name__ == "__main__":
    unittest.main(verbosity=2)
