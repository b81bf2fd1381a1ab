// Native cloud cost exports that are not FOCUS (AWS CUR, Azure cost details, Google Cloud
// billing export, OCI cost reports): detection by header and the row mapping to FOCUS Records.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/record.h"
#include "core/result.h"
#include "ingest/ingest.h"
#include "ingest/native_mappings.h"
#include "pricing/catalog.h"

namespace aifinops::ingest {

enum class NativeFormat : uint8_t { kAwsCur, kAzureCost, kGcpBilling, kOciCost };

/// "aws-cur", "azure-cost", "gcp-billing", "oci-cost": the --format names.
std::string_view native_format_name(NativeFormat format);
std::optional<NativeFormat> native_format_from_name(std::string_view name);
/// The provider a format's rows are billed by ("AWS", "Microsoft", "Google Cloud", "Oracle").
std::string_view native_format_provider(NativeFormat format);

/// The format whose distinctive columns the header has: AWS (lineItem/UnblendedCost or
/// line_item_unblended_cost), Azure (MeterCategory with Cost or CostInBillingCurrency),
/// Google Cloud (usage_start_time with service.description/service_description and cost),
/// OCI (lineItem/intervalUsageStart with cost/myCost). nullopt when none fits.
std::optional<NativeFormat> detect_native_format(const std::vector<std::string_view>& header);
/// The same from a file's first bytes: its first CSV line, or for Google Cloud a first
/// JSON line of the BigQuery export.
std::optional<NativeFormat> detect_native_format_text(std::string_view head);

/// Why a row could not be mapped: the column (may be empty) and the reason.
struct RowProblem {
  std::string column;
  std::string reason;
};

/// Column lookup that ignores case and punctuation, so that the legacy CUR's
/// "lineItem/UsageStartDate", CUR 2.0's "line_item_usage_start_date", BigQuery's
/// "service.description" and a flattened "service_description" are one column.
class NativeHeader {
 public:
  explicit NativeHeader(const std::vector<std::string_view>& names);
  /// Index of the first column with this key (any spelling), or -1.
  int find(std::string_view key) const;
  /// The first of several keys present, or -1.
  int find_any(std::initializer_list<std::string_view> keys) const;
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }
  static std::string normalize(std::string_view name);

 private:
  std::vector<std::string> names_;       // as written (trimmed)
  std::vector<std::string> normalized_;  // lower-case letters and digits only
};

/// Maps the rows of one file to Records. Built from the header; one per file; not
/// thread-safe (reuses scratch space).
class NativeRowMapper {
 public:
  virtual ~NativeRowMapper() = default;
  /// Fills `out` (cleared first) from one row's fields, which are as many as the header's.
  /// Returns false with `problem` filled when the row cannot be placed in time or costed.
  virtual bool map(const std::vector<std::string_view>& fields, Record& out,
                   RowProblem& problem) = 0;
  /// What the file is, for the ingest summary ("AWS CUR (legacy columns)").
  virtual std::string label() const = 0;
};

/// `mapper` when it found the columns it needs, else an error naming the missing one and
/// asking whether the file is `what` ("an OCI cost report").
template <class Mapper>
Result<std::unique_ptr<NativeRowMapper>> ready_mapper(std::unique_ptr<Mapper> mapper,
                                                      const std::string& path,
                                                      std::string_view what) {
  std::string missing;
  if (!mapper->ready(missing))
    return make_error(ErrorCode::kParse, path + ": line 1: the header has no " + missing +
                                             " column, so rows cannot be placed in time and "
                                             "costed; is this " +
                                             std::string(what) + "? (nothing was ingested)");
  return std::unique_ptr<NativeRowMapper>(std::move(mapper));
}

/// The mapper for a format, or an error naming the columns the header lacks.
/// `catalog` (may be null) tells GPU counts of instance SKUs it knows.
Result<std::unique_ptr<NativeRowMapper>> make_native_mapper(
    NativeFormat format, const std::vector<std::string_view>& header, const std::string& path,
    const FocusMappings& mappings, const pricing::Catalog* catalog);

/// Ingests one native export (CSV, plain or gzip; Google Cloud also as JSON lines) as one
/// batch through RecordSink: rows read = ingested + quarantined, money exact.
Result<IngestSummary> ingest_native(const IngestContext& context, const std::string& path,
                                    const IngestOptions& options, NativeFormat format);

