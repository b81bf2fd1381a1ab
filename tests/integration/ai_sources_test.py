#!/usr/bin/env python3
"""End-to-end tests of the AI usage readers (openai-usage, openai-costs, anthropic-usage,
otlp): each fixture is ingested by the aifinops binary (detected, or named with --format),
then `report --by provider,model --metric tokens --format json` and the cost totals are
checked against sums computed here from the fixtures' own numbers and the shipped price
catalog (config/prices.yaml), with Python's decimal module."""
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
FIX = ROOT / "tests" / "fixtures"
MILLION = Decimal(1_000_000)


def run(*args, check=None):
    env = dict(os.environ)
    env.pop("AIFINOPS_DB", None)
    env.pop("AIFINOPS_CONFIG", None)
    p = subprocess.run([AIFINOPS, *args], capture_output=True, text=True, env=env, timeout=600)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


def catalog_price(model):
    """The per-million prices of one model in config/prices.yaml (its first entry)."""
    text = (ROOT / "config" / "prices.yaml").read_text()
    m = re.search(rf"^  - model: \"?{re.escape(model)}\"?\n((?:    .*\n)+)", text, re.M)
    if not m:
        raise AssertionError(f"{model} is not in config/prices.yaml")
    prices = {}
    for key in ("input", "cached_input", "cache_write", "output"):
        k = re.search(rf"^    {key}: ([\d.eE+-]+)$", m.group(1), re.M)
        if k:
            prices[key] = Decimal(k.group(1))
    return prices


def token_cost(model, uncached, cached, written, output):
    p = catalog_price(model)
    return (uncached * p["input"] + cached * p.get("cached_input", p["input"])
            + written * p.get("cache_write", p["input"]) + output * p["output"]) / MILLION


class AiSourcesTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-ai-sources-"))
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

    def tokens_by_provider_model(self):
        rows = self.report("--by", "provider,model", "--metric", "tokens")["rows"]
        return {(r["provider"], r["model"]): int(r["tokens"]) for r in rows}

    def billed(self, *args):
        return Decimal(str(self.report("--metric", "billed_cost", *args)["total"]))

    def test_openai_usage_page_is_detected_split_and_priced_from_the_catalog(self):
        p, counts = self.ingest(FIX / "openai" / "real_usage_completions_group_by_model.json")
        self.assertIn("OpenAI Usage API", p.stdout)
        self.assertEqual(counts, {"rows read": 4, "ingested": 4, "quarantined": 0})
        tokens = self.tokens_by_provider_model()
        self.assertEqual(tokens[("OpenAI", "gpt-5-2025-08-07")],
                         14350791 + 96969 + 18449801 + 138957 + 13718197 + 121397)
        self.assertEqual(tokens[("OpenAI", "gpt-5-mini-2025-08-07")], 1233391 + 7754)
        expected = (token_cost("gpt-5-2025-08-07", 14350791 - 12464896, 12464896, 0, 96969)
                    + token_cost("gpt-5-2025-08-07", 18449801 - 17526528, 17526528, 0, 138957)
                    + token_cost("gpt-5-2025-08-07", 13718197 - 12887680, 12887680, 0, 121397)
                    + token_cost("gpt-5-mini-2025-08-07", 1233391 - 1091584, 1091584, 0, 7754))
        self.assertEqual(self.billed(), expected.quantize(Decimal("0.000000001")))
        cached = self.report("--metric", "cached_tokens")["total"]
        self.assertEqual(int(cached), 12464896 + 17526528 + 1091584 + 12887680)

    def test_openai_directory_of_pages_quarantines_unpriced_tokens_and_is_idempotent(self):
        pages = FIX / "openai" / "usage_pages"
        p, counts = self.ingest(pages, "--format", "openai-usage")
        self.assertIn("10 pages", p.stdout)
        self.assertEqual(counts, {"rows read": 10, "ingested": 7, "quarantined": 3})
        self.assertIn("no model", p.stdout)
        p, _ = self.ingest(pages, "--format", "openai-usage")
        self.assertIn("identical content", p.stdout)
        ops = {r["operation"]: int(r["requests"])
               for r in self.report("--by", "operation", "--metric", "requests")["rows"]}
        self.assertEqual(ops["image"], 2)
        self.assertEqual(ops["audio"], 2)

    def test_openai_costs_are_billed_exactly(self):
        p, counts = self.ingest(FIX / "openai" / "spec_costs.json")
        self.assertIn("OpenAI Costs API", p.stdout)
        self.assertEqual(counts["ingested"], 1)
        self.assertEqual(self.billed(), Decimal("0.06"))

    def test_anthropic_usage_report_in_openai_token_semantics(self):
        p, counts = self.ingest(FIX / "anthropic" / "docs_admin_usage_report_messages_example.json")
        self.assertIn("Anthropic usage report", p.stdout)
        self.assertEqual(counts, {"rows read": 1, "ingested": 1, "quarantined": 0})
        tokens = self.tokens_by_provider_model()
        self.assertEqual(tokens, {("Anthropic", "claude-sonnet-4-20250514"): 1500 + 1500 + 200 + 500})
        price = catalog_price("claude-sonnet-4-20250514")
        # 1-hour cache writes are billed at twice the input price.
        expected = token_cost("claude-sonnet-4-20250514", 1500, 200, 500, 500) + 1000 * 2 * price["input"] / MILLION
        self.assertEqual(self.billed(), expected)
        self.assertEqual(int(self.report("--metric", "input_tokens")["total"]), 3200)

    def test_otlp_genai_spans_priced_with_dimensions_and_quarantine(self):
        p, counts = self.ingest(FIX / "otlp" / "genai_traces.json")
        self.assertIn("OTLP/JSON traces", p.stdout)
        self.assertEqual(counts, {"rows read": 5, "ingested": 3, "quarantined": 2})
        self.assertIn("span 00F067AA0BA902B8", p.stdout)
        tokens = self.tokens_by_provider_model()
        self.assertEqual(tokens[("OpenAI", "gpt-4o-mini-2024-07-18")], 1500)
        self.assertEqual(tokens[("OpenAI", "text-embedding-3-small")], 5000)
        self.assertEqual(tokens[("Anthropic", "claude-sonnet-4-20250514")], 3700)
        expected = (token_cost("gpt-4o-mini-2024-07-18", 1000, 200, 0, 300)
                    + token_cost("text-embedding-3-small", 5000, 0, 0, 0)
                    + token_cost("claude-sonnet-4-20250514", 1500, 1000, 500, 700))
        self.assertEqual(self.billed(), expected)
        projects = {r["project"]: Decimal(str(r["billed_cost"]))
                    for r in self.report("--by", "project", "--metric", "billed_cost")["rows"]}
        self.assertEqual(set(projects), {"checkout-assistant", "support-bot"})
        # The official OTLP example has no GenAI span: nothing to ingest, no error.
        p, counts = self.ingest(FIX / "otlp" / "otlp_proto_example_trace.json")
        self.assertEqual(counts["rows read"], 0)

    def test_unknown_format_names_the_allowed_values(self):
        p = run("ingest", "--db", self.db, "--format", "nope",
                str(FIX / "otlp" / "genai_traces.json"))
        self.assertNotEqual(p.returncode, 0)
        for name in ("openai-usage", "openai-costs", "anthropic-usage", "otlp"):
            self.assertIn(name, p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
