#include "gateway/spool.h"

#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "allocate/tag_policy.h"
#include "core/json_text.h"

namespace aifinops::gateway {
namespace {

void put_string(std::string& out, std::string_view key, std::string_view value) {
  append_json_string(out, key);
  out += ':';
  append_json_string(out, value);
  out += ',';
}

void put_int(std::string& out, std::string_view key, int64_t value) {
  out += '"';
  out += key;
  out += "\":";
  out += std::to_string(value);
  out += ',';
}

namespace fs = std::filesystem;

}  // namespace

std::string to_json_line(const UsageEvent& e) {
  std::string out = "{";
  put_int(out, "t", e.time_ms);
  put_string(out, "key", e.key_id);
  out += "\"tags\":{";
  bool first = true;
  for (const auto& [k, v] : e.tags) {
    if (!first) out += ',';
    first = false;
    std::string pair;
    put_string(pair, k, v);
    pair.pop_back();
    out += pair;
  }
  out += "},";
  put_string(out, "model", e.model);
  put_string(out, "upstream", e.upstream);
  put_string(out, "provider", e.provider);
  put_string(out, "operation", e.operation);
  put_int(out, "status", e.status);
  put_int(out, "in", e.tokens.input);
  put_int(out, "cached", e.tokens.cached_input);
  put_int(out, "cache_write", e.tokens.cache_write);
  put_int(out, "out", e.tokens.output);
  put_int(out, "reasoning", e.tokens.reasoning);
  put_int(out, "cost", e.cost.nanos);
  put_int(out, "price", e.price_version);
  put_int(out, "latency_ms", e.latency_ms);
  put_int(out, "ttft_ms", e.ttft_ms);
  put_int(out, "cache_hit", e.cache_hit ? 1 : 0);
  put_int(out, "saving", e.cache_saving.nanos);
  put_int(out, "estimated", e.estimated ? 1 : 0);
  put_int(out, "partial", e.partial ? 1 : 0);
  out.back() = '}';
  out += '\n';
  return out;
}

bool from_json_line(std::string_view line, UsageEvent& e) {
  // One parser per thread: building one allocates, and the drainer parses every record.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(line.data(), line.size()).get(doc) != simdjson::SUCCESS) return false;
  simdjson::dom::object o;
  if (doc.get_object().get(o) != simdjson::SUCCESS) return false;
  auto text = [&](const char* k, std::string& out) {
    std::string_view v;
    if (o[k].get_string().get(v) != simdjson::SUCCESS) return false;
    out = std::string(v);
    return true;
  };
  auto number = [&](const char* k, int64_t& out) { return o[k].get_int64().get(out) == simdjson::SUCCESS; };
  int64_t status = 0, cache_hit = 0, estimated = 0, partial = 0;
  bool ok = number("t", e.time_ms) && text("key", e.key_id) && text("model", e.model) &&
            text("upstream", e.upstream) && text("provider", e.provider) &&
            text("operation", e.operation) && number("status", status) &&
            number("in", e.tokens.input) && number("cached", e.tokens.cached_input) &&
            number("cache_write", e.tokens.cache_write) && number("out", e.tokens.output) &&
            number("reasoning", e.tokens.reasoning) && number("cost", e.cost.nanos) &&
            number("price", e.price_version) && number("latency_ms", e.latency_ms) &&
            number("ttft_ms", e.ttft_ms) && number("cache_hit", cache_hit) &&
            number("saving", e.cache_saving.nanos) && number("estimated", estimated) &&
            number("partial", partial);
  if (!ok) return false;
  e.status = (int)status;
  e.cache_hit = cache_hit != 0;
  e.estimated = estimated != 0;
  e.partial = partial != 0;
  e.tags.clear();
  simdjson::dom::object tags;
  if (o["tags"].get_object().get(tags) == simdjson::SUCCESS) {
    for (auto field : tags) {
      std::string_view v;
      if (field.value.get_string().get(v) == simdjson::SUCCESS) e.tags[std::string(field.key)] = std::string(v);
    }
  }
  return true;
}

// --- Spool --------------------------------------------------------------------------------

Result<std::unique_ptr<Spool>> Spool::open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, dir + ": cannot create the spool directory: " + ec.message());
  std::unique_ptr<Spool> spool(new Spool());
  spool->dir_ = dir;
  // Continue numbering after files a previous run left.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("ready-", 0) == 0) {
      uint64_t n = std::strtoull(name.c_str() + 6, nullptr, 10);
      spool->sequence_ = std::max(spool->sequence_, n);
    }
  }
  std::string current = dir + "/current.jsonl";
  spool->fd_ = ::open(current.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (spool->fd_ < 0) return make_error(ErrorCode::kIo, current + ": cannot open: " + std::strerror(errno));
  spool->bytes_ = ::lseek(spool->fd_, 0, SEEK_END);
  return spool;
}

