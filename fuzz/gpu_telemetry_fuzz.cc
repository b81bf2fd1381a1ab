// libFuzzer target for the GPU telemetry parsers: the input's first byte picks DCGM text or an
// nvidia-smi CSV log; the rest is read line by line into an aggregator, which then builds its
// records. Any crash, sanitizer report or broken invariant is a bug.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ingest/dcgm.h"
#include "ingest/gpu_samples.h"
#include "ingest/nvidia_smi.h"

using namespace aifinops;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool dcgm = (data[0] & 1) == 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  ingest::GpuAggregation options;
  options.default_interval_ms = 1 + data[0];
  ingest::GpuSampleAggregator aggregator(options);
  ingest::DcgmTextParser dcgm_parser(aggregator, "", 1'740'787'200'000);
  ingest::NvidiaSmiParser smi_parser(aggregator, "host");
  ledger::QuarantinedRow bad;
  int64_t line = 0, rejected = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view one = text.substr(start, end - start);
    bad = ledger::QuarantinedRow{};
    if (dcgm) {
      if (!dcgm_parser.parse_line(one, ++line, bad)) {
        if (bad.reason.empty()) std::abort();  // a rejected line always says why
        ++rejected;
      }
    } else {
      auto r = smi_parser.parse_line(one, ++line, bad);
      if (r && !*r && bad.reason.empty()) std::abort();
    }
    start = end + 1;
  }
  auto records = aggregator.finish();
  for (const Record& r : records)
    if (r.facts.gpu_busy_milliseconds > r.facts.gpu_observed_milliseconds + 1) std::abort();  // utilisation <= 100%
  (void)rejected;
  return 0;
}
