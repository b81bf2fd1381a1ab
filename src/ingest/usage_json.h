// Helpers the JSON usage readers share (OpenAI and Anthropic usage/cost pages, OTLP):
// exact scalar reads with simdjson's On-Demand API, catalog pricing of token usage, and
// provider names as the rest of the product spells them.
#pragma once

#include <simdjson.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/record.h"
#include "core/result.h"
#include "core/time.h"
#include "pricing/catalog.h"

namespace aifinops::ingest {

/// A simdjson view of a std::string read by read_whole_input: its spare capacity serves as
/// simdjson's padding, so the bytes are not copied. Copies only when the capacity is short.
class PaddedJson {
 public:
  explicit PaddedJson(std::string& text);
  simdjson::padded_string_view view() const { return view_; }
  /// A part of view() (e.g. one object's raw JSON) as a padded view: the bytes after it in
  /// the buffer serve as its padding.
  simdjson::padded_string_view slice(std::string_view part) const {
    size_t room = (size_t)(base_ + capacity_ - part.data());
    return simdjson::padded_string_view(part.data(), part.size(), room);
  }

 private:
  simdjson::padded_string copy_;
  simdjson::padded_string_view view_;
  const char* base_ = nullptr;
  size_t capacity_ = 0;
};

/// One result object of a bucketed report page (OpenAI usage and costs, Anthropic usage
/// and cost reports), with its bucket's period.
struct BucketResult {
  EpochSeconds start = 0, end = 0;
  std::string_view raw;  ///< the result object's JSON text, inside the page buffer
  int64_t line = 0;      ///< where it starts in the page
};

/// Walks a page {"data":[{"start_time"|"starting_at":..,"end_time"|"ending_at":..,
/// "results":[{...},...]},...]}. Bucket times may be unix seconds or RFC 3339 strings.
/// Returns the results in order, or an error text (the page is then not read at all, so a
/// torn page never half-ingests).
Result<std::vector<BucketResult>> bucket_results(const PaddedJson& page, std::string_view text);

/// A record for one result of a provider's own usage or cost report: the provider as
/// provider, invoice issuer and service, usage-based charge in USD, the account (project or
/// workspace) and API key it names, and the bucket's period and line.
Record provider_report_record(std::string_view provider, std::string_view service,
                              std::string_view account_id, std::string_view api_key_id,
                              const BucketResult& result);

/// Reads a whole count: a JSON integer, or a string of digits (OTLP encodes int64 as a
/// string), up to kMaxCount. False for anything else (fractions, negatives, text), null included.
bool json_count(simdjson::ondemand::value value, int64_t& out);
/// Counts above this are refused as implausible (a trillion tokens in one row), which
/// keeps sums of counts and their costs (even at $1,000 per million) inside int64.
inline constexpr int64_t kMaxCount = 1'000'000'000'000;
/// The consumed quantity of a token count: exact up to 9.2 billion units (the range of a
/// nano-unit Decimal); beyond that 0, and the token columns still hold the exact count.
inline Decimal token_quantity(int64_t tokens) {
  return tokens <= INT64_MAX / kNanosPerUnit ? Decimal::from_units(tokens) : Decimal{};
}
/// Reads an exact decimal from a JSON number's own text or from a string; never via double.
bool json_decimal(simdjson::ondemand::value value, Decimal& out);
/// A scalar as text: strings unescaped, numbers and booleans as written, null as "".
/// False for objects and arrays.
bool json_scalar_text(simdjson::ondemand::value value, std::string& out);

/// What pricing a token row from the catalog found.
struct TokenPricing {
  const pricing::ModelPrice* price = nullptr;  ///< nullptr: not priced (see `reason`)
  std::string reason;
};

/// Prices facts' tokens at the catalog price of `model` in effect at the row's start, and
/// sets every cost, price_version and kFlagPricedFromCatalog. On failure (no model, model
/// unknown, not yet priced at that time) leaves the facts and names the cause in `reason`.
/// A row of one request picks the long-context tier by its own input. A row that sums many
/// requests (a usage report bucket) must not: its total input says nothing of each
/// request's size, so `aggregate_request_input` gives the per-request size class instead
/// (0: base prices; 200'001: the tier above 200k).
TokenPricing price_tokens(const pricing::Catalog& catalog, std::string_view model, bool batch,
                          UsageFacts& facts,
                          std::optional<int64_t> aggregate_request_input = std::nullopt);

/// The ProviderName a provider identifier stands for: "openai" -> "OpenAI", "anthropic" ->
/// "Anthropic", "aws.bedrock" -> "AWS", "azure.ai.openai" -> "Azure OpenAI",
/// "gcp.vertex_ai" -> "Google Cloud", ... (OpenTelemetry gen_ai.provider.name values and
/// the catalog's provider ids). Unknown identifiers are returned as they are.
std::string_view provider_display_name(std::string_view id);
/// The ServiceName used with that provider ("OpenAI API", "Amazon Bedrock", "Vertex AI").
std::string_view provider_service_name(std::string_view id);

/// Adds "key":"value" to a JSON object being built in `out` (which starts with '{'); empty
/// values are left out. Close it with close_json_object().
void put_json_field(std::string& out, std::string_view key, std::string_view value);
/// Closes an object started with "{" by put_json_field; "" when it stayed empty.
std::string close_json_object(std::string out);

}  // namespace aifinops::ingest
