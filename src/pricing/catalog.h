// The price catalog: token prices per model and hourly prices per GPU instance SKU, each
// with an effective date, because providers change prices often. Pure in-memory data; the
// ledger stores it (table `prices`) and config/ reads and writes its YAML form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/money.h"
#include "core/result.h"
#include "core/time.h"

namespace aifinops::pricing {

/// Token prices in the catalog currency per one million tokens. Unset = not offered.
struct TokenPrices {
  std::optional<Decimal> input;
  std::optional<Decimal> cached_input;  ///< cache read
  std::optional<Decimal> cache_write;   ///< cache creation
  std::optional<Decimal> output;
  std::optional<Decimal> reasoning;     ///< when unset, reasoning tokens cost `output`
};

/// Prices that apply once a request's input exceeds a size (e.g. "above 200k tokens").
struct PriceTier {
  int64_t above_input_tokens = 0;
  TokenPrices prices;
};

/// One model's prices from one effective date on. Value type.
struct ModelPrice {
  int64_t version = 0;  ///< the ledger's row id for this price; 0 until stored
  std::string model;    ///< name as callers send it, e.g. "gpt-4o-mini"
  std::string provider; ///< e.g. "openai", "anthropic", "azure", "bedrock"
  std::string mode;     ///< chat, completion, embedding, image_generation, ...
  EpochSeconds effective_from = 0;
  std::string currency = "USD";
  TokenPrices prices;
  std::vector<PriceTier> tiers;   ///< ascending by above_input_tokens
  std::optional<Decimal> batch_discount;  ///< fraction off for batch API use, e.g. 0.5
  int64_t max_output_tokens = 0;  ///< 0 = unknown
  std::string source;             ///< where the price came from (file, date)
};

/// Hourly prices of a GPU (or CPU) instance SKU from one effective date on.
struct GpuInstancePrice {
  int64_t version = 0;
  std::string sku;       ///< e.g. "p5.48xlarge", "Standard_ND96isr_H100_v5"
  std::string provider;  ///< aws, azure, gcp, oci, ...
  std::string gpu_type;  ///< e.g. "H100 80GB"; empty for CPU-only
  int32_t gpus = 0;
  EpochSeconds effective_from = 0;
  std::string currency = "USD";
  std::optional<Decimal> on_demand;  ///< per hour
  std::optional<Decimal> reserved;   ///< per hour, 1-year commitment
  std::optional<Decimal> spot;       ///< per hour, typical
  std::string source;
};

/// Tokens of one request or record, with OpenAI's semantics: cached_input and
/// cache_write are parts of input; reasoning is part of output.
struct TokenUsage {
  int64_t input = 0;
  int64_t cached_input = 0;
  int64_t cache_write = 0;
  int64_t output = 0;
  int64_t reasoning = 0;
  bool batch = false;
};

/// Model and GPU prices with their history. Look-ups pick the price in effect at a time.
/// Not thread-safe for writes; const look-ups may run concurrently.
class Catalog {
 public:
  void add(ModelPrice price);
  void add(GpuInstancePrice price);

  /// The price of `model` in effect at `at`. Tries the exact name, then common spellings
  /// ("openai/gpt-4o" -> "gpt-4o", a dated snapshot "gpt-4o-2024-08-06" -> "gpt-4o").
  /// Names are case-insensitive. The first spelling present in the catalog decides: its
  /// latest version with effective_from <= at wins (on equal dates, the one added last);
  /// nullptr when every version starts after `at`, rather than borrowing another name's price.
  const ModelPrice* find_model(std::string_view model, EpochSeconds at) const;
  /// The price of an instance SKU in effect at `at` (exact, case-insensitive).
  const GpuInstancePrice* find_gpu_instance(std::string_view sku, EpochSeconds at) const;

  /// Every version stored under the name that `find_model` resolves `model` to (same
  /// spelling rules), in effective-date order; empty when no spelling matches. Lets a
  /// caller show a model's price history, or tell "unknown" from "not yet in effect".
  std::vector<const ModelPrice*> model_versions(std::string_view model) const;
  /// Every version of an instance SKU (case-insensitive), in effective-date order.
  std::vector<const GpuInstancePrice*> gpu_instance_versions(std::string_view sku) const;

  /// Every model price, every version, grouped by model in effective-date order.
  /// Models are in name order, so output built from this is deterministic.
  std::vector<const ModelPrice*> model_prices() const;
  std::vector<const GpuInstancePrice*> gpu_instance_prices() const;
  size_t size() const { return model_count_ + gpu_count_; }
  size_t model_count() const { return model_count_; }
  size_t gpu_instance_count() const { return gpu_count_; }

 private:
  std::unordered_map<std::string, std::vector<ModelPrice>> models_;
  std::unordered_map<std::string, std::vector<GpuInstancePrice>> gpus_;  // key: lower-case sku
  size_t model_count_ = 0, gpu_count_ = 0;
};

/// The spellings find_model tries for a name, most specific first: the lower-cased name,
/// then without a provider prefix (anything up to the last '/'), then each of those without
/// a dated snapshot suffix ("-2024-08-06", "-20241022"). No duplicates.
std::vector<std::string> model_name_candidates(std::string_view model);

/// Cost of `usage` at `price`, rounded half-to-even to the nano-unit. Cached input and
/// cache writes are charged at their own prices (falling back to input), reasoning at
/// the reasoning price (falling back to output); the tier is chosen by input size; batch
/// use applies the batch discount.
/// Exact: the per-kind products are summed in 128 bits and divided once. A tier's unset
/// prices fall back to the base prices; an unset price (and unset input) costs nothing.
/// Uncached input = input - cached_input - cache_write, clamped at 0.
Money token_cost(const ModelPrice& price, const TokenUsage& usage);

/// Reads LiteLLM's model_prices_and_context_window.json. Keeps entries with token prices;
/// per-token prices become per-million exactly (decimal, from the JSON text).
Result<std::vector<ModelPrice>> parse_litellm_json(std::string_view json,
                                                   EpochSeconds effective_from,
                                                   std::string_view source);

}  // namespace aifinops::pricing
