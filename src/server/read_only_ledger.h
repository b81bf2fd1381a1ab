// ReadOnlyLedger: the ledger as one API caller may see it. Reads only (the API never
// writes), and for a restricted viewer every query carries the restriction as filters, so
// that every analysis, totals included, covers only the records the viewer may see.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ledger/ledger.h"

namespace aifinops::server {

/// Wraps a ledger for the duration of one request; the ledger must outlive it and is used
/// from one thread at a time, like any Ledger.
///
/// A restriction with several values for a dimension ({team: [a, b]}) is answered as one
/// query per combination of values, merged: the combinations select disjoint records, so
/// rows with the same keys add up and the totals are the sums.
class ReadOnlyLedger : public ledger::Ledger {
 public:
  using Restriction = std::vector<std::pair<ledger::Dimension, std::vector<std::string>>>;
  ReadOnlyLedger(ledger::Ledger& inner, Restriction restriction);

  Result<int64_t> begin_batch(const ledger::BatchInfo& info) override;
  Result<int64_t> intern_attributes(const AttributeViews& attributes,
                                    const ledger::Fingerprint& fingerprint) override;
  Result<void> append(int64_t attributes_id, const UsageFacts& facts,
                      const Lineage& lineage) override;
  Result<void> quarantine(int64_t batch_id, const ledger::QuarantinedRow& row) override;
  Result<void> commit_batch(const ledger::BatchSummary& summary) override;
  void abort_batch() override {}
  Result<std::optional<ledger::BatchSummary>> find_batch_by_fingerprint(
      const ledger::Fingerprint& f) override;
  Result<std::vector<ledger::BatchSummary>> find_batches_by_path(const std::string& path) override;
  Result<void> remove_batch(int64_t batch_id) override;

  Result<ledger::QueryResult> query(const ledger::QuerySpec& spec) override;
  /// Restricted: nothing (quarantined rows are raw bill lines of every team).
  Result<std::vector<ledger::QuarantinedRow>> quarantined_rows(int64_t batch_id) override;
  /// Restricted: when and from what kind of source, without paths, counts or costs.
  Result<std::vector<ledger::BatchSummary>> batches() override;

  /// Not recorded: an API call is not a scheduled run (`aifinops anomalies` records those).
  Result<void> note(std::string_view kind, std::string_view key, std::string_view detail) override;
  Result<bool> note_once(std::string_view kind, std::string_view key,
                         std::string_view detail) override;
  /// Restricted: the notes' times and kinds, without keys or details (they name budgets and
  /// anomalies of every team).
  Result<std::vector<ledger::Note>> notes(std::string_view kind) override;

  Result<int64_t> store_prices(std::vector<pricing::ModelPrice>& models,
                               std::vector<pricing::GpuInstancePrice>& gpus) override;
  Result<pricing::Catalog> load_catalog() override;

 private:
  ledger::Ledger& inner_;
  Restriction restriction_;
};

}  // namespace aifinops::server
