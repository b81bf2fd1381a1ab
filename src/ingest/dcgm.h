// DCGM exporter readings: the Prometheus text format that NVIDIA's dcgm-exporter serves,
// from a file (one scrape or many) or scraped repeatedly from its /metrics URL.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "ingest/gpu_samples.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"

namespace aifinops::ingest {

/// A hand-written scanner for the exposition format, one line at a time, with no
/// allocation per sample: only the metrics that matter for cost are read
/// (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE, DCGM_FI_DEV_POWER_USAGE,
/// and DCGM_FI_PROF_GR_ENGINE_ACTIVE when GPU_UTIL is absent); other metrics are skipped.
/// A reading's time is, first found: the sample's own timestamp (ms), the last
/// "# scrape at <RFC 3339 | epoch ms>" line, or `default_time_ms`.
/// Not thread-safe; one per input.
class DcgmTextParser {
 public:
  DcgmTextParser(GpuSampleAggregator& aggregator, std::string host_override, int64_t default_time_ms)
      : aggregator_(aggregator), host_override_(std::move(host_override)), default_time_ms_(default_time_ms) {}

  /// Reads one line (without its '\n'). Returns false with `bad` filled (column = the
  /// metric, reason) when the line is a malformed sample of a metric that is read.
  bool parse_line(std::string_view line, int64_t line_number, ledger::QuarantinedRow& bad);

  /// Sets the time of readings without a timestamp (a new scrape), as a marker line does.
  void set_scrape_time(int64_t time_ms) { scrape_time_ms_ = time_ms; }

  int64_t samples_read() const { return samples_read_; }  ///< lines of the metrics read
  int64_t lines_skipped() const { return lines_skipped_; }  ///< other metrics' lines

 private:
  size_t gpu_for(std::string_view labels, ledger::QuarantinedRow& bad, bool& ok);

  struct LabelsHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  GpuSampleAggregator& aggregator_;
  std::string host_override_;
  int64_t default_time_ms_;
  int64_t scrape_time_ms_ = -1;
  int64_t samples_read_ = 0, lines_skipped_ = 0;
  // The label block's text -> GPU: the exporter repeats the same labels for every metric.
  std::unordered_map<std::string, size_t, LabelsHash, std::equal_to<>> gpus_;
  GpuIdentity scratch_;
};

/// True when `head` looks like dcgm-exporter output (a DCGM_FI_ sample or its HELP line).
bool looks_like_dcgm(std::string_view head);

/// Reads a DCGM exporter text file (plain or gzip) into one batch of hourly records.
Result<IngestSummary> ingest_dcgm(const IngestContext& context, const std::string& path,
                                  const IngestOptions& options);

/// Scrapes `url` (http://host:port/path) every options.gpu.interval_ms for duration_ms and
/// ingests every reading as one batch named after the URL and the start time. At most
/// duration / interval + 1 scrapes; each waits at most the interval for an answer. A failed
/// scrape is quarantined (line = the scrape's number) and the next one is tried.
Result<IngestSummary> ingest_dcgm_scrape(const IngestContext& context, const std::string& url,
                                         int64_t duration_ms, const IngestOptions& options);

/// One HTTP GET over plain TCP (the exporter serves no TLS by default); the body on 200.
Result<std::string> http_get(const std::string& url, int64_t timeout_ms);

}  // namespace aifinops::ingest
