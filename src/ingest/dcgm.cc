// DCGM exporter text: scanner, file ingest, and the repeated scrape.
#include "ingest/dcgm.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "core/time.h"
#include "ingest/file_input.h"
#include "ingest/record_sink.h"

namespace aifinops::ingest {
namespace {

enum class DcgmMetric { kOther, kGpuUtil, kFbUsed, kFbFree, kPower, kGrEngineActive };

DcgmMetric classify(std::string_view name) {
  constexpr std::string_view kPrefix = "DCGM_FI_";
  if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) return DcgmMetric::kOther;
  std::string_view rest = name.substr(kPrefix.size());
  switch (rest.size()) {
    case 11:
      if (rest == "DEV_FB_USED") return DcgmMetric::kFbUsed;
      if (rest == "DEV_FB_FREE") return DcgmMetric::kFbFree;
      break;
    case 12:
      if (rest == "DEV_GPU_UTIL") return DcgmMetric::kGpuUtil;
      break;
    case 15:
      if (rest == "DEV_POWER_USAGE") return DcgmMetric::kPower;
      break;
    case 21:
      if (rest == "PROF_GR_ENGINE_ACTIVE") return DcgmMetric::kGrEngineActive;
      break;
    default: break;
  }
  return DcgmMetric::kOther;
}

std::string_view metric_label(DcgmMetric m) {
  switch (m) {
    case DcgmMetric::kGpuUtil: return "DCGM_FI_DEV_GPU_UTIL";
    case DcgmMetric::kFbUsed: return "DCGM_FI_DEV_FB_USED";
    case DcgmMetric::kFbFree: return "DCGM_FI_DEV_FB_FREE";
    case DcgmMetric::kPower: return "DCGM_FI_DEV_POWER_USAGE";
    case DcgmMetric::kGrEngineActive: return "DCGM_FI_PROF_GR_ENGINE_ACTIVE";
    case DcgmMetric::kOther: break;
  }
  return "";
}

/// A decimal number as an integer scaled by 10^scale (rounded half away from zero), e.g.
/// "40.979000" at scale 3 -> 40979. Exponents ("1.5e+02") go through std::from_chars (telemetry, never money); NaN and
/// infinities are refused.
bool parse_scaled(std::string_view text, int scale, int64_t& out) {
  if (text.empty()) return false;
  size_t i = 0;
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    ++i;
  }
  int64_t value = 0;
  size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
    if (value > (INT64_MAX - 9) / 10 / 1000) return false;
    value = value * 10 + (text[i] - '0');
  }
  int places = 0;
  bool round_up = false;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      if (places < scale) {
        value = value * 10 + (text[i] - '0');
        ++places;
      } else if (places == scale) {
        round_up = text[i] >= '5';
        ++places;  // only the first dropped digit decides
      }
    }
  }
  if (digits == 0) return false;
  if (i < text.size()) {
    if (text[i] != 'e' && text[i] != 'E') return false;
    double d = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), d);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size() || !(d == d) || d > 9e15 || d < -9e15) return false;
    double scaled = d;
    for (int k = 0; k < scale; ++k) scaled *= 10;
    out = (int64_t)(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
    return true;
  }
  for (; places < scale; ++places) value *= 10;
  if (round_up) ++value;
  out = negative ? -value : value;
  return true;
}

int64_t file_mtime_ms(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

/// "# scrape at 2025-03-01T00:00:15Z" or "# scrape at 1740787215000" (epoch ms).
bool parse_marker_time(std::string_view text, int64_t& out) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  bool all_digits = !text.empty();
  for (char c : text) all_digits &= c >= '0' && c <= '9';
  if (all_digits) return parse_scaled(text, 0, out);
  // Sub-second precision is kept when given ("...T00:00:15.250Z").
  int64_t millis = 0;
  std::string whole(text);
  size_t dot = whole.find('.');
  if (dot != std::string::npos) {
    size_t end = dot + 1;
    while (end < whole.size() && whole[end] >= '0' && whole[end] <= '9') ++end;
    std::string fraction = whole.substr(dot + 1, end - dot - 1);
    fraction.resize(3, '0');
    millis = std::stoll(fraction.substr(0, 3));
    whole.erase(dot, end - dot);
  }
  auto t = parse_timestamp(whole);
  if (!t) return false;
  out = *t * 1000 + millis;
  return true;
}

}  // namespace