Spool::~Spool() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> Spool::append(const UsageEvent& event) {
  std::string line = to_json_line(event);
  std::lock_guard<std::mutex> lock(mutex_);
  // One write(2) per record: the page cache keeps it through a crash of this process.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(ErrorCode::kIo, dir_ + "/current.jsonl: write failed: " + std::strerror(errno));
    p += n;
    left -= (size_t)n;
  }
  bytes_ += (int64_t)line.size();
  return {};
}

Result<bool> Spool::rotate() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (bytes_ == 0) return false;
  std::string current = dir_ + "/current.jsonl";
  std::string ready = dir_ + "/ready-" + std::to_string(++sequence_) + ".jsonl";
  if (::rename(current.c_str(), ready.c_str()) != 0)
    return make_error(ErrorCode::kIo, current + ": cannot rotate: " + std::strerror(errno));
  ::close(fd_);
  fd_ = ::open(current.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) return make_error(ErrorCode::kIo, current + ": cannot open: " + std::strerror(errno));
  bytes_ = 0;
  return true;
}

// --- SpoolDrainer ---------------------------------------------------------------------------

SpoolDrainer::SpoolDrainer(Spool& spool, std::string ledger_location, int64_t interval_ms)
    : spool_(spool), ledger_location_(std::move(ledger_location)), interval_ms_(interval_ms) {}

SpoolDrainer::~SpoolDrainer() { stop(); }

void SpoolDrainer::start() { thread_ = std::thread([this] { loop(); }); }

void SpoolDrainer::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SpoolDrainer::loop() {
  for (;;) {
    bool last;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
      last = stopping_;
    }
    auto drained = drain_now();
    if (!drained) std::fprintf(stderr, "aifinops gateway: spool: %s (will retry)\n", drained.error().message.c_str());
    if (last) return;
  }
}

Result<int64_t> SpoolDrainer::drain_now() {
  std::lock_guard<std::mutex> guard(drain_mutex_);
  auto rotated = spool_.rotate();
  if (!rotated) return Unexpected{rotated.error()};
  std::vector<std::pair<uint64_t, std::string>> ready;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(spool_.dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("ready-", 0) == 0)
      ready.emplace_back(std::strtoull(name.c_str() + 6, nullptr, 10), entry.path().string());
  }
  if (ready.empty()) return 0;
  std::sort(ready.begin(), ready.end());
  auto ledger = ledger::open_ledger(ledger_location_);
  if (!ledger) return Unexpected{ledger.error()};
  int64_t total = 0;
  for (const auto& [n, path] : ready) {
    auto count = ingest_file(**ledger, path);
    if (!count) return Unexpected{count.error()};
    total += *count;
    fs::remove(path, ec);  // only after the batch committed (or was already there)
  }
  drained_ += total;
  return total;
}

