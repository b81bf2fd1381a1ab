// Reads LiteLLM's model_prices_and_context_window.json into ModelPrice values.
//
// The file is a JSON object keyed by model name; each entry holds per-token prices as JSON
// numbers ("input_cost_per_token": 1.5e-07). Prices must stay exact decimals, so numbers are
// never read as doubles: the number's text is taken as written and its decimal exponent is
// shifted by 6 to get a price per million tokens.
#include <simdjson.h>

#include <charconv>
#include <map>

#include "pricing/catalog.h"

namespace aifinops::pricing {
namespace {

namespace od = simdjson::ondemand;

// The entries in the file that are not models.
constexpr std::string_view kNonModelKeys[] = {"sample_spec", "fallback_generalizations"};

// The per-token price keys that have "_above_<N>k_tokens" tiered variants we understand.
enum class PriceKind { kInput, kOutput, kCachedInput, kCacheWrite, kReasoning };

std::optional<PriceKind> price_kind(std::string_view key) {
  if (key == "input_cost_per_token") return PriceKind::kInput;
  if (key == "output_cost_per_token") return PriceKind::kOutput;
  if (key == "cache_read_input_token_cost") return PriceKind::kCachedInput;
  if (key == "cache_creation_input_token_cost") return PriceKind::kCacheWrite;
  if (key == "output_cost_per_reasoning_token") return PriceKind::kReasoning;
  return std::nullopt;
}

std::optional<Decimal>& slot(TokenPrices& prices, PriceKind kind) {
  switch (kind) {
    case PriceKind::kInput: return prices.input;
    case PriceKind::kOutput: return prices.output;
    case PriceKind::kCachedInput: return prices.cached_input;
    case PriceKind::kCacheWrite: return prices.cache_write;
    case PriceKind::kReasoning: return prices.reasoning;
  }
  return prices.input;  // unreachable
}

// "input_cost_per_token_above_200k_tokens" -> (kInput, 200000). Variants with a further
// qualifier ("..._above_1hr_above_200k_tokens", "..._tokens_priority") are not tiers of the
// standard price and are ignored.
bool parse_tier_key(std::string_view key, PriceKind& kind, int64_t& above) {
  constexpr std::string_view kAbove = "_above_", kSuffix = "k_tokens";
  size_t pos = key.find(kAbove);
  if (pos == std::string_view::npos) return false;
  auto base = price_kind(key.substr(0, pos));
  if (!base) return false;
  std::string_view rest = key.substr(pos + kAbove.size());
  if (rest.size() <= kSuffix.size() || rest.substr(rest.size() - kSuffix.size()) != kSuffix)
    return false;
  std::string_view digits = rest.substr(0, rest.size() - kSuffix.size());
  int64_t thousands = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), thousands);
  if (ec != std::errc() || end != digits.data() + digits.size() || thousands <= 0 ||
      thousands > INT64_MAX / 1000)
    return false;
  kind = *base;
  above = thousands * 1000;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
    s.remove_prefix(1);
  return s;
}

// A per-token price as written in JSON ("1.5e-07") to a per-million-token Decimal (0.15),
// by moving the decimal exponent, so no binary rounding happens. A few LiteLLM numbers are
// float artefacts with 16+ significant digits ("1.9999700000000004e-06"); they are rounded
// half-to-even at the 9th decimal of the per-million price (1e-15 per token), which recovers
// the intended price. Negative prices are rejected.
std::optional<Decimal> per_million(std::string_view text) {
  text = trim(text);
  size_t e = text.find_first_of("eE");
  std::string_view mantissa = text.substr(0, e);
  int64_t exponent = 0;
  if (e != std::string_view::npos) {
    std::string_view exp_text = text.substr(e + 1);
    if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
    auto [end, ec] =
        std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
    if (ec != std::errc() || end != exp_text.data() + exp_text.size()) return std::nullopt;
    if (exponent < -1000 || exponent > 1000) return std::nullopt;
  }
  std::string shifted(mantissa);
  shifted += 'e';
  shifted += std::to_string(exponent + 6);
  Decimal out;
  if (!parse_decimal(shifted, out, nullptr, /*round=*/true) || out.nanos < 0) return std::nullopt;
  return out;
}

// A non-negative whole number written in JSON (max_tokens); nullopt for anything else.
std::optional<int64_t> whole_number(std::string_view text) {
  Decimal d;
  if (!parse_decimal(trim(text), d) || d.nanos < 0 || d.nanos % kNanosPerUnit != 0)
    return std::nullopt;
  return d.nanos / kNanosPerUnit;
}

// The fraction off that both batch prices imply, when it is the same for input and output
// and exact in 9 decimals: discount = 1 - batch / normal.
std::optional<Decimal> batch_discount(const std::optional<Decimal>& input,
                                      const std::optional<Decimal>& input_batch,
                                      const std::optional<Decimal>& output,
                                      const std::optional<Decimal>& output_batch) {
  if (!input || !input_batch || !output || !output_batch) return std::nullopt;
  std::optional<Decimal> discount;
  for (auto [normal, batch] : {std::pair{*input, *input_batch}, std::pair{*output, *output_batch}}) {
    if (normal.nanos == 0) {
      if (batch.nanos != 0) return std::nullopt;  // free normally, charged in batch: odd
      continue;
    }
    if (batch.nanos > normal.nanos) return std::nullopt;
    __int128 scaled = (__int128)batch.nanos * kNanosPerUnit;
    if (scaled % normal.nanos != 0) return std::nullopt;
    Decimal d{kNanosPerUnit - (int64_t)(scaled / normal.nanos)};
    if (discount && *discount != d) return std::nullopt;
    discount = d;
  }
  return discount;
}

