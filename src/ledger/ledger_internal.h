// What the SQLite and PostgreSQL ledgers share so that they store and answer alike: the fact
// columns, the in-memory day rollup of an open batch, the choice of table for a query and the
// finishing of its rows (units, ratios, order), and the price-row helpers. Not for other modules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ledger/ledger.h"

namespace aifinops::ledger::detail {

// The summed columns, identical in `records` and the rollups so that one SQL text serves all.
// The first kFactCountV1 are those of SQLite schema v1 and v2 (frozen: their migrations create
// exactly these); v3 added the GPU telemetry and carbon facts.
inline constexpr const char* kFactColumns[] = {"consumed_quantity",
                                               "pricing_quantity",
                                               "list_cost",
                                               "contracted_cost",
                                               "billed_cost",
                                               "effective_cost",
                                               "input_tokens",
                                               "cached_input_tokens",
                                               "cache_write_tokens",
                                               "output_tokens",
                                               "reasoning_tokens",
                                               "requests",
                                               "gpu_milliseconds",
                                               "cache_saving",
                                               "gpu_observed_milliseconds",
                                               "gpu_busy_milliseconds",
                                               "gpu_memory_mib_milliseconds",
                                               "energy_millijoules",
                                               "co2e_micrograms"};
inline constexpr size_t kFactCount = std::size(kFactColumns);
inline constexpr size_t kFactCountV1 = 14;
// A record row: batch_id, line, attributes_id, start, end, the facts, price_version, flags,
// latency_ms, ttft_ms, gpu_memory_peak_mib (a maximum: kept in `records` only, since a
// rollup could not take a removed batch's maximum back out).
inline constexpr size_t kRecordColumns = 5 + kFactCount + 5;

/// One record as the row both ledgers store (see kRecordColumns for the order).
void record_row(int64_t attributes_id, const UsageFacts& facts, const Lineage& lineage,
                int64_t out[kRecordColumns]);

struct RollupKey {
  int64_t bucket, attributes_id;
  bool operator==(const RollupKey&) const = default;
};
struct RollupSums {
  int64_t record_count = 0;
  __int128 facts[kFactCount] = {};  // nano-unit sums pass int64 at ~9.2 billion units
};
struct RollupKeyHash {
  size_t operator()(const RollupKey& k) const {
    uint64_t h = (uint64_t)k.bucket * 0x9E3779B97F4A7C15ull ^
                 (uint64_t)k.attributes_id * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
  }
};
using RollupEntry = std::pair<RollupKey, RollupSums>;

/// The open batch's sums by (day, attribute set): an open-addressing table, one probe per
/// row in the common case. It starts small and doubles up to kMaxSlots (about 36 MB); the
/// ledger flushes it to its store when it is half full there, so memory does not grow with
/// the file, and a ledger that only reads never allocates it.
class DayRollup {
 public:
  static constexpr size_t kMinSlots = 1 << 12;
  static constexpr size_t kMaxSlots = 1 << 18;

  RollupSums& at(RollupKey key);
  /// Adds one record's row (as record_row writes it) to its day.
  void add(const int64_t row[kRecordColumns]);
  size_t size() const { return size_; }
  bool full() const { return size_ >= kMaxSlots / 2; }
  /// Moves the groups out, leaving the table empty.
  std::vector<RollupEntry> take();

 private:
  struct Slot {
    RollupKey key;
    bool used = false;
    RollupSums sums;
  };
  void grow();
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

/// Day groups (any order) sorted by (bucket, attributes_id), and their month groups, sorted
/// alike: sorted keys make upserts walk an index in order instead of at random.
void days_and_months(std::vector<RollupEntry>& days, std::vector<RollupEntry>& months);

/// Decimal text of nanos / 10^9 ("12.5", as batches store costs) back to nanos, exactly.
__int128 parse_int128_decimal(const std::string& s);
std::string now_rfc3339();

/// The fact columns a metric adds up (a peak's one column for peaks).
std::vector<std::string> metric_columns(Metric m);
/// A ratio metric's denominator columns (summed like the numerator); empty for the others.
std::vector<std::string> metric_denominator_columns(Metric m);

/// The table that answers a query: the coarsest that answers exactly (the month rollup when
/// every time boundary and grouping is by month, the day rollup when by day or week, else
/// records). Errors on a filter on time.
struct TableChoice {
  std::string table;        ///< rollup_month, rollup_day or records
  std::string time_column;  ///< bucket or charge_period_start
};
Result<TableChoice> choose_table(const QuerySpec& spec);

/// A time bucket as a result key: an RFC 3339 hour, a date or a month.
std::string format_bucket(Grain grain, int64_t t);

/// Folds one raw group into the result: `numerator` (the summed metric in stored units) and,
/// for a ratio, `denominator`. Converts stored units to the metric's (ms to hours, mJ to kWh)
/// and keeps the running total.
class ResultBuilder {
 public:
  explicit ResultBuilder(const QuerySpec& spec, std::string source_table);
  void add(std::vector<std::string> keys, __int128 numerator, __int128 denominator);
  /// The rows in their order: time columns ascending first (a series reads in order), then
  /// the value, largest first, then the keys.
  QueryResult finish();

 private:
  const QuerySpec& spec_;
  QueryResult result_;
  __int128 ratio_numerator_ = 0, ratio_denominator_ = 0;
};

// --- prices ------------------------------------------------------------------------------
std::string tiers_json(const std::vector<pricing::PriceTier>& tiers);
std::vector<pricing::PriceTier> parse_tiers(const std::string& json);
bool same_prices(const pricing::ModelPrice& a, const pricing::ModelPrice& b);
bool same_prices(const pricing::GpuInstancePrice& a, const pricing::GpuInstancePrice& b);
/// Whether a model price adds nothing to the catalog: the price in effect at its date is
/// the same; then `m.version` is set to that price's.
bool model_price_known(const pricing::Catalog& existing, pricing::ModelPrice& m);
bool gpu_price_known(const pricing::Catalog& existing, pricing::GpuInstancePrice& g);

}  // namespace aifinops::ledger::detail
