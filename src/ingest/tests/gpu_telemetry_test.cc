#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "allocate/tag_policy.h"
#include "core/time.h"
#include "ingest/dcgm.h"
#include "ingest/gpu_samples.h"
#include "ingest/ingest.h"
#include "ingest/nvidia_smi.h"
#include "ledger/ledger.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::ingest {
namespace {

std::string fixture(const std::string& name) {
  return std::string(AIFINOPS_SOURCE_DIR) + "/tests/fixtures/gpu/" + name;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class GpuTelemetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = ledger::open_ledger(dir_.file("l.db"));
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
    options_.gpu.at_ms = *parse_timestamp("2025-03-01T10:00:00Z") * 1000;
  }
  IngestContext context() { return IngestContext{*ledger_, catalog_, policy_}; }

  IngestSummary ingest(const std::string& path, const std::string& format = "auto") {
    options_.format = format;
    auto r = ingest_file(context(), path, options_);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? *r : IngestSummary{};
  }

  ledger::QueryResult query(ledger::Metric metric, std::vector<std::string> by = {}) {
    ledger::QuerySpec spec;
    spec.metric = metric;
    for (auto& b : by) spec.group_by.push_back(*ledger::parse_dimension(b));
    auto r = ledger_->query(spec);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? *r : ledger::QueryResult{};
  }
  std::string total(ledger::Metric metric) { return format_decimal(query(metric).total); }

  testing::TempDir dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  pricing::Catalog catalog_;
  allocate::TagPolicy policy_ = allocate::TagPolicy::defaults();
  IngestOptions options_;
};

TEST_F(GpuTelemetryTest, ReadsAKubernetesDcgmScrapeWithPodLabelsAsDimensions) {
  IngestSummary s = ingest(fixture("dcgm_scrape_k8s_pod_labels_rtx4000ada.prom"));
  EXPECT_EQ(s.format, "DCGM exporter text");
  EXPECT_EQ(s.rows_read, 5);  // GPU_UTIL, FB_USED, FB_FREE, POWER_USAGE, GR_ENGINE_ACTIVE
  EXPECT_EQ(s.rows_ingested, 5);
  EXPECT_EQ(s.rows_quarantined, 0);
  EXPECT_EQ(s.rows_skipped, 20);
  auto by = query(ledger::Metric::kGpuMemoryPeakMib, {"resource", "gpu", "project", "workload", "hour"});
  ASSERT_EQ(by.rows.size(), 1u);
  EXPECT_EQ(by.rows[0].keys, (std::vector<std::string>{"lke529760-766837-0a634ab30000",
                                                       "NVIDIA RTX 4000 Ada Generation", "default", "cuda",
                                                       "2025-03-01T10:00:00Z"}));
  EXPECT_EQ(by.rows[0].value, 1);
  EXPECT_EQ(total(ledger::Metric::kGpuUtilization), "0");
  // One reading covers the default interval (30 s) at 40.979 W: 1229.37 J.
  EXPECT_EQ(total(ledger::Metric::kEnergyKwh), format_decimal(mul_div_round(1'229'370, 10, 36)));
  EXPECT_EQ(total(ledger::Metric::kEffectiveCost), "0");
}

TEST_F(GpuTelemetryTest, GpuUtilWinsOverProfilingActivityAndAutoDetectsEachScrape) {
  IngestSummary t4 = ingest(fixture("dcgm_scrape_T4_with_prof_fields.prom"));
  EXPECT_EQ(t4.rows_read, 5);
  EXPECT_EQ(total(ledger::Metric::kGpuUtilization), "0.91");
  EXPECT_EQ(query(ledger::Metric::kGpuMemoryPeakMib).total, 5120);
  IngestSummary l4 = ingest(fixture("dcgm_scrape_L4_kops.prom"));
  EXPECT_EQ(l4.rows_read, 10);  // two scrapes without times: one reading
  auto hosts = query(ledger::Metric::kGpuUtilization, {"resource"});
  ASSERT_EQ(hosts.rows.size(), 2u);
  EXPECT_EQ(hosts.rows[0].keys[0], "cp-bm14r7");
  EXPECT_EQ(hosts.rows[1].keys[0], "i-030791dc5a37cd257");
  EXPECT_EQ(hosts.rows[1].value, 0);
}

