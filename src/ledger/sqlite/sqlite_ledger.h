// SqliteLedger: the embedded default ledger, one SQLite file in WAL mode.
// Star schema: `records` (per-row facts, integers only) reference `attributes` (each
// distinct set of descriptive columns once). Day and month rollups by attribute set are
// maintained at commit, so reports over millions of records read thousands of rows.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ledger/ledger.h"

struct sqlite3;

namespace aifinops::ledger {

struct AttributeGroups;
struct RollupColumn;
class RollupCache;

/// Not thread-safe: one instance per thread. Several processes may read while one writes.
class SqliteLedger final : public Ledger {
 public:
  static Result<std::unique_ptr<SqliteLedger>> open(const std::string& path);
  /// Opens with a cache of rollup sums shared by every connection opened with it (one per
  /// ledger file; serve's connection pool), so that each month is read into memory once per
  /// process, not once per connection.
  static Result<std::unique_ptr<SqliteLedger>> open(const std::string& path,
                                                    std::shared_ptr<RollupCache> rollups);
  /// A cache for open(): thread-safe, for connections to one file.
  static std::shared_ptr<RollupCache> new_rollup_cache();
  ~SqliteLedger() override;

  Result<int64_t> begin_batch(const BatchInfo& info) override;
  Result<int64_t> intern_attributes(const AttributeViews& attributes,
                                    const Fingerprint& fingerprint) override;
  Result<void> append(int64_t attributes_id, const UsageFacts& facts,
                      const Lineage& lineage) override;
  Result<void> quarantine(int64_t batch_id, const QuarantinedRow& row) override;
  Result<void> commit_batch(const BatchSummary& summary) override;
  void abort_batch() override;
  Result<std::optional<BatchSummary>> find_batch_by_fingerprint(const Fingerprint& f) override;
  Result<std::vector<BatchSummary>> find_batches_by_path(const std::string& path) override;
  Result<void> remove_batch(int64_t batch_id) override;

  Result<QueryResult> query(const QuerySpec& spec) override;
  Result<std::vector<QuarantinedRow>> quarantined_rows(int64_t batch_id) override;
  Result<bool> note_once(std::string_view kind, std::string_view key, std::string_view detail) override;
  Result<void> note(std::string_view kind, std::string_view key, std::string_view detail) override;
  Result<std::vector<Note>> notes(std::string_view kind) override;
  Result<std::vector<BatchSummary>> batches() override;

  Result<int64_t> store_prices(std::vector<pricing::ModelPrice>& models,
                               std::vector<pricing::GpuInstancePrice>& gpus) override;
  Result<pricing::Catalog> load_catalog() override;

  /// A metric to read into the rollup cache at start, and how many of the day rollup's
  /// newest months (0: all of them).
  struct RollupPreload {
    Metric metric = Metric::kEffectiveCost;
    int day_months = 0;
  };
  /// Reads rollup sums into the rollup cache now: the whole month rollup of every metric
  /// listed, then each metric's newest months of the day rollup in the order listed, while
  /// the cache stays under three quarters of its bound (room for what queries read later).
  /// Serve calls it before it accepts calls, so that no caller's first query pays for reading
  /// them. Returns the rollup rows it read. Ratio metrics are never cached, and are skipped;
  /// GPU memory peak has no month rollup column, and is an error.
  Result<size_t> preload_rollups(const std::vector<RollupPreload>& metrics);

  /// The schema version this build writes.
  static constexpr int kSchemaVersion = 3;

 private:
  struct State;
  SqliteLedger(sqlite3* db, std::string path, std::shared_ptr<RollupCache> rollups);
  Result<void> migrate();
  Result<void> write_note(std::string_view verb, std::string_view kind, std::string_view key,
                          std::string_view detail);
  /// Prepares a writer's statements, once per connection (at its first batch).
  Result<void> prepare_writer();
  Result<void> flush_records();
  Result<void> flush_rollups();
  /// query() over a rollup table: the rows summed by group in memory.
  Result<QueryResult> query_rollup(const QuerySpec& spec, const std::string& table);
  /// The attribute sets' groups for a query's grouping and filters (cached per connection).
  Result<std::shared_ptr<const AttributeGroups>> attribute_groups(const QuerySpec& spec);
  /// A rollup table's metric in memory over a range, in pieces in bucket order (cached per
  /// connection). `cached` is false when they would pass the memory bound: read SQLite.
  Result<std::vector<std::shared_ptr<const RollupColumn>>> rollup_pieces(
      const std::string& table, Metric metric, std::optional<EpochSeconds> from,
      std::optional<EpochSeconds> to, bool& cached);

  sqlite3* db_;
  std::string path_;
  std::unique_ptr<State> state_;
};

}  // namespace aifinops::ledger
