// RecordSink: attribute interning, quarantine and the batch rules shared by every reader.
#include "ingest/record_sink.h"

#include <xxhash.h>

#include <cstring>
#include <filesystem>

#include "core/json_text.h"

namespace aifinops::ingest {
namespace {

constexpr size_t kMaxRawQuarantineBytes = 64 * 1024;
constexpr size_t kQuarantineSampleSize = 10;
// Distinct attribute sets remembered before the cache is cleared: bounds memory on inputs
// where every row is unique.
constexpr size_t kMaxCachedAttributeSets = 200'000;

}  // namespace

RecordSink::RecordSink(const IngestContext& context, std::string source_path,
                       std::string source_kind, const IngestOptions& options)
    : context_(context), path_(source_path), source_kind_(std::move(source_kind)), options_(options) {
  // Batches remember the absolute path, so "./bill.csv" and "bill.csv" are one file. A
  // name that is not a file (a stream) is kept as it is.
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::weakly_canonical(source_path, ec);
  source_path_ = ec || !std::filesystem::exists(source_path, ec) ? source_path : absolute.string();
  std::string policy = context.tag_policy.fingerprint();
  XXH128_hash_t h = XXH3_128bits(policy.data(), policy.size());
  policy_fingerprint_.assign(reinterpret_cast<const char*>(&h), sizeof h);
  summary_.path = path_;
}

RecordSink::~RecordSink() { abort(); }

void RecordSink::abort() {
  if (active_) context_.ledger.abort_batch();
  active_ = false;
}

Result<void> RecordSink::begin() {
  ledger::BatchInfo info;
  info.source_path = source_path_;
  info.source_kind = source_kind_;
  auto batch = context_.ledger.begin_batch(info);
  if (!batch) return Unexpected{batch.error()};
  active_ = true;
  summary_.batch_id = *batch;
  return {};
}

Result<int64_t> RecordSink::intern_views(const AttributeViews& views,
                                         const ledger::Fingerprint& fingerprint) {
  auto id = context_.ledger.intern_attributes(views, fingerprint);
  if (!id) abort();
  return id;
}

Result<void> RecordSink::append_views(int64_t attributes_id, const UsageFacts& facts, int64_t line) {
  auto appended = context_.ledger.append(attributes_id, facts, Lineage{summary_.batch_id, line});
  if (!appended) {
    abort();
    return appended;
  }
  ++summary_.rows_read;
  ++summary_.rows_ingested;
  if (facts.flags & kFlagPricedFromCatalog) ++summary_.rows_priced;
  summary_.billed_cost += facts.billed_cost.nanos;
  summary_.effective_cost += facts.effective_cost.nanos;
  return {};
}

Result<int64_t> RecordSink::intern_record(Record& record,
                                          std::span<const std::pair<Attr, std::string>> defaults) {
  // The key is the record as the reader built it, plus the defaults and the policy digest:
  // the policy maps equal input to equal output, so a cache hit skips parsing the tags.
  // A domain prefix keeps these fingerprints apart from FOCUS's, which hash raw columns.
  constexpr std::string_view kDomain = "record\x1e";
  size_t need = kDomain.size() + policy_fingerprint_.size() + kAttrCount + 2 * defaults.size();
  for (const std::string& v : record.attributes) need += v.size();
  for (const auto& d : defaults) need += d.second.size();
  if (key_.size() < need) key_.resize(need * 2);
  char* out = key_.data();
  std::memcpy(out, kDomain.data(), kDomain.size());
  out += kDomain.size();
  std::memcpy(out, policy_fingerprint_.data(), policy_fingerprint_.size());
  out += policy_fingerprint_.size();
  for (const std::string& v : record.attributes) {
    if (!v.empty()) std::memcpy(out, v.data(), v.size());
    out += v.size();
    *out++ = '\x1f';
  }
  for (const auto& [attribute, value] : defaults) {
    *out++ = (char)attribute;
    if (!value.empty()) std::memcpy(out, value.data(), value.size());
    out += value.size();
    *out++ = '\x1f';
  }
  XXH128_hash_t h = XXH3_128bits(key_.data(), (size_t)(out - key_.data()));
  ledger::Fingerprint fp{h.high64, h.low64};
  if (auto it = ids_.find(fp); it != ids_.end()) return it->second;

  // Canonical dimensions from the raw tags; the policy's apply() keeps a slot whose storage
  // is already filled, so the reader's own values win.
  std::array<std::string, kAttrCount> storage;
  for (size_t i = (size_t)kFirstDimension; i <= (size_t)kLastDimension; ++i)
    storage[i] = record.attributes[i];
  std::string extra = record[Attr::kExtra], tags = record[Attr::kTags];
  AttributeViews views = record.views();
  if (!context_.tag_policy.apply(tags, storage, views)) {
    // Not a JSON object: kept in `extra`, so that queries never see invalid JSON in tags.
    std::string moved = extra.size() >= 2 && extra.back() == '}' ? extra.substr(0, extra.size() - 1) : "{";
    if (moved.size() > 1) moved.push_back(',');
    append_json_string(moved, "Tags");
    moved.push_back(':');
    append_json_string(moved, tags);
    moved.push_back('}');
    extra = std::move(moved);
    views[(size_t)Attr::kTags] = {};
    views[(size_t)Attr::kExtra] = extra;
    for (size_t i = (size_t)kFirstDimension; i <= (size_t)kLastDimension; ++i)
      views[i] = storage[i];
  }
  for (const auto& [attribute, value] : defaults) {
    size_t slot = (size_t)attribute;
    if (views[slot].empty()) {
      storage[slot] = value;
      views[slot] = storage[slot];
    }
  }
  auto interned = intern_views(views, fp);
  if (!interned) return Unexpected{interned.error()};
  if (ids_.size() >= kMaxCachedAttributeSets) ids_.clear();
  ids_.emplace(fp, *interned);
  return *interned;
}

Result<void> RecordSink::append(Record& record,
                                std::span<const std::pair<Attr, std::string>> defaults) {
  auto id = intern_record(record, defaults);
  if (!id) return Unexpected{id.error()};
  return append_views(*id, record.facts, record.lineage.line);
}

Result<void> RecordSink::quarantine(int64_t line, std::string column, std::string reason,
                                    std::string_view raw) {
  ledger::QuarantinedRow row;
  row.line = line;
  row.column = std::move(column);
  row.reason = std::move(reason);
  row.raw = std::string(raw.substr(0, kMaxRawQuarantineBytes));
  return quarantine(std::move(row));
}

Result<void> RecordSink::quarantine(ledger::QuarantinedRow row) {
  if (row.raw.size() > kMaxRawQuarantineBytes) row.raw.resize(kMaxRawQuarantineBytes);
  auto q = context_.ledger.quarantine(summary_.batch_id, row);
  if (!q) {
    abort();
    return q;
  }
  ++summary_.rows_read;
  ++summary_.rows_quarantined;
  if (summary_.quarantined_sample.size() < kQuarantineSampleSize)
    summary_.quarantined_sample.push_back(std::move(row));
  return {};
}

Result<IngestSummary> RecordSink::finish(const ledger::Fingerprint& content, int64_t bytes,
                                         std::string format_label) {
  ledger::Ledger& ledger = context_.ledger;
  summary_.bytes = bytes;
  summary_.format = std::move(format_label);
  if (options_.strict && summary_.rows_quarantined > 0) {
    abort();
    summary_.batch_id = 0;
    return summary_;
  }
  // Idempotency: identical content ingested before means nothing to do.
  auto previous = ledger.find_batch_by_fingerprint(content);
  if (!previous) {
    abort();
    return Unexpected{previous.error()};
  }
  if (previous->has_value()) {
    abort();
    summary_.duplicate = true;
    summary_.duplicate_of = (*previous)->id;
    summary_.batch_id = 0;
    return summary_;
  }
  if (!stream_) {
    auto same_path = ledger.find_batches_by_path(source_path_);
    if (!same_path) {
      abort();
      return Unexpected{same_path.error()};
    }
    for (const ledger::BatchSummary& earlier : *same_path) {
      if (earlier.id == summary_.batch_id) continue;
      if (!options_.replace) {
        abort();
        return make_error(ErrorCode::kConflict,
                          path_ + " was ingested before with different content (batch " +
                              std::to_string(earlier.id) + ", " + earlier.ingested_at +
                              "); nothing was ingested. Re-run with --replace to replace that "
                              "batch, or rename the file if it is a different bill");
      }
      if (auto removed = ledger.remove_batch(earlier.id); !removed) {
        abort();
        return Unexpected{removed.error()};
      }
      summary_.replaced.push_back(earlier.id);
    }
  }
  ledger::BatchSummary stored;
  stored.id = summary_.batch_id;
  stored.source_path = source_path_;
  stored.source_kind = source_kind_;
  stored.fingerprint_hex = content.hex();
  stored.rows_read = summary_.rows_read;
  stored.rows_ingested = summary_.rows_ingested;
  stored.rows_quarantined = summary_.rows_quarantined;
  stored.billed_cost = summary_.billed_cost;
  stored.effective_cost = summary_.effective_cost;
  active_ = false;  // commit_batch ends the transaction either way
  if (auto committed = ledger.commit_batch(stored); !committed) {
    ledger.abort_batch();
    return Unexpected{committed.error()};
  }
  return summary_;
}

}  // namespace aifinops::ingest
