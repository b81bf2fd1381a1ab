#include "ledger/ledger_internal.h"

#include <simdjson.h>
#include <strings.h>

#include <algorithm>
#include <chrono>

namespace aifinops::ledger::detail {

void record_row(int64_t attributes_id, const UsageFacts& f, const Lineage& lineage,
                int64_t row[kRecordColumns]) {
  row[0] = lineage.batch_id;
  row[1] = lineage.line;
  row[2] = attributes_id;
  row[3] = f.charge_period_start;
  row[4] = f.charge_period_end;
  int64_t* out = row + 5;
  out[0] = f.consumed_quantity.nanos;
  out[1] = f.pricing_quantity.nanos;
  out[2] = f.list_cost.nanos;
  out[3] = f.contracted_cost.nanos;
  out[4] = f.billed_cost.nanos;
  out[5] = f.effective_cost.nanos;
  out[6] = f.input_tokens;
  out[7] = f.cached_input_tokens;
  out[8] = f.cache_write_tokens;
  out[9] = f.output_tokens;
  out[10] = f.reasoning_tokens;
  out[11] = f.requests;
  out[12] = f.gpu_milliseconds;
  out[13] = f.cache_saving.nanos;
  out[14] = f.gpu_observed_milliseconds;
  out[15] = f.gpu_busy_milliseconds;
  out[16] = f.gpu_memory_mib_milliseconds;
  out[17] = f.energy_millijoules;
  out[18] = f.co2e_micrograms;
  row[5 + kFactCount] = f.price_version;
  row[6 + kFactCount] = (int64_t)f.flags;
  row[7 + kFactCount] = f.latency_ms;
  row[8 + kFactCount] = f.ttft_ms;
  row[9 + kFactCount] = f.gpu_memory_peak_mib;
}

RollupSums& DayRollup::at(RollupKey key) {
  if (2 * (size_ + 1) > slots_.size() && slots_.size() < kMaxSlots) grow();
  size_t mask = slots_.size() - 1;
  for (size_t i = RollupKeyHash()(key) & mask;; i = (i + 1) & mask) {
    Slot& slot = slots_[i];
    if (!slot.used) {
      slot.used = true;
      slot.key = key;
      slot.sums = RollupSums{};
      ++size_;
      return slot.sums;
    }
    if (slot.key == key) return slot.sums;
  }
}

void DayRollup::add(const int64_t row[kRecordColumns]) {
  RollupSums& sums = at(RollupKey{floor_day(row[3]), row[2]});
  ++sums.record_count;
  for (size_t i = 0; i < kFactCount; ++i) sums.facts[i] += row[5 + i];
}

std::vector<RollupEntry> DayRollup::take() {
  std::vector<RollupEntry> out;
  out.reserve(size_);
  for (Slot& slot : slots_) {
    if (!slot.used) continue;
    out.emplace_back(slot.key, slot.sums);
    slot.used = false;
  }
  size_ = 0;
  return out;
}

void DayRollup::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? kMinSlots : old.size() * 2, Slot{});
  size_ = 0;
  for (const Slot& slot : old)
    if (slot.used) at(slot.key) = slot.sums;
}

void days_and_months(std::vector<RollupEntry>& days, std::vector<RollupEntry>& months) {
  auto by_key = [](const RollupEntry& a, const RollupEntry& b) {
    return a.first.bucket != b.first.bucket ? a.first.bucket < b.first.bucket
                                            : a.first.attributes_id < b.first.attributes_id;
  };
  std::sort(days.begin(), days.end(), by_key);
  std::unordered_map<RollupKey, RollupSums, RollupKeyHash> month_map;
  int64_t last_day = INT64_MIN, last_month = 0;
  for (const RollupEntry& e : days) {
    if (e.first.bucket != last_day) {
      last_day = e.first.bucket;
      last_month = floor_month(last_day);
    }
    RollupSums& m = month_map[RollupKey{last_month, e.first.attributes_id}];
    m.record_count += e.second.record_count;
    for (size_t i = 0; i < kFactCount; ++i) m.facts[i] += e.second.facts[i];
  }
  months.assign(month_map.begin(), month_map.end());
  std::sort(months.begin(), months.end(), by_key);
}

__int128 parse_int128_decimal(const std::string& s) {
  bool negative = !s.empty() && s[0] == '-';
  __int128 units = 0, frac = 0;
  size_t i = negative ? 1 : 0;
  for (; i < s.size() && s[i] != '.'; ++i) units = units * 10 + (s[i] - '0');
  int digits = 0;
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && digits < 9; ++i, ++digits) frac = frac * 10 + (s[i] - '0');
  }
  for (; digits < 9; ++digits) frac *= 10;
  __int128 v = units * kNanosPerUnit + frac;
  return negative ? -v : v;
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  return format_timestamp(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
}

