// QueryMemo: ledger query answers kept in memory per ledger version and shared by serve's
// requests, so that analyses asking the same question (recommendation kinds sharing a
// window's sums, the same kinds again with other parameters) sum the rollups once per change.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "ledger/ledger.h"

namespace aifinops::server {

/// The answers of ledger queries for one ledger version; a new version drops them all.
/// Bounded by the cells it holds, a row's keys and value each (least recently used first
/// out); an answer of more than a quarter of the bound is not kept: copying it in and out
/// would cost about as much as the query (the dimensions list's grouping by twenty
/// dimensions). Thread-safe.
class QueryMemo {
 public:
  explicit QueryMemo(size_t max_cells = 1'000'000) : max_cells_(max_cells) {}

  /// The answer to `key` at `version`, or null.
  std::shared_ptr<const ledger::QueryResult> find(const std::string& version,
                                                  const std::string& key);
  /// Keeps an answer read at `version` (read before the query ran: an answer that might
  /// already see a later write is kept under the earlier version, which no later call asks).
  void keep(const std::string& version, const std::string& key,
            std::shared_ptr<const ledger::QueryResult> answer);
  /// The cells held: a row's keys and value, and one for each answer.
  size_t cells() const;
  size_t max_cells() const { return max_cells_; }

  /// A query's key: every field of the spec (dimensions, filters, range, metric).
  static std::string key_of(const ledger::QuerySpec& spec);

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const ledger::QueryResult> answer;
  };
  mutable std::mutex mutex_;
  const size_t max_cells_;
  std::string version_;
  std::list<Entry> entries_;  ///< most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t cells_ = 0;
};

/// A ledger whose queries are answered from a QueryMemo when it has them, else by the inner
/// ledger (and kept). Everything else goes to the inner ledger. For one request: the inner
/// ledger and the memo outlive it; `version` is the ledger version read before the request.
class MemoLedger : public ledger::Ledger {
 public:
  MemoLedger(ledger::Ledger& inner, QueryMemo& memo, std::string version)
      : inner_(inner), memo_(memo), version_(std::move(version)) {}

  Result<ledger::QueryResult> query(const ledger::QuerySpec& spec) override;

  Result<int64_t> begin_batch(const ledger::BatchInfo& info) override {
    return inner_.begin_batch(info);
  }
  Result<int64_t> intern_attributes(const AttributeViews& attributes,
                                    const ledger::Fingerprint& fingerprint) override {
    return inner_.intern_attributes(attributes, fingerprint);
  }
  Result<void> append(int64_t attributes_id, const UsageFacts& facts,
                      const Lineage& lineage) override {
    return inner_.append(attributes_id, facts, lineage);
  }
  Result<void> quarantine(int64_t batch_id, const ledger::QuarantinedRow& row) override {
    return inner_.quarantine(batch_id, row);
  }
  Result<void> commit_batch(const ledger::BatchSummary& summary) override {
    return inner_.commit_batch(summary);
  }
  void abort_batch() override { inner_.abort_batch(); }
  Result<std::optional<ledger::BatchSummary>> find_batch_by_fingerprint(
      const ledger::Fingerprint& f) override {
    return inner_.find_batch_by_fingerprint(f);
  }
  Result<std::vector<ledger::BatchSummary>> find_batches_by_path(const std::string& path) override {
    return inner_.find_batches_by_path(path);
  }
  Result<void> remove_batch(int64_t batch_id) override { return inner_.remove_batch(batch_id); }
  Result<std::vector<ledger::QuarantinedRow>> quarantined_rows(int64_t batch_id) override {
    return inner_.quarantined_rows(batch_id);
  }
  Result<std::vector<ledger::BatchSummary>> batches() override { return inner_.batches(); }
  Result<void> note(std::string_view kind, std::string_view key, std::string_view detail) override {
    return inner_.note(kind, key, detail);
  }
  Result<bool> note_once(std::string_view kind, std::string_view key,
                         std::string_view detail) override {
    return inner_.note_once(kind, key, detail);
  }
  Result<std::vector<ledger::Note>> notes(std::string_view kind) override {
    return inner_.notes(kind);
  }
  Result<int64_t> store_prices(std::vector<pricing::ModelPrice>& models,
                               std::vector<pricing::GpuInstancePrice>& gpus) override {
    return inner_.store_prices(models, gpus);
  }
  Result<pricing::Catalog> load_catalog() override { return inner_.load_catalog(); }

 private:
  ledger::Ledger& inner_;
  QueryMemo& memo_;
  std::string version_;
};

}  // namespace aifinops::server
