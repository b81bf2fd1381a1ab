#!/usr/bin/env python3
"""End-to-end tests of the OTLP/HTTP trace receiver of `aifinops serve` (POST /v1/traces):
a real OTLP/HTTP JSON export over loopback lands in the ledger and shows up in
`aifinops report`, a retried body is not counted twice, an unreadable body is 400 with a
google.rpc.Status, protobuf is 415, and only an admin token may write. The same on the
gateway's listener, with a virtual key."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest
import urllib.error
import urllib.request
from pathlib import Path

AIFINOPS = os.path.abspath(os.environ.get("AIFINOPS", "build/release/aifinops"))
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "otlp" / "genai_traces.json"
MODEL = "gpt-4o-2024-08-06"


def clean_env():
    env = dict(os.environ)
    for name in ("AIFINOPS_DB", "AIFINOPS_CONFIG", "AIFINOPS_WEB_ROOT"):
        env.pop(name, None)
    return env


def run(*args, check=0):
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, env=clean_env(),
                       timeout=300)
    assert p.returncode == check, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def new_token(token_id, scope):
    out = run("serve", "tokens", "new", "--id", token_id, "--scope", scope).stdout.splitlines()
    return out[0].split(": ", 1)[1], out[1]


def export(trace_id, spans):
    """An ExportTraceServiceRequest as OTLP/HTTP JSON, one GenAI chat span per (input, output)."""
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "receiver-test"}},
            {"key": "team", "value": {"stringValue": "payments"}}]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                        "spans": [{
                            "traceId": trace_id,
                            "spanId": f"{i + 1:016X}",
                            "name": f"chat {MODEL}",
                            "kind": 3,
                            "startTimeUnixNano": str(1735689600000000000 + i * 10**9),
                            "endTimeUnixNano": str(1735689600500000000 + i * 10**9),
                            "attributes": [
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                                {"key": "gen_ai.request.model", "value": {"stringValue": MODEL}},
                                {"key": "gen_ai.response.model", "value": {"stringValue": MODEL}},
                                {"key": "gen_ai.usage.input_tokens",
                                 "value": {"intValue": str(inp)}},
                                {"key": "gen_ai.usage.output_tokens",
                                 "value": {"intValue": str(out)}}]}
                            for i, (inp, out) in enumerate(spans)]}]}]}).encode()


class OtlpReceiverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix="aifinops-otlp-"))
        cls.db = str(cls.dir / "otlp.db")
        run("ingest", str(FIXTURE), "--db", cls.db)  # a ledger with some spans already
        cls.admin, admin_line = new_token("collector", "admin")
        cls.viewer, viewer_line = new_token("finance", "viewer")
        cls.policy = cls.dir / "policy.yaml"
        cls.policy.write_text("api_tokens:\n" + admin_line + "\n" + viewer_line + "\n")
        (cls.dir / "web").mkdir()
        cls.proc = subprocess.Popen(
            [AIFINOPS, "serve", "--db", cls.db, "--config", str(cls.policy), "--listen",
             "127.0.0.1:0", "--web-root", str(cls.dir / "web"), "--no-warm", "--threads", "2"],
            stderr=subprocess.PIPE, text=True, env=clean_env())
        # serve may say what it read at start before it says where it listens.
        seen = ""
        line = cls.proc.stderr.readline()
        while line and "listening on http://" not in line:
            seen += line
            line = cls.proc.stderr.readline()
        if "listening on http://" not in line:
            line = seen + line
            cls.proc.kill()
            raise AssertionError(f"serve did not start: {line}{cls.proc.stderr.read()}")
        cls.base = line.split("listening on ")[1].split("/ ")[0]
        cls.reader = threading.Thread(target=cls.proc.stderr.read, daemon=True)
        cls.reader.start()

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.reader.join(timeout=10)
        cls.proc.stderr.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def post(self, body, token=None, content_type="application/json", method="POST"):
        headers = {"Content-Type": content_type}
        if token is not False:
            headers["Authorization"] = f"Bearer {token or self.admin}"
        req = urllib.request.Request(f"{self.base}/v1/traces", data=body, headers=headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers

    def tokens(self, db=None):
        out = run("report", "--db", db or self.db, "--by", "model", "--metric", "tokens",
                  "--format", "json").stdout
        rows = json.loads(out)["rows"]
        return sum(r["tokens"] for r in rows if r["model"] == MODEL)

    def test_spans_land_in_the_ledger_once(self):
        before = self.tokens()
        body = export("0AF7651916CD43DD8448EB211C80319C", [(1000, 200), (3000, 400)])
        code, text, headers = self.post(body)
        self.assertEqual(code, 200, text)
        self.assertEqual(json.loads(text), {})
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        self.assertEqual(self.tokens(), before + 4600)
        # An exporter's retry sends the same body again: accepted, not counted twice.
        code, text, _ = self.post(body)
        self.assertEqual(code, 200, text)
        self.assertEqual(self.tokens(), before + 4600)
        # A different export is a new batch.
        code, text, _ = self.post(export("1AF7651916CD43DD8448EB211C80319C", [(10, 5)]))
        self.assertEqual(code, 200, text)
        self.assertEqual(self.tokens(), before + 4615)

    def test_a_span_that_cannot_be_read_is_a_partial_success(self):
        body = json.loads(export("2AF7651916CD43DD8448EB211C80319C", [(7, 3), (5, 5)]))
        spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
        spans[1]["attributes"][4]["value"] = {"stringValue": "lots"}
        code, text, _ = self.post(json.dumps(body).encode())
        self.assertEqual(code, 200, text)
        partial = json.loads(text)["partialSuccess"]
        self.assertEqual(partial["rejectedSpans"], 1)
        self.assertIn("lots", partial["errorMessage"])

    def test_malformed_body_is_400_with_a_status(self):
        before = self.tokens()
        for body in (b"{\"resourceSpans\": [", b"not json", b"[1, 2]"):
            with self.subTest(body=body):
                code, text, _ = self.post(body)
                self.assertEqual(code, 400, text)
                status = json.loads(text)
                self.assertEqual(status["code"], 3)  # INVALID_ARGUMENT
                self.assertTrue(status["message"])
        self.assertEqual(self.tokens(), before)

    def test_protobuf_is_415(self):
        code, text, _ = self.post(b"\x0a\x00", content_type="application/x-protobuf")
        self.assertEqual(code, 415, text)
        self.assertIn("http/json", json.loads(text)["message"])

    def test_only_an_admin_token_writes(self):
        body = export("3AF7651916CD43DD8448EB211C80319C", [(1, 1)])
        before = self.tokens()
        code, text, headers = self.post(body, token=False)
        self.assertEqual(code, 401, text)
        self.assertIn("Bearer", headers["WWW-Authenticate"])
        self.assertEqual(self.post(body, token="aif_wrong")[0], 401)
        self.assertEqual(self.post(body, token=self.viewer)[0], 403)
        self.assertEqual(self.tokens(), before)

    def test_get_is_405(self):
        code, text, headers = self.post(None, method="GET")
        self.assertEqual(code, 405, text)
        self.assertEqual(headers["Allow"], "POST")


def post_to(url, body, key, content_type="application/json"):
    headers = {"Content-Type": content_type}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class GatewayReceiverTest(unittest.TestCase):
    """POST /v1/traces on `aifinops gateway`: a virtual key authenticates, the spans go into
    the gateway's ledger."""

    def test_gateway_receives_spans_with_a_virtual_key(self):
        workdir = Path(tempfile.mkdtemp(prefix="aifinops-otlp-gw-"))
        self.addCleanup(shutil.rmtree, workdir, True)
        ledger = workdir / "gateway.db"
        key = "vk-otlp-test-key-0123456789"
        config = workdir / "gateway.yaml"
        config.write_text(
            f"listen: 127.0.0.1:0\nledger: {ledger}\n"
            "upstreams:\n  - {name: a, kind: openai, base_url: http://127.0.0.1:9/v1}\n"
            "routes:\n  - {model: \"*\", upstream: a}\n"
            f"keys:\n  - {{id: app, key_sha256: \"{hashlib.sha256(key.encode()).hexdigest()}\"}}\n")
        proc = subprocess.Popen([AIFINOPS, "gateway", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=clean_env())
        try:
            line = proc.stdout.readline()
            self.assertIn("listening on", line, proc.stderr.read() if not line else line)
            port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
            readers = [threading.Thread(target=f.read, daemon=True)
                       for f in (proc.stdout, proc.stderr)]
            for reader in readers:
                reader.start()
            url = f"http://127.0.0.1:{port}/v1/traces"
            body = export("4AF7651916CD43DD8448EB211C80319C", [(2000, 100)])
            self.assertEqual(post_to(url, body, None)[0], 401)
            self.assertEqual(post_to(url, body, "vk-wrong")[0], 401)
            self.assertEqual(post_to(url, body, key, "application/x-protobuf")[0], 415)
            code, text = post_to(url, b"{oops", key)
            self.assertEqual(code, 400, text)
            self.assertEqual(json.loads(text)["code"], 3)
            for _ in range(2):  # the retry is a duplicate
                code, text = post_to(url, body, key)
                self.assertEqual((code, json.loads(text)), (200, {}), text)
            self.assertEqual(OtlpReceiverTest.tokens(self, str(ledger)), 2100)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for f in (proc.stdout, proc.stderr):
                f.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
