// PostgresLedger: the ledger in a PostgreSQL database (libpq), for fleets of gateways and
// teams that share one truth. Same star schema as SqliteLedger, records partitioned by month.
// Bulk appends stream with binary COPY; rollups are kept at commit exactly like SQLite's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ledger/ledger.h"

struct pg_conn;

namespace aifinops::ledger {

/// One connection, one instance per thread (not thread-safe). Any number of processes may
/// read and write beside each other: batches from different writers take turns on an
/// advisory lock (as SQLite's writers do on its file lock), readers never wait.
/// `location` is a libpq connection URL (postgresql://user@host:5432/dbname?sslmode=...);
/// PGPASSWORD, PGSERVICE and the other libpq variables apply as usual.
class PostgresLedger final : public Ledger {
 public:
  static Result<std::unique_ptr<PostgresLedger>> open(const std::string& url);
  ~PostgresLedger() override;

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
  Result<bool> note_once(std::string_view kind, std::string_view key,
                         std::string_view detail) override;
  Result<void> note(std::string_view kind, std::string_view key, std::string_view detail) override;
  Result<std::vector<Note>> notes(std::string_view kind) override;
  Result<std::vector<BatchSummary>> batches() override;

  Result<int64_t> store_prices(std::vector<pricing::ModelPrice>& models,
                               std::vector<pricing::GpuInstancePrice>& gpus) override;
  Result<pricing::Catalog> load_catalog() override;

  /// A counter every committed write (batch, replacement, note, prices) moves forward, in
  /// the same transaction: an answer cache keyed on it is never stale.
  Result<int64_t> change_count();

  /// The tables in the database's current schema that are not a ledger's (a database that
  /// holds other data). Does not create anything.
  static Result<std::vector<std::string>> foreign_tables(const std::string& url);
  /// Drops every ledger table (records and their partitions too), in one transaction.
  static Result<void> drop_ledger(const std::string& url);

  /// The schema version this build writes (the same number as SQLite's for the same shape).
  static constexpr int kSchemaVersion = 3;

 private:
  struct State;
  PostgresLedger(pg_conn* conn, std::string url);
  Result<void> migrate();
  /// Before any statement: ends the batch's COPY, or outside a batch connects again when
  /// the connection broke (a server restart).
  Result<void> ready();
  Result<void> start_records_copy();
  Result<void> send_records();
  Result<void> end_records_copy();
  Result<void> flush_attributes();
  Result<void> flush_quarantine();
  Result<void> flush_rollups();
  Result<void> ensure_partition(int64_t month_start);
  Result<void> write_note(bool replace, std::string_view kind, std::string_view key,
                          std::string_view detail, bool* inserted);

  pg_conn* conn_;
  std::string url_;  ///< redacted: for messages
  std::unique_ptr<State> state_;
};

}  // namespace aifinops::ledger
