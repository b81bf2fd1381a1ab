#!/usr/bin/env python3
"""End-to-end tests of the native cloud export readers (aws-cur, azure-cost, gcp-billing,
oci-cost): each sample is ingested without --format (detected from its header), and the
ledger's totals are checked against an independent sum of the export's own cost column with
Python's decimal module, to the cent; `report --by provider,service_category --format json`
is checked for the providers and categories the FOCUS mapping tables give."""
import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from decimal import Decimal
from pathlib import Path

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")
ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "tests" / "fixtures" / "native"
SHARED = Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))
CENT = Decimal("0.01")


def run(*args, check=None):
    env = dict(os.environ)
    env.pop("AIFINOPS_DB", None)
    env.pop("AIFINOPS_CONFIG", None)
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, env=env, timeout=600)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


def column_sum(path, column, skip=lambda row: False):
    total = Decimal(0)
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            if not skip(row) and row[column] not in ("", None):
                total += Decimal(row[column])
    return total


def is_decimal(text):
    try:
        Decimal(text)
        return True
    except Exception:
        return False


class CloudExportsTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-cloud-"))
        self.db = str(self.dir / "ledger.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def ingest(self, path, *extra, check=0):
        p = run("ingest", "--db", self.db, str(path), *extra, check=check)
        counts = {}
        for key in ("rows read", "ingested", "quarantined"):
            m = re.search(rf"^\s*{key}\s+([\d,]+)", p.stdout, re.M)
            if m:
                counts[key] = int(m.group(1).replace(",", ""))
        return p, counts

    def report(self, *args):
        p = run("report", "--db", self.db, "--format", "json", *args, check=0)
        return json.loads(p.stdout)

    def total(self, metric="billed_cost", *args):
        return Decimal(str(self.report("--metric", metric, *args)["total"]))

    def categories(self):
        rows = self.report("--by", "provider,service_category", "--metric", "billed_cost")["rows"]
        return {(r["provider"], r["service_category"]): Decimal(str(r["billed_cost"])) for r in rows}

    def check_sample(self, path, fmt_label, cost_column, rows, quarantined=0, skip=lambda row: False):
        p, counts = self.ingest(path)
        self.assertIn(fmt_label, p.stdout)
        self.assertEqual(counts["rows read"], rows)
        self.assertEqual(counts["quarantined"], quarantined)
        self.assertEqual(counts["rows read"], counts["ingested"] + counts["quarantined"])
        expected = column_sum(path, cost_column, skip)
        got = self.total()
        self.assertEqual(got.quantize(CENT), expected.quantize(CENT), path.name)
        return expected

    def test_aws_legacy_sample_is_detected_and_totals_match_to_the_cent(self):
        path = NATIVE / "aws_cur_anonymized_first250.csv"
        self.check_sample(path, "AWS CUR (legacy columns)", "lineItem/UnblendedCost", 250)
        self.assertEqual(self.total("list_cost").quantize(CENT),
                         column_sum(path, "pricing/publicOnDemandCost").quantize(CENT))
        cats = self.categories()
        self.assertIn(("AWS", "Storage"), cats)          # AmazonS3
        self.assertIn(("AWS", "Integration"), cats)      # AWSQueueService, AmazonSNS
        self.assertIn(("AWS", "Management and Governance"), cats)  # CloudWatch, CloudTrail
        self.assertEqual({k[0] for k in cats}, {"AWS"})

    def test_aws_full_shared_sample_when_available(self):
        path = SHARED / "data" / "focus" / "native-exports" / "aws_cur_anonymized.csv"
        if not path.exists():
            self.skipTest("shared data not present")
        self.check_sample(path, "AWS CUR", "lineItem/UnblendedCost", 1281)

    def test_aws_cur2_commitments_negations_and_quarantine(self):
        path = NATIVE / "aws_cur2_commitments.csv"
        expected = self.check_sample(
            path, "AWS CUR 2.0", "line_item_unblended_cost", 14, quarantined=2,
            skip=lambda r: not is_decimal(r["line_item_unblended_cost"])
            or r["line_item_usage_start_date"] == "not-a-date")
        self.assertEqual(expected, Decimal("487.394"))
        # Effective cost amortises the savings plan and the reservation (converter rules).
        self.assertEqual(self.total("effective_cost"), Decimal("393.394"))
        cats = self.categories()
        self.assertEqual(cats[("AWS", "AI and Machine Learning")], Decimal("50.324"))
        rows = self.report("--by", "model", "--metric", "input_tokens")["rows"]
        tokens = {r["model"]: r["input_tokens"] for r in rows}
        self.assertEqual(tokens.get("claude-3.5-sonnet"), 1500000)
        teams = {r["team"]: Decimal(str(r["billed_cost"]))
                 for r in self.report("--by", "team", "--metric", "billed_cost")["rows"]}
        self.assertEqual(teams["ml-research"], Decimal("403.054"))
        p, _ = self.ingest(path)  # identical content: recognised, nothing written
        self.assertIn("identical content", p.stdout)
        self.assertEqual(self.total(), Decimal("487.394"))
        run("ingest", "--db", str(self.dir / "strict.db"), "--strict", str(path), check=3)

    def test_azure_samples_reproduce_the_export_totals(self):
        small = NATIVE / "azure_ea_actual_small.csv"
        self.check_sample(small, "Azure cost details (EA columns)", "Cost", 11)
        mca = NATIVE / "azure_ea_anonymized.csv"
        p, counts = self.ingest(mca)
        self.assertIn("Azure cost details (MCA columns)", p.stdout)
        self.assertEqual(counts["rows read"], 27)
        both = column_sum(small, "Cost") + column_sum(mca, "CostInBillingCurrency")
        self.assertEqual(self.total().quantize(CENT), both.quantize(CENT))
        cats = self.categories()
        for category in ("Compute", "Storage", "Databases", "Networking"):
            self.assertIn(("Microsoft", category), cats)
        # The reservation purchase is billed but amortised (no effective cost of its own).
        purchase = self.report("--metric", "effective_cost", "--filter", "charge_category=Purchase")
        self.assertEqual(Decimal(str(purchase["total"])), 0)

    def test_gcp_csv_and_json_lines_fold_credits_into_billed_cost(self):
        csv_path = NATIVE / "gcp_billing_export.csv"
        p, counts = self.ingest(csv_path)
        self.assertIn("Google Cloud billing export", p.stdout)
        self.assertEqual((counts["rows read"], counts["ingested"], counts["quarantined"]), (9, 8, 1))
        # Independent: cost plus every credit amount, over the rows whose cost is a number.
        expected = Decimal(0)
        with open(csv_path, newline="") as f:
            for row in csv.DictReader(f):
                if is_decimal(row["cost"]):
                    expected += Decimal(row["cost"])
                    expected += sum((Decimal(str(c["amount"])) for c in json.loads(row["credits"])), Decimal(0))
        self.assertEqual(self.total(), expected)
        cats = self.categories()
        self.assertEqual(cats[("Google Cloud", "AI and Machine Learning")], Decimal("5"))
        self.assertIn(("Google Cloud", "Compute"), cats)
        jsonl = NATIVE / "gcp_billing_export.jsonl"
        p = run("ingest", "--db", str(self.dir / "jsonl.db"), str(jsonl), check=0)
        self.assertIn("JSON lines", p.stdout)
        jl = json.loads(run("report", "--db", str(self.dir / "jsonl.db"), "--format", "json",
                            "--metric", "billed_cost", check=0).stdout)
        self.assertEqual(Decimal(str(jl["total"])), expected)

    def test_oci_cost_report(self):
        path = NATIVE / "oci_cost_report.csv"
        self.check_sample(path, "OCI cost report", "cost/myCost", 6, quarantined=1,
                          skip=lambda r: r["lineItem/intervalUsageStart"].startswith("2025-13"))
        cats = self.categories()
        self.assertEqual(cats[("Oracle", "AI and Machine Learning")], Decimal("1.872"))
        self.assertIn(("Oracle", "Storage"), cats)

    def test_every_provider_in_one_ledger(self):
        for name in ("aws_cur_anonymized_first250.csv", "azure_ea_actual_small.csv",
                     "gcp_billing_export.csv", "oci_cost_report.csv"):
            self.ingest(NATIVE / name)
        providers = {k[0] for k in self.categories()}
        self.assertEqual(providers, {"AWS", "Microsoft", "Google Cloud", "Oracle"})

    def test_a_named_format_that_does_not_fit_is_an_error(self):
        p = run("ingest", "--db", self.db, "--format", "oci-cost",
                str(NATIVE / "azure_ea_actual_small.csv"), check=1)
        self.assertIn("lineItem/intervalUsageStart", p.stderr + p.stdout)
        self.assertIn("nothing was ingested", p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main()
