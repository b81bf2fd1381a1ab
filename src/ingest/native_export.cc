// Native export detection, the helpers the format mappers share, and the ingest loop that
// feeds mapped rows to RecordSink (CSV for every format; JSON lines for Google Cloud).
#include "ingest/native_export.h"

#include <simdjson.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>

#include "core/json_text.h"
#include "core/time.h"
#include "ingest/csv_reader.h"
#include "ingest/file_input.h"
#include "ingest/record_sink.h"

namespace aifinops::ingest {
namespace {

constexpr NativeFormat kAllFormats[] = {NativeFormat::kAwsCur, NativeFormat::kAzureCost,
                                        NativeFormat::kGcpBilling, NativeFormat::kOciCost};
// One JSON line longer than this is quarantined unread: bounds memory per row.
constexpr size_t kMaxJsonLine = 16 << 20;

}  // namespace

std::string_view native_format_name(NativeFormat format) {
  switch (format) {
    case NativeFormat::kAwsCur: return "aws-cur";
    case NativeFormat::kAzureCost: return "azure-cost";
    case NativeFormat::kGcpBilling: return "gcp-billing";
    case NativeFormat::kOciCost: return "oci-cost";
  }
  return "";
}

std::optional<NativeFormat> native_format_from_name(std::string_view name) {
  for (NativeFormat f : kAllFormats)
    if (native_format_name(f) == name) return f;
  return std::nullopt;
}

std::string_view native_format_provider(NativeFormat format) {
  switch (format) {
    case NativeFormat::kAwsCur: return "AWS";
    case NativeFormat::kAzureCost: return "Microsoft";
    case NativeFormat::kGcpBilling: return "Google Cloud";
    case NativeFormat::kOciCost: return "Oracle";
  }
  return "";
}

std::string NativeHeader::normalize(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name)
    if (std::isalnum((unsigned char)c)) out.push_back((char)std::tolower((unsigned char)c));
  return out;
}

NativeHeader::NativeHeader(const std::vector<std::string_view>& names) {
  for (std::string_view n : names) {
    while (!n.empty() && (n.back() == ' ' || n.back() == '\t')) n.remove_suffix(1);
    while (!n.empty() && (n.front() == ' ' || n.front() == '\t')) n.remove_prefix(1);
    names_.emplace_back(n);
    normalized_.push_back(normalize(n));
  }
}

int NativeHeader::find(std::string_view key) const {
  std::string k = normalize(key);
  for (size_t i = 0; i < normalized_.size(); ++i)
    if (normalized_[i] == k) return (int)i;
  return -1;
}

int NativeHeader::find_any(std::initializer_list<std::string_view> keys) const {
  for (std::string_view key : keys)
    if (int i = find(key); i >= 0) return i;
  return -1;
}

std::optional<NativeFormat> detect_native_format(const std::vector<std::string_view>& names) {
  NativeHeader header(names);
  auto has = [&](std::string_view key) { return header.find(key) >= 0; };
  std::vector<NativeFormat> takers;
  if (has("lineItem/UnblendedCost") && has("lineItem/UsageStartDate"))
    takers.push_back(NativeFormat::kAwsCur);
  if (has("MeterCategory") && has("Date") && (has("CostInBillingCurrency") || has("Cost")))
    takers.push_back(NativeFormat::kAzureCost);
  if (has("usage_start_time") && has("cost") && (has("service.description") || has("sku.description")))
    takers.push_back(NativeFormat::kGcpBilling);
  if (has("lineItem/intervalUsageStart") && has("cost/myCost")) takers.push_back(NativeFormat::kOciCost);
  if (takers.size() != 1) return std::nullopt;
  return takers.front();
}

