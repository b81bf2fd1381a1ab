// nvidia-smi logs: the CSV that `nvidia-smi --query-gpu=timestamp,name,uuid,...
// --format=csv [-l SECONDS]` prints, one row per GPU per sample, units in the header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "ingest/gpu_samples.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"

namespace aifinops::ingest {

/// Reads the log's rows into an aggregator. A header line (starting "timestamp") may be
/// repeated (concatenated logs); values may carry units ("19818 MiB", "100 %", "631.95 W",
/// or none with --format=csv,nounits); "[N/A]" and "[Not Supported]" are unknown values.
/// Timestamps ("2026/07/14 08:12:53.353", as nvidia-smi prints local time) are read as UTC.
/// Not thread-safe; one per input.
class NvidiaSmiParser {
 public:
  NvidiaSmiParser(GpuSampleAggregator& aggregator, std::string host) : aggregator_(aggregator), host_(std::move(host)) {}

  /// Reads one line. Returns an error for a header that lacks the columns needed (the
  /// input as a whole is unusable); false with `bad` filled for a malformed row.
  Result<bool> parse_line(std::string_view line, int64_t line_number, ledger::QuarantinedRow& bad);

  int64_t rows_read() const { return rows_read_; }

 private:
  enum Column { kTimestamp, kName, kUuid, kIndex, kBusId, kUtilization, kMemoryUsed, kMemoryTotal, kMemoryFree, kPower, kColumnCount };
  int columns_[kColumnCount];
  bool have_header_ = false;
  size_t field_count_ = 0;
  GpuSampleAggregator& aggregator_;
  std::string host_;
  int64_t rows_read_ = 0;
  std::vector<std::string_view> fields_;
  GpuIdentity scratch_;
};

/// True when `head` starts with an nvidia-smi --query-gpu CSV header.
bool looks_like_nvidia_smi(std::string_view head);

/// The host a log is about when --host is not given: the file name without its directory
/// and extensions ("logs/gpu-node-7.csv.gz" -> "gpu-node-7").
std::string host_from_file_name(const std::string& path);

/// Reads an nvidia-smi CSV log (plain or gzip) into one batch of hourly records.
Result<IngestSummary> ingest_nvidia_smi(const IngestContext& context, const std::string& path,
                                        const IngestOptions& options);

}  // namespace aifinops::ingest
