#!/usr/bin/env python3
"""Duplicate requests counted by the real gateway over loopback, with the response cache off
and on: the records are flagged in the ledger, and `aifinops recommend --kind cache` gives
the exact repeat rate and the saving (the cost of the repeats no cache answered)."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import unittest
from contextlib import closing
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mock_upstream  # noqa: E402
from gateway_process import start_gateway  # noqa: E402

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")
KEY = "sk-aif-repeat-test-key"
CHAT = {"model": "gpt-4o-mini", "temperature": 0.7,
        "messages": [{"role": "user", "content": "Summarise ticket 4711"}]}


class Gateway:
    def __init__(self, workdir, upstream_port, cache):
        self.ledger = str(workdir / "ledger.db")
        self.config = workdir / "gateway.yaml"
        self.config.write_text(f"""
listen: 127.0.0.1:0
ledger: {self.ledger}
upstreams:
  - {{name: openai, kind: openai, base_url: "http://127.0.0.1:{upstream_port}/v1", api_key_env: MOCK_OPENAI_KEY}}
routes:
  - {{model: "*", upstream: openai}}
keys:
  - id: support-bot
    key_sha256: "{hashlib.sha256(KEY.encode()).hexdigest()}"
    tags: {{team: support, project: helpdesk}}
cache: {cache}
prices:  # a dollar a token, so that the savings show in whole cents
  gpt-4o-mini: {{input: 1000000, output: 1000000}}
""")
        env = dict(os.environ, MOCK_OPENAI_KEY="sk-provider-openai")
        self.proc, self.port = start_gateway(AIFINOPS, self.config, env)

    def post(self, body=None, raw=None, path="/v1/chat/completions"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        payload = raw if raw is not None else json.dumps(body)
        conn.request("POST", path, body=payload,
                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def stop(self):
        """SIGTERM: the gateway drains its spool into the ledger before it exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc.stdout.close()
        self.proc.stderr.close()


def run(*args):
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"aifinops {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.stdout


def by_extra(ledger):
    """The ledger's records by their Extra column: {extra: (requests, with flag 16, cost)},
    read with SQL (the flag is a column of the records, not a report dimension)."""
    with closing(sqlite3.connect(ledger)) as db:
        rows = db.execute("SELECT a.extra, count(*), sum((r.flags & 16) != 0), sum(r.effective_cost) "
                          "FROM records r JOIN attributes a ON a.id = r.attributes_id GROUP BY 1").fetchall()
    return {extra: (n, flagged, Decimal(cost) / Decimal(10**9)) for extra, n, flagged, cost in rows}


def cache_recommendations(ledger):
    out = json.loads(run("recommend", "--db", ledger, "--kind", "cache", "--format", "json"))
    return {r["id"]: r for r in out["recommendations"]}


def evidence(rec, label):
    return next(e["value"] for e in rec["evidence"] if e["label"] == label)


class GatewayRepeatsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = mock_upstream.start()

    @classmethod
    def tearDownClass(cls):
        cls.upstream.shutdown()

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-repeats-"))
        self.gw = None

    def tearDown(self):
        if self.gw is not None and self.gw.proc.poll() is None:
            self.gw.proc.kill()
            self.gw.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_duplicates_with_the_cache_off_are_flagged_and_priced_exactly(self):
        self.gw = Gateway(self.dir, self.upstream.server_port, "{enabled: false}")
        sent = 0
        for _ in range(3):  # the same request three times: two repeats
            self.assertEqual(self.gw.post(CHAT)[0].status, 200)
            sent += 1
        # The same JSON spelt with other white space is the same request: a third repeat.
        raw = json.dumps(CHAT, indent=2)
        self.assertEqual(self.gw.post(raw=raw)[0].status, 200)
        # Different content, or the same content streamed, is not a repeat.
        self.assertEqual(self.gw.post(dict(CHAT, messages=[{"role": "user", "content": "Other"}]))[0].status, 200)
        self.assertEqual(self.gw.post(dict(CHAT, stream=True))[0].status, 200)
        # An upstream failure is not remembered: the identical retry is not a repeat either.
        for _ in range(2):
            self.assertEqual(self.gw.post(dict(CHAT, model="error-model"))[0].status, 500)
        self.gw.stop()

        rows = by_extra(self.gw.ledger)
        repeated = '{"upstream":"openai","status":"200","cache_hit":"false","repeat":"true"}'
        first = '{"upstream":"openai","status":"200","cache_hit":"false","repeat":"false"}'
        failed = '{"upstream":"openai","status":"500","cache_hit":"false","repeat":"false"}'
        self.assertEqual({extra: row[:2] for extra, row in rows.items()},
                         {repeated: (3, 3), first: (3, 0), failed: (2, 0)})
        repeats_cost = rows[repeated][2]
        self.assertGreater(repeats_cost, 0)

        recs = cache_recommendations(self.gw.ledger)
        self.assertEqual(list(recs), ["cache:support-bot/gpt-4o-mini"])
        rec = recs["cache:support-bot/gpt-4o-mini"]
        self.assertEqual(rec["confidence"], "medium")
        # The window is 30 days, so the monthly saving is the window's: the repeats' cost.
        self.assertEqual(Decimal(rec["monthly_saving"]), repeats_cost.quantize(Decimal("0.01")))
        self.assertEqual(evidence(rec, "requests counted on this key"), "6")
        self.assertEqual(evidence(rec, "repeat rate"), "50.0% (3 repeats in 6 requests in window)")
        self.assertEqual(evidence(rec, "repeats not answered from the cache"), f"3 requests costing ${repeats_cost:,.2f}")
        self.assertIn("Turn on the gateway's response cache", rec["title"])

    def test_with_the_cache_on_hits_are_repeats_and_what_it_missed_remains(self):
        self.gw = Gateway(self.dir, self.upstream.server_port, "{enabled: true, ttl_s: 600}")
        deterministic = dict(CHAT, temperature=0)
        first, _ = self.gw.post(deterministic)
        hit, _ = self.gw.post(deterministic)
        self.assertIsNone(first.getheader("x-aifinops-cache"))
        self.assertEqual(hit.getheader("x-aifinops-cache"), "hit")
        for _ in range(3):  # temperature 0.7: the cache does not answer, the count sees them
            self.assertEqual(self.gw.post(CHAT)[0].status, 200)
        self.gw.stop()

        rows = by_extra(self.gw.ledger)
        missed = '{"upstream":"openai","status":"200","cache_hit":"false","repeat":"true"}'
        self.assertEqual({extra: row[:2] for extra, row in rows.items()}, {
            '{"upstream":"openai","status":"200","cache_hit":"false","repeat":"false"}': (2, 0),
            '{"upstream":"openai","status":"200","cache_hit":"true","repeat":"true"}': (1, 1),
            missed: (2, 2)})
        rec = cache_recommendations(self.gw.ledger)["cache:support-bot/gpt-4o-mini"]
        self.assertEqual(rec["confidence"], "medium")
        self.assertEqual(Decimal(rec["monthly_saving"]), rows[missed][2].quantize(Decimal("0.01")))
        self.assertEqual(evidence(rec, "repeat rate"), "60.0% (3 repeats in 5 requests in window)")
        self.assertEqual(evidence(rec, "cache hits"), "1")
        self.assertIn("x-aifinops-cache: true", rec["action"])

    def test_repeat_window_zero_turns_the_count_off(self):
        self.gw = Gateway(self.dir, self.upstream.server_port, "{enabled: false, repeat_window_s: 0}")
        for _ in range(2):
            self.assertEqual(self.gw.post(CHAT)[0].status, 200)
        self.gw.stop()
        self.assertEqual({extra: row[:2] for extra, row in by_extra(self.gw.ledger).items()},
                         {'{"upstream":"openai","status":"200","cache_hit":"false"}': (2, 0)})
        self.assertEqual(cache_recommendations(self.gw.ledger), {})


if __name__ == "__main__":
    unittest.main(verbosity=2)
