#include "pricing/catalog.h"

#include <algorithm>

namespace aifinops::pricing {
namespace {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "gpt-4o-2024-08-06" and "claude-3-5-sonnet-20241022" name a dated snapshot of a model
// whose undated name usually carries the same price. Returns the name without the date, or
// an empty string when there is no such suffix. Only plausible years (19xx, 20xx) count, so
// that "-1106" or a size like "-20000" is not mistaken for a date.
std::string strip_date_suffix(std::string_view name) {
  auto plausible = [](std::string_view yyyy, std::string_view mm, std::string_view dd) {
    if (!all_digits(yyyy) || !all_digits(mm) || !all_digits(dd)) return false;
    if (yyyy.substr(0, 2) != "19" && yyyy.substr(0, 2) != "20") return false;
    int m = (mm[0] - '0') * 10 + (mm[1] - '0'), d = (dd[0] - '0') * 10 + (dd[1] - '0');
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
  };
  // -YYYY-MM-DD
  if (name.size() > 11) {
    std::string_view tail = name.substr(name.size() - 11);
    if (tail[0] == '-' && tail[5] == '-' && tail[8] == '-' &&
        plausible(tail.substr(1, 4), tail.substr(6, 2), tail.substr(9, 2)))
      return std::string(name.substr(0, name.size() - 11));
  }
  // -YYYYMMDD
  if (name.size() > 9) {
    std::string_view tail = name.substr(name.size() - 9);
    if (tail[0] == '-' && plausible(tail.substr(1, 4), tail.substr(5, 2), tail.substr(7, 2)))
      return std::string(name.substr(0, name.size() - 9));
  }
  return {};
}

// Inserts keeping effective-date order; a version with the same date as existing ones goes
// after them, so that "the one added last" wins a tie in find_at.
template <typename Price>
void insert_version(std::vector<Price>& versions, Price price) {
  auto pos = std::upper_bound(
      versions.begin(), versions.end(), price.effective_from,
      [](EpochSeconds t, const Price& p) { return t < p.effective_from; });
  versions.insert(pos, std::move(price));
}

template <typename Price>
const Price* find_at(const std::vector<Price>& versions, EpochSeconds at) {
  auto pos = std::upper_bound(
      versions.begin(), versions.end(), at,
      [](EpochSeconds t, const Price& p) { return t < p.effective_from; });
  if (pos == versions.begin()) return nullptr;
  return &*std::prev(pos);
}

template <typename Price>
std::vector<const Price*> all_versions(const std::vector<Price>& versions) {
  std::vector<const Price*> out;
  out.reserve(versions.size());
  for (const Price& p : versions) out.push_back(&p);
  return out;
}

// Every version of every key, keys in name order.
template <typename Price>
std::vector<const Price*> flatten(const std::unordered_map<std::string, std::vector<Price>>& map,
                                  size_t count) {
  std::vector<const std::string*> keys;
  keys.reserve(map.size());
  for (const auto& [key, versions] : map) keys.push_back(&key);
  std::sort(keys.begin(), keys.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
  std::vector<const Price*> out;
  out.reserve(count);
  for (const std::string* key : keys) {
    for (const Price& p : map.at(*key)) out.push_back(&p);
  }
  return out;
}

// The effective price of one token kind: the tier's when it sets one, else the base's.
std::optional<Decimal> pick(const std::optional<Decimal>& tier, const std::optional<Decimal>& base) {
  return tier ? tier : base;
}

__int128 nanos_or_zero(const std::optional<Decimal>& d) { return d ? d->nanos : 0; }

}  // namespace

std::vector<std::string> model_name_candidates(std::string_view model) {
  std::vector<std::string> out;
  auto push = [&out](std::string name) {
    if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end())
      out.push_back(std::move(name));
  };
  std::string lower = to_lower(model);
  push(lower);
  size_t slash = lower.rfind('/');
  std::string bare = slash == std::string::npos ? std::string() : lower.substr(slash + 1);
  push(bare);
  push(strip_date_suffix(lower));
  if (!bare.empty()) push(strip_date_suffix(bare));
  return out;
}

void Catalog::add(ModelPrice price) {
  std::string key = to_lower(price.model);
  insert_version(models_[key], std::move(price));
  ++model_count_;
}

void Catalog::add(GpuInstancePrice price) {
  std::string key = to_lower(price.sku);
  insert_version(gpus_[key], std::move(price));
  ++gpu_count_;
}

const ModelPrice* Catalog::find_model(std::string_view model, EpochSeconds at) const {
  for (const std::string& name : model_name_candidates(model)) {
    auto it = models_.find(name);
    if (it != models_.end()) return find_at(it->second, at);
  }
  return nullptr;
}

std::vector<const ModelPrice*> Catalog::model_versions(std::string_view model) const {
  for (const std::string& name : model_name_candidates(model)) {
    auto it = models_.find(name);
    if (it != models_.end()) return all_versions(it->second);
  }
  return {};
}

const GpuInstancePrice* Catalog::find_gpu_instance(std::string_view sku, EpochSeconds at) const {
  auto it = gpus_.find(to_lower(sku));
  return it == gpus_.end() ? nullptr : find_at(it->second, at);
}

std::vector<const GpuInstancePrice*> Catalog::gpu_instance_versions(std::string_view sku) const {
  auto it = gpus_.find(to_lower(sku));
  return it == gpus_.end() ? std::vector<const GpuInstancePrice*>{} : all_versions(it->second);
}

std::vector<const ModelPrice*> Catalog::model_prices() const { return flatten(models_, model_count_); }

std::vector<const GpuInstancePrice*> Catalog::gpu_instance_prices() const {
  return flatten(gpus_, gpu_count_);
}

Money token_cost(const ModelPrice& price, const TokenUsage& usage) {
  // The tier with the highest threshold that the request's input exceeds (tiers should be
  // ascending, but a hand-written catalog may not be).
  const PriceTier* tier = nullptr;
  for (const PriceTier& t : price.tiers) {
    if (usage.input > t.above_input_tokens &&
        (tier == nullptr || t.above_input_tokens > tier->above_input_tokens)) {
      tier = &t;
    }
  }
  static const TokenPrices kNoTier;
  const TokenPrices& over = tier ? tier->prices : kNoTier;
  const TokenPrices& base = price.prices;

  std::optional<Decimal> input = pick(over.input, base.input);
  std::optional<Decimal> cached = pick(over.cached_input, base.cached_input);
  std::optional<Decimal> cache_write = pick(over.cache_write, base.cache_write);
  std::optional<Decimal> output = pick(over.output, base.output);
  std::optional<Decimal> reasoning = pick(over.reasoning, base.reasoning);
  if (!cached) cached = input;
  if (!cache_write) cache_write = input;
  if (!reasoning) reasoning = output;

  // Negative counts are bad data; they must not turn into credits.
  auto count = [](int64_t n) -> __int128 { return n > 0 ? n : 0; };
  __int128 cached_tokens = count(usage.cached_input);
  __int128 write_tokens = count(usage.cache_write);
  __int128 uncached_tokens = count(usage.input) - cached_tokens - write_tokens;
  if (uncached_tokens < 0) uncached_tokens = 0;
  __int128 reasoning_tokens = count(usage.reasoning);
  __int128 plain_output_tokens = count(usage.output) - reasoning_tokens;
  if (plain_output_tokens < 0) plain_output_tokens = 0;

  // Σ tokens × nanos-per-million; one division (and so one rounding) at the end.
  __int128 numerator = uncached_tokens * nanos_or_zero(input) +
                       cached_tokens * nanos_or_zero(cached) +
                       write_tokens * nanos_or_zero(cache_write) +
                       plain_output_tokens * nanos_or_zero(output) +
                       reasoning_tokens * nanos_or_zero(reasoning);
  constexpr __int128 kTokensPerPrice = 1'000'000;
  if (usage.batch && price.batch_discount) {
    // total × (1 - discount), with the discount in nanos: still one rounding.
    __int128 keep = kNanosPerUnit - price.batch_discount->nanos;
    if (keep < 0) keep = 0;
    return Decimal{(int64_t)mul_div_round(numerator, keep, kTokensPerPrice * kNanosPerUnit)};
  }
  return Decimal{(int64_t)mul_div_round(numerator, 1, kTokensPerPrice)};
}

}  // namespace aifinops::pricing