std::vector<std::string> metric_columns(Metric m) {
  switch (m) {
    case Metric::kEffectiveCost:
      return {"effective_cost"};
    case Metric::kBilledCost:
      return {"billed_cost"};
    case Metric::kListCost:
      return {"list_cost"};
    case Metric::kContractedCost:
      return {"contracted_cost"};
    case Metric::kQuantity:
      return {"consumed_quantity"};
    case Metric::kTokens:
      return {"input_tokens", "output_tokens"};
    case Metric::kInputTokens:
      return {"input_tokens"};
    case Metric::kOutputTokens:
      return {"output_tokens"};
    case Metric::kCachedTokens:
      return {"cached_input_tokens"};
    case Metric::kRequests:
      return {"requests"};
    case Metric::kGpuHours:
      return {"gpu_milliseconds"};
    case Metric::kCacheSavings:
      return {"cache_saving"};
    case Metric::kGpuUtilization:
      return {"gpu_busy_milliseconds"};
    case Metric::kGpuMemoryPeakMib:
      return {"gpu_memory_peak_mib"};
    case Metric::kEnergyKwh:
      return {"energy_millijoules"};
    case Metric::kCo2eKg:
      return {"co2e_micrograms"};
    case Metric::kGpuObservedHours:
      return {"gpu_observed_milliseconds"};
    case Metric::kCount:
      break;
  }
  return {};
}

std::vector<std::string> metric_denominator_columns(Metric m) {
  if (m == Metric::kGpuUtilization) return {"gpu_observed_milliseconds"};
  return {};
}

namespace {
bool aligned(const std::optional<EpochSeconds>& t, Grain grain) {
  if (!t) return true;
  return grain == Grain::kMonth ? floor_month(*t) == *t : floor_day(*t) == *t;
}
}  // namespace

Result<TableChoice> choose_table(const QuerySpec& spec) {
  Grain finest = Grain::kNone;
  for (const Dimension& d : spec.group_by)
    if (d.kind == Dimension::Kind::kTime && (finest == Grain::kNone || d.grain < finest))
      finest = d.grain;
  for (const Filter& f : spec.filters)
    if (f.dimension.kind == Dimension::Kind::kTime)
      return make_error(ErrorCode::kInvalidArgument, "filter on time: use --from and --to instead");
  if ((finest == Grain::kNone || finest == Grain::kMonth) && !metric_is_peak(spec.metric) &&
      aligned(spec.from, Grain::kMonth) && aligned(spec.to, Grain::kMonth))
    return TableChoice{"rollup_month", "bucket"};
  if (finest != Grain::kHour && !metric_is_peak(spec.metric) && aligned(spec.from, Grain::kDay) &&
      aligned(spec.to, Grain::kDay))
    return TableChoice{"rollup_day", "bucket"};
  return TableChoice{"records", "charge_period_start"};
}

std::string format_bucket(Grain grain, int64_t t) {
  switch (grain) {
    case Grain::kHour:
      return format_timestamp(t);
    case Grain::kMonth:
      return format_month(t);
    default:
      return format_date(t);
  }
}

ResultBuilder::ResultBuilder(const QuerySpec& spec, std::string source_table) : spec_(spec) {
  result_.source_table = std::move(source_table);
}

void ResultBuilder::add(std::vector<std::string> keys, __int128 v, __int128 d) {
  QueryRow out;
  out.keys = std::move(keys);
  if (metric_is_ratio(spec_.metric)) {
    // A ratio of sums, never a sum of ratios: the total is recomputed from the parts.
    ratio_numerator_ += v;
    ratio_denominator_ += d;
    out.value = d == 0 ? 0 : mul_div_round(v, kNanosPerUnit, d);
    result_.rows.push_back(std::move(out));
    return;
  }
  switch (spec_.metric) {
    case Metric::kGpuHours:
    case Metric::kGpuObservedHours:
      v = mul_div_round(v, kNanosPerUnit, 3'600'000);
      break;
    case Metric::kEnergyKwh:
      v = mul_div_round(v, 10, 36);
      break;  // mJ -> nano-kWh
    case Metric::kCo2eKg:
      break;  // µg = nano-kg
    default:
      break;
  }
  out.value = v;
  result_.total = metric_is_peak(spec_.metric) ? std::max(result_.total, v) : result_.total + v;
  result_.rows.push_back(std::move(out));
}