namespace {

/// Splits the first CSV line of `head` into names (quotes removed; no embedded newlines
/// in header cells).
std::vector<std::string> first_csv_line(std::string_view head) {
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);
  size_t end = head.find('\n');
  std::string_view line = head.substr(0, end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto rows = split_csv_text(line);
  return rows.empty() ? std::vector<std::string>{} : rows.front();
}

/// The dotted keys of a JSON object, nested objects flattened ("service.description"),
/// with each scalar's text (strings unescaped, numbers as written) and each array's JSON.
bool flatten_json(simdjson::ondemand::object object, const std::string& prefix,
                  std::vector<std::pair<std::string, std::string>>& out, int depth = 0) {
  if (depth > 8) return false;
  for (auto member : object) {
    std::string_view key;
    if (member.unescaped_key().get(key)) return false;
    std::string name = prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
    simdjson::ondemand::value value;
    if (member.value().get(value)) return false;
    simdjson::ondemand::json_type type;
    if (value.type().get(type)) return false;
    switch (type) {
      case simdjson::ondemand::json_type::object: {
        simdjson::ondemand::object inner;
        if (value.get_object().get(inner)) return false;
        if (!flatten_json(inner, name, out, depth + 1)) return false;
        break;
      }
      case simdjson::ondemand::json_type::array: {
        simdjson::ondemand::array array;
        std::string_view raw;
        if (value.get_array().get(array) || array.raw_json().get(raw)) return false;
        out.emplace_back(std::move(name), std::string(raw));
        break;
      }
      case simdjson::ondemand::json_type::string: {
        std::string_view text;
        if (value.get_string().get(text)) return false;
        out.emplace_back(std::move(name), std::string(text));
        break;
      }
      case simdjson::ondemand::json_type::null:
        out.emplace_back(std::move(name), std::string());
        break;
      default: {
        std::string_view raw = value.raw_json_token();
        while (!raw.empty() && std::isspace((unsigned char)raw.back())) raw.remove_suffix(1);
        out.emplace_back(std::move(name), std::string(raw));
        break;
      }
    }
  }
  return true;
}

}  // namespace

std::optional<NativeFormat> detect_native_format_text(std::string_view head) {
  size_t first = head.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && head[first] == '{') {
    // JSON lines: only the BigQuery billing export is read this way.
    std::string_view line = head.substr(first, head.find('\n', first) - first);
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(line);
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (parser.iterate(padded).get(doc) || doc.get_object().get(object)) return std::nullopt;
    std::vector<std::pair<std::string, std::string>> fields;
    if (!flatten_json(object, "", fields)) return std::nullopt;
    std::vector<std::string_view> names;
    for (auto& [k, v] : fields) names.push_back(k);
    auto format = detect_native_format(names);
    if (format == NativeFormat::kGcpBilling) return format;
    return std::nullopt;
  }
  std::vector<std::string> cells = first_csv_line(head);
  std::vector<std::string_view> names(cells.begin(), cells.end());
  return detect_native_format(names);
}

bool parse_native_decimal(std::string_view text, Decimal& out, bool* present) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty() || text == "NULL" || text == "null") {
    out = Decimal{};
    if (present != nullptr) *present = false;
    return true;
  }
  if (present != nullptr) *present = true;
  DecimalError err;
  if (parse_decimal(text, out, &err)) return true;
  return err == DecimalError::kTooPrecise && parse_decimal(text, out, &err, /*round=*/true);
}

std::optional<EpochSeconds> parse_native_time(std::string_view text) {
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  if (auto t = parse_timestamp(text)) return t;
  // BigQuery CSV: "2023-11-01 07:00:00 UTC".
  if (text.size() > 4 && text.substr(text.size() - 4) == " UTC")
    if (auto t = parse_timestamp(text.substr(0, text.size() - 4))) return t;
  // OCI: "2023-10-01T00:00Z" (no seconds).
  if (text.size() == 17 && text[10] == 'T' && text[16] == 'Z') {
    std::string with_seconds(text.substr(0, 16));
    with_seconds += ":00Z";
    if (auto t = parse_timestamp(with_seconds)) return t;
  }
  // Azure: "9/21/2023" or "09/21/2023" (month first), optionally followed by a time.
  unsigned part[3] = {0, 0, 0};
  size_t i = 0;
  for (int p = 0; p < 3; ++p) {
    size_t start = i;
    while (i < text.size() && std::isdigit((unsigned char)text[i]) && i - start < 4)
      part[p] = part[p] * 10 + (unsigned)(text[i++] - '0');
    if (i == start) return std::nullopt;
    if (p < 2) {
      if (i >= text.size() || text[i] != '/') return std::nullopt;
      ++i;
    }
  }
  if (part[0] < 1 || part[0] > 12 || part[1] < 1 || part[1] > 31 || part[2] < 1970 || part[2] > 9999)
    return std::nullopt;
  EpochSeconds t = days_from_civil(part[2], part[0], part[1]) * 86400;
  std::string_view rest = text.substr(i);
  if (rest.empty()) return t;
  // "9/21/2023 13:00:00" or " 1:00:00 PM": hours, minutes, seconds.
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  int h = 0, m = 0, s = 0;
  char ampm[3] = {0, 0, 0};
  std::string copy(rest);
  int n = std::sscanf(copy.c_str(), "%d:%d:%d %2s", &h, &m, &s, ampm);
  if (n < 2 || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60) return std::nullopt;
  if (n == 4 && (ampm[0] == 'P' || ampm[0] == 'p') && h < 12) h += 12;
  if (n == 4 && (ampm[0] == 'A' || ampm[0] == 'a') && h == 12) h = 0;
  return t + h * 3600 + m * 60 + s;
}

