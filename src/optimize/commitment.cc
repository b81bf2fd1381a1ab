#include "optimize/commitment.h"

#include <algorithm>
#include <map>
#include <string>

namespace aifinops::optimize {
namespace {

__int128 value_of(const CommitmentProblem& p, __int128 covered) {
  if (p.value_num == p.value_den) return covered;
  return mul_div_round(covered, p.value_num, p.value_den);
}

__int128 covered_at(const CommitmentProblem& p, int64_t units) {
  __int128 level = (__int128)units * p.unit_coverage, covered = 0;
  for (__int128 u : p.usage) covered += std::min(u, level);
  return covered;
}

/// The largest allowed level <= n, or -1 when n is below the minimum.
int64_t allowed_at_or_below(const CommitmentProblem& p, int64_t n) {
  if (n < p.minimum_units) return -1;
  return p.minimum_units + (n - p.minimum_units) / p.increment * p.increment;
}

}  // namespace

__int128 commitment_savings(const CommitmentProblem& p, int64_t units) {
  if (units <= 0) return 0;
  return value_of(p, covered_at(p, units)) - (__int128)units * p.unit_cost * (__int128)p.usage.size();
}

CommitmentSolution optimal_commitment(const CommitmentProblem& p) {
  CommitmentSolution best;
  const __int128 t = (__int128)p.usage.size();
  if (t == 0 || p.unit_coverage <= 0 || p.value_num <= 0 || p.value_den <= 0) return best;
  // Slope of savings in the level e (usage units): value × #{usage > e} − cost × T / coverage.
  // It is <= 0 once #{usage > e} <= unit_cost × T × den / (coverage × num) = βT.
  __int128 m = (p.unit_cost * t * p.value_den) / (p.unit_coverage * p.value_num) + 1;
  if (m > t) return best;  // never pays: even full use costs more than it saves
  std::vector<__int128> sorted = p.usage;
  std::nth_element(sorted.begin(), sorted.begin() + (ptrdiff_t)(m - 1), sorted.end(),
                   std::greater<__int128>());
  __int128 level = sorted[(size_t)(m - 1)];
  // Continuous optimum in units: level / coverage; the best allowed level is next to it.
  int64_t below = (int64_t)(level / p.unit_coverage);
  int64_t above = below + (level % p.unit_coverage != 0 ? 1 : 0);
  std::vector<int64_t> candidates;
  int64_t low = allowed_at_or_below(p, below);
  if (low >= 0) candidates.push_back(low);
  int64_t high = allowed_at_or_below(p, above);
  if (high < above) high = high < 0 ? p.minimum_units : high + p.increment;
  candidates.push_back(high);
  for (int64_t n : candidates) {
    __int128 s = commitment_savings(p, n);
    if (s > best.savings || (s == best.savings && n < best.units && s > 0)) {
      best.units = n;
      best.savings = s;
    }
  }
  if (best.units > 0) best.covered = covered_at(p, best.units);
  return best;
}

namespace {

std::string decimal_text(__int128 nanos, int places) { return format_decimal_fixed(nanos, places); }

/// "USWEST-BoxUsage:p5.48xlarge" -> "p5.48xlarge"; "DZH318Z08F4B/Standard_NC4as_T4_v3" ->
/// "Standard_NC4as_T4_v3": the instance type inside a FOCUS SkuId, for the catalog.
std::string instance_type_of(const std::string& sku) {
  size_t cut = sku.find_last_of(":/");
  return cut == std::string::npos ? sku : sku.substr(cut + 1);
}

struct UsageGroup {
  std::string provider, sku, region, gpu_type;
  std::map<std::string, __int128> cost_by_bucket;  ///< bucket text -> on-demand cost
  __int128 cost = 0, hours = 0;                    ///< window totals
};

/// The window's buckets in order, as the ledger formats them.
std::vector<std::string> bucket_keys(const RecommendContext& c) {
  std::vector<std::string> keys;
  const int64_t step = c.grain == ledger::Grain::kHour ? 3600 : 86400;
  for (EpochSeconds t = c.from(); t < c.as_of; t += step)
    keys.push_back(step == 3600 ? format_timestamp(t) : format_date(t));
  return keys;
}

std::vector<__int128> dense(const std::map<std::string, __int128>& by_bucket,
                            const std::vector<std::string>& keys) {
  std::vector<__int128> out;
  out.reserve(keys.size());
  for (const std::string& k : keys) {
    auto it = by_bucket.find(k);
    out.push_back(it == by_bucket.end() ? 0 : it->second);
  }
  return out;
}

struct TermResult {
  int term_years = 0;
  const CommitmentRate* rate = nullptr;
  Decimal discount;
  std::string discount_source;
  CommitmentSolution solution;
  CommitmentProblem problem;
};

std::string grain_word(const RecommendContext& c) {
  return c.grain == ledger::Grain::kHour ? "hour" : "day";
}

/// One recommendation from the better of the 1- and 3-year terms.
void add_commitment(const RecommendContext& c, const std::string& id, const std::string& subject,
                    const std::string& what_unit, std::vector<TermResult> terms,
                    const std::vector<ledger::Filter>& scope, __int128 window_cost,
                    std::vector<Recommendation>& out,
                    const std::vector<std::pair<std::string, std::string>>& dimensions,
                    const std::string& level_text_unit, __int128 unit_display_nanos) {
  const TermResult* best = nullptr;
  for (const TermResult& t : terms)
    if (t.solution.units > 0 && (best == nullptr || t.solution.savings > best->solution.savings)) best = &t;
  if (best == nullptr) return;
  auto level_text = [&](const TermResult& t) {
    if (unit_display_nanos == 0) return std::to_string(t.solution.units) + " " + level_text_unit;
    return money_text((__int128)t.solution.units * unit_display_nanos) + level_text_unit;
  };
  Recommendation r;
  r.kind = "commitment";
  r.id = id;
  r.subject = subject;
  r.title = "Commit to " + level_text(*best) + " of " + what_unit + " for " +
            std::to_string(best->term_years) + " year" + (best->term_years > 1 ? "s" : "");
  r.action = "Buy " + level_text(*best) + " (" + std::to_string(best->term_years) +
             "-year term) covering " + subject + "; keep the rest on demand";
  r.monthly_saving = c.per_month(best->solution.savings);
  bool published = true;
  for (const TermResult& t : terms) {
    if (t.rate != nullptr && t.rate->basis != "published rate") published = false;
  }
  r.confidence = published ? Confidence::kHigh : Confidence::kMedium;
  r.assumptions.push_back("future usage repeats the last " + std::to_string(c.window_days) +
                          " days (" + std::to_string(best->problem.usage.size()) + " " +
                          grain_word(c) + "s)");
  if (c.grain == ledger::Grain::kDay)
    r.assumptions.push_back(
        "usage is even within each day (daily grain; --grain hour reads hourly records and is "
        "exact for hourly data)");
  for (const TermResult& t : terms)
    if (t.rate != nullptr && t.rate->basis != "published rate")
      r.assumptions.push_back(std::to_string(t.term_years) + "-year discount " +
                              percent_text((double)t.discount.nanos / 1e9) + " is a " + t.rate->basis +
                              ": set your rate with --rates");
  r.evidence.push_back({"on-demand cost in window", money_text(window_cost)});
  for (const TermResult& t : terms) {
    std::string term = std::to_string(t.term_years) + "y";
    double beta = 1.0 - (double)t.discount.nanos / 1e9;
    r.evidence.push_back({term + " discount", percent_text((double)t.discount.nanos / 1e9) + " (" +
                                                  t.discount_source + ")"});
    r.evidence.push_back({term + " break-even utilisation", percent_text(beta)});
    if (t.solution.units == 0) {
      r.evidence.push_back({term + " optimal level", "none (no level saves money)"});
      continue;
    }
    __int128 capacity = (__int128)t.solution.units * t.problem.unit_coverage *
                        (__int128)t.problem.usage.size();
    r.evidence.push_back({term + " optimal level", level_text(t)});
    r.evidence.push_back({term + " utilisation of the level",
                          percent_text(capacity > 0 ? (double)t.solution.covered / (double)capacity : 0)});
    r.evidence.push_back({term + " saving in window", money_text(t.solution.savings)});
    r.evidence.push_back({term + " monthly saving", money_text(c.per_month(t.solution.savings).nanos)});
  }
  std::string filters;
  for (const ledger::Filter& f : scope)
    filters += " --filter " + f.dimension.label + "=\"" + f.value + "\"";
  r.evidence.push_back({"records", "aifinops report --by " + grain_word(c) + filters + " --from " +
                                       format_date(c.from()) + " --to " + format_date(c.as_of)});
  r.dimensions = dimensions;
  out.push_back(std::move(r));
}

/// The discount for a provider, commitment type and term: a user's rate, else the catalog's
/// reserved price when it has one for the instance (1-year), else the shipped rate table.
bool find_discount(const RecommendContext& c, const std::string& provider, const std::string& type,
                   int term, const pricing::GpuInstancePrice* catalog_price, TermResult& out) {
  out.term_years = term;
  const CommitmentRate* rate = c.rates->find_commitment(provider, type, term);
  // A user's rate (--rates) first, then the catalog's reserved price, then the shipped table.
  if (term == 1 && (rate == nullptr || rate->shipped) && catalog_price != nullptr && catalog_price->reserved && catalog_price->on_demand &&
      catalog_price->on_demand->nanos > 0) {
    out.discount = Decimal{catalog_price->on_demand->nanos - catalog_price->reserved->nanos};
    out.discount = Decimal{(int64_t)mul_div_round(out.discount.nanos, kNanosPerUnit,
                                                  catalog_price->on_demand->nanos)};
    out.discount_source = "catalog reserved price of " + catalog_price->sku;
    return out.discount.nanos > 0;
  }
  if (rate == nullptr) return false;
  out.rate = rate;
  out.discount = rate->discount;
  out.discount_source = rate->basis.empty() ? rate->source : rate->basis + ", " + rate->source;
  return true;
}

Result<void> instance_commitments(const RecommendContext& c, std::vector<Recommendation>& out) {
  std::vector<ledger::Dimension> group = {time_dimension(c.grain), attribute_dimension(Attr::kProviderName),
                                          attribute_dimension(Attr::kSkuId),
                                          attribute_dimension(Attr::kRegionId),
                                          attribute_dimension(Attr::kGpuType)};
  std::vector<ledger::Filter> filters = {attribute_filter(Attr::kServiceCategory, "Compute"),
                                         attribute_filter(Attr::kChargeCategory, "Usage"),
                                         attribute_filter(Attr::kPricingCategory, "Standard"),
                                         attribute_filter(Attr::kConsumedUnit, "Hours")};
  auto cost = query_window(c, group, filters, ledger::Metric::kEffectiveCost);
  if (!cost) return Unexpected{cost.error()};
  // Hours are only summed over the window: grouped without the time bucket, the answer has a
  // row per instance type instead of one per type and bucket (20,000 on a 5M-record ledger).
  const std::vector<ledger::Dimension> totals(group.begin() + 1, group.end());
  auto hours = query_window(c, totals, filters, ledger::Metric::kQuantity);
  if (!hours) return Unexpected{hours.error()};
  std::map<std::string, UsageGroup> groups;
  auto key_of = [](const std::vector<std::string>& k, size_t at) {
    return k[at] + "|" + k[at + 1] + "|" + k[at + 2];
  };
  for (const ledger::QueryRow& row : cost->rows) {
    UsageGroup& g = groups[key_of(row.keys, 1)];
    g.provider = row.keys[1];
    g.sku = row.keys[2];
    g.region = row.keys[3];
    if (row.keys[4] != "(none)") g.gpu_type = row.keys[4];
    g.cost_by_bucket[row.keys[0]] += row.value;
    g.cost += row.value;
  }
  for (const ledger::QueryRow& row : hours->rows) groups[key_of(row.keys, 0)].hours += row.value;

  const std::vector<std::string> keys = bucket_keys(c);
  const __int128 bucket_hours = c.grain == ledger::Grain::kHour ? 1 : 24;
  // Savings plans: the provider's on-demand compute spend per bucket, across SKUs and regions.
  std::map<std::string, std::map<std::string, __int128>> provider_spend;
  std::map<std::string, __int128> provider_cost;
  for (const auto& [key, g] : groups) {
    if (g.cost <= 0 || g.hours <= 0) continue;
    for (const auto& [bucket, v] : g.cost_by_bucket) provider_spend[g.provider][bucket] += v;
    provider_cost[g.provider] += g.cost;
    const std::string pk = provider_key(g.provider);
    const std::string type = pk == "gcp" ? "committed_use" : "reserved_instance";
    const std::string instance = instance_type_of(g.sku);
    const pricing::GpuInstancePrice* catalog_price =
        c.catalog != nullptr ? c.catalog->find_gpu_instance(instance, c.as_of - 1) : nullptr;
    std::vector<TermResult> terms;
    for (int term : {1, 3}) {
      TermResult t;
      if (!find_discount(c, pk, type, term, catalog_price, t)) continue;
      // One unit = one instance for a bucket: bucket_hours hours at the observed on-demand rate.
      t.problem.usage = dense(g.cost_by_bucket, keys);
      t.problem.unit_coverage = mul_div_round(g.cost, bucket_hours * kNanosPerUnit, g.hours);
      if (t.problem.unit_coverage <= 0) continue;
      t.problem.unit_cost =
          mul_div_round(t.problem.unit_coverage, kNanosPerUnit - t.discount.nanos, kNanosPerUnit);
      t.solution = optimal_commitment(t.problem);
      terms.push_back(std::move(t));
    }
    std::string type_words = type == "committed_use" ? "committed use discounts" : "reserved instances";
    std::string subject = instance + " in " + g.region + " (" + g.provider + ")";
    add_commitment(c, "commitment:" + pk + "/" + g.sku + "/" + g.region + "/" + type, subject,
                   instance + (g.gpu_type.empty() ? "" : " (" + g.gpu_type + ")") + " " + type_words,
                   std::move(terms),
                   {attribute_filter(Attr::kProviderName, g.provider), attribute_filter(Attr::kSkuId, g.sku),
                    attribute_filter(Attr::kRegionId, g.region),
                    attribute_filter(Attr::kPricingCategory, "Standard")},
                   g.cost, out, {}, "instance(s)", 0);
    if (!out.empty() && out.back().id.rfind("commitment:" + pk + "/" + g.sku + "/", 0) == 0) {
      out.back().evidence.push_back({"on-demand instance-hours in window", decimal_text(g.hours, 1)});
      out.back().evidence.push_back(
          {"on-demand rate", money_text(mul_div_round(g.cost, kNanosPerUnit, g.hours)) + " per hour"});
    }
  }
  for (const auto& [provider, spend] : provider_spend) {
    const std::string pk = provider_key(provider);
    std::vector<TermResult> terms;
    for (int term : {1, 3}) {
      TermResult t;
      if (!find_discount(c, pk, "savings_plan", term, nullptr, t)) continue;
      // One unit = $0.01 per hour of commitment; it covers 0.01 / (1 - discount) of on-demand.
      const __int128 cent_per_bucket = (__int128)10'000'000 * bucket_hours;
      t.problem.usage = dense(spend, keys);
      t.problem.unit_cost = cent_per_bucket;
      t.problem.unit_coverage =
          mul_div_round(cent_per_bucket, kNanosPerUnit, kNanosPerUnit - t.discount.nanos);
      t.solution = optimal_commitment(t.problem);
      terms.push_back(std::move(t));
    }
    add_commitment(c, "commitment:" + pk + "/savings_plan", "on-demand compute at " + provider,
                   "compute savings plan", std::move(terms),
                   {attribute_filter(Attr::kProviderName, provider),
                    attribute_filter(Attr::kServiceCategory, "Compute"),
                    attribute_filter(Attr::kPricingCategory, "Standard")},
                   provider_cost[provider], out, {}, "/hour", 10'000'000);
    if (!out.empty() && out.back().id == "commitment:" + pk + "/savings_plan")
      out.back().assumptions.push_back(
          "an alternative to the reserved-instance recommendations for the same usage: do not "
          "add their savings");
  }
  return {};
}

/// Azure PTU sizing for models with a throughput offer.
Result<void> throughput_commitments(const RecommendContext& c, std::vector<Recommendation>& out) {
  if (c.rates->throughput_offers.empty()) return {};
  std::vector<ledger::Dimension> group = {time_dimension(c.grain), attribute_dimension(Attr::kProviderName),
                                          attribute_dimension(Attr::kModel)};
  std::vector<ledger::Filter> filters = {attribute_filter(Attr::kChargeCategory, "Usage")};
  auto input = query_window(c, group, filters, ledger::Metric::kInputTokens);
  if (!input) return Unexpected{input.error()};
  struct ModelUsage {
    const ThroughputOffer* offer = nullptr;
    std::string provider, model;
    std::map<std::string, __int128> weighted;  ///< bucket -> input + weight × output tokens
    __int128 weighted_total = 0, cost = 0, input = 0, output = 0;
  };
  std::map<std::string, ModelUsage> models;
  auto usage_for = [&](const std::vector<std::string>& k) -> ModelUsage* {
    if (k[2] == "(none)") return nullptr;
    const ThroughputOffer* offer = c.rates->find_throughput_offer(k[2]);
    if (offer == nullptr || provider_key(k[1]) != offer->provider) return nullptr;
    ModelUsage& m = models[k[1] + "|" + k[2]];
    m.offer = offer;
    m.provider = k[1];
    m.model = k[2];
    return &m;
  };
  std::map<std::vector<std::string>, __int128> input_of;  // keys -> input tokens
  for (const ledger::QueryRow& row : input->rows)
    if (ModelUsage* m = usage_for(row.keys)) {
      m->weighted[row.keys[0]] += row.value;
      m->weighted_total += row.value;
      m->input += row.value;
      input_of[row.keys] = row.value;
    }
  // No model with an offer (no Azure traffic of gpt-4o and the like): nothing more to read.
  if (models.empty()) return {};
  // Output tokens = tokens - input tokens, one query fewer than asking for output.
  auto tokens = query_window(c, group, filters, ledger::Metric::kTokens);
  if (!tokens) return Unexpected{tokens.error()};
  auto cost = query_window(c, group, filters, ledger::Metric::kEffectiveCost);
  if (!cost) return Unexpected{cost.error()};
  for (const ledger::QueryRow& row : tokens->rows)
    if (ModelUsage* m = usage_for(row.keys)) {
      auto in = input_of.find(row.keys);
      const __int128 output = row.value - (in == input_of.end() ? 0 : in->second);
      if (output <= 0) continue;
      __int128 w = output * m->offer->output_token_weight;
      m->weighted[row.keys[0]] += w;
      m->weighted_total += w;
      m->output += output;
    }
  for (const ledger::QueryRow& row : cost->rows)
    if (ModelUsage* m = usage_for(row.keys)) m->cost += row.value;

  const std::vector<std::string> keys = bucket_keys(c);
  const __int128 bucket_minutes = c.grain == ledger::Grain::kHour ? 60 : 1440;
  for (const auto& [key, m] : models) {
    if (m.weighted_total <= 0 || m.cost <= 0) continue;
    std::vector<TermResult> terms;
    for (int term : {0, 1}) {  // 0: monthly reservation, 1: annual
      TermResult t;
      t.term_years = term;
      Decimal per_month = term == 0 ? m.offer->monthly_per_unit : m.offer->annual_per_unit_month;
      t.discount_source = m.offer->source;
      t.problem.usage = dense(m.weighted, keys);
      t.problem.unit_coverage = (__int128)m.offer->input_tpm_per_unit * bucket_minutes;
      // A unit's monthly price spread over the buckets of a 30-day month.
      t.problem.unit_cost = mul_div_round(per_month.nanos, bucket_minutes, 30 * 1440);
      t.problem.value_num = m.cost;
      t.problem.value_den = m.weighted_total;
      t.problem.minimum_units = m.offer->minimum_units;
      t.problem.increment = m.offer->increment;
      t.solution = optimal_commitment(t.problem);
      terms.push_back(std::move(t));
    }
    const TermResult* best = nullptr;
    for (const TermResult& t : terms)
      if (t.solution.units > 0 && (best == nullptr || t.solution.savings > best->solution.savings)) best = &t;
    if (best == nullptr) continue;
    Recommendation r;
    r.kind = "commitment";
    r.id = "commitment:ptu/" + m.model;
    r.subject = m.model + " (" + m.provider + ")";
    std::string term_word = best->term_years == 0 ? "monthly" : "annual";
    r.title = "Reserve " + std::to_string(best->solution.units) + " PTUs for " + m.model + " (" +
              term_word + " reservation)";
    r.action = "Deploy " + m.model + " as provisioned throughput with " +
               std::to_string(best->solution.units) + " PTUs; let traffic above it spill over to pay-as-you-go";
    r.monthly_saving = c.per_month(best->solution.savings);
    r.confidence = Confidence::kMedium;
    r.assumptions.push_back("PTU prices and throughput per PTU from the shipped table (" + m.offer->source +
                            "); they change often: set yours with --rates");
    r.assumptions.push_back("traffic is even within each " + grain_word(c) +
                            ": per-minute peaks above the average spill over to pay-as-you-go at "
                            "the observed price");
    r.assumptions.push_back("one output token uses the throughput of " +
                            std::to_string(m.offer->output_token_weight) + " input tokens");
    r.evidence.push_back({"pay-as-you-go cost in window", money_text(m.cost)});
    r.evidence.push_back({"input tokens", std::to_string((long long)m.input)});
    r.evidence.push_back({"output tokens", std::to_string((long long)m.output)});
    r.evidence.push_back({"throughput per PTU", std::to_string(m.offer->input_tpm_per_unit) + " input tokens/min"});
    r.evidence.push_back({"minimum and increment", std::to_string(m.offer->minimum_units) + " PTUs, then " +
                                                       std::to_string(m.offer->increment)});
    for (const TermResult& t : terms) {
      std::string term = t.term_years == 0 ? "monthly" : "annual";
      r.evidence.push_back({term + " optimal PTUs", std::to_string(t.solution.units)});
      if (t.solution.units > 0) {
        r.evidence.push_back({term + " share of traffic on PTUs",
                              percent_text((double)t.solution.covered / (double)m.weighted_total)});
        r.evidence.push_back({term + " monthly saving", money_text(c.per_month(t.solution.savings).nanos)});
      }
    }
    r.evidence.push_back({"records", "aifinops report --by " + grain_word(c) + " --metric tokens --filter model=\"" +
                                         m.model + "\" --from " + format_date(c.from()) + " --to " +
                                         format_date(c.as_of)});
    out.push_back(std::move(r));
  }
  return {};
}

}  // namespace

Result<std::vector<Recommendation>> recommend_commitments(const RecommendContext& context) {
  std::vector<Recommendation> out;
  if (auto r = instance_commitments(context, out); !r) return Unexpected{r.error()};
  if (auto r = throughput_commitments(context, out); !r) return Unexpected{r.error()};
  return out;
}

}  // namespace aifinops::optimize