std::string simdjson_text(simdjson::error_code error) { return simdjson::error_message(error); }

// One model's entry. Bad or unexpected fields are skipped; only a broken document fails.
Result<std::optional<ModelPrice>> read_entry(std::string_view name, od::object& entry,
                                             EpochSeconds effective_from, std::string_view source) {
  ModelPrice price;
  price.model = std::string(name);
  price.effective_from = effective_from;
  price.source = std::string(source);
  std::optional<Decimal> input_batch, output_batch;
  std::optional<int64_t> max_output_tokens, max_tokens;
  std::map<int64_t, TokenPrices> tiers;

  for (auto field : entry) {
    std::string_view key;
    od::value value;
    od::json_type type;
    if (auto error = field.unescaped_key().get(key); error)
      return make_error(ErrorCode::kParse, "entry \"" + std::string(name) + "\": " + simdjson_text(error));
    if (auto error = field.value().get(value); error)
      return make_error(ErrorCode::kParse, "entry \"" + std::string(name) + "\", key \"" +
                                               std::string(key) + "\": " + simdjson_text(error));
    if (value.type().get(type)) continue;

    if (type == od::json_type::string) {
      std::string_view text;
      if (value.get_string().get(text)) continue;
      if (key == "litellm_provider") price.provider = std::string(text);
      if (key == "mode") price.mode = std::string(text);
      continue;
    }
    if (type != od::json_type::number) continue;  // null, objects, booleans: not prices
    std::string_view raw = value.raw_json_token();

    if (key == "max_output_tokens") {
      max_output_tokens = whole_number(raw);
    } else if (key == "max_tokens") {
      max_tokens = whole_number(raw);
    } else if (key == "input_cost_per_token_batches") {
      input_batch = per_million(raw);
    } else if (key == "output_cost_per_token_batches") {
      output_batch = per_million(raw);
    } else if (auto kind = price_kind(key)) {
      slot(price.prices, *kind) = per_million(raw);
    } else {
      PriceKind tier_kind;
      int64_t above = 0;
      if (parse_tier_key(key, tier_kind, above)) {
        if (auto p = per_million(raw)) slot(tiers[above], tier_kind) = p;
      }
    }
  }
  if (!price.prices.input && !price.prices.output) return std::optional<ModelPrice>{};

  for (auto& [above, prices] : tiers) price.tiers.push_back(PriceTier{above, prices});
  price.batch_discount =
      batch_discount(price.prices.input, input_batch, price.prices.output, output_batch);
  price.max_output_tokens = max_output_tokens.value_or(max_tokens.value_or(0));
  return std::optional<ModelPrice>{std::move(price)};
}

}  // namespace

Result<std::vector<ModelPrice>> parse_litellm_json(std::string_view json,
                                                   EpochSeconds effective_from,
                                                   std::string_view source) {
  simdjson::padded_string padded(json);
  // On-demand parsing only checks what it visits; validate the whole document first so that a
  // damaged file is reported as such instead of yielding a silently partial catalog.
  {
    simdjson::dom::parser validator;
    if (auto error = validator.parse(padded).error(); error)
      return make_error(ErrorCode::kParse, "LiteLLM price file is not valid JSON: " + simdjson_text(error));
  }
  od::parser parser;
  od::document doc;
  if (auto error = parser.iterate(padded).get(doc); error)
    return make_error(ErrorCode::kParse, "LiteLLM price file: " + simdjson_text(error));
  od::object root;
  if (doc.get_object().get(root))
    return make_error(ErrorCode::kParse,
                      "LiteLLM price file: expected a JSON object keyed by model name");

  std::vector<ModelPrice> out;
  for (auto field : root) {
    std::string_view key;
    if (auto error = field.unescaped_key().get(key); error)
      return make_error(ErrorCode::kParse, "LiteLLM price file: " + simdjson_text(error));
    std::string name(key);  // the key's storage is reused by later strings
    bool skip = false;
    for (std::string_view non_model : kNonModelKeys) skip = skip || name == non_model;
    od::value value;
    if (auto error = field.value().get(value); error)
      return make_error(ErrorCode::kParse, "LiteLLM price file, entry \"" + name + "\": " + simdjson_text(error));
    od::json_type type;
    if (skip || value.type().get(type) || type != od::json_type::object) continue;
    od::object entry;
    if (auto error = value.get_object().get(entry); error)
      return make_error(ErrorCode::kParse, "LiteLLM price file, entry \"" + name + "\": " + simdjson_text(error));
    auto price = read_entry(name, entry, effective_from, source);
    if (!price) return make_error(price.error().code, "LiteLLM price file, " + price.error().message);
    if (*price) out.push_back(std::move(**price));
  }
  return out;
}

}  // namespace aifinops::pricing