size_t DcgmTextParser::gpu_for(std::string_view labels, ledger::QuarantinedRow& bad, bool& ok) {
  ok = true;
  if (auto it = gpus_.find(labels); it != gpus_.end()) return it->second;
  // A label block seen for the first time: read its labels.
  GpuIdentity& id = scratch_;
  id = GpuIdentity{};
  std::string host_label, hostname_label;
  size_t i = 0;
  while (i < labels.size()) {
    while (i < labels.size() && (labels[i] == ',' || labels[i] == ' ')) ++i;
    if (i >= labels.size()) break;
    size_t eq = labels.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= labels.size() || labels[eq + 1] != '"') {
      ok = false;
      bad.reason = "label without a quoted value near \"" + std::string(labels.substr(i, 40)) + "\"";
      return 0;
    }
    std::string_view key = labels.substr(i, eq - i);
    std::string value;
    size_t j = eq + 2;
    for (; j < labels.size() && labels[j] != '"'; ++j) {
      if (labels[j] == '\\' && j + 1 < labels.size()) {
        ++j;
        value.push_back(labels[j] == 'n' ? '\n' : labels[j]);
      } else {
        value.push_back(labels[j]);
      }
    }
    i = j + 1;
    if (key == "UUID") id.uuid = value;
    else if (key == "gpu") id.index = value;
    else if (key == "modelName") id.model = value;
    else if (key == "Hostname") host_label = value;
    else if (key == "hostname") hostname_label = value;
    else if (key == "pci_bus_id") id.pci_bus_id = value;
    else if (key == "pod") id.pod = value;
    else if (key == "namespace") id.namespace_name = value;
    else if (key == "container") id.container = value;
    else if (key == "GPU_I_PROFILE") id.mig_profile = value;
    else if (key == "GPU_I_ID" && !value.empty()) id.index += "/" + value;  // MIG instance of the GPU
  }
  id.host = !host_override_.empty() ? host_override_ : !host_label.empty() ? host_label : hostname_label;
  if (id.host.empty()) {
    ok = false;
    bad.column = "Hostname";
    bad.reason = "no Hostname label: pass --host to name the GPUs' host";
    return 0;
  }
  if (id.uuid.empty() && id.index.empty()) {
    ok = false;
    bad.column = "UUID";
    bad.reason = "no UUID or gpu label: the sample names no GPU";
    return 0;
  }
  size_t gpu = aggregator_.gpu(id);
  gpus_.emplace(std::string(labels), gpu);
  return gpu;
}