bool times(Decimal price, Decimal quantity, Money& out) {
  __int128 r = mul_div_round(price.nanos, quantity.nanos, kNanosPerUnit);
  if (r > INT64_MAX || r < INT64_MIN) return false;
  out = Money{(int64_t)r};
  return true;
}

bool add_money(Money a, Money b, Money& out) {
  return !__builtin_add_overflow(a.nanos, b.nanos, &out.nanos);
}

bool bad_value(RowProblem& problem, const std::string& column, std::string_view value,
               std::string_view what) {
  problem.column = column;
  problem.reason = "column " + column + ": \"" + std::string(value.substr(0, 80)) + "\" " + std::string(what);
  return false;
}

void add_json_member(std::string& json, std::string_view key, std::string_view value) {
  if (json.size() > 1) json.push_back(',');
  append_json_string(json, key);
  json.push_back(':');
  append_json_string(json, value);
}

std::string tags_to_json(std::string_view text, std::string_view strip_prefix) {
  while (!text.empty() && std::isspace((unsigned char)text.front())) text.remove_prefix(1);
  while (!text.empty() && std::isspace((unsigned char)text.back())) text.remove_suffix(1);
  if (text.empty() || text == "{}" || text == "[]") return {};
  std::string wrapped;
  if (text.front() == '"') {  // Azure EA: the members without braces
    wrapped = "{" + std::string(text) + "}";
    text = wrapped;
  }
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(text);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return std::string(text);
  std::string out = "{";
  auto add = [&](std::string_view key, std::string_view value) {
    if (!strip_prefix.empty() && key.size() > strip_prefix.size() &&
        strncasecmp(key.data(), strip_prefix.data(), strip_prefix.size()) == 0)
      key.remove_prefix(strip_prefix.size());
    add_json_member(out, key, value);
  };
  auto scalar = [](simdjson::ondemand::value value, std::string& into) -> bool {
    simdjson::ondemand::json_type type;
    if (value.type().get(type)) return false;
    if (type == simdjson::ondemand::json_type::string) {
      std::string_view s;
      if (value.get_string().get(s)) return false;
      into.assign(s);
      return true;
    }
    if (type == simdjson::ondemand::json_type::object || type == simdjson::ondemand::json_type::array)
      return false;
    std::string_view raw = value.raw_json_token();
    while (!raw.empty() && std::isspace((unsigned char)raw.back())) raw.remove_suffix(1);
    into.assign(type == simdjson::ondemand::json_type::null ? std::string_view() : raw);
    return true;
  };
  simdjson::ondemand::json_type type;
  if (doc.type().get(type)) return std::string(text);
  std::string value;
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object object;
    if (doc.get_object().get(object)) return std::string(text);
    for (auto member : object) {
      std::string_view key;
      simdjson::ondemand::value v;
      if (member.unescaped_key().get(key)) return std::string(text);
      std::string key_copy(key);
      if (member.value().get(v) || !scalar(v, value)) return std::string(text);
      add(key_copy, value);
    }
  } else if (type == simdjson::ondemand::json_type::array) {
    // BigQuery labels: [{"key":"team","value":"ml"}, ...]
    simdjson::ondemand::array array;
    if (doc.get_array().get(array)) return std::string(text);
    for (auto item : array) {
      simdjson::ondemand::object object;
      if (item.get_object().get(object)) return std::string(text);
      std::string key, val;
      for (auto member : object) {
        std::string_view name;
        simdjson::ondemand::value v;
        if (member.unescaped_key().get(name)) return std::string(text);
        std::string name_copy(name);
        if (member.value().get(v) || !scalar(v, value)) return std::string(text);
        if (name_copy == "key") key = value;
        else if (name_copy == "value") val = value;
      }
      if (!key.empty()) add(key, val);
    }
  } else {
    return std::string(text);
  }
  out.push_back('}');
  return out == "{}" ? std::string() : out;
}

