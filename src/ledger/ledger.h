// The Ledger: where every priced, allocated record lives, and the one narrow interface
// that ingest writes through and every analysis reads through. Queries are pushed down
// to the store as SQL; implementations: SqliteLedger (embedded default).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/record.h"
#include "core/result.h"
#include "pricing/catalog.h"

namespace aifinops::ledger {

/// 128-bit content fingerprint (of a file, or of a record's attributes).
struct Fingerprint {
  uint64_t high = 0, low = 0;
  bool operator==(const Fingerprint&) const = default;
  std::string hex() const;
};

/// What an ingest batch is: one source file (or one gateway spool flush).
struct BatchInfo {
  std::string source_path;   ///< as given by the user; empty for streams
  std::string source_kind;   ///< "focus", "gateway", ...
  Fingerprint content;       ///< of the whole input
  int64_t bytes = 0;
};

/// An ingested batch as stored.
struct BatchSummary {
  int64_t id = 0;
  std::string source_path;
  std::string source_kind;
  std::string fingerprint_hex;
  std::string ingested_at;  ///< RFC 3339
  int64_t rows_read = 0, rows_ingested = 0, rows_quarantined = 0;
  __int128 billed_cost = 0, effective_cost = 0;  ///< nanos
};

/// A row that could not be read, kept with its place and reason.
struct QuarantinedRow {
  int64_t line = 0;
  std::string column;  ///< empty when the row as a whole is wrong
  std::string reason;
  std::string raw;     ///< the row's text (cut at 64 KiB)
};

/// Time grain of a query or rollup.
enum class Grain { kNone, kHour, kDay, kWeek, kMonth };

/// Numbers a query can sum.
enum class Metric {
  kEffectiveCost, kBilledCost, kListCost, kContractedCost, kCacheSavings, kQuantity, kTokens,
  kInputTokens, kOutputTokens, kCachedTokens, kRequests, kGpuHours,
  // GPU telemetry and carbon (docs/gpu.md)
  kGpuUtilization,   ///< ratio: Σ busy GPU time / Σ observed GPU time, a fraction (0.25 = 25%)
  kGpuMemoryPeakMib, ///< maximum memory used by one GPU in the group (read from records)
  kEnergyKwh,        ///< GPU energy from power telemetry, kWh (PUE not included)
  kCo2eKg,           ///< emissions: energy × PUE × grid intensity, set at ingest, kg CO2e
  kGpuObservedHours, ///< GPU time covered by telemetry (not billed GPU-hours), hours
  kCount
};
bool metric_from_name(std::string_view name, Metric& out);
std::string_view metric_name(Metric m);
/// Money metrics are shown with 2 decimals in tables; the rest as plain numbers.
bool metric_is_money(Metric m);
/// Metrics stored in nano-units (money, quantities, GPU-hours) vs whole counts (tokens).
bool metric_is_decimal(Metric m);
/// A ratio of two sums (gpu_utilization): the total is the ratio of the totals, rows are
/// not shares of it, and it cannot be split or summed further.
bool metric_is_ratio(Metric m);
/// A maximum (gpu_memory_peak_mib): the total is the largest row; answered from records.
bool metric_is_peak(Metric m);
/// Sums that can be added across groups (every metric but ratios and peaks).
inline bool metric_is_additive(Metric m) { return !metric_is_ratio(m) && !metric_is_peak(m); }

/// A grouping column: an attribute (incl. canonical dimensions), a raw tag, or time.
struct Dimension {
  enum class Kind { kAttribute, kTag, kTime } kind = Kind::kAttribute;
  Attr attribute = Attr::kCount;  ///< kAttribute
  /// kTag: the raw keys, first present wins ("tag:Owner" has one; a policy's custom
  /// dimension has one per alias)
  std::vector<std::string> tag_keys;
  Grain grain = Grain::kNone;     ///< kTime
  std::string label;              ///< as the user wrote it ("service", "tag:Owner", "month")
};

/// Parses a user's dimension name: short aliases (provider, service, region, resource,
/// sku, model, billing_account, ...), attribute names, canonical dimensions, "tag:KEY",
/// and time (hour, day, week, month). Error names the allowed values.
Result<Dimension> parse_dimension(std::string_view name);

/// dimension = value
struct Filter {
  Dimension dimension;
  std::string value;  ///< "(none)" matches a missing value
};

/// A grouped sum over the ledger.
struct QuerySpec {
  std::optional<EpochSeconds> from;  ///< inclusive, on charge period start
  std::optional<EpochSeconds> to;    ///< exclusive
  std::vector<Dimension> group_by;   ///< may include time dimensions
  std::vector<Filter> filters;
  Metric metric = Metric::kEffectiveCost;
};

/// One result row: the group's values (same order as group_by; "(none)" for missing)
/// and the summed metric in nanos (decimal metrics) or units (counts).
struct QueryRow {
  std::vector<std::string> keys;
  __int128 value = 0;
};

struct QueryResult {
  std::vector<QueryRow> rows;  ///< ordered by value descending, then keys
  __int128 total = 0;
  std::string source_table;    ///< which table answered (rollup_month, rollup_day, records)
};

/// Something an analysis recorded as done: an alert sent, an analysis run.
struct Note {
  std::string kind;         ///< "budget_alert", "anomalies_run", ...
  std::string key;          ///< unique within the kind: "team=alpha (month)|80%|2025-10"
  std::string detail;       ///< free text or JSON
  std::string recorded_at;  ///< RFC 3339
};

/// The ledger. One writer at a time; readers may run beside it (WAL).
/// A batch is one transaction: begin_batch, then intern/append/quarantine, then
/// commit_batch (or abort_batch, or destroy the writer): all or nothing.
class Ledger {
 public:
  virtual ~Ledger() = default;

