#!/usr/bin/env python3
"""End-to-end tests of `aifinops recommend` and `aifinops reconcile` on FOCUS files built so
that the answers are known: a reserved-instance optimum, a batch saving, a cheaper model that
meets a workload's quality, waste, and a bill of which a known share was never metered."""
import csv
import io
import json
import os
import subprocess
import tempfile
import unittest
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")

HEADER = ["BillingAccountId", "InvoiceIssuerName", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd",
          "ChargeCategory", "ChargeFrequency", "ProviderName", "ServiceName", "ServiceCategory", "SkuId",
          "SkuMeter", "RegionId", "ResourceId", "PricingCategory", "ConsumedQuantity", "ConsumedUnit",
          "PricingQuantity", "PricingUnit", "BilledCost", "EffectiveCost", "ListCost", "ContractedCost",
          "x_Model", "Tags"]


def run(*args, check=None):
    env = dict(os.environ)
    for name in ("AIFINOPS_DB", "AIFINOPS_CONFIG"):
        env.pop(name, None)
    p = subprocess.run([os.path.abspath(AIFINOPS), *args], capture_output=True, text=True, env=env, timeout=600)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


def row(day, cost, *, account="acct-1", issuer="AWS", provider="Amazon Web Services", service="Amazon EC2",
        category="Compute", sku="", meter="", region="us-east-1", resource="", pricing="Standard",
        quantity="0", unit="Hours", model="", tags="", charge="Usage"):
    return [account, issuer, "USD", f"{day}T00:00:00Z", f"{day}T23:59:59Z", charge, "Usage-Based", provider,
            service, category, sku, meter, region, resource, pricing, quantity, unit, quantity, unit, cost, cost,
            cost, cost, model, tags]


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)


class RecommendTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = Path(cls.tmp.name)
        cls.db = str(d / "ledger.db")
        rows = []
        for day in range(1, 31):
            date = f"2025-09-{day:02d}"
            # 4 p5.48xlarge all month and 4 more on 10 days, $10 an instance-hour.
            n = 8 if day <= 10 else 4
            rows.append(row(date, str(n * 24 * 10), sku="USEAST-BoxUsage:p5.48xlarge", quantity=str(n * 24)))
        # A nightly evaluation tagged batch_processing on OpenAI: $300 (batch saves $150).
        rows.append(row("2025-09-15", "300", issuer="OpenAI", provider="OpenAI", service="OpenAI API",
                        category="AI and Machine Learning", unit="Tokens", quantity="1000000", model="gpt-4o-mini",
                        meter="input tokens", tags='{"project":"nightly-eval","purpose":"batch_processing"}'))
        # A sentiment workload on gpt-4o: 10M input and 1M output tokens.
        for meter, quantity, cost in (("input tokens", "10000000", "25"), ("output tokens", "1000000", "10")):
            rows.append(row("2025-09-15", cost, issuer="OpenAI", provider="OpenAI", service="OpenAI API",
                            category="AI and Machine Learning", unit="Tokens", quantity=quantity, model="gpt-4o",
                            meter=meter, tags='{"project":"sentiment"}'))
        # Waste: inter-region transfer and a model endpoint with cost and no traffic.
        rows.append(row("2025-09-15", "120", category="Networking", service="AWS Data Transfer",
                        meter="Inter-Region Data Transfer Out", unit="GB", quantity="6000"))
        rows.append(row("2025-09-15", "500", category="AI and Machine Learning", service="Amazon SageMaker",
                        resource="endpoint-x", unit="Hours", quantity="720"))
        cls.bill = str(d / "bill.csv")
        write_csv(cls.bill, rows)
        run("ingest", cls.bill, "--db", cls.db, check=0)
        cls.business = str(d / "business.yaml")
        Path(cls.business).write_text("workloads:\n  - {name: sentiment, required_quality: 80}\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def recommend(self, *args):
        p = run("recommend", "--db", self.db, "--as-of", "2025-09-30", "--business", self.business,
                "--format", "json", *args, check=0)
        return json.loads(p.stdout)

    def by_id(self, doc):
        return {r["id"]: r for r in doc["recommendations"]}

    def test_commitment_optimum_is_exact(self):
        doc = self.recommend("--kind", "commitment")
        ri = self.by_id(doc)["commitment:aws/USEAST-BoxUsage:p5.48xlarge/us-east-1/reserved_instance"]
        # 3-year at 72%: 8 instances (used 33% of days > 28% break-even) save
        # 8*240*10 + 4*240*20 - 8*240*0.28*30 = $22,272.
        self.assertEqual(ri["monthly_saving"], "22272.00")
        self.assertIn("8 instance(s)", ri["title"])
        evidence = {e["label"]: e["value"] for e in ri["evidence"]}
        self.assertEqual(evidence["1y optimal level"], "4 instance(s)")
        self.assertEqual(evidence["3y break-even utilisation"], "28.0%")
        self.assertEqual(doc["window_days"], 30)
        self.assertEqual(doc["to"], "2025-10-01")

    def test_batch_model_fit_and_waste(self):
        recs = self.by_id(self.recommend())
        self.assertEqual(recs["batch:OpenAI/gpt-4o-mini/nightly-eval/batch_processing"]["monthly_saving"], "150.00")
        fit = recs["model-fit:sentiment/gpt-4o"]
        self.assertIn("gpt-4o-mini", fit["title"])
        self.assertEqual(fit["confidence"], "medium")
        self.assertEqual(recs["waste:idle-endpoint/Amazon Web Services/endpoint-x"]["monthly_saving"], "500.00")
        transfer = [r for r in recs.values() if r["id"].startswith("waste:cross-region/")]
        self.assertEqual([r["monthly_saving"] for r in transfer], ["120.00"])

    def test_sorted_by_saving_and_table_and_csv(self):
        doc = self.recommend()
        savings = [Decimal(r["monthly_saving"]) for r in doc["recommendations"]]
        self.assertEqual(savings, sorted(savings, reverse=True))
        table = run("recommend", "--db", self.db, "--as-of", "2025-09-30", "--business", self.business,
                    "--top", "2", check=0).stdout
        self.assertIn("Recommendations from 2025-09-01 to 2025-10-01", table)
        self.assertIn("more: --top 0 shows all", table)
        rows = list(csv.DictReader(io.StringIO(run("recommend", "--db", self.db, "--as-of", "2025-09-30",
                                                    "--kind", "waste", "--format", "csv", check=0).stdout)))
        self.assertEqual({r["kind"] for r in rows}, {"waste"})

    def test_bad_flags_and_files(self):
        p = run("recommend", "--db", self.db, "--kind", "nope")
        self.assertEqual(p.returncode, 2)
        self.assertIn("known: ", p.stderr)
        self.assertIn("commitment", p.stderr)
        p = run("recommend", "--db", self.db, "--window", "0d")
        self.assertEqual(p.returncode, 2)
        bad = Path(self.tmp.name) / "rates.yaml"
        bad.write_text("batch_discounts:\n  - {provider: openai, discount: 2, source: x}\n")
        p = run("recommend", "--db", self.db, "--rates", str(bad))
        self.assertEqual(p.returncode, 1)
        self.assertIn("rates.yaml:2", p.stderr)
        p = run("recommend", "--db", str(Path(self.tmp.name) / "missing.db"))
        self.assertEqual(p.returncode, 1)

    def test_user_rates_replace_shipped_ones(self):
        rates = Path(self.tmp.name) / "mine.yaml"
        rates.write_text("batch_discounts:\n  - {provider: openai, discount: 0.25, source: contract}\n")
        recs = self.by_id(self.recommend("--kind", "batch", "--rates", str(rates)))
        self.assertEqual(recs["batch:OpenAI/gpt-4o-mini/nightly-eval/batch_processing"]["monthly_saving"], "75.00")


def otlp_span(day, i, input_tokens, output_tokens, model="llama-3.1-8b-instruct", provider="vllm", hour=None):
    start = f"{day}T{(10 + i % 8) if hour is None else hour:02d}:00:00Z"
    nanos = int(datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()) * 10**9
    attrs = [("gen_ai.operation.name", "stringValue", "chat"), ("gen_ai.provider.name", "stringValue", provider),
             ("gen_ai.request.model", "stringValue", model),
             ("gen_ai.usage.input_tokens", "intValue", str(input_tokens)),
             ("gen_ai.usage.output_tokens", "intValue", str(output_tokens))]
    return {"traceId": f"{i:032x}", "spanId": f"{i + 1:016x}", "name": "chat", "kind": 2,
            "startTimeUnixNano": str(nanos), "endTimeUnixNano": str(nanos + 2 * 10**9),
            "attributes": [{"key": k, "value": {t: v}} for k, t, v in attrs]}


class SelfHostedTest(unittest.TestCase):
    """A vLLM cluster (two one-GPU instances tagged project=summarizer, $24 a day each) and its
    OTLP spans (9M input and 1M output tokens a day) for ten days: $480 for 100M tokens, $4.80
    per million, against API prices of Llama 3.1 8B itself and of models that score at least as
    well."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = Path(cls.tmp.name)
        cls.db = str(d / "ledger.db")
        # The self-hosted model at price 0, as docs/unit-economics.md says to register it.
        catalog = d / "self_hosted.yaml"
        catalog.write_text("currency: USD\neffective_from: 2025-01-01\nsource: our vLLM cluster\nmodels:\n"
                           "  - {model: llama-3.1-8b-instruct, provider: self-hosted, mode: chat, input: 0, output: 0}\n")
        run("prices", "import", "catalog", str(catalog), "--db", cls.db, check=0)
        rows = []
        for day in range(1, 11):
            date = f"2025-03-{day:02d}"
            for node in ("vllm-node-1", "vllm-node-2"):
                rows.append(row(date, "24", sku="g6.xlarge", resource=node, quantity="24",
                                tags='{"project":"summarizer","team":"support"}'))
        bill = str(d / "bill.csv")
        write_csv(bill, rows)
        run("ingest", bill, "--db", cls.db, check=0)
        spans = [otlp_span(f"2025-03-{day:02d}", day * 100 + i, 900_000, 100_000)
                 for day in range(1, 11) for i in range(10)]
        export = {"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "summarizer"}}]},
            "scopeSpans": [{"scope": {"name": "vllm"}, "spans": spans}]}]}
        traces = d / "traces.json"
        traces.write_text(json.dumps(export))
        cls.ingest_out = run("ingest", str(traces), "--db", cls.db, "--format", "otlp", check=0).stdout

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def recommend(self, *args):
        p = run("recommend", "--db", self.db, "--as-of", "2025-03-10", "--format", "json", *args, check=0)
        return {r["id"]: r for r in json.loads(p.stdout)["recommendations"]}

    def test_cluster_cost_per_million_tokens_against_api_prices(self):
        recs = self.recommend("--kind", "self-hosted")
        r = recs["self-hosted:summarizer/llama-3.1-8b-instruct"]
        evidence = {e["label"]: e["value"] for e in r["evidence"]}
        self.assertEqual(evidence["self-hosted cost"], "$4.80 per 1M tokens")
        self.assertIn("90,000,000 input, 10,000,000 output, 100 requests (vllm)", evidence["tokens served"])
        self.assertIn("$480.00", evidence["GPU cost (idle time included)"])
        same = evidence["API: meta.llama3-1-8b-instruct-v1:0 (bedrock)"]
        self.assertIn("$0.22 per 1M tokens", same)
        self.assertIn("the same model", same)
        # The cheapest comparable API costs at most Bedrock's $22 for these tokens: the saving
        # over the 10 days is between $458 and $480, i.e. $1,374 to $1,440 a month.
        saving = Decimal(r["monthly_saving"])
        self.assertGreaterEqual(saving, Decimal("1374"))
        self.assertLess(saving, Decimal("1440"))
        self.assertEqual(r["confidence"], "medium")
        self.assertEqual(r["dimensions"], {"project": "summarizer"})

    def test_unit_economics_view(self):
        p = run("recommend", "--db", self.db, "--as-of", "2025-03-10", "--unit-economics", "--format", "json", check=0)
        (row,) = json.loads(p.stdout)["rows"]
        self.assertEqual((row["cluster"], row["model"], row["days"]), ("summarizer", "llama-3.1-8b-instruct", 10))
        self.assertEqual(Decimal(row["self_hosted_per_million"]), Decimal("4.8"))
        self.assertEqual(row["same_model_api"], "meta.llama3-1-8b-instruct-v1:0 (bedrock)")
        self.assertEqual(Decimal(row["same_model_api_per_million"]), Decimal("0.22"))
        self.assertLessEqual(Decimal(row["cheapest_api_per_million"]), Decimal("0.22"))
        table = run("recommend", "--db", self.db, "--as-of", "2025-03-10", "--unit-economics", check=0).stdout
        self.assertIn("self-hosted     $4.80 per 1M tokens", table)
        # Clusters by team: none (the spans carry no team), and the view says why.
        table = run("recommend", "--db", self.db, "--as-of", "2025-03-10", "--unit-economics", "--cluster-by", "team",
                    check=0).stdout
        self.assertIn("No inference cluster", table)

    def test_included_in_every_kind_and_cluster_dimension_is_a_flag(self):
        self.assertIn("self-hosted:summarizer/llama-3.1-8b-instruct", self.recommend())
        # By team, the bill says "support" but the spans carry no team: no cluster joins.
        self.assertEqual(self.recommend("--kind", "self-hosted", "--cluster-by", "team"), {})
        p = run("recommend", "--db", self.db, "--cluster-by", "hour")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--cluster-by", p.stderr)


class BatchOffHoursTest(unittest.TestCase):
    """OTLP spans (hour-level records) of an untagged nightly job at 02:00-04:00 UTC on weekdays,
    and of a daytime app: at the default day grain, the nightly job is found off-hours from the
    hourly records and the daytime app is not."""

    def test_nightly_traffic_found_from_hourly_records(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            db = str(d / "ledger.db")
            spans = {"nightly": [], "daytime": []}
            for day in range(3, 8):  # Monday 2025-03-03 .. Friday
                for i in range(6):
                    spans["nightly"].append(otlp_span(f"2025-03-{day:02d}", day * 100 + i, 1_000_000, 100_000,
                                                      model="gpt-4o-mini", provider="openai", hour=2 + i % 3))
                    spans["daytime"].append(otlp_span(f"2025-03-{day:02d}", day * 100 + 50 + i, 1_000_000, 100_000,
                                                      model="gpt-4o-mini", provider="openai", hour=9 + i))
            export = {"resourceSpans": [
                {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
                 "scopeSpans": [{"scope": {"name": "app"}, "spans": s}]} for name, s in spans.items()]}
            (d / "traces.json").write_text(json.dumps(export))
            run("ingest", str(d / "traces.json"), "--db", db, "--format", "otlp", check=0)
            p = run("recommend", "--db", db, "--kind", "batch", "--as-of", "2025-03-07", "--format", "json", check=0)
            recs = json.loads(p.stdout)["recommendations"]
            self.assertEqual([r["dimensions"].get("project") for r in recs], ["nightly"], recs)
            r = recs[0]
            self.assertEqual(r["confidence"], "low")
            evidence = {e["label"]: e["value"] for e in r["evidence"]}
            self.assertTrue(evidence["off-hours share"].startswith("100.0%"), evidence)
            # 30 requests of 1M input and 0.1M output tokens at gpt-4o-mini's catalog price, half
            # saved, over the 30-day window: a positive figure, below the whole cost.
            self.assertGreater(Decimal(r["monthly_saving"]), 0)


class ReconcileTest(unittest.TestCase):
    """A bill of $1,000 a day for gpt-4o, of which the usage feed metered $750: 25% unmetered."""

    def test_unmetered_share_is_known(self):
        with tempfile.TemporaryDirectory() as tmp:
            db = str(Path(tmp) / "ledger.db")
            bill, usage = Path(tmp) / "bill.csv", Path(tmp) / "usage.csv"
            ai = dict(category="AI and Machine Learning", service="OpenAI API", unit="Tokens")
            write_csv(bill, [row(f"2025-10-0{d}", "1000", issuer="OpenAI", provider="OpenAI", model="gpt-4o-2024-08-06",
                                 quantity="400000000", meter="input tokens", **ai) for d in (1, 2)])
            # Usage without an invoice issuer or billing account: metered (a usage feed).
            write_csv(usage, [row(f"2025-10-0{d}", "750", account="", issuer="", provider="openai", model="gpt-4o",
                                  quantity="300000000", meter="input tokens", tags='{"team":"search"}', **ai) for d in (1, 2)])
            run("ingest", str(bill), "--db", db, check=0)
            run("ingest", str(usage), "--db", db, check=0)
            doc = json.loads(run("reconcile", "--db", db, "--format", "json", check=0).stdout)
            totals = doc["totals"]
            self.assertEqual(totals["billed_cost"], "2000.00")
            self.assertEqual(totals["metered_cost"], "1500.00")
            self.assertEqual(totals["billed_not_metered"], "500.00")
            self.assertAlmostEqual(totals["coverage"], 0.75, places=6)
            self.assertAlmostEqual(totals["attributed_coverage"], 0.75, places=6)
            self.assertEqual(len(doc["rows"]), 2)
            for r in doc["rows"]:
                self.assertEqual((r["provider"], r["model"], r["status"]), ("openai", "gpt-4o", "matched"))
                self.assertEqual(r["token_difference"], 100000000)
            table = run("reconcile", "--db", db, "--grain", "none", check=0).stdout
            self.assertIn("75.0% metered", table)
            self.assertEqual(run("reconcile", "--db", db, "--by", "team").returncode, 2)


if __name__ == "__main__":
    unittest.main()