bool DcgmTextParser::parse_line(std::string_view line, int64_t line_number, ledger::QuarantinedRow& bad) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return true;
  if (line[0] == '#') {
    constexpr std::string_view kMarker = "# scrape at ";
    if (line.size() > kMarker.size() && line.compare(0, kMarker.size(), kMarker) == 0) {
      int64_t t = 0;
      if (!parse_marker_time(line.substr(kMarker.size()), t)) {
        ++samples_read_;  // a row read, so that read = ingested + quarantined still holds
        bad.reason = "\"# scrape at\" needs an RFC 3339 time or epoch milliseconds";
        return false;
      }
      scrape_time_ms_ = t;
    }
    return true;
  }
  size_t name_end = 0;
  while (name_end < line.size() && line[name_end] != '{' && line[name_end] != ' ' && line[name_end] != '\t')
    ++name_end;
  const DcgmMetric metric = classify(line.substr(0, name_end));
  if (metric == DcgmMetric::kOther) {
    ++lines_skipped_;
    return true;
  }
  ++samples_read_;
  bad.column = std::string(metric_label(metric));
  std::string_view labels;
  size_t pos = name_end;
  if (pos < line.size() && line[pos] == '{') {
    size_t j = pos + 1;
    bool quoted = false;
    for (; j < line.size(); ++j) {
      char c = line[j];
      if (quoted) {
        if (c == '\\') ++j;
        else if (c == '"') quoted = false;
      } else if (c == '"') {
        quoted = true;
      } else if (c == '}') {
        break;
      }
    }
    if (j >= line.size()) {
      bad.reason = "the label set has no closing '}'";
      return false;
    }
    labels = line.substr(pos + 1, j - pos - 1);
    pos = j + 1;
  }
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  size_t value_end = pos;
  while (value_end < line.size() && line[value_end] != ' ' && line[value_end] != '\t') ++value_end;
  std::string_view value_text = line.substr(pos, value_end - pos);
  pos = value_end;
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  int64_t time_ms = scrape_time_ms_ >= 0 ? scrape_time_ms_ : default_time_ms_;
  if (pos < line.size()) {
    size_t ts_end = pos;
    while (ts_end < line.size() && line[ts_end] != ' ' && line[ts_end] != '\t') ++ts_end;
    if (!parse_scaled(line.substr(pos, ts_end - pos), 0, time_ms)) {
      bad.reason = "timestamp \"" + std::string(line.substr(pos, ts_end - pos)) + "\" is not epoch milliseconds";
      return false;
    }
  }
  const int scale = metric == DcgmMetric::kFbUsed || metric == DcgmMetric::kFbFree ? 0 : 3;
  int64_t value = 0;
  if (value_text.empty()) {
    bad.reason = "no value";
    return false;
  }
  if (!parse_scaled(value_text, scale, value)) {
    bad.reason = "value \"" + std::string(value_text) + "\" is not a number";
    return false;
  }
  bool ok = true;
  size_t gpu = gpu_for(labels, bad, ok);
  if (!ok) return false;
  GpuReading& r = aggregator_.reading(gpu, time_ms, line_number);
  switch (metric) {
    case DcgmMetric::kGpuUtil:
      if (value < 0 || value > 100'000) {
        bad.reason = "utilisation " + std::string(value_text) + " is outside 0..100 %";
        return false;
      }
      r.utilization_permille = (int32_t)((value + 50) / 100);
      break;
    case DcgmMetric::kGrEngineActive:
      // A ratio 0..1 (scaled by 1000 = permille); GPU_UTIL wins when both are present.
      if (value < 0 || value > 1000) {
        bad.reason = "graphics engine activity " + std::string(value_text) + " is outside 0..1";
        return false;
      }
      r.engine_active_permille = (int32_t)value;
      break;
    case DcgmMetric::kFbUsed:
    case DcgmMetric::kFbFree:
      if (value < 0) {
        bad.reason = "memory " + std::string(value_text) + " MiB is negative";
        return false;
      }
      (metric == DcgmMetric::kFbUsed ? r.memory_used_mib : r.memory_free_mib) = value;
      break;
    case DcgmMetric::kPower:
      if (value < 0) {
        bad.reason = "power " + std::string(value_text) + " W is negative";
        return false;
      }
      r.power_milliwatts = value;
      break;
    case DcgmMetric::kOther: break;
  }
  bad.column.clear();
  return true;
}

bool looks_like_dcgm(std::string_view head) {
  return head.find("DCGM_FI_DEV_") != std::string_view::npos &&
         (head.rfind("# HELP DCGM_FI_", 0) == 0 || head.rfind("# TYPE DCGM_FI_", 0) == 0 ||
          head.rfind("DCGM_FI_", 0) == 0 || head.rfind("# scrape at ", 0) == 0);
}

namespace {

/// Splits `text` into lines (a last line without '\n' included when `final`), calling
/// on_line(line, number). Returns the bytes consumed.
template <typename F>
size_t each_line(std::string_view text, bool final, int64_t& line_number, F on_line) {
  size_t start = 0;
  for (;;) {
    const void* nl = std::memchr(text.data() + start, '\n', text.size() - start);
    if (nl == nullptr) break;
    size_t end = (size_t)(static_cast<const char*>(nl) - text.data());
    on_line(text.substr(start, end - start), ++line_number);
    start = end + 1;
  }
  if (final && start < text.size()) {
    on_line(text.substr(start), ++line_number);
    start = text.size();
  }
  return start;
}

}  // namespace

Result<IngestSummary> ingest_dcgm(const IngestContext& context, const std::string& path,
                                  const IngestOptions& options) {
  auto opened = FileInput::open(path);
  if (!opened) return Unexpected{opened.error()};
  std::unique_ptr<FileInput> input(*opened);
  RecordSink sink(context, path, "dcgm", options);
  if (auto begun = sink.begin(); !begun) return Unexpected{begun.error()};
  GpuSampleAggregator aggregator(gpu_aggregation(options.gpu, "dcgm"));
  DcgmTextParser parser(aggregator, options.gpu.host, options.gpu.at_ms ? *options.gpu.at_ms : file_mtime_ms(path));
  std::string buffer(1 << 20, '\0');
  size_t filled = 0;
  int64_t line_number = 0;
  ledger::QuarantinedRow bad;
  Result<void> failure;
  auto on_line = [&](std::string_view line, int64_t number) {
    if (!failure) return;
    bad = ledger::QuarantinedRow{};
    if (!parser.parse_line(line, number, bad)) {
      bad.line = number;
      bad.raw = std::string(line);
      failure = sink.quarantine(std::move(bad));
    }
  };
  for (;;) {
    if (filled == buffer.size()) buffer.resize(buffer.size() * 2);  // a line longer than the buffer
    auto got = input->read(buffer.data() + filled, buffer.size() - filled);
    if (!got) return Unexpected{got.error()};
    filled += *got;
    const bool final = *got == 0;
    size_t used = each_line(std::string_view(buffer.data(), filled), final, line_number, on_line);
    if (!failure) return Unexpected{failure.error()};
    std::memmove(buffer.data(), buffer.data() + used, filled - used);
    filled -= used;
    if (options.progress) options.progress(input->position(), input->file_size(), parser.samples_read());
    if (final) break;
  }
  ledger::Fingerprint content;
  input->fingerprint(content.high, content.low);
  return finish_gpu_batch(sink, aggregator, parser.samples_read(), parser.lines_skipped(), content,
                          input->file_size(), "DCGM exporter text");
}