Result<int64_t> SpoolDrainer::ingest_file(ledger::Ledger& ledger, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string content = buffer.str();
  XXH128_hash_t h = XXH3_128bits(content.data(), content.size());
  ledger::Fingerprint fingerprint{h.high64, h.low64};
  // Ingested before a crash that came ahead of the file's removal: nothing to do.
  auto previous = ledger.find_batch_by_fingerprint(fingerprint);
  if (!previous) return Unexpected{previous.error()};
  if (previous->has_value()) return 0;

  ledger::BatchInfo info;
  info.source_path = path;
  info.source_kind = "gateway";
  auto batch = ledger.begin_batch(info);
  if (!batch) return Unexpected{batch.error()};
  static const allocate::TagPolicy policy = allocate::TagPolicy::defaults();
  ledger::BatchSummary summary;
  summary.id = *batch;
  summary.source_kind = "gateway";
  summary.source_path = path;
  summary.fingerprint_hex = fingerprint.hex();
  std::unordered_map<std::string, int64_t> attribute_ids;
  size_t pos = 0;
  int64_t line_number = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();  // a torn last line: skipped below
    std::string_view line(content.data() + pos, end - pos);
    pos = end + 1;
    ++line_number;
    ++summary.rows_read;
    UsageEvent e;
    if (!from_json_line(line, e)) {
      ledger::QuarantinedRow bad{line_number, "", "not a complete spool record (torn write?)", std::string(line.substr(0, 4096))};
      if (auto q = ledger.quarantine(*batch, bad); !q) {
        ledger.abort_batch();
        return Unexpected{q.error()};
      }
      ++summary.rows_quarantined;
      continue;
    }
    // The descriptive part of a gateway record: few distinct sets, so interned by text.
    std::string tags_json = "{";
    for (const auto& [k, v] : e.tags) put_string(tags_json, k, v);
    if (tags_json.size() > 1) tags_json.pop_back();  // the last ','
    tags_json += "}";
    std::string status = std::to_string(e.status);
    std::string extra = "{\"upstream\":\"" + e.upstream + "\",\"status\":\"" + status + "\",\"cache_hit\":\"" +
                        (e.cache_hit ? "true" : "false") + "\"}";
    std::string key_text = e.key_id + '\x1f' + e.model + '\x1f' + e.provider + '\x1f' + e.operation + '\x1f' +
                           tags_json + '\x1f' + extra;
    auto it = attribute_ids.find(key_text);
    if (it == attribute_ids.end()) {
      std::array<std::string, kAttrCount> storage;
      AttributeViews views{};
      views[(size_t)Attr::kProviderName] = e.provider;
      std::string service = e.provider + " API";  // the views below must outlive the insert
      views[(size_t)Attr::kServiceName] = service;
      views[(size_t)Attr::kServiceCategory] = "AI and Machine Learning";
      views[(size_t)Attr::kChargeCategory] = "Usage";
      views[(size_t)Attr::kBillingCurrency] = "USD";
      views[(size_t)Attr::kResourceId] = e.key_id;
      views[(size_t)Attr::kResourceType] = "Virtual key";
      views[(size_t)Attr::kConsumedUnit] = "Tokens";
      views[(size_t)Attr::kModel] = e.model;
      views[(size_t)Attr::kOperation] = e.operation;
      views[(size_t)Attr::kTags] = tags_json;
      views[(size_t)Attr::kExtra] = extra;
      policy.apply(tags_json, storage, views);
      XXH128_hash_t kh = XXH3_128bits(key_text.data(), key_text.size());
      auto id = ledger.intern_attributes(views, ledger::Fingerprint{kh.high64, kh.low64});
      if (!id) {
        ledger.abort_batch();
        return Unexpected{id.error()};
      }
      it = attribute_ids.emplace(key_text, *id).first;
    }
    UsageFacts f;
    f.charge_period_start = e.time_ms / 1000;
    f.charge_period_end = (e.time_ms + e.latency_ms) / 1000;
    f.input_tokens = e.tokens.input;
    f.cached_input_tokens = e.tokens.cached_input;
    f.cache_write_tokens = e.tokens.cache_write;
    f.output_tokens = e.tokens.output;
    f.reasoning_tokens = e.tokens.reasoning;
    f.consumed_quantity = Decimal::from_units(e.tokens.input + e.tokens.output);
    f.requests = 1;
    f.list_cost = f.contracted_cost = f.billed_cost = f.effective_cost = e.cost;
    f.price_version = e.price_version;
    f.flags = kFlagPricedFromCatalog;
    if (e.estimated) f.flags |= kFlagEstimated;
    if (e.partial) f.flags |= kFlagPartial;
    if (e.cache_hit) f.flags |= kFlagCacheHit;
    f.latency_ms = e.latency_ms;
    f.ttft_ms = e.ttft_ms;
    f.cache_saving = e.cache_saving;
    if (auto a = ledger.append(it->second, f, Lineage{*batch, line_number}); !a) {
      ledger.abort_batch();
      return Unexpected{a.error()};
    }
    ++summary.rows_ingested;
    summary.billed_cost += e.cost.nanos;
    summary.effective_cost += e.cost.nanos;
  }
  if (auto c = ledger.commit_batch(summary); !c) return Unexpected{c.error()};
  return summary.rows_ingested;
}

}  // namespace aifinops::gateway
