#!/usr/bin/env python3
"""The gateway end to end over loopback: a real `aifinops gateway` process between a real
HTTP client and a mock upstream that speaks the providers' wire formats. Checks what the
client receives, what the upstream receives, the errors, the limits, and that every served
request reaches the ledger, also across kill -9."""
import concurrent.futures
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mock_upstream  # noqa: E402
from gateway_process import start_gateway  # noqa: E402

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")
KEYS = {"team-a": "sk-aif-team-a-test-key", "team-b": "sk-aif-team-b-slow-key",
        "team-c": "sk-aif-team-c-budget-key", "lowprio": "sk-aif-low-priority-key",
        "team-d": "sk-aif-team-d-soft-budget"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say this is a test"}]}


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(directory):
    """A self-signed certificate for localhost/127.0.0.1, as one PEM with its key."""
    pem = directory / "localhost.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
                   check=True, capture_output=True)
    pem.write_bytes((directory / "cert.pem").read_bytes() + (directory / "key.pem").read_bytes())
    return pem


class Gateway:
    def __init__(self, workdir, upstream_port, tls_port=None, ca_file=None, idle_port=None,
                 webhook_port=None):
        self.dir = workdir
        self.ledger = str(workdir / "ledger.db")
        self.config = workdir / "gateway.yaml"
        dead = free_port()
        self.config.write_text(f"""
listen: 127.0.0.1:0
ledger: {self.ledger}
max_body_bytes: 65536
webhook: "http://127.0.0.1:{webhook_port}/services/T000/B000/secret"
upstreams:
  - {{name: openai, kind: openai, base_url: "http://127.0.0.1:{upstream_port}/v1", api_key_env: MOCK_OPENAI_KEY, timeout_s: 1}}
  - {{name: azure, kind: azure-openai, base_url: "http://127.0.0.1:{upstream_port}", api_key_env: MOCK_AZURE_KEY, api_version: "2024-10-21"}}
  - {{name: anthropic, kind: anthropic, base_url: "http://127.0.0.1:{upstream_port}/v1", api_key_env: MOCK_ANTHROPIC_KEY}}
  - {{name: dead, kind: openai, base_url: "http://127.0.0.1:{dead}/v1"}}
  - {{name: secure, kind: openai, base_url: "https://localhost:{tls_port}/v1", ca_file: "{ca_file}"}}
  - {{name: untrusted, kind: openai, base_url: "https://localhost:{tls_port}/v1"}}
  - {{name: closing, kind: openai, base_url: "http://127.0.0.1:{idle_port}/v1"}}
routes:
  - {{model: tls-model, upstream: secure}}
  - {{model: untrusted-model, upstream: untrusted}}
  - {{model: idle-model, upstream: closing}}
  - {{model: claude-sonnet-4-5, upstream: anthropic}}
  - {{model: my-gpt-deployment, upstream: azure}}
  - {{model: dead-model, upstream: dead}}
  - {{model: "*", upstream: openai}}
keys:
  - id: team-a-chatbot
    key_sha256: "{sha(KEYS['team-a'])}"
    tags: {{team: team-a, project: chatbot, environment: production, criticality: high}}
    models: ["*"]
  - id: team-b-batch
    key_sha256: "{sha(KEYS['team-b'])}"
    tags: {{team: team-b, project: batch}}
    models: [gpt-4o-mini]
    limits: {{rpm: 2}}
  - id: team-c-tight
    key_sha256: "{sha(KEYS['team-c'])}"
    tags: {{team: team-c}}
  - id: team-c-experiments
    key_sha256: "{sha(KEYS['lowprio'])}"
    tags: {{team: team-c, purpose: experimentation}}
  - id: team-d-soft
    key_sha256: "{sha(KEYS['team-d'])}"
    tags: {{team: team-d}}
budgets:
  - {{scope: {{team: team-c}}, period: month, amount_usd: 0.0005, enforce: hard}}
  - {{scope: {{team: team-d}}, period: month, amount_usd: 0.00001, enforce: soft}}
cache: {{enabled: true, ttl_s: 600, max_mb: 16}}
""")
        self.proc = None
        self.port = None

    def start(self):
        env = dict(os.environ, MOCK_OPENAI_KEY="sk-provider-openai", MOCK_AZURE_KEY="azure-secret",
                   MOCK_ANTHROPIC_KEY="sk-ant-provider")
        self.proc, self.port = start_gateway(AIFINOPS, self.config, env)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def request(self, method, path, body=None, key="team-a", headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = "Bearer " + KEYS.get(key, key)
        h.update(headers or {})
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn.request(method, path, body=payload, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data


class WebhookReceiver(ThreadingHTTPServer):
    """A Slack-style incoming webhook on loopback that keeps what it is sent."""
    daemon_threads = True

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def report(ledger, *args):
    p = subprocess.run([AIFINOPS, "report", "--db", ledger, "--format", "json", *args],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


class GatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = mock_upstream.start()
        cls.certs = Path(tempfile.mkdtemp(prefix="aifinops-certs-"))
        cls.pem = make_certificate(cls.certs)
        cls.tls_upstream = mock_upstream.start(certfile=str(cls.pem))
        cls.idle_upstream = mock_upstream.start(idle_timeout=0.3)
        cls.webhook = WebhookReceiver()

    @classmethod
    def tearDownClass(cls):
        cls.upstream.shutdown()
        cls.tls_upstream.shutdown()
        cls.idle_upstream.shutdown()
        cls.webhook.shutdown()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-gw-"))
        self.gw = Gateway(self.dir, self.upstream.server_port, self.tls_upstream.server_port,
                          self.certs / "cert.pem", self.idle_upstream.server_port,
                          self.webhook.server_port)
        self.gw.start()
        self.upstream.received.clear()
        self.webhook.received.clear()

    def tearDown(self):
        self.gw.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_non_streaming_openai_passes_the_body_and_meters_usage(self):
        resp, data = self.gw.request("POST", "/v1/chat/completions", CHAT)
        self.assertEqual(resp.status, 200)
        self.assertEqual(data, mock_upstream.OPENAI_JSON)
        sent = self.upstream.received[-1]
        self.assertEqual(sent["headers"]["Authorization"], "Bearer sk-provider-openai")  # never the virtual key
        self.assertEqual(sent["body"], CHAT)
        self.gw.stop()
        usage = json.loads(mock_upstream.OPENAI_JSON)["usage"]
        tokens = report(self.gw.ledger, "--by", "team,model", "--metric", "tokens")
        rows = [{k: row[k] for k in ("team", "model", "tokens")} for row in tokens["rows"]]
        self.assertEqual(rows, [{"team": "team-a", "model": "gpt-4o-mini",
                                 "tokens": usage["prompt_tokens"] + usage["completion_tokens"]}])
        cost = report(self.gw.ledger, "--by", "team,model", "--metric", "effective_cost")
        self.assertGreater(Decimal(str(cost["total"])), 0)

    def test_streaming_without_include_usage_is_metered_and_the_client_sees_no_usage_chunk(self):
        resp, data = self.gw.request("POST", "/v1/chat/completions", dict(CHAT, stream=True))
        self.assertEqual(resp.status, 200)
        self.assertEqual(data, mock_upstream.without_usage_chunk(mock_upstream.OPENAI_SSE))
        self.assertEqual(self.upstream.received[-1]["body"]["stream_options"], {"include_usage": True})
        resp, data = self.gw.request("POST", "/v1/chat/completions",
                                     dict(CHAT, stream=True, stream_options={"include_usage": True}))
        self.assertEqual(data, b"".join(mock_upstream.sse_events(mock_upstream.OPENAI_SSE)))
        self.gw.stop()
        self.assertEqual(report(self.gw.ledger, "--metric", "tokens")["total"], 2 * 17)

    def test_anthropic_messages_plain_and_streaming(self):
        body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
        resp, data = self.gw.request("POST", "/v1/messages", body, headers={"anthropic-version": "2023-06-01"})
        self.assertEqual(resp.status, 200, data)
        self.assertEqual(data, mock_upstream.ANTHROPIC_JSON)
        self.assertEqual(self.upstream.received[-1]["headers"]["x-api-key"], "sk-ant-provider")
        resp, data = self.gw.request("POST", "/v1/messages", dict(body, stream=True))
        self.assertEqual(data, b"".join(mock_upstream.sse_events(mock_upstream.ANTHROPIC_SSE)))
        self.gw.stop()
        rows = report(self.gw.ledger, "--by", "model", "--metric", "output_tokens")["rows"]
        self.assertEqual(rows[0]["model"], "claude-sonnet-4-5")
        self.assertGreater(rows[0]["output_tokens"], 0)

    def test_azure_deployment_route(self):
        resp, data = self.gw.request("POST", "/openai/deployments/my-gpt-deployment/chat/completions?api-version=2024-10-21",
                                     {"messages": CHAT["messages"]}, key=None,
                                     headers={"api-key": KEYS["team-a"]})
        self.assertEqual(resp.status, 200, data)
        sent = self.upstream.received[-1]
        self.assertEqual(sent["path"], "/openai/deployments/my-gpt-deployment/chat/completions?api-version=2024-10-21")
        self.assertEqual(sent["headers"]["api-key"], "azure-secret")

    def test_https_upstreams_are_verified(self):
        resp, data = self.gw.request("POST", "/v1/chat/completions", dict(CHAT, model="tls-model"))
        self.assertEqual(resp.status, 200, data)
        self.assertEqual(data, mock_upstream.OPENAI_JSON)
        resp, data = self.gw.request("POST", "/v1/chat/completions", dict(CHAT, model="untrusted-model"))
        self.assertEqual(resp.status, 502)
        self.assertIn("TLS handshake", json.loads(data)["error"]["message"])

    def test_each_error_status(self):
        cases = [
            (dict(key=None), 401, "Missing API key"),
            (dict(key="sk-aif-unknown"), 401, "Invalid API key"),
            (dict(body={"model": "gpt-4o", "messages": []}, key="team-b"), 403, "may not use model gpt-4o"),
            (dict(raw="{not json"), 400, "not valid JSON"),
            (dict(body={"messages": []}), 400, "model"),
            (dict(path="/v1/unknown"), 404, "Unknown route"),
            (dict(raw=json.dumps(dict(CHAT, pad="x" * 70000))), 413, "max_body_bytes"),
            (dict(body=dict(CHAT, model="dead-model")), 502, "unreachable"),
            (dict(body=dict(CHAT, model="slow-model")), 504, "did not answer"),
        ]
        for kwargs, status, text in cases:
            with self.subTest(status=status, text=text):
                path = kwargs.pop("path", "/v1/chat/completions")
                body = kwargs.pop("body", CHAT)
                resp, data = self.gw.request("POST", path, body, **kwargs)
                self.assertEqual(resp.status, status, data)
                error = json.loads(data)["error"]
                self.assertIn(text, error["message"])

    def test_an_upstream_error_reaches_the_client_as_the_upstream_sent_it(self):
        # The gateway keeps only the status and Content-Type of an upstream's head: an error
        # from the provider must still arrive with its own status, type and body.
        resp, data = self.gw.request("POST", "/v1/chat/completions", dict(CHAT, model="error-model"))
        self.assertEqual(resp.status, 500)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        self.assertEqual(data, b'{"error":{"message":"upstream exploded","type":"server_error"}}')
        resp, data = self.gw.request("POST", "/v1/chat/completions", dict(CHAT, model="overloaded-model"))
        self.assertEqual(resp.status, 503)
        self.assertEqual(resp.getheader("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(data, b"upstream overloaded, try later\n")

    def test_keys_on_one_connection_are_each_checked_and_attributed(self):
        # The gateway remembers the last key each thread authenticated: a key that differs
        # from it in one character, or another valid key, must not pass as that key.
        forged = KEYS["team-a"][:-1] + ("x" if KEYS["team-a"][-1] != "x" else "y")
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=30)
        statuses = []
        for key in (KEYS["team-a"], forged, KEYS["team-b"], KEYS["team-a"], forged):
            conn.request("POST", "/v1/chat/completions", body=json.dumps(CHAT),
                         headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
            resp = conn.getresponse()
            data = resp.read()
            statuses.append(resp.status)
            if resp.status == 401:
                self.assertIn("Invalid API key", json.loads(data)["error"]["message"])
        conn.close()
        self.assertEqual(statuses, [200, 401, 200, 200, 401])
        self.gw.stop()
        rows = report(self.gw.ledger, "--by", "team", "--metric", "requests")["rows"]
        self.assertEqual({row["team"]: row["requests"] for row in rows}, {"team-a": 2, "team-b": 1})

    def test_pooled_connections_the_upstream_closed_while_idle_are_replaced(self):
        body = dict(CHAT, model="idle-model")
        with ThreadPoolExecutor(4) as pool:  # several connections in the gateway's pool
            statuses = list(pool.map(lambda _: self.gw.request("POST", "/v1/chat/completions", body)[0].status,
                                     range(8)))
        self.assertEqual(set(statuses), {200})
        time.sleep(0.8)  # the upstream closes connections idle for 0.3 s
        for _ in range(3):
            resp, data = self.gw.request("POST", "/v1/chat/completions", body)
            self.assertEqual(resp.status, 200, data)

    def test_rpm_limit_refuses_with_retry_after(self):
        statuses = [self.gw.request("POST", "/v1/chat/completions", CHAT, key="team-b")[0] for _ in range(3)]
        self.assertEqual([r.status for r in statuses], [200, 200, 429])
        self.assertGreaterEqual(int(statuses[2].getheader("Retry-After")), 1)

    def test_hard_budget_holds_under_64_concurrent_clients(self):
        # 64 requests settled one after the other would all fit the budget (each costs about
        # a hundredth of it); 64 in flight together do not, by their reservations (input and
        # max_tokens at catalog prices). The upstream holds each answer half a second, so
        # that they are in flight together however fast or slow the gateway runs.
        body = dict(CHAT, max_tokens=20, metadata={"mock_hold_s": "0.5"})

        def one(_):
            return self.gw.request("POST", "/v1/chat/completions", body, key="team-c")[0].status
        with ThreadPoolExecutor(64) as pool:
            statuses = list(pool.map(one, range(64)))
        self.assertIn(429, statuses, statuses)
        self.assertIn(200, statuses, statuses)
        self.gw.stop()
        spent = Decimal(str(report(self.gw.ledger, "--filter", "team=team-c")["total"]))
        self.assertLessEqual(spent, Decimal("0.0005"))
        self.assertEqual(report(self.gw.ledger, "--filter", "team=team-c", "--metric", "requests")["total"],
                         statuses.count(200), statuses)

    def test_low_priority_keys_are_throttled_first_near_the_budget(self):
        # Spend the team's budget step by step; past 90% the experimentation key is refused
        # while the normal key is still served.
        throttled = None
        for _ in range(150):
            resp, data = self.gw.request("POST", "/v1/chat/completions", dict(CHAT, max_tokens=1), key="lowprio")
            if resp.status == 429:
                throttled = json.loads(data)["error"]["message"]
                break
            self.assertEqual(self.gw.request("POST", "/v1/chat/completions", dict(CHAT, max_tokens=5), key="team-c")[0].status, 200)
        self.assertIsNotNone(throttled)
        self.assertIn("priority", throttled)
        self.assertEqual(self.gw.request("POST", "/v1/chat/completions", dict(CHAT, max_tokens=1), key="team-c")[0].status, 200)

    def test_repeated_deterministic_requests_are_served_from_cache_at_zero_cost(self):
        body = dict(CHAT, temperature=0)
        first, data1 = self.gw.request("POST", "/v1/chat/completions", body)
        second, data2 = self.gw.request("POST", "/v1/chat/completions", body)
        self.assertEqual((first.status, second.status), (200, 200))
        self.assertEqual(data1, data2)
        self.assertIsNone(first.getheader("x-aifinops-cache"))
        self.assertEqual(second.getheader("x-aifinops-cache"), "hit")
        self.assertEqual(len(self.upstream.received), 1)
        stream = dict(body, stream=True)
        s1 = self.gw.request("POST", "/v1/chat/completions", stream)[1]
        resp, s2 = self.gw.request("POST", "/v1/chat/completions", stream)
        self.assertEqual(resp.getheader("x-aifinops-cache"), "hit")
        self.assertEqual(s1, s2)  # replayed as the same stream
        # Not across teams, and not for non-deterministic requests.
        self.assertIsNone(self.gw.request("POST", "/v1/chat/completions", body, key="team-c")[0].getheader("x-aifinops-cache"))
        self.gw.request("POST", "/v1/chat/completions", CHAT)
        self.assertIsNone(self.gw.request("POST", "/v1/chat/completions", CHAT)[0].getheader("x-aifinops-cache"))
        self.gw.stop()
        savings = Decimal(str(report(self.gw.ledger, "--metric", "cache_savings")["total"]))
        self.assertGreater(savings, 0)
        cost = report(self.gw.ledger, "--filter", "team=team-a", "--metric", "effective_cost")["total"]
        requests = report(self.gw.ledger, "--filter", "team=team-a", "--metric", "requests")["total"]
        self.assertEqual(requests, 6)
        # 4 upstream calls were paid, 2 hits were free and saved what a call costs.
        self.assertEqual(Decimal(str(cost)), 2 * savings)

    def test_a_garbled_answer_is_metered_from_its_usage_but_never_cached(self):
        # The usage reads, a value elsewhere in the body is not JSON: each request is metered
        # from the usage it states, and the body is not kept to answer the next one.
        body = dict(CHAT, model="garbled-model", temperature=0)
        for _ in range(2):
            resp, data = self.gw.request("POST", "/v1/chat/completions", body)
            self.assertEqual(resp.status, 200)
            self.assertIn(b'"finish_reason": stop', data)  # passed on as the upstream sent it
            self.assertIsNone(resp.getheader("x-aifinops-cache"))
        self.assertEqual(len(self.upstream.received), 2)
        self.gw.stop()
        self.assertEqual(report(self.gw.ledger, "--metric", "tokens")["total"], 2 * 17)

    def test_health_models_and_metrics(self):
        self.assertEqual(self.gw.request("GET", "/health", key=None)[0].status, 200)
        models = json.loads(self.gw.request("GET", "/v1/models")[1])
        self.assertIn("claude-sonnet-4-5", [m["id"] for m in models["data"]])
        self.gw.request("POST", "/v1/chat/completions", CHAT)
        self.gw.request("POST", "/v1/chat/completions", CHAT, key="sk-aif-unknown")
        metrics = self.gw.request("GET", "/metrics", key=None)[1].decode()
        self.assertIn('aifinops_gateway_requests_total{key="team-a-chatbot",team="team-a",model="gpt-4o-mini",status="200"} 1', metrics)
        self.assertIn('aifinops_gateway_unauthenticated_total{status="401"} 1', metrics)
        self.assertIn("aifinops_gateway_upstream_latency_seconds_bucket", metrics)

    def test_streams_are_relayed_as_they_arrive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=30)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(dict(CHAT, model="drip-model", stream=True)),
                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEYS["team-a"]})
        start = time.monotonic()
        resp = conn.getresponse()
        first = resp.readline()
        first_at = time.monotonic() - start
        rest = resp.read()
        total = time.monotonic() - start
        conn.close()
        self.assertTrue(first.startswith(b"data: "))
        self.assertIn(b"[DONE]", rest)
        self.assertGreater(total, 1.5)          # the upstream takes 0.3 s per event
        self.assertLess(first_at, total - 1.0)  # the first event did not wait for the last

    def test_concurrent_streams_of_each_kind_arrive_byte_identical(self):
        # Streams of different lengths and formats interleave on the gateway's thread, which
        # hands each the buffers an earlier one used: nothing of one may show in another.
        openai_usage = b"".join(mock_upstream.sse_events(mock_upstream.OPENAI_SSE))
        openai_plain = mock_upstream.without_usage_chunk(mock_upstream.OPENAI_SSE)
        anthropic = b"".join(mock_upstream.sse_events(mock_upstream.ANTHROPIC_SSE))
        kinds = [
            ("/v1/chat/completions", dict(CHAT, stream=True, stream_options={"include_usage": True}), openai_usage),
            ("/v1/chat/completions", dict(CHAT, stream=True), openai_plain),
            ("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                              "messages": [{"role": "user", "content": "Hi"}]}, anthropic),
        ]

        def client(n):
            got = []
            for i in range(6):
                path, body, expected = kinds[(n + i) % len(kinds)]
                resp, data = self.gw.request("POST", path, body)
                got.append((resp.status, data == expected, path))
            return got

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = [r for rs in pool.map(client, range(8)) for r in rs]
        self.assertEqual([r for r in results if r[:2] != (200, True)], [])
        self.gw.stop()
        self.assertEqual(report(self.gw.ledger, "--metric", "requests")["total"], 48)

    def test_a_stream_cut_short_is_recorded_as_partial_and_estimated(self):
        try:
            self.gw.request("POST", "/v1/chat/completions", dict(CHAT, model="cut-model", stream=True))
        except (http.client.HTTPException, ValueError):
            pass  # the upstream cut the stream, so the client sees it cut too
        self.gw.stop()
        output = report(self.gw.ledger, "--filter", "model=cut-model", "--metric", "output_tokens")["total"]
        self.assertGreater(output, 0)  # never free: estimated from the text that was relayed

    def test_kill_9_loses_no_served_request(self):
        for _ in range(20):
            self.assertEqual(self.gw.request("POST", "/v1/chat/completions", CHAT)[0].status, 200)
        self.gw.stop(signal.SIGKILL)
        self.gw.start()  # recovers the spool into the ledger before serving
        self.gw.stop()
        self.assertEqual(report(self.gw.ledger, "--metric", "requests")["total"], 20)

    def test_a_soft_budget_is_served_and_reported_once_per_period(self):
        for _ in range(4):  # the third request takes the spend over the budget
            self.assertEqual(self.gw.request("POST", "/v1/chat/completions", CHAT, key="team-d")[0].status, 200)
        self.gw.stop()  # sends what is queued before it exits
        self.assertEqual(len(self.webhook.received), 1, self.webhook.received)
        path, message = self.webhook.received[0]
        self.assertEqual(path, "/services/T000/B000/secret")
        self.assertIn("Soft budget team=team-d (month) exceeded", message["text"])
        self.assertIn("exceeded: 0.0000144 of 0.00001 USD spent", message["text"])
        log = self.gw.proc.stderr.read()
        self.assertEqual(log.count("Soft budget team=team-d (month) exceeded"), 1, log)
        self.assertNotIn("secret", log)  # the webhook's path is a secret

    def test_models_for_a_key_allowed_everything_include_the_catalog_of_the_default_route(self):
        ids = [m["id"] for m in json.loads(self.gw.request("GET", "/v1/models")[1])["data"]]
        self.assertEqual(ids, sorted(set(ids)))
        for named in ("claude-sonnet-4-5", "my-gpt-deployment", "tls-model"):  # named by routes
            self.assertIn(named, ids)
        for catalog in ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small"):  # OpenAI's, via "*"
            self.assertIn(catalog, ids)
        self.assertNotIn("claude-3-5-haiku-20241022", ids)  # Anthropic's only through a named route
        self.assertNotIn("*", ids)
        restricted = json.loads(self.gw.request("GET", "/v1/models", key="team-b")[1])["data"]
        self.assertEqual([m["id"] for m in restricted], ["gpt-4o-mini"])

    def test_budgets_start_from_gateway_spend_only_not_from_provider_bills(self):
        self.gw.stop()
        today = datetime.now(timezone.utc).strftime("%Y-%m-%dT00:00:00Z")
        bill = self.dir / "bill.csv"
        bill.write_text("ChargePeriodStart,BilledCost,EffectiveCost,ServiceName,ResourceId,Tags\n"
                        f'{today},5,5,Azure OpenAI,deployment-1,"{{""team"":""team-c""}}"\n')
        subprocess.run([AIFINOPS, "ingest", str(bill), "--db", self.gw.ledger], check=True, capture_output=True)
        self.assertEqual(report(self.gw.ledger, "--filter", "team=team-c")["total"], 5)
        self.gw.start()  # team-c's hard budget is 0.0005 USD: the bill does not count against it
        self.assertEqual(self.gw.request("POST", "/v1/chat/completions", dict(CHAT, max_tokens=5), key="team-c")[0].status, 200)
        # Spend the gateway metered does count after a restart.
        for _ in range(200):
            if self.gw.request("POST", "/v1/chat/completions", dict(CHAT, max_tokens=5), key="team-c")[0].status == 429:
                break
        else:
            self.fail("the budget was never exhausted")
        self.gw.stop()
        self.gw.start()
        resp, data = self.gw.request("POST", "/v1/chat/completions", dict(CHAT, max_tokens=5), key="team-c")
        self.assertEqual(resp.status, 429, data)


class CommandTest(unittest.TestCase):
    def test_keys_new_help_is_its_own(self):
        out = subprocess.run([AIFINOPS, "gateway", "keys", "new", "--help"], capture_output=True, text=True,
                             check=True).stdout
        self.assertIn("--id", out)
        self.assertIn("key_sha256", out)
        self.assertNotIn("SIGTERM", out)  # the footer of `aifinops gateway`

    def test_store_bodies_is_refused_with_the_key_named(self):
        workdir = Path(tempfile.mkdtemp(prefix="aifinops-gw-"))
        try:
            config = workdir / "gateway.yaml"
            config.write_text("upstreams:\n  - {name: a, kind: openai, base_url: http://127.0.0.1:9/v1}\n"
                              "routes:\n  - {model: \"*\", upstream: a}\nstore_bodies: true\n")
            p = subprocess.run([AIFINOPS, "gateway", "--config", str(config)], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(str(config), p.stderr)
            self.assertIn("store_bodies", p.stderr)
            self.assertIn("not supported", p.stderr)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def test_a_database_ledger_needs_a_spool_dir_and_its_password_is_never_printed(self):
        workdir = Path(tempfile.mkdtemp(prefix="aifinops-gw-"))
        try:
            config = workdir / "gateway.yaml"
            config.write_text("ledger: postgresql://gw:s3cret@127.0.0.1:9/aifinops\n"
                              "upstreams:\n  - {name: a, kind: openai, base_url: http://127.0.0.1:9/v1}\n"
                              "routes:\n  - {model: \"*\", upstream: a}\n")
            p = subprocess.run([AIFINOPS, "gateway", "--config", str(config)], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("spool_dir", p.stderr)
            self.assertIn("--spool-dir", p.stderr)
            self.assertNotIn("s3cret", p.stderr + p.stdout)
            # With a spool directory it gets as far as the database, and names it without the password.
            p = subprocess.run([AIFINOPS, "gateway", "--config", str(config), "--spool-dir", str(workdir / "spool")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("127.0.0.1", p.stderr)
            self.assertNotIn("s3cret", p.stderr + p.stdout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
