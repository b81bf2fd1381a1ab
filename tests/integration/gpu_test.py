#!/usr/bin/env python3
"""End-to-end tests of GPU telemetry: the real DCGM and nvidia-smi payloads detected and read,
a bill and a week of telemetry joined by host so that idle-gpu finds exactly the idle host and
its saving, gpu_utilization / energy_kwh / co2e_kg reports, and `ingest --scrape` against a
local HTTP server on 127.0.0.1 serving a real scrape."""
import csv
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest
from decimal import Decimal
from pathlib import Path

AIFINOPS = os.environ.get("AIFINOPS", "build/release/aifinops")
ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "gpu"

HEADER = ["BillingAccountId", "InvoiceIssuerName", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd",
          "ChargeCategory", "ChargeFrequency", "ProviderName", "ServiceName", "ServiceCategory", "SkuId",
          "RegionId", "ResourceId", "PricingCategory", "ConsumedQuantity", "ConsumedUnit", "PricingQuantity",
          "PricingUnit", "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "Tags"]


def run(*args, check=0):
    env = dict(os.environ)
    for name in ("AIFINOPS_DB", "AIFINOPS_CONFIG"):
        env.pop(name, None)
    p = subprocess.run([os.path.abspath(AIFINOPS), *args], capture_output=True, text=True, env=env, timeout=300)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, expected {check}\n{p.stdout}\n{p.stderr}")
    return p


class GpuTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="aifinops-gpu-"))
        self.db = str(self.dir / "ledger.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def report(self, metric, by, *extra):
        out = run("report", "--db", self.db, "--metric", metric, "--by", by, "--format", "json", *extra).stdout
        return json.loads(out)

    def test_real_payloads_are_detected_and_read(self):
        for name, fmt, rows in [("dcgm_scrape_k8s_pod_labels_rtx4000ada.prom", "DCGM exporter text", 5),
                                ("dcgm_scrape_T4_with_prof_fields.prom", "DCGM exporter text", 5),
                                ("dcgm_scrape_L4_kops.prom", "DCGM exporter text", 10),
                                ("nvidia-smi_query-gpu_subset_l40s_load.csv", "nvidia-smi --query-gpu CSV", 1),
                                ("nvidia-smi_query-gpu_full_h100_load.csv", "nvidia-smi --query-gpu CSV", 1)]:
            out = run("ingest", "--db", self.db, "--at", "2025-03-01T10:00:00Z", str(FIX / name)).stdout
            self.assertIn(fmt, out, name)
            self.assertRegex(out, rf"rows read\s+{rows}\n", name)
            self.assertRegex(out, r"quarantined\s+0\n", name)
        k8s = self.report("gpu_memory_peak_mib", "resource,project,workload")
        row = [r for r in k8s["rows"] if r["resource"] == "lke529760-766837-0a634ab30000"][0]
        self.assertEqual((row["project"], row["workload"]), ("default", "cuda"))
        util = self.report("gpu_utilization", "resource")
        by_host = {r["resource"]: Decimal(str(r["gpu_utilization"])) for r in util["rows"]}
        self.assertEqual(by_host["cp-bm14r7"], Decimal("0.91"))
        self.assertEqual(by_host["nvidia-smi_query-gpu_subset_l40s_load"], Decimal("0.09"))

    def test_malformed_samples_are_quarantined_with_line_and_reason(self):
        path = self.dir / "bad.prom"
        path.write_text('# scrape at 2025-03-01T10:00:00Z\n'
                        'DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="h"} 50\n'
                        'DCGM_FI_DEV_GPU_UTIL{gpu="1",Hostname="h"} NaN\n'
                        'DCGM_FI_DEV_POWER_USAGE{gpu="0"} 100\n')
        out = run("ingest", "--db", self.db, str(path)).stdout
        self.assertRegex(out, r"rows read\s+3\n")
        self.assertRegex(out, r"ingested\s+1\n")
        self.assertRegex(out, r"quarantined\s+2\n")
        self.assertIn("bad.prom:3: value \"NaN\" is not a number", out)
        self.assertIn("bad.prom:4: no Hostname label", out)

    def test_a_week_of_telemetry_joined_to_its_bill_finds_the_idle_host(self):
        # The bill: gpu-node-1 (p4d.24xlarge, 8 GPUs) at $32/h, shutdown_eligible=true;
        # gpu-node-2 (same) busy. Daily rows of 24 instance-hours.
        bill = self.dir / "bill.csv"
        with bill.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            for day in range(1, 8):
                for host in ("gpu-node-1", "gpu-node-2"):
                    d = f"2025-03-{day:02d}"
                    w.writerow(["acct", "AWS", "USD", f"{d}T00:00:00Z", f"{d}T23:59:59Z", "Usage", "Usage-Based",
                                "AWS", "Amazon EC2", "Compute", "p4d.24xlarge", "us-east-1", host, "Standard",
                                "24", "Hours", "24", "Hours", "768", "768", "768", "768",
                                '{"team":"research","shutdown_eligible":"true"}'])
        run("ingest", "--db", self.db, str(bill))
        # The telemetry: hourly nvidia-smi readings of 8 GPUs per host, 2% vs 60% busy, 600 W.
        for host, busy in (("gpu-node-1", 2), ("gpu-node-2", 60)):
            log = self.dir / f"{host}.csv"
            lines = ["timestamp, name, uuid, utilization.gpu [%], memory.used [MiB], memory.total [MiB], power.draw [W]"]
            for hour in range(7 * 24):
                stamp = f"2025/03/{1 + hour // 24:02d} {hour % 24:02d}:00:00.000"
                for g in range(8):
                    lines.append(f"{stamp}, NVIDIA A100-SXM4-40GB, GPU-{host}-{g}, {busy} %, 1000 MiB, 40960 MiB, 600.00 W")
            log.write_text("\n".join(lines) + "\n")
            # Logged with `nvidia-smi -l 3600`: --interval says so (a longer gap would be an outage).
            out = run("ingest", "--db", self.db, str(log), "--region", "us-east-1", "--pue", "1.5",
                      "--interval", "1h").stdout
            self.assertRegex(out, r"rows read\s+1,344\n")

        util = {r["resource"]: Decimal(str(r["gpu_utilization"]))
                for r in self.report("gpu_utilization", "resource")["rows"]}
        self.assertEqual(util, {"gpu-node-1": Decimal("0.02"), "gpu-node-2": Decimal("0.6")})
        # Each GPU-hour has a cost: $768 a day over 192 billed GPU-hours = $4.
        self.assertEqual(Decimal(str(self.report("gpu_hours", "resource")["total"])), Decimal(2 * 8 * 168))
        # 16 GPUs x 168 h x 600 W = 1612.8 kWh; x 1.5 x 415.755 g/kWh (us-east-1).
        energy = Decimal(str(self.report("energy_kwh", "region")["total"]))
        self.assertEqual(energy, Decimal("1612.8"))
        co2e = Decimal(str(self.report("co2e_kg", "region")["total"]))
        self.assertEqual(co2e, Decimal("1612.8") * Decimal("1.5") * Decimal("415.755") / 1000)

        recs = json.loads(run("recommend", "--db", self.db, "--kind", "idle-gpu", "--as-of", "2025-03-07",
                              "--format", "json").stdout)
        items = recs["recommendations"] if isinstance(recs, dict) else recs
        self.assertEqual([r["id"] for r in items], ["idle-gpu:gpu-node-1"])
        r = items[0]
        # 8 x 168 idle GPU-hours x $4 = $5,376 a week; x 30 / 7 a month.
        self.assertEqual(Decimal(r["monthly_saving"]), Decimal("23040"))
        self.assertEqual(r["confidence"], "high")
        evidence = {e["label"]: e["value"] for e in r["evidence"]}
        self.assertEqual(evidence["shutdown list"], "yes")

        # A higher threshold takes gpu-node-2 in too; rightsize finds nothing cheaper that fits.
        recs = json.loads(run("recommend", "--db", self.db, "--kind", "idle-gpu", "--as-of", "2025-03-07",
                              "--idle-threshold", "70", "--format", "json").stdout)
        items = recs["recommendations"] if isinstance(recs, dict) else recs
        self.assertEqual(sorted(r["id"] for r in items), ["idle-gpu:gpu-node-1", "idle-gpu:gpu-node-2"])

    def test_scrape_reads_a_local_exporter_repeatedly(self):
        body = (FIX / "dcgm_scrape_T4_with_prof_fields.prom").read_bytes()
        served = []

        class Exporter(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                served.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Exporter)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/metrics"
            out = run("ingest", "--db", self.db, "--scrape", url, "--duration", "600ms", "--interval", "200ms").stdout
        finally:
            server.shutdown()
            server.server_close()
        self.assertEqual(served, ["/metrics"] * 3)
        self.assertIn("DCGM exporter scrape", out)
        self.assertRegex(out, r"rows read\s+15\n")
        util = self.report("gpu_utilization", "resource")
        self.assertEqual(util["rows"][0]["resource"], "cp-bm14r7")

    def test_bad_flags_name_the_fix(self):
        p = run("ingest", "--db", self.db, "--interval", "soon", str(FIX / "dcgm_scrape_L4_kops.prom"), check=2)
        self.assertIn("--interval soon", p.stderr)
        p = run("ingest", "--db", self.db, check=2)
        self.assertIn("FILE or --scrape URL is required", p.stderr)


class GpuDemoTest(unittest.TestCase):
    """`aifinops demo` writes GPU telemetry joined to its bill: the GPU page and idle-gpu /
    rightsize have data out of the box."""

    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix="aifinops-gpu-demo-"))
        cls.db = str(cls.dir / "demo.db")
        cls.out = run("demo", "--db", cls.db, "--keep").stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def recommend(self, kind):
        recs = json.loads(run("recommend", "--db", self.db, "--kind", kind, "--format", "json").stdout)
        return recs["recommendations"] if isinstance(recs, dict) else recs

    def test_demo_ingests_its_telemetry_without_loss(self):
        self.assertRegex(self.out, r"GPU telemetry: \d+ hosts, \d+ GPUs in 3 regions \(us-east-1, eastus, us-central1\), "
                                   r"hourly DCGM scrapes .* 0 quarantined\)")
        self.assertRegex(self.out, r"Self-hosted inference: llama-3.1-8b-instruct on vLLM .*, 0 quarantined\)")
        proms = sorted(self.dir.glob("demo_gpu_telemetry.*.prom"))
        self.assertEqual([p.name for p in proms], ["demo_gpu_telemetry.eastus.prom", "demo_gpu_telemetry.us-central1.prom",
                                                   "demo_gpu_telemetry.us-east-1.prom"])
        self.assertLess(sum(p.stat().st_size for p in proms), 8 << 20)
        self.assertTrue((self.dir / "demo_vllm_traces.jsonl").exists())
        self.assertIn("aifinops recommend --db", self.out)
        # The ledger now holds two demo batches; the demo still recognises it as its own.
        run("demo", "--db", self.db, "--seed", "42", "--out-dir", str(self.dir / "again"))

    def test_idle_gpu_finds_the_idle_pool_with_a_saving(self):
        items = self.recommend("idle-gpu")
        pool = [r for r in items if "persona-a100-" in r["id"]]
        self.assertEqual(len(pool), 2, [r["id"] for r in items])
        for r in pool:
            self.assertGreater(Decimal(r["monthly_saving"]), 0)
            self.assertEqual(r["confidence"], "high")  # the bill gives the cost per GPU-hour
            self.assertEqual({e["label"]: e["value"] for e in r["evidence"]}["shutdown list"], "yes")
        # Busy training hosts are never called idle.
        self.assertFalse([r for r in items if "fm-train-p5" in r["id"]])

    def test_rightsize_finds_the_small_training_job(self):
        items = self.recommend("rightsize")
        hosts = [r for r in items if "research-notebook-01" in r["id"]]
        self.assertEqual(len(hosts), 1, [r["id"] for r in items])
        self.assertGreater(Decimal(hosts[0]["monthly_saving"]), 0)

    def test_batch_and_commitment_find_the_demo_savings(self):
        batch = self.recommend("batch")
        self.assertEqual([r["id"] for r in batch],
                         ["batch:Google Cloud/gemini-2.5-flash/foundation-model/batch_processing"])
        self.assertGreater(Decimal(batch[0]["monthly_saving"]), 0)
        # The on-demand GPU fleet runs around the clock: reserving part of it pays.
        commitment = self.recommend("commitment")
        self.assertTrue(any("H100" in r["title"] and Decimal(r["monthly_saving"]) > 0 for r in commitment),
                        [r["title"] for r in commitment])

    def test_energy_and_emissions_by_team_have_values(self):
        # Telemetry carries the team (a namespace per team) and its region's grid intensity.
        for metric in ("energy_kwh", "co2e_kg"):
            out = run("report", "--db", self.db, "--metric", metric, "--by", "team", "--format", "json").stdout
            rows = {r["team"]: Decimal(str(r[metric])) for r in json.loads(out)["rows"]}
            for team in ("ml-research", "code-assist", "search", "support-bot"):
                self.assertGreater(rows.get(team, Decimal(0)), 0, (metric, rows))
            # Untagged GPUs (the sandbox) stay "(none)", and are the smaller part.
            named = sum(v for k, v in rows.items() if k != "(none)")
            self.assertGreater(named, 10 * rows.get("(none)", Decimal(0)), rows)

    def test_self_hosted_cluster_is_set_beside_api_prices(self):
        items = self.recommend("self-hosted")
        self.assertEqual([r["id"] for r in items], ["self-hosted:ticket-summarizer/llama-3.1-8b-instruct"])
        r = items[0]
        self.assertGreater(Decimal(r["monthly_saving"]), 0)
        evidence = {e["label"]: e["value"] for e in r["evidence"]}
        self.assertIn("over 672 observed GPU-hours (telemetry)", evidence["mean GPU utilisation"])
        self.assertIn("14 days with GPU cost and tokens", evidence["period"])
        self.assertIn("the same model", evidence["API: meta.llama3-1-8b-instruct-v1:0 (bedrock)"])

    def test_gpu_utilization_by_resource_has_values(self):
        out = run("report", "--db", self.db, "--metric", "gpu_utilization", "--by", "resource",
                  "--format", "json").stdout
        util = {r["resource"]: Decimal(str(r["gpu_utilization"])) for r in json.loads(out)["rows"]}
        self.assertGreaterEqual(len(util), 15)
        self.assertGreater(util["fm-train-p5-01"], Decimal("0.8"))
        self.assertLess(util["persona-a100-01"], Decimal("0.1"))
        self.assertTrue(all(Decimal(0) <= v <= 1 for v in util.values()))


if __name__ == "__main__":
    unittest.main()
