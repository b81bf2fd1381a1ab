#!/usr/bin/env python3
"""Backend parity (issue 7): the same inputs ingested into an SQLite ledger and into a
PostgreSQL ledger give byte-identical output from every analysis command and from the API.

Inputs: the demo organisation (FOCUS bill and DCGM GPU telemetry, `aifinops demo`), native
cloud exports, OpenAI and Anthropic usage reports, OTLP GenAI traces, nvidia-smi logs, a
FOCUS file with bad rows, and gateway records (requests served through `aifinops gateway`,
whose spool is replayed into each ledger through the gateway's own recovery). The ledger's
location is the only text masked. Also: a second ingest of the same file is refused on both,
--replace works alike, and rows read = ingested + quarantined in both ledgers.

A private PostgreSQL server is started for the run (pg_service.py); no server, no pass."""
import datetime
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mock_upstream  # noqa: E402
from pg_service import PostgresService  # noqa: E402

AIFINOPS = os.path.abspath(os.environ.get("AIFINOPS", "build/release/aifinops"))
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

# The extra sources, each read by its own reader, so that every analysis has data.
SOURCES = [
    (FIXTURES / "native" / "aws_cur_anonymized_first250.csv", "aws-cur"),
    (FIXTURES / "native" / "azure_ea_actual_small.csv", "azure-cost"),
    (FIXTURES / "native" / "gcp_billing_export.jsonl", "gcp-billing"),
    (FIXTURES / "native" / "oci_cost_report.csv", "oci-cost"),
    (FIXTURES / "openai" / "real_usage_completions_group_by_model.json", "openai-usage"),
    (FIXTURES / "openai" / "spec_costs.json", "openai-costs"),
    (FIXTURES / "anthropic" / "docs_admin_usage_report_messages_example.json", "anthropic-usage"),
    (FIXTURES / "otlp" / "genai_traces.json", "otlp"),
    (FIXTURES / "gpu" / "nvidia-smi_query-gpu_subset_l40s_load.csv", "nvidia-smi"),
    (FIXTURES / "focus" / "focus-1.0-sample" / "focus_sample.csv", "focus"),
]


def clean_env():
    env = dict(os.environ)
    for name in ("AIFINOPS_DB", "AIFINOPS_CONFIG", "AIFINOPS_WEB_ROOT"):
        env.pop(name, None)
    return env


def run(*args, check=0, cwd=None, env=None):
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, env=env or clean_env(),
                       timeout=600, cwd=cwd)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


def readable(text):
    """Lines to diff: JSON pretty-printed, any other text as it is."""
    try:
        return json.dumps(json.loads(text), indent=1, sort_keys=True).splitlines()
    except ValueError:
        return text.splitlines()