QueryResult ResultBuilder::finish() {
  if (metric_is_ratio(spec_.metric) && ratio_denominator_ != 0)
    result_.total = mul_div_round(ratio_numerator_, kNanosPerUnit, ratio_denominator_);
  std::vector<size_t> time_columns;
  for (size_t i = 0; i < spec_.group_by.size(); ++i)
    if (spec_.group_by[i].kind == Dimension::Kind::kTime) time_columns.push_back(i);
  std::sort(result_.rows.begin(), result_.rows.end(), [&](const QueryRow& a, const QueryRow& b) {
    for (size_t i : time_columns)
      if (a.keys[i] != b.keys[i]) return a.keys[i] < b.keys[i];
    if (a.value != b.value) return a.value > b.value;
    return a.keys < b.keys;
  });
  return std::move(result_);
}

std::string tiers_json(const std::vector<pricing::PriceTier>& tiers) {
  if (tiers.empty()) return "";
  std::string out = "[";
  auto put = [&](const char* name, const std::optional<Decimal>& d) {
    if (d) out += std::string(",\"") + name + "\":\"" + format_decimal(d->nanos) + "\"";
  };
  for (size_t i = 0; i < tiers.size(); ++i) {
    if (i) out += ",";
    out += "{\"above_input_tokens\":" + std::to_string(tiers[i].above_input_tokens);
    put("input", tiers[i].prices.input);
    put("cached_input", tiers[i].prices.cached_input);
    put("cache_write", tiers[i].prices.cache_write);
    put("output", tiers[i].prices.output);
    put("reasoning", tiers[i].prices.reasoning);
    out += "}";
  }
  return out + "]";
}

std::vector<pricing::PriceTier> parse_tiers(const std::string& json) {
  std::vector<pricing::PriceTier> tiers;
  if (json.empty()) return tiers;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) return tiers;
  simdjson::dom::array array;
  if (doc.get_array().get(array) != simdjson::SUCCESS) return tiers;
  for (auto item : array) {
    pricing::PriceTier tier;
    int64_t above = 0;
    if (item["above_input_tokens"].get_int64().get(above) == simdjson::SUCCESS)
      tier.above_input_tokens = above;
    auto get = [&](const char* name, std::optional<Decimal>& out) {
      std::string_view s;
      if (item[name].get_string().get(s) == simdjson::SUCCESS) out = parse_decimal(s);
    };
    get("input", tier.prices.input);
    get("cached_input", tier.prices.cached_input);
    get("cache_write", tier.prices.cache_write);
    get("output", tier.prices.output);
    get("reasoning", tier.prices.reasoning);
    tiers.push_back(tier);
  }
  return tiers;
}

namespace {
bool same_token_prices(const pricing::TokenPrices& a, const pricing::TokenPrices& b) {
  return a.input == b.input && a.cached_input == b.cached_input && a.cache_write == b.cache_write &&
         a.output == b.output && a.reasoning == b.reasoning;
}
}  // namespace

bool same_prices(const pricing::ModelPrice& a, const pricing::ModelPrice& b) {
  if (!same_token_prices(a.prices, b.prices) || a.batch_discount != b.batch_discount ||
      a.currency != b.currency || a.tiers.size() != b.tiers.size())
    return false;
  for (size_t i = 0; i < a.tiers.size(); ++i)
    if (a.tiers[i].above_input_tokens != b.tiers[i].above_input_tokens ||
        !same_token_prices(a.tiers[i].prices, b.tiers[i].prices))
      return false;
  return true;
}

bool same_prices(const pricing::GpuInstancePrice& a, const pricing::GpuInstancePrice& b) {
  return a.on_demand == b.on_demand && a.reserved == b.reserved && a.spot == b.spot &&
         a.gpus == b.gpus && a.currency == b.currency;
}

bool model_price_known(const pricing::Catalog& existing, pricing::ModelPrice& m) {
  // A price identical to the one already in effect at that date adds nothing.
  const pricing::ModelPrice* current = existing.find_model(m.model, m.effective_from);
  if (current != nullptr && strcasecmp(current->model.c_str(), m.model.c_str()) == 0 &&
      same_prices(*current, m)) {
    m.version = current->version;
    return true;
  }
  return false;
}

bool gpu_price_known(const pricing::Catalog& existing, pricing::GpuInstancePrice& g) {
  const pricing::GpuInstancePrice* current = existing.find_gpu_instance(g.sku, g.effective_from);
  if (current != nullptr && same_prices(*current, g)) {
    g.version = current->version;
    return true;
  }
  return false;
}

}  // namespace aifinops::ledger::detail
