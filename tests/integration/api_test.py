#!/usr/bin/env python3
"""End-to-end tests of `aifinops serve` (R26): every REST endpoint over the demo
organisation, parameter errors, each authentication case, a restricted viewer who must never
see another team, the API's JSON against the CLI's --format json byte for byte, the OpenAPI
document, /metrics, the answer cache and the dashboard's static files."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

AIFINOPS = os.path.abspath(os.environ.get("AIFINOPS", "build/release/aifinops"))
TEAMS = ["support-bot", "search", "ml-research", "code-assist", "data-platform", "growth"]
VIEWER_TEAM = "search"
ENDPOINTS = ["report", "kpi", "budgets", "anomalies", "forecast", "tags/audit", "maturity",
             "dimensions", "recommendations", "reconcile"]


def clean_env():
    env = dict(os.environ)
    for name in ("AIFINOPS_DB", "AIFINOPS_CONFIG", "AIFINOPS_WEB_ROOT"):
        env.pop(name, None)
    return env


def run(*args, check=0, cwd=None):
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, env=clean_env(),
                       timeout=600, cwd=cwd)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


def new_token(token_id, *args):
    out = run("serve", "tokens", "new", "--id", token_id, *args).stdout.splitlines()
    token = out[0].removeprefix("token: ")
    return token, out[1]


class Server:
    """`aifinops serve` on a free loopback port; stopped with SIGTERM."""

    def __init__(self, db, policy, web_root, *extra, cwd=None):
        self.proc = subprocess.Popen(
            [AIFINOPS, "serve", "--db", db, "--config", policy, "--listen", "127.0.0.1:0",
             "--web-root", web_root, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=cwd)
        deadline = time.time() + 30
        line = ""
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                # Keep reading what serve prints, so that a full pipe never blocks it.
                self.drain = threading.Thread(target=self.proc.stderr.read, daemon=True)
                self.drain.start()
                return
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"serve did not start: {line}{self.proc.stderr.read()}")

    def get(self, path, token=None, headers=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                return r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.drain.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


def appears(name, text):
    """A team name standing on its own (not inside semantic-search or similar)."""
    return re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", text) is not None


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix="aifinops-api-"))
        cls.db = str(cls.dir / "demo.db")
        run("demo", "--db", cls.db, cwd=cls.dir)
        # The CLI side of the comparisons runs on a copy: `aifinops anomalies` records its
        # run in the ledger, which the served ledger must not see mid-test.
        cls.cli_db = str(cls.dir / "cli.db")
        shutil.copy(cls.db, cls.cli_db)
        cls.admin, admin_line = new_token("ops", "--scope", "admin")
        cls.viewer, viewer_line = new_token("finance", "--scope", "viewer")
        cls.restricted, restricted_line = new_token("search-lead", "--scope", "viewer",
                                                    "--restrict", f"team={VIEWER_TEAM}")
        cls.policy = str(cls.dir / "policy.yaml")
        text = (cls.dir / "demo_policy.yaml").read_text()
        text += "\napi_tokens:\n" + "\n".join([admin_line, viewer_line, restricted_line]) + "\n"
        Path(cls.policy).write_text(text)
        cls.web = cls.dir / "web"
        (cls.web / "assets").mkdir(parents=True)
        (cls.web / "index.html").write_text("<!doctype html><title>aifinops</title>\n")
        (cls.web / "assets" / "app.js").write_text("console.log('dashboard');\n")
        cls.business = str(Path(__file__).resolve().parents[2] / "config" / "business.example.yaml")
        cls.server = Server(cls.db, cls.policy, str(cls.web), "--business", cls.business)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def api(self, path, token=None, status=200):
        code, body, headers = self.server.get(path, token if token is not None else self.admin)
        self.assertEqual(code, status, f"{path}: {body}")
        return body, headers

    def without_server_folders(self, text):
        """The CLI's answer as the API gives it: the server's files by their name only."""
        for path in (self.business, self.db):
            text = text.replace(path, Path(path).name)
        return text

    def cli(self, *args, db=None):
        return run(*args, "--db", db or self.cli_db, "--config", self.policy).stdout

    def test_every_endpoint_answers_json_for_admin_and_viewer(self):
        for token in (self.admin, self.viewer):
            for endpoint in ENDPOINTS:
                body, headers = self.api(f"/api/v1/{endpoint}", token)
                self.assertTrue(headers["Content-Type"].startswith("application/json"))
                self.assertIsInstance(json.loads(body), dict, endpoint)
        dims = json.loads(self.api("/api/v1/dimensions")[0])
        team = next(d for d in dims["dimensions"] if d["name"] == "team")
        self.assertEqual({v["value"] for v in team["values"]} - {"(none)"}, set(TEAMS))
        # The demo organisation has savings to find: recommend runs over the served ledger
        # (named by its file name: the server's folders are not shown).
        recs = json.loads(self.api("/api/v1/recommendations")[0])
        self.assertTrue(recs["recommendations"])
        self.assertEqual(recs["inputs"]["ledger"], Path(self.db).name)
        reconcile = json.loads(self.api("/api/v1/reconcile?grain=none")[0])
        self.assertIn("rows", reconcile)

    def test_api_json_is_the_cli_json_byte_for_byte(self):
        # maturity first: the CLI's anomalies run below records a note maturity reads.
        cases = [
            ("maturity", ["maturity", "--business", self.business], ""),
            ("report", ["report", "--by", "team,model", "--metric", "effective_cost",
                        "--from", "2026-09-01", "--to", "2026-10-01", "--grain", "week",
                        "--filter", "environment=production"],
             "by=team,model&metric=effective_cost&from=2026-09-01&to=2026-10-01&grain=week"
             "&filter=environment=production"),
            ("report", ["report", "--by", "team", "--by", "project", "--metric", "tokens"],
             "by=team&by=project&metric=tokens"),
            ("report", ["report", "--by", "team", "--period", "2026-10", "--compare", "previous"],
             "by=team&period=2026-10&compare=previous"),
            ("report", ["report", "--by", "team", "--period", "2026-10", "--allocated"],
             "by=team&period=2026-10&allocated=true"),
            ("kpi", ["kpi", "--period", "2026-10", "--by", "model", "--business", self.business],
             "period=2026-10&by=model"),
            ("budgets", ["budgets", "status", "--as-of", "2026-10-20"], "as-of=2026-10-20"),
            ("forecast", ["forecast", "--by", "team", "--horizon", "60d", "--top", "3"],
             "by=team&horizon=60d&top=3"),
            ("tags/audit", ["tags", "audit", "--period", "2026-10"], "period=2026-10"),
            ("anomalies", ["anomalies", "--by", "team", "--since", "2026-08-01"],
             "by=team&since=2026-08-01"),
        ]
        for endpoint, args, query in cases:
            with self.subTest(endpoint=endpoint, query=query):
                expected = self.without_server_folders(self.cli(*args, "--format", "json"))
                body, _ = self.api(f"/api/v1/{endpoint}?{query}")
                self.assertEqual(body, expected)
        # recommend names the ledger it read: the CLI reads the served file itself (recommend
        # and reconcile never write).
        cases = [
            (["recommend", "--config", self.policy, "--business", self.business],
             "recommendations", ""),
            (["recommend", "--config", self.policy, "--kind", "commitment,model-fit",
              "--window", "60d", "--business", self.business], "recommendations",
             "kind=commitment,model-fit&window=60d"),
            (["reconcile"], "reconcile", ""),
            (["reconcile", "--by", "provider", "--grain", "month", "--from", "2026-08",
              "--to", "2026-11"], "reconcile", "by=provider&grain=month&from=2026-08&to=2026-11"),
        ]
        for args, endpoint, query in cases:
            with self.subTest(endpoint=endpoint, query=query):
                expected = run(*args, "--format", "json", "--db", self.db).stdout
                expected = self.without_server_folders(expected)
                body, _ = self.api(f"/api/v1/{endpoint}?{query}")
                self.assertEqual(body, expected)

    def test_answers_name_the_server_files_but_not_their_folders(self):
        for token in (self.admin, self.viewer, self.restricted):
            body, _ = self.api("/api/v1/recommendations", token)
            self.assertEqual(json.loads(body)["inputs"]["ledger"], "demo.db")
            self.assertNotIn(str(self.dir), body)
        kpi, _ = self.api("/api/v1/kpi", self.viewer)
        self.assertEqual(json.loads(kpi)["business_files"], ["business.example.yaml"])
        self.assertNotIn(str(Path(self.business).parent), kpi)

    def test_metrics_and_recommendations_are_served_from_the_cache_after_a_change(self):
        db = str(self.dir / "background.db")
        shutil.copy(self.db, db)
        server = Server(db, self.policy, str(self.web))
        try:
            # Warm-up computes both at start; the first calls find them cached.
            deadline = time.time() + 120
            while time.time() < deadline:
                status = [server.get(p, self.viewer)[2]["X-Aifinops-Cache"]
                          for p in ("/metrics", "/api/v1/recommendations")]
                if status == ["hit", "hit"]:
                    break
                time.sleep(0.2)
            self.assertEqual(status, ["hit", "hit"])
            extra = self.dir / "extra-metrics.csv"
            extra.write_text(
                "BillingAccountId,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,"
                "ProviderName,ServiceName,BilledCost,EffectiveCost,ListCost,ContractedCost,Tags\n"
                "acct-1,USD,2026-10-05T00:00:00Z,2026-10-05T01:00:00Z,Usage,OpenAI,OpenAI API,"
                "1000,1000,1000,1000,\"{\"\"team\"\":\"\"metrics-team\"\"}\"\n")
            run("ingest", str(extra), "--db", db, "--config", self.policy)
            # A scrape right after the change never waits: the last text, or the new one.
            code, _, headers = server.get("/metrics", self.viewer)
            self.assertEqual(code, 200)
            self.assertIn(headers["X-Aifinops-Cache"], ("hit", "stale"))
            deadline = time.time() + 120
            body = ""
            while time.time() < deadline:
                code, body, headers = server.get("/metrics", self.viewer)
                if "metrics-team" in body:
                    break
                time.sleep(0.2)
            self.assertIn('value="metrics-team"', body)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_kpi_trend_is_each_months_kpis_in_one_call(self):
        body, _ = self.api("/api/v1/kpi?period=2026-10&trend=3", self.viewer)
        answer = json.loads(body)
        self.assertEqual([t["month"] for t in answer["trend"]], ["2026-08", "2026-09", "2026-10"])
        for month in answer["trend"]:
            alone = json.loads(self.api(f"/api/v1/kpi?period={month['month']}", self.viewer)[0])
            self.assertEqual(
                [(k["id"], k["group"], k["value"]) for k in month["kpis"]],
                [(k["id"], k["group"], k["value"]) for k in alone["kpis"]])
        # The period's own report is unchanged by the trend.
        plain = json.loads(self.api("/api/v1/kpi?period=2026-10", self.viewer)[0])
        self.assertEqual(answer["kpis"], plain["kpis"])
        _, _ = self.api("/api/v1/kpi?trend=3", self.viewer, status=400)
        _, _ = self.api("/api/v1/kpi?period=2026-10&trend=3&format=csv", self.viewer, status=400)

    def test_csv_download_with_access_token_is_the_cli_csv(self):
        code, body, headers = self.server.get(
            f"/api/v1/report?by=team,project&period=2026-10&format=csv&access_token={self.viewer}")
        self.assertEqual(code, 200, body)
        self.assertTrue(headers["Content-Type"].startswith("text/csv"))
        self.assertEqual(body, self.cli("report", "--by", "team,project", "--period", "2026-10",
                                        "--format", "csv"))

    def test_parameter_errors_name_the_parameter(self):
        cases = [
            ("report?by=tema", "by"), ("report?bogus=1", "bogus"), ("report?metric=dollars", "metric"),
            ("report?format=xml", "format"), ("report?from=2026-13", "from"),
            ("report?grain=hour", "grain"), ("report?filter=team", "filter"),
            ("report?db=/etc/passwd", "db"), ("report?config=x.yaml", "config"),
            ("report?allocated=maybe", "allocated"), ("report?compare=next", "compare"),
            ("anomalies?min-impact=-5", "min-impact"), ("forecast?horizon=soon", "horizon"),
            ("budgets?as-of=yesterday", "as-of"), ("kpi?business=/etc/passwd", "business"),
            ("dimensions?period=2026-99", "period"), ("dimensions?by=team", "by"),
            ("recommendations?limit=3", "limit"),
            ("recommendations?rates=/etc/passwd", "rates"),
            ("reconcile?by=team", "by"),
        ]
        for query, parameter in cases:
            with self.subTest(query=query):
                body, headers = self.api(f"/api/v1/{query}", status=400)
                self.assertTrue(headers["Content-Type"].startswith("application/json"))
                error = json.loads(body)["error"]
                self.assertEqual(error["parameter"], parameter, error["message"])
                self.assertTrue(error["message"])

    def test_no_token_unknown_token_and_bad_header_are_401(self):
        for endpoint in ENDPOINTS + ["nope"]:
            code, body, headers = self.server.get(f"/api/v1/{endpoint}")
            self.assertEqual(code, 401, endpoint)
            self.assertIn("Bearer", headers.get("WWW-Authenticate", ""))
            self.assertNotIn("rows", body)
        self.assertEqual(self.server.get("/api/v1/report", "aif_wrong")[0], 401)
        self.assertEqual(self.server.get("/metrics")[0], 401)
        self.assertEqual(self.server.get("/api/v1/report", headers={
            "Authorization": f"Basic {self.admin}"})[0], 401)
        # The stored hash is not a credential.
        digest = hashlib.sha256(self.admin.encode()).hexdigest()
        self.assertEqual(self.server.get("/api/v1/report", digest)[0], 401)
        self.assertEqual(self.server.get(f"/api/v1/report?access_token={self.viewer}")[0], 200)

    def test_unknown_endpoint_is_404_and_outside_the_restriction_is_403(self):
        body, _ = self.api("/api/v1/nope", status=404)
        self.assertIn("report", json.loads(body)["error"]["message"])
        body, _ = self.api("/api/v1/report?filter=team=growth", self.restricted, status=403)
        self.assertEqual(json.loads(body)["error"]["parameter"], "filter")
        self.assertNotIn("rows", body)
        self.api(f"/api/v1/report?filter=team={VIEWER_TEAM}", self.restricted)

    def test_restricted_viewer_never_sees_another_team(self):
        others = [t for t in TEAMS if t != VIEWER_TEAM]
        # The other teams' own totals, as the admin sees them, must not show up either.
        by_team = json.loads(self.api("/api/v1/report?by=team")[0])
        other_numbers = [str(r["effective_cost"]) for r in by_team["rows"] if r["team"] in others]
        queries = [
            "report", "report?by=team", "report?by=team,model&grain=day", "report?by=project",
            "report?by=team&period=2026-10&compare=previous", "report?by=team&allocated",
            "report?by=team&format=csv", "kpi", "kpi?by=team", "kpi?by=model&period=2026-10",
            "kpi?period=2026-10&trend=6", "kpi?by=team&period=2026-10&trend=3",
            "budgets", "budgets?as-of=2026-10-20", "anomalies", "anomalies?by=team",
            "anomalies?by=project&since=2026-06-01", "forecast", "forecast?by=team",
            "tags/audit", "tags/audit?period=2026-10", "maturity", "dimensions",
            "recommendations",
        ]
        for query in queries:
            with self.subTest(query=query):
                body, _ = self.api(f"/api/v1/{query}", self.restricted)
                for team in others:
                    self.assertFalse(appears(team, body), f"{team} in {query}: {body[:2000]}")
                for number in other_numbers:
                    self.assertNotIn(number, body)
        code, metrics, _ = self.server.get("/metrics", self.restricted)
        self.assertEqual(code, 200)
        for team in others:
            self.assertFalse(appears(team, metrics), team)
        # Totals are the team's: the same as the admin's filtered report.
        mine = json.loads(self.api("/api/v1/report", self.restricted)[0])
        admin_filtered = json.loads(self.api(f"/api/v1/report?filter=team={VIEWER_TEAM}")[0])
        self.assertEqual(mine["total"], admin_filtered["total"])
        self.assertNotEqual(mine["total"], by_team["total"])
        dims = json.loads(self.api("/api/v1/dimensions", self.restricted)[0])
        team = next(d for d in dims["dimensions"] if d["name"] == "team")
        self.assertEqual([v["value"] for v in team["values"]], [VIEWER_TEAM])
        budgets = json.loads(self.api("/api/v1/budgets", self.restricted)[0])
        self.assertTrue(all(b["scope"] == {"team": VIEWER_TEAM} for b in budgets["budgets"]))
        self.assertTrue(budgets["budgets"])
        # Recommendations are computed over the team's records only: fewer than the admin's,
        # and every saving the viewer sees is within the team's own spend.
        mine = json.loads(self.api("/api/v1/recommendations", self.restricted)[0])
        every = json.loads(self.api("/api/v1/recommendations")[0])
        self.assertTrue(mine["recommendations"])
        self.assertLess(sum(float(r["monthly_saving"]) for r in mine["recommendations"]),
                        sum(float(r["monthly_saving"]) for r in every["recommendations"]))

    def test_serve_never_reads_a_business_yaml_from_its_working_directory(self):
        # The CLI reads ./business.yaml when no --business is given; serve must not, or a
        # restricted viewer would get every team's business inputs from whatever directory
        # serve was started in.
        workdir = self.dir / "serve-cwd"
        workdir.mkdir(exist_ok=True)
        shutil.copy(self.business, workdir / "business.yaml")
        server = Server(self.db, self.policy, str(self.web), "--no-warm", cwd=str(workdir))
        try:
            for token in (self.restricted, self.admin):
                status, body, _ = server.get("/api/v1/kpi?period=2026-10", token)
                self.assertEqual(status, 200, body)
                self.assertEqual(json.loads(body)["business_files"], [])
                status, body, _ = server.get("/api/v1/recommendations?kind=model-fit", token)
                self.assertEqual(status, 200, body)
                self.assertEqual(json.loads(body)["inputs"]["business"], [])
            # The CLI in the same directory does read it, so the checks above can fail.
            cli = run("kpi", "--db", self.cli_db, "--config", self.policy, "--period", "2026-10",
                      "--format", "json", cwd=str(workdir))
            self.assertEqual(json.loads(cli.stdout)["business_files"], ["business.yaml"])
        finally:
            server.stop()

    def test_openapi_lists_every_path_and_needs_no_token(self):
        code, body, _ = self.server.get("/api/v1/openapi.json")
        self.assertEqual(code, 200)
        doc = json.loads(body)
        self.assertTrue(doc["openapi"].startswith("3."))
        for endpoint in ENDPOINTS:
            self.assertIn(f"/api/v1/{endpoint}", doc["paths"])
        self.assertIn("/metrics", doc["paths"])
        report = {p["name"] for p in doc["paths"]["/api/v1/report"]["get"]["parameters"]}
        self.assertTrue({"by", "metric", "from", "to", "period", "grain", "filter"} <= report)
        self.assertNotIn("db", report)
        self.assertIn("bearer", doc["components"]["securitySchemes"])

    def test_metrics_are_prometheus_text_with_spend_budgets_and_anomalies(self):
        code, body, headers = self.server.get("/metrics", self.viewer)
        self.assertEqual(code, 200, body)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="([^"\\]|\\.)*",?)*\})? '
                            r'-?[0-9.e+-]+$|NaN$')
        names = set()
        for line in body.splitlines():
            if line.startswith("#"):
                self.assertRegex(line, r"^# (HELP|TYPE) \w+ ")
                continue
            self.assertRegex(line, sample)
            names.add(line.split("{")[0].split(" ")[0])
        self.assertTrue({"aifinops_ledger_spend_usd", "aifinops_budget_used_ratio",
                         "aifinops_anomalies_open_total", "aifinops_budget_forecast_ratio"} <= names, names)
        spend = dict(re.findall(r'aifinops_ledger_spend_usd\{month="2026-10",dimension="team",'
                                r'value="([^"]+)"\} ([0-9.]+)', body))
        report = json.loads(self.api("/api/v1/report?by=team&period=2026-10")[0])
        for row in report["rows"]:
            self.assertAlmostEqual(float(spend[row["team"]]), float(row["effective_cost"]), places=4)

    def test_grafana_dashboard_queries_only_metrics_that_exist(self):
        repo = Path(__file__).resolve().parents[2]
        dashboard = json.loads((repo / "config" / "grafana" / "aifinops.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        self.assertGreater(len(exprs), 10)
        _, serve_metrics, _ = self.server.get("/metrics", self.admin)
        known = set(re.findall(r"^# TYPE (\w+) ", serve_metrics, re.M))
        gateway_source = (repo / "src" / "gateway" / "metrics.cc").read_text()
        known |= set(re.findall(r'"(aifinops_gateway_\w+)"', gateway_source))
        known |= {n + "_bucket" for n in known}
        used = {m for e in exprs for m in re.findall(r"aifinops_\w+", e)}
        self.assertTrue(any(m.startswith("aifinops_gateway_") for m in used))
        self.assertTrue(any(m.startswith("aifinops_ledger_") for m in used))
        self.assertEqual(used - known, set())

    def test_make_demo_serves_prints_a_viewer_link_and_stops(self):
        repo = Path(__file__).resolve().parents[2]
        ports = []
        for _ in range(2):
            import socket
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                ports.append(s.getsockname()[1])
        env = clean_env()
        env.update(AIFINOPS=AIFINOPS, DEMO_DIR=str(self.dir / "make_demo"), DEMO_PORT=str(ports[0]),
                   DEMO_GATEWAY_PORT=str(ports[1]), DEMO_SECONDS="2")
        p = subprocess.run(["python3", str(repo / "scripts" / "demo.py")], capture_output=True,
                           text=True, env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        link = re.search(rf"http://127\.0\.0\.1:{ports[0]}/#token=(aif_\w+)", p.stdout)
        self.assertIsNotNone(link, p.stdout[-2000:])
        self.assertIn("local stand-in", p.stdout)
        self.assertIn("make demo: stopped", p.stdout)
        # The printed viewer token is in the served policy as a viewer.
        policy = (self.dir / "make_demo" / "serve_policy.yaml").read_text()
        digest = hashlib.sha256(link.group(1).encode()).hexdigest()
        self.assertIn(f'token_sha256: "{digest}", scope: viewer}}', policy)
        env["DEMO_SERVE"] = "0"
        p = subprocess.run(["python3", str(repo / "scripts" / "demo.py")], capture_output=True,
                           text=True, env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertNotIn("#token=", p.stdout)

    def test_static_files_and_the_single_page_fallback(self):
        code, body, headers = self.server.get("/")
        self.assertEqual((code, headers["Content-Type"].split(";")[0]), (200, "text/html"))
        self.assertIn("aifinops", body)
        code, body, headers = self.server.get("/assets/app.js")
        self.assertEqual((code, headers["Content-Type"].split(";")[0]), (200, "text/javascript"))
        self.assertIn("dashboard", body)
        for path in ("/showback", "/anomalies/2026-10", "/../../etc/passwd", "/assets/missing.js"):
            code, body, _ = self.server.get(path)
            self.assertEqual(code, 200, path)
            self.assertIn("<title>aifinops</title>", body, path)

    def test_answers_are_cached_until_the_ledger_changes(self):
        db = str(self.dir / "cache.db")
        shutil.copy(self.db, db)
        server = Server(db, self.policy, str(self.web))
        try:
            first = server.get("/api/v1/report?by=team", self.viewer)
            second = server.get("/api/v1/report?by=team", self.viewer)
            self.assertEqual((first[2]["X-Aifinops-Cache"], second[2]["X-Aifinops-Cache"]),
                             ("miss", "hit"))
            self.assertEqual(first[1], second[1])
            # A restricted token never gets the unrestricted answer from the cache.
            restricted = server.get("/api/v1/report?by=team", self.restricted)
            self.assertEqual(restricted[2]["X-Aifinops-Cache"], "miss")
            self.assertNotEqual(restricted[1], first[1])
            extra = self.dir / "extra.csv"
            extra.write_text(
                "BillingAccountId,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,"
                "ProviderName,ServiceName,BilledCost,EffectiveCost,ListCost,ContractedCost,Tags\n"
                "acct-1,USD,2026-10-05T00:00:00Z,2026-10-05T01:00:00Z,Usage,OpenAI,OpenAI API,"
                "1000,1000,1000,1000,\"{\"\"team\"\":\"\"new-team\"\"}\"\n")
            run("ingest", str(extra), "--db", db, "--config", self.policy)
            third = server.get("/api/v1/report?by=team", self.viewer)
            self.assertEqual(third[2]["X-Aifinops-Cache"], "miss")
            self.assertIn('"team":"new-team"', third[1])
        finally:
            self.assertEqual(server.stop(), 0)

    def test_tokens_new_prints_the_token_once_and_its_hashed_config_line(self):
        token, line = new_token("team-x", "--scope", "viewer", "--restrict", "team=a",
                                "--restrict", "team=b", "--restrict", "project=p")
        self.assertRegex(token, r"^aif_[0-9A-Za-z]{43}$")
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.assertEqual(line, f'  - {{id: team-x, token_sha256: "{digest}", scope: viewer, '
                               'restrict: {team: [a, b], project: [p]}}')
        self.assertNotIn(token, line)
        bad = run("serve", "tokens", "new", "--id", "x", "--scope", "admin", "--restrict",
                  "team=a", check=2)
        self.assertIn("--restrict", bad.stderr)
        run("serve", "tokens", "new", "--id", "x", "--scope", "root", check=2)

    def test_a_bad_token_entry_stops_serve_with_file_line_and_key(self):
        policy = self.dir / "bad_policy.yaml"
        policy.write_text("api_tokens:\n  - {id: x, token_sha256: plain-text-token, scope: viewer}\n")
        p = run("serve", "--db", self.db, "--config", str(policy), "--listen", "127.0.0.1:0",
                check=1)
        self.assertIn("bad_policy.yaml:2: api_tokens[0].token_sha256", p.stderr)
        p = run("serve", "--db", str(self.dir / "missing.db"), "--config", self.policy, check=1)
        self.assertIn("no ledger at", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
