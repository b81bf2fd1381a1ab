// nvidia-smi --query-gpu CSV logs.
#include "ingest/nvidia_smi.h"

#include <cstring>
#include <memory>

#include "core/time.h"
#include "ingest/file_input.h"
#include "ingest/record_sink.h"

namespace aifinops::ingest {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

void split(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t start = 0;
  for (;;) {
    size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

bool unknown_value(std::string_view v) {
  return v.empty() || v == "[N/A]" || v == "N/A" || v == "[Not Supported]" || v == "[Unknown Error]" ||
         v == "[Insufficient Permissions]";
}

/// "631.95 W", "100 %", "19818 MiB" or the bare number, scaled by 10^scale.
bool parse_quantity(std::string_view v, int scale, int64_t& out) {
  size_t space = v.find(' ');
  if (space != std::string_view::npos) v = v.substr(0, space);
  if (v.empty()) return false;
  int64_t value = 0;
  size_t i = 0, digits = 0;
  int places = 0;
  bool round_up = false;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i, ++digits) {
    if (value > INT64_MAX / 10000) return false;
    value = value * 10 + (v[i] - '0');
  }
  if (i < v.size() && v[i] == '.') {
    for (++i; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i, ++digits) {
      if (places < scale) {
        value = value * 10 + (v[i] - '0');
        ++places;
      } else if (places == scale) {
        round_up = v[i] >= '5';
        ++places;
      }
    }
  }
  if (digits == 0 || i != v.size()) return false;
  for (; places < scale; ++places) value *= 10;
  out = value + (round_up ? 1 : 0);
  return true;
}

/// "2026/07/14 08:12:53.353" (also with '-' between the date parts) -> epoch ms, as UTC.
bool parse_smi_time(std::string_view v, int64_t& out) {
  if (v.size() < 19) return false;
  auto num = [&](size_t at, size_t n, int64_t& x) {
    x = 0;
    for (size_t k = at; k < at + n; ++k) {
      if (v[k] < '0' || v[k] > '9') return false;
      x = x * 10 + (v[k] - '0');
    }
    return true;
  };
  int64_t y, mo, d, h, mi, s, ms = 0;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) || !num(17, 2, s))
    return false;
  if ((v[4] != '/' && v[4] != '-') || v[7] != v[4] || (v[10] != ' ' && v[10] != 'T') || v[13] != ':' || v[16] != ':')
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  if (v.size() > 19) {
    if (v[19] != '.') return false;
    std::string fraction(v.substr(20, 3));
    for (char c : fraction)
      if (c < '0' || c > '9') return false;
    fraction.resize(3, '0');
    ms = std::stoll(fraction);
  }
  out = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400) + h * 3600 + mi * 60 + s) * 1000 + ms;
  return true;
}

}  // namespace