TEST_F(GpuTelemetryTest, ScrapeMarkersMakeHourlyRecordsAndBadSamplesAreQuarantined) {
  const std::string labels = "{gpu=\"0\",UUID=\"GPU-a\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"}";
  const std::string labels_b = "{gpu=\"1\",UUID=\"GPU-b\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"}";
  std::string text = "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n";
  // Four scrapes 15 s apart across 11:00; GPU a at 40%, 60%, 80%, 100%; GPU b idle.
  const char* times[] = {"2025-03-01T10:59:30Z", "2025-03-01T10:59:45Z", "2025-03-01T11:00:00Z",
                         "2025-03-01T11:00:15Z"};
  for (int i = 0; i < 4; ++i) {
    text += std::string("# scrape at ") + times[i] + "\n";
    text += "DCGM_FI_DEV_GPU_UTIL" + labels + " " + std::to_string(40 + 20 * i) + "\n";
    text += "DCGM_FI_DEV_FB_USED" + labels + " " + std::to_string(1000 * (i + 1)) + "\n";
    text += "DCGM_FI_DEV_FB_FREE" + labels + " 80000\n";
    text += "DCGM_FI_DEV_POWER_USAGE" + labels + " 400.5\n";
    text += "DCGM_FI_DEV_GPU_UTIL" + labels_b + " 0\n";
    text += "DCGM_FI_DEV_SM_CLOCK" + labels_b + " 1980\n";
  }
  text += "DCGM_FI_DEV_GPU_UTIL" + labels + " 140\n";                 // line 30: out of range
  text += "DCGM_FI_DEV_POWER_USAGE" + labels + " lots\n";              // 31: not a number
  text += "DCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"GPU-a\" 5\n";          // 32: no closing brace
  text += "DCGM_FI_DEV_GPU_UTIL{gpu=\"3\"} 5\n";                       // 33: no host
  std::string path = dir_.write("scrapes.prom", text);
  IngestSummary s = ingest(path);
  EXPECT_EQ(s.rows_read, 24);
  EXPECT_EQ(s.rows_quarantined, 4);
  EXPECT_EQ(s.rows_ingested, 20);
  EXPECT_EQ(s.rows_read, s.rows_ingested + s.rows_quarantined);
  EXPECT_EQ(s.rows_skipped, 4);
  auto bad = ledger_->quarantined_rows(s.batch_id);
  ASSERT_EQ(bad->size(), 4u);
  EXPECT_EQ((*bad)[0].line, 30);
  EXPECT_EQ((*bad)[0].column, "DCGM_FI_DEV_GPU_UTIL");
  EXPECT_NE((*bad)[0].reason.find("outside 0..100"), std::string::npos);
  EXPECT_EQ((*bad)[1].line, 31);
  EXPECT_NE((*bad)[1].reason.find("\"lots\" is not a number"), std::string::npos);
  EXPECT_NE((*bad)[2].reason.find("closing"), std::string::npos);
  EXPECT_NE((*bad)[3].reason.find("--host"), std::string::npos);

  // GPU a: 10:59:30 and 10:59:45 in the 10:00 hour (15 s each at 40% and 60%), 11:00:00
  // (15 s at 80%) and 11:00:15, the last, covering its previous gap (15 s at 100%).
  auto util = query(ledger::Metric::kGpuUtilization, {"hour"});
  ASSERT_EQ(util.rows.size(), 2u);
  EXPECT_EQ(format_decimal(util.rows[0].value), "0.25");  // (40 + 60 + 0 + 0) / 4 readings of 15 s
  EXPECT_EQ(format_decimal(util.rows[1].value), "0.45");  // (80 + 100 + 0 + 0) / 4
  auto peak = query(ledger::Metric::kGpuMemoryPeakMib, {"hour"});
  EXPECT_EQ(peak.rows[0].value, 2000);
  EXPECT_EQ(peak.rows[1].value, 4000);
  // 400.5 W for 60 s = 24,030 J = 0.006675 kWh.
  EXPECT_EQ(total(ledger::Metric::kEnergyKwh), "0.006675");
  EXPECT_EQ(total(ledger::Metric::kGpuHours), "0");  // observed time is not billed time
}

TEST_F(GpuTelemetryTest, CarbonIsEnergyTimesPueTimesGridIntensity) {
  options_.gpu.grid_gco2e_per_kwh = *parse_decimal("400");
  options_.gpu.pue = *parse_decimal("1.5");
  options_.gpu.region = "eu-west-1";
  std::string text = "# scrape at 2025-03-01T10:00:00Z\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\",Hostname=\"h\"} 1000\n"
                     "# scrape at 2025-03-01T10:00:30Z\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\",Hostname=\"h\"} 1000\n";
  ingest(dir_.write("p.prom", text));
  // 1 kW for 60 s = 1/60 kWh; × 1.5 × 400 g = 10 g.
  EXPECT_EQ(total(ledger::Metric::kCo2eKg), "0.01");
  auto by_region = query(ledger::Metric::kCo2eKg, {"region"});
  EXPECT_EQ(by_region.rows[0].keys[0], "eu-west-1");
}

