// Micro-benchmarks of the DCGM exporter reader: the scanner over realistic scrapes (labels
// as dcgm-exporter writes them on Kubernetes, ten metric families of which four are read),
// and a whole file ingest into a fresh SQLite ledger.
//
// The input is generated in memory (and, for the ingest, written to a temporary directory).
// Knobs (environment):
//   AIFINOPS_BENCH_DCGM_SCRAPES  scrapes in the input (default 2000: 64 GPUs, ~110 MB)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "allocate/tag_policy.h"
#include "ingest/dcgm.h"
#include "ingest/gpu_samples.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::bench {
namespace {

int64_t env_or(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoll(v) : fallback;
}

constexpr int kHosts = 8, kGpusPerHost = 8;
// Ten families per GPU per scrape, as a default dcgm-exporter configuration serves; the
// reader uses four of them.
constexpr const char* kFamilies[] = {"DCGM_FI_DEV_SM_CLOCK",     "DCGM_FI_DEV_MEM_CLOCK",
                                     "DCGM_FI_DEV_GPU_TEMP",     "DCGM_FI_DEV_POWER_USAGE",
                                     "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_GPU_UTIL",
                                     "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_FB_FREE",
                                     "DCGM_FI_DEV_FB_USED",      "DCGM_FI_DEV_PCIE_REPLAY_COUNTER"};

/// `scrapes` scrapes 15 s apart, each with "# scrape at" and HELP/TYPE lines per family.
std::string make_scrapes(int64_t scrapes, int64_t& sample_lines) {
  std::string out;
  sample_lines = 0;
  const int64_t start = 1'740'787'200;  // 2025-03-01T00:00:00Z
  uint64_t state = 42;
  auto next = [&] {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (int64_t s = 0; s < scrapes; ++s) {
    out += "# scrape at " + std::to_string((start + s * 15) * 1000) + "\n";
    for (const char* family : kFamilies) {
      out += std::string("# HELP ") + family + " help text.\n# TYPE " + family + " gauge\n";
      for (int h = 0; h < kHosts; ++h) {
        for (int g = 0; g < kGpusPerHost; ++g) {
          out += family;
          out += "{gpu=\"" + std::to_string(g) + "\",UUID=\"GPU-" + std::to_string(h) + "a8394b51-c086-568a-9f1a-c1e1c934c4" +
                 std::to_string(g) + "\",pci_bus_id=\"00000000:0" + std::to_string(g) +
                 ":00.0\",device=\"nvidia" + std::to_string(g) +
                 "\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-node-" + std::to_string(h) +
                 "\",DCGM_FI_DRIVER_VERSION=\"580.95.05\",container=\"vllm\",namespace=\"inference\",pod=\"vllm-"
                 "75454ffb9f-" + std::to_string(10000 + h * 10 + g) + "\"} ";
          uint64_t r = next();
          if (std::string_view(family) == "DCGM_FI_DEV_POWER_USAGE")
            out += std::to_string(100 + r % 600) + "." + std::to_string(r % 1000);
          else if (std::string_view(family) == "DCGM_FI_DEV_GPU_UTIL")
            out += std::to_string(r % 101);
          else
            out += std::to_string(r % 80000);
          out += '\n';
          ++sample_lines;
        }
      }
    }
  }
  return out;
}

const std::string& scrapes_text(int64_t& lines) {
  static int64_t sample_lines = 0;
  static const std::string text = make_scrapes(env_or("AIFINOPS_BENCH_DCGM_SCRAPES", 2000), sample_lines);
  lines = sample_lines;
  return text;
}

/// The scanner alone: every line through DcgmTextParser into the hourly aggregator.
void BM_DcgmReader_Scan(benchmark::State& state) {
  int64_t lines = 0;
  const std::string& text = scrapes_text(lines);
  int64_t used = 0;
  for (auto _ : state) {
    ingest::GpuSampleAggregator aggregator(ingest::GpuAggregation{});
    ingest::DcgmTextParser parser(aggregator, "", 0);
    ledger::QuarantinedRow bad;
    int64_t number = 0;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (!parser.parse_line(std::string_view(text).substr(start, end - start), ++number, bad)) state.SkipWithError("bad line");
      start = end + 1;
    }
    auto records = aggregator.finish();
    benchmark::DoNotOptimize(records.data());
    used = parser.samples_read();
  }
  state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)text.size());
  state.SetItemsProcessed(state.iterations() * lines);
  state.counters["used_samples_per_s"] =
      benchmark::Counter((double)used * (double)state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DcgmReader_Scan)->Unit(benchmark::kMillisecond);

/// The whole ingest of a file into a fresh ledger (hourly records, one batch).
void BM_DcgmReader_Ingest(benchmark::State& state) {
  int64_t lines = 0;
  const std::string& text = scrapes_text(lines);
  testing::TempDir dir;
  const std::string path = dir.write("scrapes.prom", text);
  allocate::TagPolicy policy = allocate::TagPolicy::defaults();
  pricing::Catalog catalog;
  int run = 0;
  for (auto _ : state) {
    auto opened = ledger::open_ledger(dir.file("ledger" + std::to_string(run++) + ".db"));
    if (!opened) {
      state.SkipWithError(opened.error().message.c_str());
      return;
    }
    ingest::IngestContext context{**opened, catalog, policy};
    ingest::IngestOptions options;
    options.format = "dcgm";
    auto r = ingest::ingest_file(context, path, options);
    if (!r) state.SkipWithError(r.error().message.c_str());
  }
  state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)text.size());
  state.SetItemsProcessed(state.iterations() * lines);
}
BENCHMARK(BM_DcgmReader_Ingest)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace aifinops::bench

BENCHMARK_MAIN();