Result<bool> NvidiaSmiParser::parse_line(std::string_view line, int64_t line_number, ledger::QuarantinedRow& bad) {
  line = trim(line);
  if (line.empty()) return true;
  split(line, fields_);
  if (fields_[0] == "timestamp") {
    // A header: column names with their units ("memory.used [MiB]").
    for (int& c : columns_) c = -1;
    for (size_t i = 0; i < fields_.size(); ++i) {
      std::string_view name = fields_[i].substr(0, fields_[i].find(' '));
      int column = name == "timestamp"                                   ? kTimestamp
                   : name == "name"                                      ? kName
                   : name == "uuid"                                      ? kUuid
                   : name == "index"                                     ? kIndex
                   : name == "pci.bus_id"                                ? kBusId
                   : name == "utilization.gpu"                           ? kUtilization
                   : name == "memory.used"                               ? kMemoryUsed
                   : name == "memory.total"                              ? kMemoryTotal
                   : name == "memory.free"                               ? kMemoryFree
                   : name == "power.draw" || name == "power.draw.average" ? kPower
                   : name == "power.draw.instant" && columns_[kPower] < 0 ? kPower
                                                                          : -1;
      if (column >= 0) columns_[column] = (int)i;
    }
    if (columns_[kUuid] < 0 && columns_[kIndex] < 0)
      return make_error(ErrorCode::kParse, "line " + std::to_string(line_number) +
                                               ": the nvidia-smi header has neither uuid nor index; query "
                                               "--query-gpu=timestamp,name,uuid,utilization.gpu,memory.used,"
                                               "memory.total,power.draw");
    if (columns_[kUtilization] < 0 && columns_[kMemoryUsed] < 0 && columns_[kPower] < 0)
      return make_error(ErrorCode::kParse, "line " + std::to_string(line_number) +
                                               ": the nvidia-smi header has none of utilization.gpu, "
                                               "memory.used, power.draw");
    have_header_ = true;
    field_count_ = fields_.size();
    return true;
  }
  ++rows_read_;
  if (!have_header_) {
    bad.reason = "a row before any header line (timestamp, name, uuid, ...)";
    return false;
  }
  if (fields_.size() != field_count_) {
    bad.reason = "has " + std::to_string(fields_.size()) + " fields, the header " + std::to_string(field_count_);
    return false;
  }
  auto field = [&](Column c) -> std::string_view { return columns_[c] >= 0 ? fields_[(size_t)columns_[c]] : std::string_view(); };
  int64_t time_ms = 0;
  if (!parse_smi_time(field(kTimestamp), time_ms)) {
    bad.column = "timestamp";
    bad.reason = "\"" + std::string(field(kTimestamp)) + "\" is not a time like 2026/07/14 08:12:53.353";
    return false;
  }
  GpuReading reading;
  struct Numeric {
    Column column;
    const char* name;
    int scale;
    int64_t* into;
  };
  int64_t utilization = -1, used = -1, total = -1, free = -1, power = -1;
  const Numeric numerics[] = {{kUtilization, "utilization.gpu", 1, &utilization},
                              {kMemoryUsed, "memory.used", 0, &used},
                              {kMemoryTotal, "memory.total", 0, &total},
                              {kMemoryFree, "memory.free", 0, &free},
                              {kPower, "power.draw", 3, &power}};
  for (const Numeric& n : numerics) {
    std::string_view v = field(n.column);
    if (unknown_value(v)) continue;
    if (!parse_quantity(v, n.scale, *n.into)) {
      bad.column = n.name;
      bad.reason = "\"" + std::string(v) + "\" is not a number";
      return false;
    }
  }
  if (utilization > 1000) {
    bad.column = "utilization.gpu";
    bad.reason = "\"" + std::string(field(kUtilization)) + "\" is outside 0..100 %";
    return false;
  }
  GpuIdentity& id = scratch_;
  id = GpuIdentity{};
  id.host = host_;
  id.uuid = std::string(field(kUuid));
  id.index = std::string(field(kIndex));
  id.model = std::string(field(kName));
  id.pci_bus_id = std::string(field(kBusId));
  if (id.uuid.empty() && id.index.empty()) {
    bad.column = "uuid";
    bad.reason = "no uuid or index: the row names no GPU";
    return false;
  }
  size_t gpu = aggregator_.gpu(id);
  GpuReading& r = aggregator_.reading(gpu, time_ms, line_number);
  r.utilization_permille = (int32_t)utilization;
  r.memory_used_mib = used;
  r.memory_total_mib = total;
  r.memory_free_mib = free;
  r.power_milliwatts = power;
  return true;
}

bool looks_like_nvidia_smi(std::string_view head) {
  std::string_view first = head.substr(0, head.find('\n'));
  return first.rfind("timestamp", 0) == 0 &&
         (first.find("utilization.gpu") != std::string_view::npos ||
          first.find("memory.used") != std::string_view::npos || first.find("power.draw") != std::string_view::npos);
}

std::string host_from_file_name(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  size_t dot = name.find('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

Result<IngestSummary> ingest_nvidia_smi(const IngestContext& context, const std::string& path,
                                        const IngestOptions& options) {
  auto opened = FileInput::open(path);
  if (!opened) return Unexpected{opened.error()};
  std::unique_ptr<FileInput> input(*opened);
  RecordSink sink(context, path, "nvidia-smi", options);
  if (auto begun = sink.begin(); !begun) return Unexpected{begun.error()};
  GpuSampleAggregator aggregator(gpu_aggregation(options.gpu, "nvidia-smi"));
  NvidiaSmiParser parser(aggregator, options.gpu.host.empty() ? host_from_file_name(path) : options.gpu.host);
  std::string buffer(1 << 20, '\0');
  size_t filled = 0;
  int64_t line_number = 0;
  ledger::QuarantinedRow bad;
  for (;;) {
    if (filled == buffer.size()) buffer.resize(buffer.size() * 2);
    auto got = input->read(buffer.data() + filled, buffer.size() - filled);
    if (!got) return Unexpected{got.error()};
    filled += *got;
    const bool final = *got == 0;
    std::string_view text(buffer.data(), filled);
    size_t start = 0;
    for (;;) {
      size_t nl = text.find('\n', start);
      if (nl == std::string_view::npos && !(final && start < text.size())) break;
      size_t end = nl == std::string_view::npos ? text.size() : nl;
      std::string_view line = text.substr(start, end - start);
      ++line_number;
      bad = ledger::QuarantinedRow{};
      auto ok = parser.parse_line(line, line_number, bad);
      if (!ok) return make_error(ok.error().code, path + ":" + ok.error().message.substr(5));
      if (!*ok) {
        bad.line = line_number;
        bad.raw = std::string(line);
        if (auto q = sink.quarantine(std::move(bad)); !q) return Unexpected{q.error()};
      }
      start = end + (nl == std::string_view::npos ? 0 : 1);
    }
    std::memmove(buffer.data(), buffer.data() + start, filled - start);
    filled -= start;
    if (final) break;
  }
  ledger::Fingerprint content;
  input->fingerprint(content.high, content.low);
  return finish_gpu_batch(sink, aggregator, parser.rows_read(), 0, content, input->file_size(),
                          "nvidia-smi --query-gpu CSV");
}

}  // namespace aifinops::ingest