TEST_F(GpuTelemetryTest, EnergyFallsBackToTdpTimesUtilisationWithoutPower) {
  pricing::GpuModelTable models;
  models.add({"H100 SXM 80GB", {"H100 80GB", "H100"}, 81'920, 700, 989, "test"});
  options_.gpu.gpu_models = &models;
  std::string text = "# scrape at 2025-03-01T10:00:00Z\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\",Hostname=\"h\",modelName=\"NVIDIA H100 80GB HBM3\"} 50\n";
  IngestSummary s = ingest(dir_.write("u.prom", text));
  // 700 W × 50% for 30 s = 10.5 kJ.
  EXPECT_EQ(total(ledger::Metric::kEnergyKwh), format_decimal(mul_div_round(10'500, 10'000'000, 36'000)));
  ASSERT_FALSE(s.conformance.empty());
  EXPECT_NE(s.conformance.back().problem.find("TDP"), std::string::npos);
}

TEST_F(GpuTelemetryTest, ReadsNvidiaSmiLogsIncludingMigWithoutUtilisation) {
  IngestSummary h100 = ingest(fixture("nvidia-smi_query-gpu_subset_h100_load.csv"));
  EXPECT_EQ(h100.format, "nvidia-smi --query-gpu CSV");
  EXPECT_EQ(h100.rows_read, 1);
  EXPECT_EQ(total(ledger::Metric::kGpuUtilization), "1");
  auto host = query(ledger::Metric::kGpuMemoryPeakMib, {"resource", "gpu"});
  ASSERT_EQ(host.rows.size(), 1u);
  EXPECT_EQ(host.rows[0].keys[0], "nvidia-smi_query-gpu_subset_h100_load");  // from the file name
  EXPECT_EQ(host.rows[0].keys[1], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(host.rows[0].value, 19818);
  // 631.95 W for 30 s.
  EXPECT_EQ(total(ledger::Metric::kEnergyKwh), format_decimal(mul_div_round(18'958'500, 10, 36)));

  options_.gpu.host = "mig-node";
  IngestSummary mig = ingest(fixture("nvidia-smi_query-gpu_subset_h200mig_load.csv"));
  EXPECT_EQ(mig.rows_ingested, 1);
  ASSERT_FALSE(mig.conformance.empty());
  EXPECT_NE(mig.conformance[0].problem.find("without utilisation"), std::string::npos);
  auto peak = query(ledger::Metric::kGpuMemoryPeakMib, {"resource"});
  ASSERT_EQ(peak.rows.size(), 2u);
  EXPECT_EQ(peak.rows[1].keys[0], "mig-node");
  EXPECT_EQ(peak.rows[1].value, 16959);
  EXPECT_EQ(total(ledger::Metric::kGpuUtilization), "1");  // the MIG reading adds no observed time

  IngestSummary full = ingest(fixture("nvidia-smi_query-gpu_full_h100_load.csv"));
  EXPECT_EQ(full.rows_read, 1);
  EXPECT_EQ(full.rows_quarantined, 0);
}

TEST_F(GpuTelemetryTest, NvidiaSmiLogOfSeveralSamplesWithMalformedRows) {
  std::string text =
      "timestamp, name, uuid, utilization.gpu [%], memory.used [MiB], memory.total [MiB], power.draw [W]\n"
      "2025/03/01 10:00:00.000, NVIDIA L40S, GPU-1, 10 %, 1000 MiB, 46068 MiB, 100.00 W\n"
      "2025/03/01 10:00:01.000, NVIDIA L40S, GPU-1, 20 %, 3000 MiB, 46068 MiB, 200.00 W\n"
      "2025/03/01 10:00:02.000, NVIDIA L40S, GPU-1, 30 %, 2000 MiB, 46068 MiB, [N/A]\n"
      "2025/03/01 10:00:03.000, NVIDIA L40S, GPU-1, lots, 2000 MiB, 46068 MiB, 1 W\n"
      "yesterday, NVIDIA L40S, GPU-1, 1 %, 2000 MiB, 46068 MiB, 1 W\n"
      "2025/03/01 10:00:04.000, NVIDIA L40S, GPU-1, 1 %\n";
  options_.gpu.host = "gpu-node-7";
  IngestSummary s = ingest(dir_.write("smi.csv", text), "nvidia-smi");
  EXPECT_EQ(s.rows_read, 6);
  EXPECT_EQ(s.rows_ingested, 3);
  EXPECT_EQ(s.rows_quarantined, 3);
  auto bad = ledger_->quarantined_rows(s.batch_id);
  ASSERT_EQ(bad->size(), 3u);
  EXPECT_EQ((*bad)[0].line, 5);
  EXPECT_EQ((*bad)[0].column, "utilization.gpu");
  EXPECT_EQ((*bad)[1].column, "timestamp");
  EXPECT_NE((*bad)[2].reason.find("fields"), std::string::npos);
  // Three 1 s readings (the last covers its previous gap): (10 + 20 + 30) / 3.
  EXPECT_EQ(total(ledger::Metric::kGpuUtilization), "0.2");
  EXPECT_EQ(query(ledger::Metric::kGpuMemoryPeakMib).total, 3000);
  EXPECT_EQ(total(ledger::Metric::kEnergyKwh), format_decimal(mul_div_round(300, 10'000'000, 36'000)));
}

TEST_F(GpuTelemetryTest, AHeaderWithoutGpuColumnsIsAnErrorAndWritesNothing) {
  options_.format = "nvidia-smi";
  auto r = ingest_file(context(), dir_.write("x.csv", "timestamp, name\n2025/03/01 10:00:00, x\n"), options_);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("x.csv:1:"), std::string::npos);
  EXPECT_EQ(ledger_->batches()->size(), 0u);
}

/// Serves `body` to `count` HTTP requests on 127.0.0.1, one connection each.
class LoopbackServer {
 public:
  LoopbackServer(std::string body, int count) : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, body = std::move(body), count] {
      for (int i = 0; i < count; ++i) {
        boost::system::error_code ec;
        boost::asio::ip::tcp::socket socket(io_);
        acceptor_.accept(socket, ec);
        if (ec) return;
        boost::asio::streambuf request;
        boost::asio::read_until(socket, request, "\r\n\r\n", ec);
        std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        boost::asio::write(socket, boost::asio::buffer(response), ec);
        socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        ++served_;
      }
    });
  }
  ~LoopbackServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/metrics"; }
  int served() const { return served_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> served_{0};
};

TEST_F(GpuTelemetryTest, ScrapesAnExporterRepeatedlyOverLoopback) {
  LoopbackServer server(read_text(fixture("dcgm_scrape_T4_with_prof_fields.prom")), 3);
  options_.gpu.interval_ms = 100;
  auto r = ingest_dcgm_scrape(context(), server.url(), 300, options_);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(server.served(), 3);
  EXPECT_EQ(r->rows_read, 15);  // three scrapes of five samples
  EXPECT_EQ(r->rows_quarantined, 0);
  // Three readings about 100 ms apart: about 300 ms of observed time, busy rounded to the ms.
  EXPECT_NEAR((double)query(ledger::Metric::kGpuUtilization).total / 1e9, 0.91, 0.01);
  EXPECT_GT(query(ledger::Metric::kEnergyKwh).total, 0);
}

TEST_F(GpuTelemetryTest, AFailedScrapeIsAQuarantinedRow) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor closed(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::string url = "http://127.0.0.1:" + std::to_string(closed.local_endpoint().port()) + "/metrics";
  closed.close();
  options_.gpu.interval_ms = 50;
  auto r = ingest_dcgm_scrape(context(), url, 50, options_);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->rows_read, 1);
  EXPECT_EQ(r->rows_quarantined, 1);
  ASSERT_EQ(r->quarantined_sample.size(), 1u);
  EXPECT_NE(r->quarantined_sample[0].reason.find("scrape 1 failed"), std::string::npos);
}

TEST(GpuSamplesTest, WorkloadOfPodStripsReplicaSetHashAndOrdinal) {
  EXPECT_EQ(workload_of_pod("cuda-75454ffb9f-8ljq7"), "cuda");
  EXPECT_EQ(workload_of_pod("vllm-llama-0"), "vllm-llama");
  EXPECT_EQ(workload_of_pod("train-model"), "train-model");
  EXPECT_EQ(workload_of_pod(""), "");
}

TEST(GpuSamplesTest, HostFromFileNameDropsDirectoryAndExtensions) {
  EXPECT_EQ(host_from_file_name("logs/gpu-node-7.csv.gz"), "gpu-node-7");
  EXPECT_EQ(host_from_file_name("gpu-node-7"), "gpu-node-7");
}

TEST(GpuModelTableTest, FindsTheLongestWholeWordSpelling) {
  pricing::GpuModelTable t;
  t.add({"L4", {"L4"}, 23'034, 72, 121, "s"});
  t.add({"L40S", {"L40S"}, 46'068, 350, 362, "s"});
  t.add({"A100 40GB", {"A100", "A100 40GB", "A100-SXM4-40GB"}, 40'960, 400, 312, "s"});
  t.add({"A100 80GB", {"A100 80GB", "A100-SXM4-80GB"}, 81'920, 400, 312, "s"});
  EXPECT_EQ(t.find("NVIDIA L4")->name, "L4");
  EXPECT_EQ(t.find("NVIDIA L40S")->name, "L40S");
  EXPECT_EQ(t.find("NVIDIA A100-SXM4-80GB")->name, "A100 80GB");
  EXPECT_EQ(t.find("A100 80GB")->name, "A100 80GB");
  EXPECT_EQ(t.find("NVIDIA A100-PCIE-40GB")->name, "A100 40GB");
  EXPECT_EQ(t.find("Tesla T4"), nullptr);
}

}  // namespace
}  // namespace aifinops::ingest
