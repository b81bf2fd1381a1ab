#!/usr/bin/env python3
"""End-to-end tests of `aifinops forecast` and `aifinops budgets` over the demo ledger:
JSON shapes, the monthly roll-up, budget arithmetic against `report`, and webhook alerts
received by a local HTTP server, sent once per budget, threshold and period."""
import datetime
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest
from decimal import Decimal
from pathlib import Path

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")

POLICY = """\
budgets:
  - {name: ml-research monthly, scope: {team: ml-research}, period: month, amount_usd: 250000,
     alert_at: ["50%", "80%", "100%", "forecast 100%"]}
  - {scope: {team: growth}, period: month, amount_usd: 30000, enforce: soft}
  - {name: support weekly, scope: {team: support-bot}, period: week, amount_usd: 100000}
  - {name: untagged, scope: {team: "(none)"}, period: month, amount_usd: 40000,
     alert_at: ["90%", "forecast 100%"]}
"""


def run(*args, check=None, env=None):
    e = dict(os.environ)
    for name in ("AIFINOPS_DB", "AIFINOPS_CONFIG", "AIFINOPS_WEBHOOK_URL"):
        e.pop(name, None)
    if env:
        e.update(env)
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, env=e, timeout=120)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


class Receiver:
    """A webhook on 127.0.0.1 that records every JSON body posted to it."""

    def __init__(self, status=200):
        self.posts = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.append((self.path, self.headers.get("Content-Type"), body.decode()))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ForecastBudgetsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix="aifinops-fcst-"))
        cls.db = str(cls.dir / "demo.db")
        run("demo", "--db", cls.db, check=0)
        cls.policy = str(cls.dir / "policy.yaml")
        Path(cls.policy).write_text(POLICY)
        months = json.loads(run("report", "--db", cls.db, "--by", "month", "--format", "json", check=0).stdout)
        last_month = max(r["month"] for r in months["rows"])
        year, month = map(int, last_month.split("-"))
        cls.last_month = datetime.date(year, month, 1)
        nxt = datetime.date(year + month // 12, month % 12 + 1, 1)
        cls.data_end = nxt  # the demo covers whole months: the first day without data
        cls.as_of = cls.last_month.replace(day=20)  # the end of the 20th of the last month

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def fresh_db(self, name):
        path = str(self.dir / name)
        shutil.copy(self.db, path)
        return path

    def forecast_json(self, *args):
        return json.loads(run("forecast", "--db", self.db, "--format", "json", *args, check=0).stdout)

    def report_total(self, *args):
        out = json.loads(run("report", "--db", self.db, "--format", "json", *args, check=0).stdout)
        return Decimal(str(out["total"]))

    # --- forecast --------------------------------------------------------------------------

    def test_forecast_starts_after_the_data_and_rolls_days_up_to_months(self):
        out = self.forecast_json("--by", "team")
        self.assertEqual(out["metric"], "effective_cost")
        self.assertEqual(out["group_by"], ["team"])
        self.assertEqual(out["first_day"], self.data_end.isoformat())
        self.assertEqual(out["horizon_days"], 30)
        self.assertEqual(out["history"]["to"], (self.data_end - datetime.timedelta(days=1)).isoformat())
        self.assertEqual(out["history"]["source_table"], "rollup_day")
        teams = {g["keys"]["team"] for g in out["groups"]}
        self.assertTrue({"ml-research", "growth", "support-bot", "(none)"} <= teams)
        for g in out["groups"]:
            self.assertEqual(len(g["daily"]), 30)
            for d in g["daily"]:
                self.assertLessEqual(d["lower"], d["forecast"] + 1e-6)
                self.assertLessEqual(d["forecast"], d["upper"] + 1e-6)
            self.assertAlmostEqual(sum(m["forecast"] for m in g["months"]),
                                   sum(d["forecast"] for d in g["daily"]), delta=0.05)
            self.assertEqual(sum(m["forecast_days"] for m in g["months"]), 30)
            for m in g["months"]:
                self.assertLessEqual(m["lower"], m["forecast"] + 1e-6)
                self.assertLessEqual(m["forecast"], m["upper"] + 1e-6)
            model = g["model"]
            self.assertEqual(model["method"], "smoothing")
            self.assertAlmostEqual(sum(model["weekly"].values()), 7, delta=0.01)
            # Next month's forecast is in the range of the last month's spend.
            last = self.report_total("--filter", f"team={g['keys']['team']}", "--from",
                                     self.last_month.isoformat(), "--to", self.data_end.isoformat())
            self.assertGreater(g["months"][0]["forecast"], 0.5 * float(last), g["keys"])
            self.assertLess(g["months"][0]["forecast"], 1.6 * float(last), g["keys"])

    def test_the_total_forecast_has_a_track_record(self):
        out = self.forecast_json("--backtest", "--origins", "6")
        self.assertEqual(out["group_by"], [])
        [g] = out["groups"]
        bt = g["backtest"]
        self.assertEqual(bt["origins"], 6)
        self.assertEqual(bt["spacing_days"], 7)
        self.assertEqual(bt["horizon_days"], 30)
        self.assertLess(bt["monthly_total_mape"], 0.2)
        self.assertGreater(bt["coverage"], 0.5)
        # The demo bills a commitment on the first of every month: the forecast repeats it.
        self.assertGreater(g["model"]["month_start_charge"], 0)
        first = g["daily"][0]["forecast"]
        self.assertGreater(first, 1.5 * g["daily"][1]["forecast"])

    def test_months_horizon_as_of_and_daily_csv(self):
        as_of = self.as_of.isoformat()
        out = self.forecast_json("--as-of", as_of, "--horizon", "2m", "--filter", "team=growth")
        self.assertEqual(out["filters"], {"team": "growth"})
        self.assertEqual(out["first_day"], (self.as_of + datetime.timedelta(days=1)).isoformat())
        [g] = out["groups"]
        first = g["months"][0]
        self.assertEqual(first["month"], self.last_month.strftime("%Y-%m"))
        self.assertEqual(first["actual_days"], 20)
        expected = self.report_total("--filter", "team=growth", "--from", self.last_month.isoformat(),
                                     "--to", (self.as_of + datetime.timedelta(days=1)).isoformat())
        self.assertAlmostEqual(first["actual"], float(expected), delta=0.01)
        self.assertTrue(first["complete"])
        self.assertAlmostEqual(first["total"], first["actual"] + first["forecast"], delta=0.02)
        csv_out = run("forecast", "--db", self.db, "--as-of", as_of, "--horizon", "2m", "--daily",
                      "--format", "csv", check=0).stdout.splitlines()
        self.assertEqual(csv_out[0], "day,forecast,lower,upper")
        self.assertEqual(len(csv_out) - 1, out["horizon_days"])
        table = run("forecast", "--db", self.db, "--by", "team", "--backtest", check=0).stdout
        for heading in ("Forecast of effective_cost by team", "History:", "Model inputs", "Backtest"):
            self.assertIn(heading, table)

    def test_forecast_rejects_bad_flags(self):
        for args in (["--horizon", "0d"], ["--horizon", "30x"], ["--interval", "150"], ["--by", "month"],
                     ["--metric", "dollars"], ["--as-of", "yesterday"]):
            with self.subTest(args=args):
                p = run("forecast", "--db", self.db, *args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("aifinops: error:", p.stderr)
        p = run("forecast", "--db", str(self.dir / "missing.db"))
        self.assertEqual(p.returncode, 1)

    # --- budgets status ------------------------------------------------------------------

    def status(self, db=None, *args):
        return json.loads(run("budgets", "status", "--db", db or self.db, "--config", self.policy,
                              "--as-of", self.as_of.isoformat(), "--format", "json", *args, check=0).stdout)

    def test_status_matches_report_and_forecasts_the_rest_of_the_period(self):
        out = self.status()
        self.assertEqual(out["as_of"], (self.as_of + datetime.timedelta(days=1)).isoformat() + "T00:00:00Z")
        budgets = {b["name"]: b for b in out["budgets"]}
        self.assertEqual(set(budgets), {"ml-research monthly", "team=growth (month)", "support weekly", "untagged"})
        to = (self.as_of + datetime.timedelta(days=1)).isoformat()
        for name, team in (("ml-research monthly", "ml-research"), ("team=growth (month)", "growth"),
                           ("untagged", "(none)")):
            b = budgets[name]
            self.assertEqual(b["period"], "month")
            self.assertEqual(b["period_start"], self.last_month.isoformat())
            self.assertEqual(b["days_elapsed"], 20)
            expected = self.report_total("--filter", f"team={team}", "--from", self.last_month.isoformat(), "--to", to)
            self.assertEqual(Decimal(str(b["actual_usd"])), expected, name)
            self.assertAlmostEqual(b["used_percent"], float(expected / Decimal(str(b["amount_usd"])) * 100), delta=0.01)
            self.assertGreater(b["forecast_usd"], float(expected))
            self.assertLessEqual(b["forecast_lower_usd"], b["forecast_usd"])
            self.assertGreaterEqual(b["forecast_upper_usd"], b["forecast_usd"])
            for t in b["thresholds"]:
                value = b["forecast_percent"] if t["on"] == "forecast" else b["used_percent"]
                self.assertEqual(t["crossed"], value >= t["percent"], (name, t))
            self.assertEqual(b["forecast_inputs"]["method"], "smoothing")
        week = budgets["support weekly"]
        self.assertEqual(week["period"], "week")
        self.assertEqual(week["days_in_period"], 7)
        monday = self.as_of - datetime.timedelta(days=self.as_of.weekday())
        self.assertEqual(week["period_start"], monday.isoformat())
        growth = budgets["team=growth (month)"]
        if growth["forecast_usd"] >= 30000 and growth["actual_usd"] < 30000:
            self.assertIsNotNone(growth["projected_exhaustion"])
        text = run("budgets", "status", "--db", self.db, "--config", self.policy, "--as-of",
                   self.as_of.isoformat(), check=0).stdout
        self.assertIn("ml-research monthly", text)
        self.assertIn(f"the end of {self.as_of.isoformat()}", text)
        csv_lines = run("budgets", "status", "--db", self.db, "--config", self.policy, "--as-of",
                        self.as_of.isoformat(), "--format", "csv", check=0).stdout.splitlines()
        self.assertTrue(csv_lines[0].startswith("budget,scope,period,period_start,amount_usd,actual_usd"))
        self.assertEqual(len(csv_lines), 5)

    # --- budgets alert -------------------------------------------------------------------

    def alert(self, db, *args, check=0):
        return run("budgets", "alert", "--db", db, "--config", self.policy, "--as-of",
                   self.as_of.isoformat(), *args, check=check)

    def test_alerts_post_slack_json_once_per_budget_threshold_and_period(self):
        db = self.fresh_db("alerts.db")
        crossed = {b["name"]: [t["label"] for t in b["thresholds"] if t["crossed"]]
                   for b in self.status(db)["budgets"]}
        expected_posts = sum(1 for labels in crossed.values() if labels)
        self.assertGreaterEqual(expected_posts, 2)
        receiver = Receiver()
        try:
            out = json.loads(self.alert(db, "--webhook", receiver.url, "--format", "json").stdout)
            self.assertEqual(len(receiver.posts), expected_posts)
            self.assertFalse(out["dry_run"])
            self.assertEqual(out["webhook"], receiver.url.split("/services")[0])
            self.assertEqual(sorted((a["budget"], a["threshold"]) for a in out["alerts"]),
                             sorted((n, l) for n, labels in crossed.items() for l in labels))
            self.assertTrue(all(a["state"] == "sent" for a in out["alerts"]))
            for path, content_type, body in receiver.posts:
                self.assertEqual(path, "/services/T000/B000/secret")
                self.assertEqual(content_type, "application/json")
                message = json.loads(body)
                self.assertIsInstance(message["text"], str)
                self.assertEqual(message["blocks"][0]["type"], "header")
                self.assertTrue(any(name in message["text"] for name in crossed))
            # A second run has nothing new to say, and says so.
            again = json.loads(self.alert(db, "--webhook", receiver.url, "--format", "json").stdout)
            self.assertEqual(len(receiver.posts), expected_posts)
            self.assertTrue(again["alerts"])
            self.assertTrue(all(a["state"] == "already_sent" for a in again["alerts"]))
            self.assertEqual(again["messages"], [])
            status = self.status(db)
            for b in status["budgets"]:
                for t in b["thresholds"]:
                    self.assertEqual(t["alerted"], t["crossed"], (b["name"], t))
        finally:
            receiver.close()

    def test_dry_run_prints_the_messages_and_neither_sends_nor_remembers(self):
        db = self.fresh_db("dry.db")
        receiver = Receiver()
        try:
            p = self.alert(db, "--webhook", receiver.url, "--dry-run")
            self.assertEqual(receiver.posts, [])
            self.assertIn("would_send", p.stdout)
            self.assertIn('{"text":', p.stdout)
            self.assertNotIn("secret", p.stdout)  # a webhook's path is a credential
            out = json.loads(self.alert(db, "--dry-run", "--format", "json").stdout)
            self.assertTrue(out["dry_run"])
            self.assertIsNone(out["webhook"])
            self.assertTrue(out["messages"])
            self.assertEqual(out["messages"][0]["blocks"][0]["type"], "header")
            # Nothing was remembered: the real run sends.
            self.alert(db, "--webhook", receiver.url)
            self.assertEqual(len(receiver.posts), len(out["messages"]))
        finally:
            receiver.close()

    def test_an_undeliverable_alert_fails_and_is_tried_again(self):
        db = self.fresh_db("retry.db")
        with socket.socket() as s:  # bound but not listening: connections are refused
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            p = self.alert(db, "--webhook", f"http://127.0.0.1:{port}/hook", "--timeout", "5", check=1)
        self.assertIn("failed", p.stdout)
        self.assertIn("cannot connect", p.stdout)
        self.assertIn("could not be delivered", p.stderr)
        refusing = Receiver(status=500)
        try:
            p = self.alert(db, "--webhook", refusing.url, check=1)
            self.assertIn("answered 500", p.stdout)
            self.assertNotIn("secret", p.stdout + p.stderr)
        finally:
            refusing.close()
        receiver = Receiver()
        try:
            self.alert(db, "--webhook", receiver.url)
            self.assertGreaterEqual(len(receiver.posts), 2)
        finally:
            receiver.close()

    def test_alert_needs_a_webhook_or_dry_run(self):
        p = self.alert(self.db, check=2)
        self.assertIn("--webhook", p.stderr)
        p = self.alert(self.db, "--webhook", "ftp://example.com/x", check=2)
        self.assertIn("https://", p.stderr)
        receiver = Receiver()
        try:
            db = self.fresh_db("env.db")
            run("budgets", "alert", "--db", db, "--config", self.policy, "--as-of", self.as_of.isoformat(),
                env={"AIFINOPS_WEBHOOK_URL": receiver.url}, check=0)
            self.assertTrue(receiver.posts)
        finally:
            receiver.close()

    def test_one_budget_by_name_and_csv_alerts(self):
        out = self.status(None, "--budget", "untagged", "--budget", "support weekly")
        self.assertEqual([b["name"] for b in out["budgets"]], ["support weekly", "untagged"])
        p = run("budgets", "status", "--db", self.db, "--config", self.policy, "--budget", "nope")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no budget of that name", p.stderr)
        lines = self.alert(self.db, "--dry-run", "--format", "csv", "--budget", "untagged").stdout.splitlines()
        self.assertEqual(lines[0], "budget,threshold,period_start,state,error")
        self.assertTrue(all(line.startswith("untagged,") and ",would_send," in line for line in lines[1:]))

    def test_policy_from_the_environment_and_no_budgets(self):
        out = json.loads(run("budgets", "status", "--db", self.db, "--as-of", self.as_of.isoformat(),
                             "--format", "json", env={"AIFINOPS_CONFIG": self.policy}, check=0).stdout)
        self.assertEqual(len(out["budgets"]), 4)
        empty = self.dir / "empty.yaml"
        empty.write_text("dimensions: {}\n")
        p = run("budgets", "status", "--db", self.db, "--config", str(empty), "--format", "json", check=0)
        self.assertEqual(json.loads(p.stdout)["budgets"], [])
        self.assertIn("defines no budgets", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