Result<std::string> http_get(const std::string& url, int64_t timeout_ms) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0)
    return make_error(ErrorCode::kInvalidArgument, "--scrape " + url + ": only http:// URLs are supported");
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash), target = slash == std::string::npos ? "/metrics" : rest.substr(slash);
  std::string host = authority, port = "80";
  if (size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  try {
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    auto endpoints = resolver.resolve(host, port);
    stream.connect(endpoints);
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, authority);
    request.set(http::field::user_agent, "aifinops");
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);  // a scrape of a large node is a few MB
    http::read(stream, buffer, parser);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    if (parser.get().result_int() != 200)
      return make_error(ErrorCode::kIo, url + ": HTTP " + std::to_string(parser.get().result_int()));
    return std::move(parser.get().body());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kIo, url + ": " + e.what());
  }
}

Result<IngestSummary> ingest_dcgm_scrape(const IngestContext& context, const std::string& url,
                                         int64_t duration_ms, const IngestOptions& options) {
  const int64_t interval = options.gpu.interval_ms > 0 ? options.gpu.interval_ms : 15'000;
  const int64_t scrapes = std::max<int64_t>(1, duration_ms / interval + (duration_ms % interval == 0 ? 0 : 1));
  const auto started = std::chrono::system_clock::now();
  const int64_t start_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(started.time_since_epoch()).count();
  RecordSink sink(context, url + " @ " + format_timestamp(start_ms / 1000), "dcgm", options);
  sink.set_stream(true);
  if (auto begun = sink.begin(); !begun) return Unexpected{begun.error()};
  GpuSampleAggregator aggregator(gpu_aggregation(options.gpu, "dcgm"));
  DcgmTextParser parser(aggregator, options.gpu.host, start_ms);
  XXH3_state_t* hash = XXH3_createState();
  XXH3_128bits_reset(hash);
  int64_t line_number = 0, bytes = 0, failed_scrapes = 0;
  Result<void> failure;
  for (int64_t i = 0; i < scrapes; ++i) {
    std::this_thread::sleep_until(started + std::chrono::milliseconds(i * interval));
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    auto body = http_get(url, interval);
    if (!body) {
      ++failed_scrapes;
      failure = sink.quarantine(line_number + 1, "", "scrape " + std::to_string(i + 1) + " failed: " + body.error().message, url);
      if (!failure) break;
      continue;
    }
    XXH3_128bits_update(hash, body->data(), body->size());
    bytes += (int64_t)body->size();
    parser.set_scrape_time(now_ms);
    ledger::QuarantinedRow bad;
    each_line(*body, true, line_number, [&](std::string_view line, int64_t number) {
      if (!failure) return;
      bad = ledger::QuarantinedRow{};
      if (!parser.parse_line(line, number, bad)) {
        bad.line = number;
        bad.raw = std::string(line);
        failure = sink.quarantine(std::move(bad));
      }
    });
    if (!failure) break;
    if (options.progress) options.progress(bytes, 0, parser.samples_read());
  }
  XXH128_hash_t h = XXH3_128bits_digest(hash);
  XXH3_freeState(hash);
  if (!failure) return Unexpected{failure.error()};
  // A failed scrape is a row too (read and quarantined), so a dead exporter shows in the counts.
  ledger::Fingerprint content{h.high64, h.low64};
  return finish_gpu_batch(sink, aggregator, parser.samples_read() + failed_scrapes, parser.lines_skipped(),
                          content, bytes, "DCGM exporter scrape");
}

}  // namespace aifinops::ingest