int64_t tokens_per_unit_of(std::string_view unit) {
  std::string u = to_lower(unit);
  if (u.find("1m") != std::string::npos || u.find("million") != std::string::npos ||
      u.find("1,000,000") != std::string::npos)
    return 1'000'000;
  if (u.find("1k") != std::string::npos || u.find("thousand") != std::string::npos ||
      u.find("1,000") != std::string::npos || u.find("1000") != std::string::npos)
    return 1'000;
  return 1;
}

void apply_model_meter(Record& record, const ModelMeter& meter, Decimal quantity,
                       int64_t tokens_per_unit) {
  if (meter.model.empty()) return;
  record[Attr::kModel] = meter.model;
  if (meter.tokens == TokenMeter::kNone) return;
  int64_t per_unit = std::max<int64_t>(tokens_per_unit, meter.tokens_per_unit);
  int64_t tokens = (int64_t)mul_div_round(quantity.nanos, per_unit, kNanosPerUnit);
  UsageFacts& f = record.facts;
  switch (meter.tokens) {
    case TokenMeter::kNone: break;
    case TokenMeter::kInput: f.input_tokens = tokens; break;
    case TokenMeter::kCachedInput: f.input_tokens = f.cached_input_tokens = tokens; break;
    case TokenMeter::kCacheWrite: f.input_tokens = f.cache_write_tokens = tokens; break;
    case TokenMeter::kOutput: f.output_tokens = tokens; break;
  }
}

void apply_gpu(Record& record, std::string_view text, std::string_view instance_sku,
               const pricing::Catalog* catalog, bool hourly) {
  std::string gpu = gpu_type_from_text(text);
  const pricing::GpuInstancePrice* known = nullptr;
  if (catalog != nullptr && !instance_sku.empty()) {
    std::string_view sku = instance_sku;
    if (sku.substr(0, 3) == "ml.") sku.remove_prefix(3);  // SageMaker names EC2 types
    known = catalog->find_gpu_instance(sku, record.facts.charge_period_start);
    if (known != nullptr && known->gpus <= 0) known = nullptr;
  }
  if (gpu.empty() && known != nullptr) gpu = known->gpu_type;
  if (gpu.empty()) return;
  record[Attr::kGpuType] = gpu;
  if (hourly && known != nullptr)
    record.facts.gpu_milliseconds = (int64_t)mul_div_round(
        record.facts.consumed_quantity.nanos, (__int128)known->gpus * 3'600'000, kNanosPerUnit);
}

Result<std::unique_ptr<NativeRowMapper>> make_native_mapper(NativeFormat format,
                                                            const std::vector<std::string_view>& names,
                                                            const std::string& path,
                                                            const FocusMappings& mappings,
                                                            const pricing::Catalog* catalog) {
  NativeHeader header(names);
  switch (format) {
    case NativeFormat::kAwsCur: return make_aws_cur_mapper(header, path, mappings, catalog);
    case NativeFormat::kAzureCost: return make_azure_cost_mapper(header, path, mappings, catalog);
    case NativeFormat::kGcpBilling: return make_gcp_billing_mapper(header, path, mappings, catalog);
    case NativeFormat::kOciCost: return make_oci_cost_mapper(header, path, mappings, catalog);
  }
  return make_error(ErrorCode::kInternal, "unknown native format");
}

