#include "optimize/batch.h"

#include <map>

namespace aifinops::optimize {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  return out;
}

/// Off-hours: 00:00-06:00 UTC (before the working day in Europe and after it in the
/// Americas) and weekends.
bool off_hours(EpochSeconds hour_start) {
  int64_t hour = (hour_start % 86400) / 3600;
  int64_t weekday = (hour_start / 86400 + 4) % 7;  // 1970-01-01 was a Thursday (4)
  return hour < 6 || weekday == 0 || weekday == 6;
}

struct Discount {
  Decimal fraction;
  std::string source;
};

/// A user's rate (--rates) first, then the catalog's batch discount for the model, then the
/// shipped table.
bool discount_for(const RecommendContext& c, const std::string& provider, const std::string& model,
                  Discount& out) {
  const BatchDiscount* table = c.rates->find_batch_discount(provider_key(provider));
  if (table != nullptr && !table->shipped) {
    out = {table->discount, table->source};
    return true;
  }
  if (c.catalog != nullptr) {
    if (const pricing::ModelPrice* p = c.catalog->find_model(model, c.as_of - 1);
        p != nullptr && p->batch_discount && p->batch_discount->nanos > 0) {
      out = {*p->batch_discount, "catalog batch discount of " + p->model};
      return true;
    }
  }
  if (table != nullptr) {
    out = {table->discount, table->source};
    return true;
  }
  return false;
}

}  // namespace

bool is_batch_purpose(std::string_view purpose) {
  std::string p = lower(purpose);
  return p == "batch_processing" || p == "batch-processing" || p == "batch" || p == "offline" ||
         p == "batch_inference";
}

Result<std::vector<Recommendation>> recommend_batch(const RecommendContext& c) {
  std::vector<ledger::Dimension> group = {
      attribute_dimension(Attr::kProviderName), attribute_dimension(Attr::kModel),
      attribute_dimension(Attr::kProject), attribute_dimension(Attr::kPurpose),
      attribute_dimension(Attr::kOperation)};
  const bool hourly = c.grain == ledger::Grain::kHour;
  if (hourly) group.insert(group.begin(), time_dimension(ledger::Grain::kHour));
  const size_t o = hourly ? 1 : 0;  // offset of the attribute keys
  auto cost = query_window(c, group, {attribute_filter(Attr::kChargeCategory, "Usage")},
                           ledger::Metric::kEffectiveCost);
  if (!cost) return Unexpected{cost.error()};

  struct Group {
    std::string provider, model, project, purpose;
    __int128 cost = 0, off_hours_cost = 0;
  };
  std::map<std::string, Group> groups;
  for (const ledger::QueryRow& row : cost->rows) {
    const std::string& model = row.keys[o + 1];
    const std::string& operation = row.keys[o + 4];
    // Already batched, or not model traffic.
    if (model == "(none)" || lower(operation) == "batch" || row.value <= 0) continue;
    Group& g = groups[row.keys[o] + "|" + model + "|" + row.keys[o + 2] + "|" + row.keys[o + 3]];
    g.provider = row.keys[o];
    g.model = model;
    g.project = row.keys[o + 2];
    g.purpose = row.keys[o + 3];
    g.cost += row.value;
    if (hourly) {
      auto t = parse_timestamp(row.keys[0]);
      if (t && off_hours(*t)) g.off_hours_cost += row.value;
    }
  }
  std::vector<Recommendation> out;
  for (const auto& [key, g] : groups) {
    const bool tagged = is_batch_purpose(g.purpose);
    // Off-hours bulk: at least 80% of the spend runs off-hours (hourly grain only).
    const bool bulk = hourly && !tagged && g.off_hours_cost * 10 >= g.cost * 8;
    if (!tagged && !bulk) continue;
    Discount d;
    if (!discount_for(c, g.provider, g.model, d)) continue;
    __int128 saving = mul_div_round(g.cost, d.fraction.nanos, kNanosPerUnit);
    if (saving <= 0) continue;
    Recommendation r;
    r.kind = "batch";
    std::string who = g.project == "(none)" ? "untagged project" : "project " + g.project;
    r.id = "batch:" + g.provider + "/" + g.model + "/" + g.project + "/" + g.purpose;
    r.subject = g.model + " traffic of " + who;
    r.title = "Send " + who + "'s " + g.model + " requests through the " + g.provider + " batch API";
    r.action = "Submit these requests as batch jobs (results within 24 hours) instead of synchronous calls";
    r.monthly_saving = c.per_month(saving);
    r.confidence = tagged ? Confidence::kHigh : Confidence::kLow;
    if (tagged)
      r.assumptions.push_back("purpose \"" + g.purpose + "\" means the results can wait for a batch window");
    else
      r.assumptions.push_back(
          "traffic that runs off-hours (00:00-06:00 UTC and weekends) can wait for a batch window");
    r.assumptions.push_back("the model is offered through the batch API at the discount below");
    r.evidence.push_back({"synchronous cost in window", money_text(g.cost)});
    r.evidence.push_back({"batch discount", percent_text((double)d.fraction.nanos / 1e9) + " (" + d.source + ")"});
    if (hourly) r.evidence.push_back({"off-hours share", percent_text((double)g.off_hours_cost / (double)g.cost)});
    r.evidence.push_back({"records", "aifinops report --by day --filter model=\"" + g.model + "\" --filter project=\"" +
                                         g.project + "\" --from " + format_date(c.from()) + " --to " +
                                         format_date(c.as_of)});
    if (g.project != "(none)") r.dimensions.push_back({"project", g.project});
    if (g.purpose != "(none)") r.dimensions.push_back({"purpose", g.purpose});
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace aifinops::optimize
