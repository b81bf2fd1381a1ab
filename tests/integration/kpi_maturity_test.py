#!/usr/bin/env python3
"""End-to-end tests of `aifinops kpi` (R21) and `aifinops maturity` (R23), run as a user runs
them on the demo organisation, with business inputs written for the demo's months. KPI values
are checked against independent sums from `aifinops report` with Python's decimal module."""
import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")
NANO = Decimal("0.000000001")
LEVELS = {"crawl": 1, "walk": 2, "run": 3}
KPI_IDS = {"cost_per_inference", "training_cost_efficiency", "cost_per_token", "cost_per_million_tokens",
           "resource_utilisation", "anomaly_rate", "anomalous_spend", "roi", "cost_per_api_call",
           "time_to_value", "time_to_value_break_even", "time_to_first_prompt", "model_quality_gap"}

# Two AI services billed per call: the paper's examples of cost per inference ($5,000 over
# 100,000 inferences) and cost per API call ($1,200 over 240,000 calls).
CALLS_CSV = """BillingAccountId,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeFrequency,ProviderName,ServiceName,ServiceCategory,ConsumedQuantity,ConsumedUnit,PricingQuantity,PricingUnit,BilledCost,EffectiveCost,ListCost,ContractedCost,Tags
acct-1,USD,{day}T00:00:00Z,{day}T23:00:00Z,Usage,Usage-Based,Google Cloud,Vertex AI,AI and Machine Learning,100000,Requests,100000,Requests,5000,5000,5000,5000,"{{""team"":""rerank-team"",""workload"":""Model_Inference""}}"
acct-1,USD,{day}T00:00:00Z,{day}T23:00:00Z,Usage,Usage-Based,AWS,Amazon SageMaker,AI and Machine Learning,240000,API calls,240000,API calls,1200,1200,1200,1200,"{{""team"":""scoring-team"",""workload"":""Model_Inference""}}"
"""


def run(*args, check=None, cwd=None):
    env = dict(os.environ)
    for name in ("AIFINOPS_DB", "AIFINOPS_CONFIG"):
        env.pop(name, None)
    p = subprocess.run([os.path.abspath(AIFINOPS), *args], capture_output=True, text=True, env=env,
                       timeout=600, cwd=cwd)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


def as_json(p):
    return json.loads(p.stdout, parse_float=Decimal, parse_int=Decimal)


def business_yaml(months):
    """Business inputs for the demo organisation, over the demo's own months."""
    first, last = months[0], months[-1]
    value = ", ".join(f"{m}: {30000 + 6000 * i}" for i, m in enumerate(months))
    return f"""
quality_benchmark: MMLU
model_quality: {{gpt-4o: 88.7, gpt-4o-mini: 82.0, claude-sonnet-4-5: 89, claude-haiku-4-5: 80,
                 o3: 91, gemini-2.5-flash: 84}}
projects:
  support-chatbot:
    started: {first}-01
    value_target_usd_per_month: 50000
    alternative_cost_usd_per_day: 2500
    value_usd: {{{value}}}
  code-copilot:
    started: {first}-01
    deployed: {first}-15
training_runs:
  - {{name: fm-run, scope: {{project: foundation-model, workload: training}}, from: {last}-01, to: {last}-10,
     accuracy: 95}}
workloads:
  - {{name: ticket-triage, required_quality: 60}}
gpu_busy_hours:
  - {{name: research-gpus, scope: {{team: ml-research}}, month: {last}, busy_gpu_hours: 1000}}
"""


class KpiMaturityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix="aifinops-kpi-"))
        cls.db = str(cls.dir / "demo.db")
        run("demo", "--db", cls.db, check=0, cwd=cls.dir)
        cls.policy = str(cls.dir / "demo_policy.yaml")
        months = as_json(run("report", "--db", cls.db, "--by", "month", "--format", "json", check=0))
        cls.months = sorted(r["month"] for r in months["rows"])
        cls.last = cls.months[-1]
        cls.business = cls.dir / "business.yaml"
        cls.business.write_text(business_yaml(cls.months))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def kpi(self, *args, db=None):
        return as_json(run("kpi", "--db", db or self.db, "--config", self.policy, "--format", "json", *args, check=0))

    def report(self, *args, db=None):
        return as_json(run("report", "--db", db or self.db, "--format", "json", *args, check=0))

    def period_flags(self):
        y, m = map(int, self.last.split("-"))
        end = f"{y + (m == 12):04d}-{m % 12 + 1:02d}"
        return ["--from", self.last, "--to", end]

    @staticmethod
    def rows(report, kpi_id):
        return [k for k in report["kpis"] if k["id"] == kpi_id]

    @staticmethod
    def inputs(kpi):
        return {i["name"]: i["value"] for i in kpi["inputs"]}

    # ---- kpi ----

    def test_every_kpi_is_there_with_formula_inputs_and_exact_values(self):
        r = self.kpi("--period", self.last, "--business", str(self.business))
        self.assertEqual(r["period"]["from"], self.last + "-01")
        self.assertEqual(r["business_files"], [str(self.business)])
        self.assertEqual({k["id"] for k in r["kpis"]}, KPI_IDS)
        for k in r["kpis"]:
            with self.subTest(kpi=k["id"], group=k["group"]):
                for field in ("name", "formula", "unit", "kind", "display", "source", "command", "note"):
                    self.assertIsInstance(k[field], str)
                self.assertTrue(k["formula"])
                # Money and ratios are exact decimal text, never JSON numbers.
                self.assertTrue(k["value"] is None or isinstance(k["value"], str))
                if k["value"] is None:
                    self.assertTrue(k["note"], "a KPI without a value says why")
                for i in k["inputs"]:
                    self.assertIsInstance(i["value"], str)

    def test_cost_per_token_equals_token_billed_cost_over_tokens_from_report(self):
        by = ["--by", "workload,usage_type,operation,service,model", *self.period_flags()]
        cost = {tuple(r[d] for d in ("workload", "usage_type", "operation", "service", "model")): r["effective_cost"]
                for r in self.report(*by)["rows"]}
        tokens = {tuple(r[d] for d in ("workload", "usage_type", "operation", "service", "model")): r["tokens"]
                  for r in self.report(*by, "--metric", "tokens")["rows"]}
        token_cost = sum(cost.get(k, Decimal(0)) for k, t in tokens.items() if t != 0)
        # Tokens whose records cost nothing (the demo's self-hosted vLLM spans: their cost is
        # the GPU bill) are left out of the division, and shown as such.
        unpriced = sum(t for k, t in tokens.items() if t != 0 and cost.get(k, Decimal(0)) == 0)
        self.assertGreater(unpriced, 0)
        total_tokens = sum(tokens.values())
        r = self.kpi("--period", self.last)
        (k,) = self.rows(r, "cost_per_token")
        self.assertEqual(Decimal(self.inputs(k)["token cost"]), token_cost)
        self.assertEqual(Decimal(self.inputs(k)["tokens"]), total_tokens - unpriced)
        self.assertEqual(Decimal(self.inputs(k)["tokens at no recorded cost (left out)"]), unpriced)
        expected = (token_cost / (total_tokens - unpriced)).quantize(NANO, rounding=ROUND_HALF_EVEN)
        self.assertEqual(Decimal(k["value"]), expected)
        models = self.rows(r, "cost_per_million_tokens")
        self.assertGreaterEqual(len(models), 5)
        self.assertEqual(sum(Decimal(self.inputs(m)["tokens"]) for m in models), total_tokens)
        self.assertTrue(all(m["value"] is not None or "self-hosted" in m["note"] for m in models))

    def test_roi_time_to_value_and_break_even_from_business_inputs(self):
        r = self.kpi("--business", str(self.business))
        (roi,) = [k for k in self.rows(r, "roi") if k["group"] == {"project": "support-chatbot"}]
        benefit = sum(Decimal(30000 + 6000 * i) for i in range(len(self.months)))
        cost = self.report("--filter", "project=support-chatbot")["total"]
        self.assertEqual(Decimal(self.inputs(roi)["financial benefit"]), benefit)
        self.assertEqual(Decimal(self.inputs(roi)["cost"]), cost)
        self.assertEqual(Decimal(roi["value"]), ((benefit - cost) * 100 / cost).quantize(NANO, rounding=ROUND_HALF_EVEN))
        # The value reached 50,000 a month in the fourth month: 30,000 + 6,000 x 4 = 54,000.
        ttv = {k["group"]["project"]: k for k in self.rows(r, "time_to_value")}
        self.assertEqual(self.inputs(ttv["support-chatbot"])["value reached"], self.months[4] + "-01")
        self.assertIsNone(ttv["code-copilot"]["value"])  # no value_usd given
        (even,) = self.rows(r, "time_to_value_break_even")
        self.assertEqual(Decimal(even["value"]), (cost / 2500).quantize(NANO, rounding=ROUND_HALF_EVEN))
        ttfp = {k["group"]["project"]: k for k in self.rows(r, "time_to_first_prompt")}
        self.assertEqual(ttfp["code-copilot"]["value"], "14")
        # No deployed: given for the chatbot: its first production spend is the demo's first day.
        self.assertEqual(ttfp["support-chatbot"]["value"], "0")

    def test_training_utilisation_and_quality_gap_use_their_inputs(self):
        r = self.kpi("--period", self.last, "--business", str(self.business))
        (run_kpi,) = self.rows(r, "training_cost_efficiency")
        cost = self.report("--filter", "project=foundation-model", "--filter", "workload=training",
                           "--from", self.last + "-01", "--to", self.last + "-11")["total"]
        self.assertEqual(Decimal(self.inputs(run_kpi)["training cost"]), cost)
        self.assertEqual(Decimal(run_kpi["value"]), (cost / 95).quantize(NANO, rounding=ROUND_HALF_EVEN))
        (util,) = self.rows(r, "resource_utilisation")
        hours = self.report("--metric", "gpu_hours", "--filter", "team=ml-research", *self.period_flags())["total"]
        self.assertEqual(Decimal(self.inputs(util)["provisioned GPU-hours"]), hours)
        self.assertEqual(Decimal(util["value"]), (Decimal(1000) * 100 / hours).quantize(NANO, rounding=ROUND_HALF_EVEN))
        (gap,) = self.rows(r, "model_quality_gap")
        self.assertEqual(gap["group"], {"workload": "ticket-triage"})
        self.assertEqual(Decimal(gap["value"]), Decimal("22"))  # gpt-4o-mini's 82 against 60 needed
        self.assertEqual(self.inputs(gap)["cheapest model meeting the requirement"], "gpt-4o-mini")

    def test_cost_per_inference_and_per_api_call_are_the_papers_examples_for_call_billed_services(self):
        db = str(self.dir / "calls.db")
        shutil.copy(self.db, db)
        calls = self.dir / "calls.csv"
        calls.write_text(CALLS_CSV.format(day=self.last + "-05"))
        run("ingest", str(calls), "--db", db, check=0)
        r = self.kpi("--by", "team", "--period", self.last, db=db)
        inference = {k["group"]["team"]: k for k in self.rows(r, "cost_per_inference")}
        self.assertEqual(inference["rerank-team"]["value"], "0.05")
        api = {k["group"]["team"]: k for k in self.rows(r, "cost_per_api_call")}
        self.assertEqual(api["scoring-team"]["value"], "0.005")
        # No other team counts calls but support-bot, whose self-hosted vLLM spans count requests.
        self.assertEqual(set(api), {"rerank-team", "scoring-team", "support-bot"})
        # Token-billed teams have inference spend but no calls: no value, and the note says why.
        self.assertIsNone(inference["code-assist"]["value"])
        self.assertIn("gateway", inference["code-assist"]["note"])

    def test_table_and_csv(self):
        table = run("kpi", "--db", self.db, "--config", self.policy, "--period", self.last, check=0).stdout
        self.assertIn("Cost per inference = inference cost / inference requests", table)
        self.assertIn("Cost per million tokens", table)
        lines = run("kpi", "--db", self.db, "--config", self.policy, "--period", self.last, "--format", "csv",
                    check=0).stdout
        rows = list(csv.DictReader(io.StringIO(lines)))
        self.assertEqual(list(rows[0].keys()), ["id", "name", "group", "value", "unit", "display", "formula", "inputs",
                                                "source", "command", "note"])
        self.assertTrue(any(r["id"] == "cost_per_token" and r["value"] for r in rows))

    def test_business_yaml_in_the_working_directory_is_read_by_default(self):
        work = self.dir / "cwd"
        work.mkdir(exist_ok=True)
        shutil.copy(self.business, work / "business.yaml")
        p = run("kpi", "--db", self.db, "--config", self.policy, "--format", "json", check=0, cwd=work)
        self.assertEqual(json.loads(p.stdout)["business_files"], ["business.yaml"])

    def test_a_value_csv_adds_to_the_yaml(self):
        value = self.dir / "value.csv"
        value.write_text("project,month,value_usd\nsemantic-search," + self.last + ",25000\n")
        r = self.kpi("--period", self.last, "--business", str(self.business), "--business", str(value))
        projects = {k["group"]["project"] for k in self.rows(r, "roi")}
        self.assertIn("semantic-search", projects)

    def test_bad_inputs_name_the_file_line_and_key(self):
        bad = self.dir / "bad.yaml"
        bad.write_text("projects:\n  chatbot:\n    value_usd: {2026-13: 5}\n")
        p = run("kpi", "--db", self.db, "--business", str(bad), check=1)
        self.assertIn(f"{bad}:3: projects.chatbot.value_usd.2026-13: \"2026-13\" is not a month", p.stderr)
        p = run("kpi", "--db", self.db, "--period", "last-month", check=2)
        self.assertIn("--period last-month: expected a month (2025-10)", p.stderr)
        p = run("kpi", "--db", self.db, "--by", "month", check=2)
        self.assertIn("--period", p.stderr)
        run("kpi", "--db", str(self.dir / "missing.db"), check=1)

    # ---- maturity ----

    def maturity(self, *args, db=None):
        return as_json(run("maturity", "--db", db or self.db, "--config", self.policy, "--format", "json", *args,
                           check=0))

    def test_maturity_scores_every_criterion_with_evidence_and_a_next_step(self):
        m = self.maturity("--business", str(self.business))
        ids = [c["id"] for c in m["criteria"]]
        self.assertEqual(ids, ["allocation_coverage", "budgets", "anomaly_detection", "forecast_accuracy",
                               "gateway_coverage", "automation", "value_tracking"])
        for c in m["criteria"]:
            with self.subTest(criterion=c["id"]):
                self.assertIn(c["level"], LEVELS)
                self.assertTrue(c["evidence"])
                self.assertTrue(c["next_step"])
                self.assertTrue(c["thresholds"])
        self.assertEqual(m["overall"], min((c["level"] for c in m["criteria"]), key=LEVELS.get))
        self.assertEqual(m["score"], sum(LEVELS[c["level"]] for c in m["criteria"]))
        self.assertEqual(m["max_score"], 21)
        self.assertEqual(m["window"]["to"][:7] > m["window"]["from"][:7], True)
        levels = {c["id"]: c["level"] for c in m["criteria"]}
        # The demo is one FOCUS file, with no gateway: crawl on both, whatever the analyses find.
        self.assertEqual(levels["gateway_coverage"], "crawl")
        self.assertEqual(levels["automation"], "crawl")
        self.assertNotEqual(levels["budgets"], "crawl")  # the demo policy has budgets with spend
        self.assertNotEqual(levels["value_tracking"], "crawl")

    def test_kpi_reads_only_and_anomaly_detection_counts_once_it_has_run(self):
        db = str(self.dir / "anomalies.db")
        shutil.copy(self.db, db)
        self.kpi(db=db)
        before = {c["id"]: c for c in self.maturity(db=db)["criteria"]}
        self.assertEqual(before["anomaly_detection"]["level"], "crawl")
        run("anomalies", "--db", db, "--config", self.policy, check=0)
        after = {c["id"]: c for c in self.maturity(db=db)["criteria"]}
        self.assertEqual(after["anomaly_detection"]["level"], "run")

    def test_maturity_table_and_csv(self):
        table = run("maturity", "--db", self.db, "--config", self.policy, check=0).stdout
        self.assertTrue(table.startswith("Maturity: "))
        self.assertIn("next step:", table)
        rows = list(csv.DictReader(io.StringIO(
            run("maturity", "--db", self.db, "--config", self.policy, "--format", "csv", check=0).stdout)))
        self.assertEqual(rows[-1]["id"], "overall")
        self.assertEqual(len(rows), 8)


if __name__ == "__main__":
    unittest.main()