  // --- writing -------------------------------------------------------------------------
  /// Starts a batch (opens a transaction).
  virtual Result<int64_t> begin_batch(const BatchInfo& info) = 0;
  /// Returns the id of an attribute set, storing it the first time. `fingerprint` is the
  /// caller's hash of the views; equal fingerprints mean equal attributes.
  virtual Result<int64_t> intern_attributes(const AttributeViews& attributes,
                                            const Fingerprint& fingerprint) = 0;
  /// Appends one record's facts (rollups are updated at commit).
  virtual Result<void> append(int64_t attributes_id, const UsageFacts& facts,
                              const Lineage& lineage) = 0;
  virtual Result<void> quarantine(int64_t batch_id, const QuarantinedRow& row) = 0;
  /// Commits with the final counts; updates the rollups.
  virtual Result<void> commit_batch(const BatchSummary& summary) = 0;
  virtual void abort_batch() = 0;

  /// The batch that ingested identical content before, if any.
  virtual Result<std::optional<BatchSummary>> find_batch_by_fingerprint(const Fingerprint& f) = 0;
  /// Batches ingested from this path (as given), newest first.
  virtual Result<std::vector<BatchSummary>> find_batches_by_path(const std::string& path) = 0;
  /// Removes a batch's records, quarantine rows and rollup contributions (for --replace).
  /// Must be called inside a batch so that the replacement is atomic.
  virtual Result<void> remove_batch(int64_t batch_id) = 0;

  // --- reading -------------------------------------------------------------------------
  virtual Result<QueryResult> query(const QuerySpec& spec) = 0;
  virtual Result<std::vector<QuarantinedRow>> quarantined_rows(int64_t batch_id) = 0;
  virtual Result<std::vector<BatchSummary>> batches() = 0;

  // --- notes ---------------------------------------------------------------------------
  /// Records (kind, key) once. Returns true when it is new, false when it was recorded
  /// before (then nothing changes): "alert once per budget, threshold and period".
  virtual Result<bool> note_once(std::string_view kind, std::string_view key,
                                 std::string_view detail) = 0;
  /// Records (kind, key), replacing an earlier note with the same key ("last run").
  virtual Result<void> note(std::string_view kind, std::string_view key, std::string_view detail) = 0;
  /// The notes of a kind, oldest first.
  virtual Result<std::vector<Note>> notes(std::string_view kind) = 0;

  // --- prices --------------------------------------------------------------------------
  /// Stores prices not already present with the same content and effective date;
  /// fills in `version` of each. Returns how many were new.
  virtual Result<int64_t> store_prices(std::vector<pricing::ModelPrice>& models,
                                       std::vector<pricing::GpuInstancePrice>& gpus) = 0;
  /// The whole catalog as stored (every version).
  virtual Result<pricing::Catalog> load_catalog() = 0;
};

/// Opens (creating and migrating as needed) the ledger at a path ("aifinops.db").
Result<std::unique_ptr<Ledger>> open_ledger(const std::string& location);

}  // namespace aifinops::ledger
