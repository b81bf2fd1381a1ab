#include "server/read_only_ledger.h"

#include <algorithm>
#include <map>

namespace aifinops::server {
namespace {

Unexpected read_only() {
  return make_error(ErrorCode::kInvalidArgument,
                    "the API reads the ledger only; write with the aifinops CLI or the gateway");
}

}  // namespace

ReadOnlyLedger::ReadOnlyLedger(ledger::Ledger& inner, Restriction restriction)
    : inner_(inner), restriction_(std::move(restriction)) {}

Result<int64_t> ReadOnlyLedger::begin_batch(const ledger::BatchInfo&) { return read_only(); }
Result<int64_t> ReadOnlyLedger::intern_attributes(const AttributeViews&,
                                                  const ledger::Fingerprint&) {
  return read_only();
}
Result<void> ReadOnlyLedger::append(int64_t, const UsageFacts&, const Lineage&) {
  return read_only();
}
Result<void> ReadOnlyLedger::quarantine(int64_t, const ledger::QuarantinedRow&) {
  return read_only();
}
Result<void> ReadOnlyLedger::commit_batch(const ledger::BatchSummary&) { return read_only(); }
Result<std::optional<ledger::BatchSummary>> ReadOnlyLedger::find_batch_by_fingerprint(
    const ledger::Fingerprint& f) {
  if (!restriction_.empty()) return std::optional<ledger::BatchSummary>();
  return inner_.find_batch_by_fingerprint(f);
}
Result<std::vector<ledger::BatchSummary>> ReadOnlyLedger::find_batches_by_path(
    const std::string& path) {
  if (!restriction_.empty()) return std::vector<ledger::BatchSummary>();
  return inner_.find_batches_by_path(path);
}
Result<void> ReadOnlyLedger::remove_batch(int64_t) { return read_only(); }

Result<ledger::QueryResult> ReadOnlyLedger::query(const ledger::QuerySpec& spec) {
  if (restriction_.empty()) return inner_.query(spec);
  // Every combination of allowed values, one query each (the odometer walks the values).
  std::vector<size_t> at(restriction_.size(), 0);
  std::map<std::vector<std::string>, __int128> sums;
  ledger::QueryResult merged;
  size_t queries = 0;
  for (;;) {
    ledger::QuerySpec restricted = spec;
    for (size_t i = 0; i < restriction_.size(); ++i)
      restricted.filters.push_back({restriction_[i].first, restriction_[i].second[at[i]]});
    auto part = inner_.query(restricted);
    if (!part) return Unexpected{part.error()};
    ++queries;
    if (queries == 1) merged.source_table = part->source_table;
    for (ledger::QueryRow& row : part->rows) sums[std::move(row.keys)] += row.value;
    merged.total += part->total;
    size_t i = 0;
    while (i < at.size() && ++at[i] == restriction_[i].second.size()) at[i++] = 0;
    if (i == at.size()) break;
  }
  for (auto& [keys, value] : sums) merged.rows.push_back({keys, value});
  // The Ledger's order: time columns ascending first, then the value, largest first.
  std::vector<size_t> time_columns;
  for (size_t i = 0; i < spec.group_by.size(); ++i)
    if (spec.group_by[i].kind == ledger::Dimension::Kind::kTime) time_columns.push_back(i);
  std::sort(merged.rows.begin(), merged.rows.end(),
            [&](const ledger::QueryRow& a, const ledger::QueryRow& b) {
              for (size_t i : time_columns)
                if (a.keys[i] != b.keys[i]) return a.keys[i] < b.keys[i];
              if (a.value != b.value) return a.value > b.value;
              return a.keys < b.keys;
            });
  return merged;
}

Result<std::vector<ledger::QuarantinedRow>> ReadOnlyLedger::quarantined_rows(int64_t batch_id) {
  if (!restriction_.empty()) return std::vector<ledger::QuarantinedRow>();
  return inner_.quarantined_rows(batch_id);
}

Result<std::vector<ledger::BatchSummary>> ReadOnlyLedger::batches() {
  auto all = inner_.batches();
  if (!all || restriction_.empty()) return all;
  for (ledger::BatchSummary& b : *all) {
    b.source_path.clear();
    b.fingerprint_hex.clear();
    b.rows_read = b.rows_ingested = b.rows_quarantined = 0;
    b.billed_cost = b.effective_cost = 0;
  }
  return all;
}

Result<void> ReadOnlyLedger::note(std::string_view, std::string_view, std::string_view) {
  return {};
}
Result<bool> ReadOnlyLedger::note_once(std::string_view, std::string_view, std::string_view) {
  return read_only();
}
Result<std::vector<ledger::Note>> ReadOnlyLedger::notes(std::string_view kind) {
  auto all = inner_.notes(kind);
  if (!all || restriction_.empty()) return all;
  for (ledger::Note& n : *all) {
    n.key.clear();
    n.detail.clear();
  }
  return all;
}

Result<int64_t> ReadOnlyLedger::store_prices(std::vector<pricing::ModelPrice>&,
                                             std::vector<pricing::GpuInstancePrice>&) {
  return read_only();
}
Result<pricing::Catalog> ReadOnlyLedger::load_catalog() { return inner_.load_catalog(); }

}  // namespace aifinops::server