/// The format table's entries (formats.cc): a detector and a reader per format.
bool looks_like_aws_cur(std::string_view head, const std::string& path);
bool looks_like_azure_cost(std::string_view head, const std::string& path);
bool looks_like_gcp_billing(std::string_view head, const std::string& path);
bool looks_like_oci_cost(std::string_view head, const std::string& path);
Result<IngestSummary> ingest_aws_cur(const IngestContext& context, const std::string& path,
                                     const IngestOptions& options);
Result<IngestSummary> ingest_azure_cost(const IngestContext& context, const std::string& path,
                                        const IngestOptions& options);
Result<IngestSummary> ingest_gcp_billing(const IngestContext& context, const std::string& path,
                                         const IngestOptions& options);
Result<IngestSummary> ingest_oci_cost(const IngestContext& context, const std::string& path,
                                      const IngestOptions& options);

// Helpers shared by the format mappers.

/// Parses a money or quantity field exactly (more than 9 decimals are rounded half-to-even;
/// "1.2E-05" is accepted). An empty field is zero and returns true with `present` false.
bool parse_native_decimal(std::string_view text, Decimal& out, bool* present = nullptr);
/// Parses the date-times native exports write: RFC 3339 and ISO 8601 variants,
/// "2023-11-01 07:00:00 UTC", "2023-10-01T00:00Z", and US dates "9/21/2023".
std::optional<EpochSeconds> parse_native_time(std::string_view text);
/// price × quantity in nanos, rounded half-to-even; false when it does not fit 64 bits
/// (then the row is quarantined rather than stored wrong).
bool times(Decimal price, Decimal quantity, Money& out);
/// a + b; false on overflow.
bool add_money(Money a, Money b, Money& out);
/// The field at `index`, or empty when the column is absent.
inline std::string_view field(const std::vector<std::string_view>& fields, int index) {
  return index < 0 || (size_t)index >= fields.size() ? std::string_view() : fields[(size_t)index];
}
/// Sets the row's problem for an unreadable value and returns false.
bool bad_value(RowProblem& problem, const std::string& column, std::string_view value,
               std::string_view what);
/// Appends "key":"value" to a JSON object being built in `json` ("{" first; close with "}").
void add_json_member(std::string& json, std::string_view key, std::string_view value);
/// Converts a tags text to a JSON object of strings: an object as it is (values made
/// strings), Azure EA's brace-less fragment ("a": "b","c": "d"), or BigQuery's array of
/// {"key":..,"value":..}. `strip_prefix` removes a key prefix ("user:"). Empty when the
/// text is empty; the text unchanged when it is not JSON (the sink keeps it in extra).
std::string tags_to_json(std::string_view text, std::string_view strip_prefix = {});

/// Sets the model, token counts and requests from a recognised model meter: `quantity`
/// counts `tokens_per_unit` tokens each (1K- and 1M-token meters).
void apply_model_meter(Record& record, const ModelMeter& meter, Decimal quantity,
                       int64_t tokens_per_unit);
/// Sets the GPU type named by an instance type, SKU or meter text; for hourly usage of an
/// instance the catalog knows, also the GPU time (GPUs per instance × hours).
void apply_gpu(Record& record, std::string_view text, std::string_view instance_sku,
               const pricing::Catalog* catalog, bool hourly);
/// Tokens per unit a unit of measure names: "1K", "1,000 tokens" → 1000; "1M" → 1000000; else 1.
int64_t tokens_per_unit_of(std::string_view unit);

// The per-format mappers (aws_cur.cc, azure_cost.cc, gcp_billing.cc, oci_cost.cc).
Result<std::unique_ptr<NativeRowMapper>> make_aws_cur_mapper(const NativeHeader& header,
                                                             const std::string& path,
                                                             const FocusMappings& mappings,
                                                             const pricing::Catalog* catalog);
Result<std::unique_ptr<NativeRowMapper>> make_azure_cost_mapper(const NativeHeader& header,
                                                                const std::string& path,
                                                                const FocusMappings& mappings,
                                                                const pricing::Catalog* catalog);
Result<std::unique_ptr<NativeRowMapper>> make_gcp_billing_mapper(const NativeHeader& header,
                                                                 const std::string& path,
                                                                 const FocusMappings& mappings,
                                                                 const pricing::Catalog* catalog);
Result<std::unique_ptr<NativeRowMapper>> make_oci_cost_mapper(const NativeHeader& header,
                                                              const std::string& path,
                                                              const FocusMappings& mappings,
                                                              const pricing::Catalog* catalog);

}  // namespace aifinops::ingest