namespace {

/// Maps and appends one row, or quarantines it. Errors are ledger failures only.
Result<void> take_row(RecordSink& sink, NativeRowMapper& mapper,
                      const std::vector<std::string_view>& fields, size_t header_size,
                      int64_t line, std::string_view raw, Record& record, RowProblem& problem) {
  if (fields.size() != header_size)
    return sink.quarantine(line, "",
                           "has " + std::to_string(fields.size()) + " fields, the header has " +
                               std::to_string(header_size),
                           raw);
  problem = RowProblem{};
  if (!mapper.map(fields, record, problem))
    return sink.quarantine(line, std::move(problem.column), std::move(problem.reason), raw);
  record.lineage.line = line;
  return sink.append(record);
}

Result<IngestSummary> ingest_native_csv(const IngestContext& context, const std::string& path,
                                        const IngestOptions& options, NativeFormat format,
                                        const FocusMappings& mappings) {
  auto opened = FileInput::open(path);
  if (!opened) return Unexpected{opened.error()};
  CsvReader reader{std::unique_ptr<FileInput>(*opened)};
  CsvRecord csv;
  auto got = reader.next(csv);
  if (!got) return Unexpected{got.error()};
  if (!*got) return make_error(ErrorCode::kParse, path + ": the file is empty (no header row)");
  std::vector<std::string> header_copy(csv.fields.begin(), csv.fields.end());
  std::vector<std::string_view> header(header_copy.begin(), header_copy.end());
  auto mapper = make_native_mapper(format, header, path, mappings, &context.catalog);
  if (!mapper) return Unexpected{mapper.error()};

  RecordSink sink(context, path, std::string(native_format_name(format)), options);
  if (auto begun = sink.begin(); !begun) return Unexpected{begun.error()};
  Record record;
  RowProblem problem;
  int64_t next_progress = 0;
  for (;;) {
    got = reader.next(csv);
    if (!got) return Unexpected{got.error()};
    if (!*got) break;
    if (csv.fields.size() == 1 && csv.fields[0].empty()) continue;  // a blank line
    Result<void> taken;
    if (csv.malformed)
      taken = sink.quarantine(csv.line, "", csv.malformed_reason, csv.raw);
    else
      taken = take_row(sink, **mapper, csv.fields, header.size(), csv.line, csv.raw, record, problem);
    if (!taken) return Unexpected{taken.error()};
    if (options.progress && sink.summary().rows_read >= next_progress) {
      options.progress(reader.input().position(), reader.input().file_size(), sink.summary().rows_read);
      next_progress = sink.summary().rows_read + 50'000;
    }
  }
  ledger::Fingerprint content;
  reader.input().fingerprint(content.high, content.low);
  return sink.finish(content, reader.input().file_size(), (*mapper)->label());
}

/// BigQuery's JSON export: one object per line. Every line is flattened to dotted keys;
/// lines with the same keys (in the same order) share one mapper.
Result<IngestSummary> ingest_native_jsonl(const IngestContext& context, const std::string& path,
                                          const IngestOptions& options, NativeFormat format,
                                          const FocusMappings& mappings) {
  auto opened = FileInput::open(path);
  if (!opened) return Unexpected{opened.error()};
  std::unique_ptr<FileInput> input(*opened);
  RecordSink sink(context, path, std::string(native_format_name(format)), options);
  if (auto begun = sink.begin(); !begun) return Unexpected{begun.error()};
  simdjson::ondemand::parser parser;
  std::string pending;  // bytes after the last complete line
  std::vector<char> block(1 << 20);
  int64_t line = 0;
  std::vector<std::string> keys;
  std::unique_ptr<NativeRowMapper> mapper;
  std::string label;
  Record record;
  RowProblem problem;
  std::vector<std::pair<std::string, std::string>> flat;
  std::vector<std::string_view> values;

  auto take_line = [&](std::string_view text) -> Result<void> {
    ++line;
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
    if (text.empty()) return {};
    if (text.size() > kMaxJsonLine)
      return sink.quarantine(line, "", "a JSON line longer than 16 MiB", text.substr(0, 1024));
    simdjson::padded_string padded(text);
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    flat.clear();
    if (parser.iterate(padded).get(doc) || doc.get_object().get(object) ||
        !flatten_json(object, "", flat))
      return sink.quarantine(line, "", "not a JSON object", text);
    bool same = flat.size() == keys.size();
    for (size_t i = 0; same && i < flat.size(); ++i) same = flat[i].first == keys[i];
    if (!same || !mapper) {
      keys.clear();
      for (auto& [k, v] : flat) keys.push_back(k);
      std::vector<std::string_view> names(keys.begin(), keys.end());
      auto made = make_native_mapper(format, names, path, mappings, &context.catalog);
      if (!made) {
        mapper.reset();
        keys.clear();
        return sink.quarantine(line, "", made.error().message, text);
      }
      mapper = std::move(*made);
      label = mapper->label() + " (JSON lines)";
    }
    values.clear();
    for (auto& [k, v] : flat) values.push_back(v);
    return take_row(sink, *mapper, values, keys.size(), line, text, record, problem);
  };

  for (;;) {
    auto got = input->read(block.data(), block.size());
    if (!got) return Unexpected{got.error()};
    if (*got == 0) break;
    pending.append(block.data(), *got);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      if (auto taken = take_line(std::string_view(pending).substr(start, nl - start)); !taken)
        return Unexpected{taken.error()};
    pending.erase(0, start);
    if (pending.size() > kMaxJsonLine + 1) {
      if (auto q = sink.quarantine(line + 1, "", "a JSON line longer than 16 MiB",
                                   std::string_view(pending).substr(0, 1024));
          !q)
        return Unexpected{q.error()};
      // Skip to the end of that line.
      pending.clear();
      for (;;) {
        auto more = input->read(block.data(), block.size());
        if (!more) return Unexpected{more.error()};
        if (*more == 0) break;
        std::string_view chunk(block.data(), *more);
        if (size_t nl = chunk.find('\n'); nl != std::string_view::npos) {
          pending.assign(chunk.substr(nl + 1));
          break;
        }
      }
      ++line;
    }
  }
  if (!pending.empty())
    if (auto taken = take_line(pending); !taken) return Unexpected{taken.error()};
  if (!mapper && sink.summary().rows_read == 0)
    return make_error(ErrorCode::kParse, path + ": no BigQuery billing export rows (nothing was ingested)");
  ledger::Fingerprint content;
  input->fingerprint(content.high, content.low);
  return sink.finish(content, input->file_size(), label.empty() ? "Google Cloud billing export (JSON lines)" : label);
}

}  // namespace

