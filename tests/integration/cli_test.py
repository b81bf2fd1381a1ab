#!/usr/bin/env python3
"""End-to-end tests of the aifinops binary: ingest, report, prices and demo as a user runs
them. Sums are checked against an independent computation with Python's decimal module."""
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from decimal import Decimal
from pathlib import Path

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "focus"
SAMPLES = sorted(FIXTURES.rglob("*.csv"))
NULLS = {"", "NULL", "null", "Null"}
CENT = Decimal("0.01")


def run(*args, env=None, check=None):
    e = dict(os.environ)
    e.pop("AIFINOPS_DB", None)
    if env:
        e.update(env)
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, env=e, timeout=600)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


def independent_sum(path, column):
    with open(path, newline="", encoding="utf-8-sig") as f:
        total = Decimal(0)
        for row in csv.DictReader(f):
            v = row.get(column)
            if v not in NULLS and v is not None and row.get("ChargePeriodStart") not in NULLS:
                total += Decimal(v)
        return total


class CliTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-cli-"))
        self.db = str(self.dir / "ledger.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def report_json(self, *args, db=None):
        p = run("report", "--db", db or self.db, "--format", "json", *args, check=0)
        return json.loads(p.stdout)

    def test_report_totals_equal_an_independent_sum_on_every_focus_sample(self):
        self.assertGreaterEqual(len(SAMPLES), 12)
        for sample in SAMPLES:
            with self.subTest(sample=sample.name):
                db = str(self.dir / (sample.stem + ".db"))
                out = run("ingest", str(sample), "--db", db, check=0).stdout
                self.assertIn("quarantined      0", out)
                for metric, column in (("billed_cost", "BilledCost"), ("effective_cost", "EffectiveCost")):
                    expected = independent_sum(sample, column)
                    got = Decimal(str(self.report_json("--metric", metric, db=db)["total"]))
                    # Equal to the cent; beyond that, only the nano-unit rounding of values
                    # written with more than 9 decimals may differ.
                    self.assertEqual(got.quantize(CENT), expected.quantize(CENT), f"{metric} of {sample.name}")
                    self.assertLessEqual(abs(got - expected), Decimal("0.000001"))
                    by_service = self.report_json("--metric", metric, "--by", "service,month", db=db)
                    self.assertEqual(sum(Decimal(str(r[metric])) for r in by_service["rows"]), got)

    def test_focus_sample_reports_its_conformance_problems_and_keeps_every_row(self):
        out = run("ingest", str(FIXTURES / "focus-1.0-sample" / "focus_sample.csv"), "--db", self.db, check=0).stdout
        self.assertIn("rows read        1,000", out)
        self.assertIn("ingested         1,000", out)
        self.assertIn("Id: custom column without the x_ prefix", out)
        self.assertIn("literal NULL used for an empty value", out)
        self.assertIn("ChargePeriodStart: date-time without a time zone", out)
        # Tags such as {"environment": "dev"} land in the canonical dimension.
        rows = self.report_json("--by", "environment")["rows"]
        self.assertIn("dev", {r["environment"] for r in rows})

    def test_policy_adds_aliases_and_custom_dimensions(self):
        policy = self.dir / "policy.yaml"
        policy.write_text("dimensions:\n"
                          "  team: {aliases: [business_unit]}\n"
                          "  app: {aliases: [application]}\n")
        sample = str(FIXTURES / "focus-1.0-sample" / "focus_sample.csv")
        run("ingest", sample, "--db", self.db, "--config", str(policy), check=0)
        teams = {r["team"] for r in self.report_json("--by", "team")["rows"]}
        self.assertIn("ViennaAI", teams)  # {"business_unit": "ViennaAI"} in the sample's tags
        p = run("report", "--db", self.db, "--config", str(policy), "--by", "app", "--format", "json", check=0)
        apps = {r["app"] for r in json.loads(p.stdout)["rows"]}
        self.assertIn("BrightLensMatrix", apps)
        policy.write_text("dimensions:\n  team: {aliasses: [x]}\n")
        p = run("report", "--db", self.db, "--config", str(policy))
        self.assertEqual(p.returncode, 1)
        self.assertIn("dimensions.team.aliasses: unknown key", p.stderr)

    def test_same_file_twice_is_ingested_once(self):
        sample = str(FIXTURES / "focus-1.0-sample" / "focus_sample.csv")
        run("ingest", sample, "--db", self.db, check=0)
        before = self.report_json()["total"]
        out = run("ingest", sample, "--db", self.db, check=0).stdout
        self.assertIn("already ingested", out)
        gz = self.dir / "sample.csv.gz"
        with open(sample, "rb") as f, gzip.open(gz, "wb") as g:
            g.write(f.read())
        self.assertIn("already ingested", run("ingest", str(gz), "--db", self.db, check=0).stdout)
        self.assertEqual(self.report_json()["total"], before)

    def test_quarantine_counts_reconcile_and_strict_fails_with_exit_3(self):
        bad = self.dir / "bad.csv"
        bad.write_text("ChargePeriodStart,BilledCost,EffectiveCost,ServiceName\n"
                       "2025-01-01T00:00:00Z,1.00,1.00,A\n"
                       "2025-01-01T00:00:00Z,\"1,2\",1.00,A\n"
                       "not-a-date,1.00,1.00,A\n")
        p = run("ingest", str(bad), "--db", self.db, "--strict")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertEqual(self.report_json()["total"], 0)
        out = run("ingest", str(bad), "--db", self.db, check=0).stdout
        self.assertIn("rows read        3", out)
        self.assertIn("ingested         1", out)
        self.assertIn("quarantined      2", out)
        self.assertIn(f"{bad}:3: column BilledCost: \"1,2\" is not a decimal number", out)

    def test_a_file_without_the_needed_columns_fails_and_writes_nothing(self):
        bad = self.dir / "not-focus.csv"
        bad.write_text("Name,Amount\nx,1\n")
        p = run("ingest", str(bad), "--db", self.db)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ChargePeriodStart", p.stderr)
        self.assertEqual(self.report_json()["rows"], [])

    def test_replace_swaps_a_changed_export(self):
        f = self.dir / "month.csv"
        f.write_text("ChargePeriodStart,BilledCost,EffectiveCost\n2025-01-01T00:00:00Z,10,10\n")
        run("ingest", str(f), "--db", self.db, check=0)
        f.write_text("ChargePeriodStart,BilledCost,EffectiveCost\n2025-01-01T00:00:00Z,10,10\n2025-01-02T00:00:00Z,5,5\n")
        p = run("ingest", str(f), "--db", self.db)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--replace", p.stderr)
        run("ingest", str(f), "--db", self.db, "--replace", check=0)
        self.assertEqual(Decimal(str(self.report_json()["total"])), Decimal(15))

    def test_report_formats_and_filters(self):
        run("ingest", str(FIXTURES / "focus-1.0-sample" / "focus_sample.csv"), "--db", self.db, check=0)
        p = run("report", "--db", self.db, "--by", "provider,service_category", "--grain", "month",
                "--metric", "billed_cost", "--format", "csv", check=0)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "month,provider,service_category,billed_cost")
        self.assertTrue(all(len(list(csv.reader([l]))[0]) == 4 for l in lines[1:]))
        table = run("report", "--db", self.db, "--by", "provider", check=0).stdout
        self.assertIn("total", table)
        self.assertIn("AWS", table)
        aws = self.report_json("--filter", "provider=AWS", "--metric", "billed_cost")
        all_rows = self.report_json("--by", "provider", "--metric", "billed_cost")["rows"]
        self.assertEqual(aws["total"], [r for r in all_rows if r["provider"] == "AWS"][0]["billed_cost"])
        sept = self.report_json("--from", "2024-09-01", "--to", "2024-10-01", "--metric", "billed_cost")
        self.assertGreater(Decimal(str(sept["total"])), 0)
        none = self.report_json("--from", "2030-01-01")
        self.assertEqual(none["rows"], [])

    def test_reading_a_ledger_that_does_not_exist_is_an_error(self):
        p = run("report", "--db", str(self.dir / "typo.db"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no ledger at", p.stderr)
        self.assertFalse((self.dir / "typo.db").exists())

    def test_the_same_file_by_another_path_is_the_same_file(self):
        f = self.dir / "month.csv"
        f.write_text("ChargePeriodStart,BilledCost,EffectiveCost\n2025-01-01T00:00:00Z,10,10\n")
        run("ingest", str(f), "--db", self.db, check=0)
        f.write_text("ChargePeriodStart,BilledCost,EffectiveCost\n2025-01-01T00:00:00Z,10,10\n2025-01-02T00:00:00Z,5,5\n")
        e = dict(os.environ)
        p = subprocess.run([os.path.abspath(AIFINOPS), "ingest", "./month.csv", "--db", self.db],
                           cwd=self.dir, capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("--replace", p.stderr)
        self.assertEqual(Decimal(str(self.report_json()["total"])), Decimal(10))

    def test_tags_that_are_not_json_are_kept_and_do_not_break_tag_queries(self):
        f = self.dir / "tags.csv"
        f.write_text('ChargePeriodStart,BilledCost,EffectiveCost,Tags\n'
                     '2025-01-01T00:00:00Z,1,1,not json\n'
                     '2025-01-01T00:00:00Z,2,2,"{""Owner"":""ann""}"\n')
        out = run("ingest", str(f), "--db", self.db, check=0).stdout
        self.assertIn("Tags: not a JSON object", out)
        rows = self.report_json("--by", "tag:Owner")["rows"]
        self.assertEqual({r["tag:Owner"]: r["effective_cost"] for r in rows}, {"ann": 2, "(none)": 1})
        hours = self.report_json("--by", "hour")["rows"]
        self.assertEqual(hours[0]["hour"], "2025-01-01T00:00:00Z")

    def test_db_from_the_environment(self):
        sample = str(FIXTURES / "spec-v1.2-examples" / "commitment_discount_scenarios" / "commitment_discount_purchase_scenario_1.csv")
        env = {"AIFINOPS_DB": self.db}
        run("ingest", sample, env=env, check=0)
        p = run("report", "--format", "json", "--metric", "billed_cost", env=env, check=0)
        self.assertEqual(Decimal(str(json.loads(p.stdout)["total"])), Decimal("8760"))

    def test_bad_flags_name_the_flag_and_the_allowed_values(self):
        run("ingest", str(FIXTURES / "spec-v1.2-examples" / "commitment_discount_scenarios" /
                          "commitment_discount_purchase_scenario_1.csv"), "--db", self.db, check=0)
        p = run("report", "--db", self.db, "--metric", "dollars")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--metric dollars", p.stderr)
        self.assertIn("gpu_hours", p.stderr)
        p = run("report", "--db", self.db, "--by", "colour")
        self.assertIn("unknown dimension \"colour\"", p.stderr)
        p = run("report", "--db", self.db, "--format", "xml")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--format", p.stderr)
        p = run("frobnicate")
        self.assertEqual(p.returncode, 2)

    def test_every_command_has_help(self):
        for cmd in (["--help"], ["ingest", "--help"], ["report", "--help"], ["prices", "--help"],
                    ["demo", "--help"]):
            p = run(*cmd, check=0)
            self.assertIn("Usage", p.stdout + p.stderr, cmd)

    def test_prices_show_uses_the_built_in_catalog(self):
        p = run("prices", "show", "gpt-4o-mini", "--db", self.db, check=0)
        self.assertIn("0.15", p.stdout)
        self.assertIn("0.6", p.stdout)
        p = run("prices", "show", "no-such-model-xyz", "--db", self.db)
        self.assertEqual(p.returncode, 1)

    def test_demo_prints_a_showback(self):
        db = str(self.dir / "demo.db")
        p = run("demo", "--db", db, "--seed", "7", check=0)
        self.assertIn("team", p.stdout)
        self.assertIn("total", p.stdout)
        teams = self.report_json("--by", "team", db=db)["rows"]
        self.assertGreaterEqual(len(teams), 4)
        self.assertIn("(none)", {r["team"] for r in teams})  # some spend is untagged
        tokens = self.report_json("--by", "model", "--metric", "tokens", db=db)
        self.assertGreater(tokens["total"], 0)
        gpu = self.report_json("--metric", "gpu_hours", db=db)
        self.assertGreater(gpu["total"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