def http_get(port, path, token):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class PostgresParityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresService()
        cls.pg.start()
        try:
            cls.dir = Path(tempfile.mkdtemp(prefix="aifinops-parity-"))
            cls.url = cls.pg.create_database("parity")
            cls.lite = str(cls.dir / "parity.db")
            cls.ledgers = [cls.lite, cls.url]
            cls.build_ledgers()
        except BaseException:
            cls.pg.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    # --- the inputs ---------------------------------------------------------------------
    @classmethod
    def build_ledgers(cls):
        files = cls.dir / "files"
        # The demo writes its CSV, telemetry and policy to --out-dir: the same paths (and,
        # with the same seed on the same day, the same bytes) for both ledgers.
        cls.demo_output = {}
        for db in cls.ledgers:
            out = run("demo", "--db", db, "--out-dir", str(files), "--keep", cwd=cls.dir).stdout
            cls.demo_output[db] = cls.mask(out, db)
        cls.policy = str(files / "demo_policy.yaml")
        cls.ingest_output = {db: [] for db in cls.ledgers}
        for path, fmt in SOURCES:
            for db in cls.ledgers:
                p = run("ingest", str(path), "--format", fmt, "--db", db, "--config", cls.policy)
                cls.ingest_output[db].append(cls.mask(p.stdout, db))
        # A FOCUS file with rows that cannot be read: quarantined alike.
        sample = (FIXTURES / "focus" / "focus-1.0-sample" / "focus_sample.csv").read_text().splitlines()
        header = sample[0].split(",")
        cost = header.index('"BilledCost"')  # before any free text that may hold a comma
        bad = [sample[0]]
        for i, line in enumerate(sample[1:41]):
            fields = line.split(",")
            if i % 10 == 3:
                fields[cost] = "abc"
            bad.append(",".join(fields) if i % 10 != 7 else line + ",extra")
        cls.bad_csv = cls.dir / "bad_focus.csv"
        cls.bad_csv.write_text("\n".join(bad).replace("2024-", "2023-") + "\n")
        for db in cls.ledgers:
            p = run("ingest", str(cls.bad_csv), "--db", db, "--config", cls.policy)
            cls.ingest_output[db].append(cls.mask(p.stdout, db))
        cls.add_gateway_records()

    @classmethod
    def add_gateway_records(cls):
        """Requests served by a gateway whose ledger is unreachable stay in its spool; the
        spool (after kill -9) is then recovered by a gateway on each ledger in turn."""
        upstream = mock_upstream.start()
        try:
            cls.pg.create_database("gw_unreachable")
            spool = cls.dir / "gateway.spool"
            key = "sk-aifinops-parity-test-key-0000000001"
            import hashlib
            digest = hashlib.sha256(key.encode()).hexdigest()

            def config(ledger):
                path = cls.dir / "gateway.yaml"
                path.write_text(f"""
listen: 127.0.0.1:0
ledger: "{ledger}"
spool_dir: "{spool}"
upstreams:
  - {{name: openai, kind: openai, base_url: "http://127.0.0.1:{upstream.server_port}/v1", api_key_env: MOCK_OPENAI_KEY}}
routes:
  - {{model: "*", upstream: openai}}
keys:
  - id: parity-search
    key_sha256: "{digest}"
    tags: {{team: search, project: assistant, environment: production}}
    models: ["*"]
""")
                return str(path)

            def start(ledger):
                env = dict(clean_env(), MOCK_OPENAI_KEY="sk-provider-openai")
                proc = subprocess.Popen([AIFINOPS, "gateway", "--config", config(ledger)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                line = proc.stdout.readline()
                if "listening on" not in line:
                    proc.kill()
                    raise AssertionError("gateway did not start: " + line + proc.stderr.read())
                return proc, int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])

            def stop(proc, sig):
                proc.send_signal(sig)
                proc.wait(timeout=60)
                proc.stdout.close()
                proc.stderr.close()

            gw_url = cls.pg.url("gw_unreachable")
            proc, port = start(gw_url)
            # From now on the gateway's ledger refuses connections: what it serves waits.
            cls.pg.sql("postgres", "ALTER DATABASE gw_unreachable ALLOW_CONNECTIONS false")
            cls.pg.sql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = 'gw_unreachable'")
            import http.client
            for i in range(12):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]}
                conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                             headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                assert response.status == 200, response.status
                conn.close()
            time.sleep(1.5)  # past a drain attempt, which fails and keeps the files
            stop(proc, signal.SIGKILL)
            saved = cls.dir / "spool.saved"
            shutil.copytree(spool, saved)
            cls.gateway_files = sorted(p.name for p in saved.iterdir())
            for db in cls.ledgers:
                shutil.rmtree(spool)
                shutil.copytree(saved, spool)
                proc, _ = start(db)  # recovers the spool into the ledger before serving
                stop(proc, signal.SIGTERM)
        finally:
            upstream.shutdown()

    @classmethod
    def mask(cls, text, db):
        text = text.replace("'" + db + "'", "<ledger>").replace(db, "<ledger>")
        # Timing lines (ingest's rate) differ, and so do the clock times the ledgers record
        # as things happen (when anomaly detection last ran): a time within the last hour is
        # the run's own, never data.
        text = re.sub(r"(?m)^(\s*time\s+).*$", r"\1<time>", text)

        def recent(m):
            t = datetime.datetime.strptime(m.group(0), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
            age = datetime.datetime.now(datetime.timezone.utc) - t
            return "<now>" if datetime.timedelta(0) <= age <= datetime.timedelta(hours=1) else m.group(0)
        return re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", recent, text)

    def both(self, *args, check=0):
        """Runs a command on each ledger; returns the two outputs, masked."""
        outs = []
        for db in self.ledgers:
            p = run(*args, "--db", db, check=check)
            outs.append(self.mask(p.stdout, db) + self.mask(p.stderr, db))
        return outs

    def assert_same(self, *args, check=0):
        lite, pg = self.both(*args, check=check)
        self.assertEqual(lite, pg, f"aifinops {' '.join(args)}")
        return lite

    # --- the tests ----------------------------------------------------------------------
    def test_demo_and_every_ingest_print_the_same(self):
        self.assertEqual(self.demo_output[self.lite], self.demo_output[self.url])
        self.assertEqual(self.ingest_output[self.lite], self.ingest_output[self.url])
        self.assertTrue(self.gateway_files, "the gateway spooled nothing")

    def test_every_analysis_command_gives_identical_json(self):
        c = ("--config", self.policy)
        commands = [
            ("report", "--by", "team", "--format", "json", *c),
            ("report", "--by", "team,month", "--format", "json", *c),
            ("report", "--by", "service", "--grain", "day", "--format", "json", *c),
            ("report", "--by", "model", "--grain", "week", "--metric", "tokens", "--format", "json", *c),
            ("report", "--by", "provider,hour", "--from", "2023-01-01", "--format", "json", *c),
            ("report", "--by", "resource", "--metric", "gpu_utilization", "--format", "json", *c),
            ("report", "--by", "team", "--metric", "gpu_memory_peak_mib", "--format", "json", *c),
            ("report", "--by", "gpu", "--metric", "energy_kwh", "--format", "json", *c),
            ("report", "--by", "team", "--metric", "co2e_kg", "--format", "json", *c),
            ("report", "--by", "team,project", "--metric", "requests", "--format", "json", *c),
            ("report", "--by", "tag:team", "--metric", "cache_savings", "--format", "json", *c),
            ("report", "--by", "service,resource", "--filter", "team=(none)", "--format", "json", *c),
            ("report", "--by", "model", "--filter", "team=search", "--metric", "input_tokens", "--format",
             "json", *c),
            ("report", "--by", "team", "--allocated", "--format", "json", *c),
            ("report", "--by", "team", "--compare", "previous", "--format", "json", *c),
            ("report", "--by", "environment,service", "--grain", "month", "--format", "csv", *c),
            ("report", "--by", "team,workload", "--metric", "gpu_hours", *c),
            ("kpi", "--format", "json", *c),
            ("kpi", "--by", "team", "--format", "json", *c),
            ("budgets", "status", "--format", "json", *c),
            ("anomalies", "--format", "json", *c),
            ("anomalies", "--by", "team", "--grain", "hour", "--format", "json", *c),
            ("forecast", "--format", "json", *c),
            ("forecast", "--by", "team", "--backtest", "--format", "json", *c),
            ("tags", "audit", "--format", "json", *c),
            ("recommend", "--format", "json", *c),
            ("reconcile", "--format", "json"),
            ("reconcile", "--by", "provider", "--differences", "--format", "json"),
            ("maturity", "--format", "json", *c),
            ("showback", "--format", "json", *c),
            ("prices", "list", "--format", "json"),
            ("prices", "show", "gpt-4o-mini", "--format", "json"),
        ]
        failures = []
        for args in commands:
            runs = [run(*args, "--db", db, check=None) for db in self.ledgers]
            if runs[0].returncode != 0:
                failures.append(f"aifinops {' '.join(args)}: exit {runs[0].returncode}: {runs[0].stderr}")
                continue
            lite, pg = [self.mask(p.stdout, db) + self.mask(p.stderr, db) for p, db in zip(runs, self.ledgers)]
            if runs[1].returncode != 0 or lite != pg:
                diff = difflib.unified_diff(readable(lite), readable(pg), "sqlite", "postgresql", lineterm="")
                failures.append(f"aifinops {' '.join(args)}:\n" + "\n".join(list(diff)[:60]))
            elif "--format" in args and args[args.index("--format") + 1] == "json":
                json.loads(lite)  # a real answer, not an error
        self.assertEqual(failures, [], "\n\n".join(failures))

    def test_the_api_answers_alike(self):
        token_out = run("serve", "tokens", "new", "--id", "parity", "--scope", "admin").stdout.splitlines()
        token = token_out[0].removeprefix("token: ")
        policy = self.dir / "serve_policy.yaml"
        policy.write_text(Path(self.policy).read_text() + "\napi_tokens:\n" + token_out[1] + "\n")
        web = self.dir / "web"
        web.mkdir(exist_ok=True)
        (web / "index.html").write_text("<!doctype html><title>aifinops</title>\n")
        answers = []
        for db in self.ledgers:
            proc = subprocess.Popen(
                [AIFINOPS, "serve", "--db", db, "--config", str(policy), "--listen", "127.0.0.1:0",
                 "--web-root", str(web)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=clean_env())
            try:
                port = None
                deadline = time.time() + 60
                while time.time() < deadline and port is None:
                    line = proc.stderr.readline()
                    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
                    if m:
                        port = int(m.group(1))
                    elif proc.poll() is not None:
                        break
                self.assertIsNotNone(port, "serve did not start")
                got = []
                for path in ("/api/v1/report?by=team,month", "/api/v1/kpi", "/api/v1/report?by=team,month"):
                    status, body = http_get(port, path, token)
                    self.assertEqual(status, 200, body)
                    got.append(self.mask(body, db))
                self.assertEqual(got[0], got[2])  # the cached answer is the same answer
                answers.append(got)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
                proc.stdout.close()
                proc.stderr.close()
        self.assertEqual(answers[0], answers[1])

    def test_quarantine_counts_reconcile_in_both(self):
        totals = []
        for db in self.ledgers:
            p = run("ingest", str(self.bad_csv), "--db", db)  # identical content: nothing to do
            self.assertIn("already ingested", p.stdout)
            totals.append(p.stdout.replace(db, "<ledger>"))
        self.assertEqual(totals[0], totals[1])
        out = self.ingest_output[self.url][-1]
        read = int(re.search(r"rows read\s+([\d,]+)", out).group(1).replace(",", ""))
        ingested = int(re.search(r"ingested\s+([\d,]+)", out).group(1).replace(",", ""))
        quarantined = int(re.search(r"quarantined\s+([\d,]+)", out).group(1).replace(",", ""))
        self.assertGreater(quarantined, 0)
        self.assertEqual(read, ingested + quarantined)
        batch = re.search(r"batch (\d+)", out).group(1)
        stored = self.pg.sql("parity", f"SELECT count(*) FROM quarantine WHERE batch_id = {batch}")
        self.assertEqual(int(stored), quarantined)
        rows = self.pg.sql("parity", f"SELECT rows_read, rows_ingested, rows_quarantined FROM batches WHERE id = {batch}")
        self.assertEqual(rows, f"{read}|{ingested}|{quarantined}")

    def test_changed_content_is_refused_and_replace_works_alike(self):
        month = self.dir / "month.csv"
        sample = (FIXTURES / "focus" / "focus-1.0-sample" / "focus_sample.csv").read_text().splitlines()
        month.write_text("\n".join(sample[:21]).replace("2024-", "2022-") + "\n")
        self.assert_same("ingest", str(month))
        month.write_text("\n".join(sample[:31]).replace("2024-", "2022-") + "\n")
        refused = self.assert_same("ingest", str(month), check=1)
        self.assertIn("--replace", refused)
        replaced = self.assert_same("ingest", str(month), "--replace")
        self.assertIn("replaced batch", replaced)
        self.assert_same("report", "--by", "provider,month", "--from", "2022-01-01", "--to", "2023-01-01",
                         "--format", "json")


if __name__ == "__main__":
    unittest.main()