Result<IngestSummary> ingest_native(const IngestContext& context, const std::string& path,
                                    const IngestOptions& options, NativeFormat format) {
  auto mappings = FocusMappings::builtin();
  if (!mappings) return Unexpected{mappings.error()};
  if (format == NativeFormat::kGcpBilling) {
    auto opened = FileInput::open(path);
    if (!opened) return Unexpected{opened.error()};
    std::unique_ptr<FileInput> input(*opened);
    char first[64];
    auto got = input->read(first, sizeof first);
    if (!got) return Unexpected{got.error()};
    std::string_view head(first, *got);
    size_t at = head.find_first_not_of(" \t\r\n");
    if (at != std::string_view::npos && head[at] == '{')
      return ingest_native_jsonl(context, path, options, format, *mappings);
  }
  return ingest_native_csv(context, path, options, format, *mappings);
}

bool looks_like_aws_cur(std::string_view head, const std::string&) {
  return detect_native_format_text(head) == NativeFormat::kAwsCur;
}
bool looks_like_azure_cost(std::string_view head, const std::string&) {
  return detect_native_format_text(head) == NativeFormat::kAzureCost;
}
bool looks_like_gcp_billing(std::string_view head, const std::string&) {
  return detect_native_format_text(head) == NativeFormat::kGcpBilling;
}
bool looks_like_oci_cost(std::string_view head, const std::string&) {
  return detect_native_format_text(head) == NativeFormat::kOciCost;
}
Result<IngestSummary> ingest_aws_cur(const IngestContext& context, const std::string& path,
                                     const IngestOptions& options) {
  return ingest_native(context, path, options, NativeFormat::kAwsCur);
}
Result<IngestSummary> ingest_azure_cost(const IngestContext& context, const std::string& path,
                                        const IngestOptions& options) {
  return ingest_native(context, path, options, NativeFormat::kAzureCost);
}
Result<IngestSummary> ingest_gcp_billing(const IngestContext& context, const std::string& path,
                                         const IngestOptions& options) {
  return ingest_native(context, path, options, NativeFormat::kGcpBilling);
}
Result<IngestSummary> ingest_oci_cost(const IngestContext& context, const std::string& path,
                                      const IngestOptions& options) {
  return ingest_native(context, path, options, NativeFormat::kOciCost);
}

}  // namespace aifinops::ingest
