#!/usr/bin/env python3
"""End-to-end tests of `aifinops anomalies` over the demo ledger: the two anomalies planted
in the synthetic organisation are found on their day, explained by the right model and
resource, and the flags, formats and errors behave as docs/anomalies.md says."""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")

RUNAWAY = re.compile(
    r"^  - (?P<team>\S+) \((?P<project>[^,]+), (?P<environment>\w+)\): (?P<model>\S+) tokens x\d+ "
    r"on (?P<day>\d{4}-\d{2}-\d{2}) in .*; \$(?P<extra>[\d,.]+) above the usual$")
LEFT_RUNNING = re.compile(
    r"^  - (?P<team>\S+) \((?P<project>[^,]+), (?P<environment>\w+)\): \d+ x \S+ \((?P<resource>\S+)\) "
    r"left running 24h for (?P<days>\d+) days from (?P<day>\d{4}-\d{2}-\d{2}); \$(?P<extra>[\d,.]+) above the usual$")

ANOMALY_FIELDS = {"keys", "time", "expected", "lower", "upper", "actual", "impact", "score", "explained_by"}
CONTRIBUTOR_FIELDS = {"dimension", "value", "expected", "actual", "impact", "share"}
RUN_FIELDS = {"metric", "grain", "by", "filters", "since", "direction", "min_impact", "from", "to",
              "series", "points", "found", "total_impact", "anomalies"}


def run(*args, check=None):
    env = dict(os.environ)
    env.pop("AIFINOPS_DB", None)
    env.pop("AIFINOPS_CONFIG", None)
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, env=env, timeout=600)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


def money(text):
    return float(text.replace(",", ""))


class AnomaliesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix="aifinops-anomalies-"))
        cls.db = str(cls.dir / "demo.db")
        out = run("demo", "--db", cls.db, check=0).stdout
        cls.runaway = cls.gpu = None
        for line in out.splitlines():
            if m := RUNAWAY.match(line):
                cls.runaway = m.groupdict()
            if m := LEFT_RUNNING.match(line):
                cls.gpu = m.groupdict()
        if cls.runaway is None or cls.gpu is None:
            raise AssertionError("the demo no longer prints its planted anomalies as expected:\n" + out)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def anomalies(self, *args):
        return json.loads(run("anomalies", "--db", self.db, "--format", "json", *args, check=0).stdout)

    def find(self, doc, day, **keys):
        for a in doc["anomalies"]:
            if a["time"] == day + "T00:00:00Z" and all(a["keys"].get(k) == v for k, v in keys.items()):
                return a
        self.fail(f"no anomaly on {day} for {keys}; found: " +
                  json.dumps([(a["time"], a["keys"], a["score"]) for a in doc["anomalies"]], indent=1))

    def test_finds_the_runaway_loop_and_explains_it_by_the_model(self):
        p = self.runaway
        doc = self.anomalies("--by", "team,environment", "--limit", "0")
        a = self.find(doc, p["day"], team=p["team"], environment=p["environment"])
        explained = {(c["dimension"], c["value"]): c for c in a["explained_by"]}
        self.assertIn(("model", p["model"]), explained, a["explained_by"])
        self.assertGreater(explained[("model", p["model"])]["share"], 0.9)
        self.assertEqual(a["explained_by"][0]["dimension"], "model", "the most specific dimension first")
        # The impact is the planted extra cost, give or take the baseline's error.
        self.assertAlmostEqual(a["impact"] / money(p["extra"]), 1.0, delta=0.15)
        self.assertAlmostEqual(a["actual"] - a["expected"], a["impact"], delta=0.02)
        self.assertGreater(a["actual"], a["upper"])
        self.assertLess(a["lower"], a["expected"])
        # Also in the team's series alone.
        a = self.find(self.anomalies("--by", "team", "--limit", "0"), p["day"], team=p["team"])
        self.assertIn(("model", p["model"]), {(c["dimension"], c["value"]) for c in a["explained_by"]})

    def test_finds_the_cluster_left_running_and_explains_it_by_its_resources(self):
        p = self.gpu
        doc = self.anomalies("--by", "team,environment", "--limit", "0")
        a = self.find(doc, p["day"], team=p["team"], environment=p["environment"])
        resources = [c for c in a["explained_by"] if c["dimension"] == "resource_name"]
        self.assertTrue(resources, a["explained_by"])
        for c in resources:
            self.assertTrue(c["value"].startswith(p["resource"] + "-"), c)
        self.assertGreater(sum(c["share"] for c in resources), 0.9)
        per_day = money(p["extra"]) / int(p["days"])
        self.assertAlmostEqual(a["impact"] / per_day, 1.0, delta=0.25)

    def test_json_has_the_documented_shape(self):
        doc = self.anomalies("--by", "team", "--limit", "3")
        self.assertEqual(set(doc), RUN_FIELDS)
        self.assertEqual(doc["metric"], "effective_cost")
        self.assertEqual(doc["grain"], "day")
        self.assertEqual(doc["by"], ["team"])
        self.assertEqual(doc["direction"], "up")
        self.assertIsNone(doc["since"])
        self.assertGreater(doc["series"], 3)
        self.assertGreater(doc["points"], 100)
        self.assertGreaterEqual(doc["found"], len(doc["anomalies"]))
        self.assertLessEqual(len(doc["anomalies"]), 3)
        times = [a["time"] for a in doc["anomalies"]]
        self.assertEqual(times, sorted(times, reverse=True), "newest first")
        for a in doc["anomalies"]:
            self.assertEqual(set(a), ANOMALY_FIELDS)
            self.assertEqual(set(a["keys"]), {"team"})
            self.assertGreater(a["impact"], 0)
            self.assertGreater(a["score"], 0)
            for c in a["explained_by"]:
                self.assertEqual(set(c), CONTRIBUTOR_FIELDS)

    def test_since_min_impact_and_filter_narrow_the_report(self):
        p = self.runaway
        later = self.anomalies("--by", "team", "--since", p["day"], "--limit", "0")
        self.assertTrue(all(a["time"] >= p["day"] for a in later["anomalies"]))
        self.find(later, p["day"], team=p["team"])
        self.assertEqual(later["since"], p["day"] + "T00:00:00Z")
        whole = self.anomalies("--by", "team", "--limit", "0")
        self.assertLess(later["points"], whole["points"])

        big = self.anomalies("--by", "team", "--min-impact", "1000000")
        self.assertEqual(big["found"], 0)
        self.assertEqual(big["anomalies"], [])

        one = self.anomalies("--filter", "team=" + p["team"], "--limit", "0")
        self.assertEqual(one["series"], 1)
        self.assertEqual(one["filters"], {"team": p["team"]})
        a = self.find(one, p["day"])
        self.assertNotIn("team", {c["dimension"] for c in a["explained_by"]})

    def test_recurring_charges_are_left_out_unless_asked_for(self):
        # Support fees and tax land on the first of each month.
        def month_starts(doc):
            return [a for a in doc["anomalies"] if a["time"][8:10] == "01" and a["keys"]["team"] == "(none)"]
        self.assertEqual(month_starts(self.anomalies("--by", "team", "--limit", "0")), [])
        with_recurring = month_starts(self.anomalies("--by", "team", "--limit", "0", "--include-recurring"))
        self.assertTrue(with_recurring)

    def test_table_and_csv(self):
        p = self.runaway
        table = run("anomalies", "--db", self.db, "--by", "team", "--limit", "0", check=0).stdout
        self.assertRegex(table.splitlines()[0], r"^day\s+team\s+actual\s+expected\s+impact\s+score\s+explained by$")
        self.assertRegex(table, rf"(?m)^{p['day']}\s+{re.escape(p['team'])}\s+[\d,.]+\s+[\d,.]+\s+\+[\d,.]+\s+[\d.]+\s+"
                                rf"model={re.escape(p['model'])} \(\d+%\)")
        self.assertRegex(table, r"(?m)^\d+ anomal(y|ies) in \d+ series \([\d,]+ effective_cost points scored, "
                                r"data \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}\)\.$")
        limited = run("anomalies", "--db", self.db, "--by", "team", "--limit", "1", check=0).stdout
        self.assertIn("the newest 1 shown (--limit 0 for all)", limited)

        text = run("anomalies", "--db", self.db, "--by", "team,environment", "--format", "csv", "--limit", "0",
                   check=0).stdout
        rows = list(csv.DictReader(io.StringIO(text)))
        self.assertEqual(list(rows[0]), ["time", "team", "environment", "expected", "lower", "upper", "actual",
                                         "impact", "score", "explained_by"])
        row = next(r for r in rows if r["time"].startswith(p["day"]) and r["team"] == p["team"])
        self.assertIn(f"model={p['model']} (", row["explained_by"])
        self.assertAlmostEqual(float(row["actual"]) - float(row["expected"]), float(row["impact"]), delta=0.02)

    def test_no_anomalies_is_a_normal_answer(self):
        out = run("anomalies", "--db", self.db, "--min-impact", "1000000000", check=0).stdout
        self.assertRegex(out, r"^No anomalies in 1 series \(")

    def test_bad_flags_and_missing_ledger(self):
        for args in (["--grain", "week"], ["--by", "month"], ["--min-impact", "-5"], ["--since", "yesterday"],
                     ["--metric", "dollars"], ["--direction", "sideways"], ["--by", "colour"],
                     ["--since", "2026-10-01", "--to", "2026-09-01"], ["--filter", "team"]):
            with self.subTest(args=args):
                p = run("anomalies", "--db", self.db, *args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertTrue(p.stderr.strip(), "says what was wrong")
        p = run("anomalies", "--db", str(self.dir / "missing.db"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no ledger at", p.stderr)
        # The demo's bill has one row per day: hourly seasonality means nothing there.
        p = run("anomalies", "--db", self.db, "--grain", "hour")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--grain day", p.stderr)

    def test_drops_are_reported_on_request(self):
        # The baseline is the same in every direction; only what is reported differs.
        doc = self.anomalies("--by", "team,environment", "--direction", "down", "--limit", "0")
        self.assertEqual(doc["direction"], "down")
        self.assertTrue(all(a["impact"] < 0 and a["score"] < 0 for a in doc["anomalies"]))
        both = self.anomalies("--by", "team,environment", "--direction", "both", "--limit", "0")
        up = self.anomalies("--by", "team,environment", "--limit", "0")
        self.assertEqual(both["found"], up["found"] + doc["found"])


if __name__ == "__main__":
    unittest.main()
