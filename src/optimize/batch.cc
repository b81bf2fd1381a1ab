#include "optimize/batch.h"

#include <algorithm>
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

/// The batch table's key of a provider and service: Bedrock bills under AWS, so "AWS" with
/// ServiceName "Amazon Bedrock" is "bedrock", not "aws" (which has no batch API).
std::string batch_provider_key(const std::string& provider, const std::string& service) {
  std::string key = provider_key(provider);
  const std::string s = lower(service);
  if (key == "aws" && s.find("bedrock") != std::string::npos) return "bedrock";
  return key;
}

/// A user's rate (--rates) first, then the catalog's batch discount for the model, then the
/// shipped table.
bool discount_for(const RecommendContext& c, const std::string& key, const std::string& model,
                  Discount& out) {
  const BatchDiscount* table = c.rates->find_batch_discount(key);
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

/// Sources whose records carry hour-level charge periods (one request, or an hour's bucket).
bool hourly_source(std::string_view kind) {
  return kind == "gateway" || kind == "otlp" || kind == "openai-usage" || kind == "anthropic-usage";
}

/// Days of hourly history the off-hours test reads by default: the hour grain is answered
/// from the records (the rollups are by day), so a week keeps it to a fraction of a scan.
constexpr int64_t kOffHoursDays = 7;

}  // namespace

bool is_batch_purpose(std::string_view purpose) {
  std::string p = lower(purpose);
  return p == "batch_processing" || p == "batch-processing" || p == "batch" || p == "offline" ||
         p == "batch_inference";
}

Result<std::vector<Recommendation>> recommend_batch(const RecommendContext& c) {
  const std::vector<ledger::Dimension> attributes = {
      attribute_dimension(Attr::kProviderName), attribute_dimension(Attr::kServiceName),
      attribute_dimension(Attr::kModel),        attribute_dimension(Attr::kProject),
      attribute_dimension(Attr::kPurpose),      attribute_dimension(Attr::kOperation)};
  const std::vector<ledger::Filter> usage = {attribute_filter(Attr::kChargeCategory, "Usage")};
  // The window by day, from the day rollup: the cost of every group, and its weekend part.
  std::vector<ledger::Dimension> by_day = attributes;
  by_day.insert(by_day.begin(), time_dimension(ledger::Grain::kDay));
  auto cost = query_window(c, by_day, usage, ledger::Metric::kEffectiveCost);
  if (!cost) return Unexpected{cost.error()};

  struct Group {
    std::string provider, service, model, project, purpose;
    __int128 cost = 0, weekend_cost = 0;
    // From hourly records, when there are some: cost in the hourly window, off-hours part,
    // and the hours of day it ran in (day-level records all sit at 00:00).
    __int128 hourly_cost = 0, hourly_off = 0;
    uint32_t hours_of_day = 0;  // bit per hour
  };
  std::map<std::string, Group> groups;
  auto key_of = [](const std::vector<std::string>& k, size_t o) {
    return k[o] + "|" + k[o + 1] + "|" + k[o + 2] + "|" + k[o + 3] + "|" + k[o + 4];
  };
  auto wanted = [](const ledger::QueryRow& row, size_t o) {
    // Already batched, or not model traffic.
    return row.keys[o + 2] != "(none)" && lower(row.keys[o + 5]) != "batch" && row.value > 0;
  };
  for (const ledger::QueryRow& row : cost->rows) {
    if (!wanted(row, 1)) continue;
    Group& g = groups[key_of(row.keys, 1)];
    g.provider = row.keys[1];
    g.service = row.keys[2];
    g.model = row.keys[3];
    g.project = row.keys[4];
    g.purpose = row.keys[5];
    g.cost += row.value;
    auto day = parse_timestamp(row.keys[0]);
    if (day && off_hours(*day + 12 * 3600) && off_hours(*day + 23 * 3600))
      g.weekend_cost += row.value;
  }

  // Off-hours by the hour: with --grain hour over the whole window; else over the last week,
  // and only when the ledger holds sources with hourly records (gateway, OTLP, usage APIs).
  bool hourly = c.grain == ledger::Grain::kHour;
  bool untagged = false;
  for (const auto& [key, g] : groups) untagged |= !is_batch_purpose(g.purpose);
  if (!hourly && untagged) {
    auto batches = c.ledger->batches();
    if (!batches) return Unexpected{batches.error()};
    for (const ledger::BatchSummary& b : *batches) hourly |= hourly_source(b.source_kind);
  }
  EpochSeconds hourly_from = c.from();
  if (hourly && untagged) {
    ledger::QuerySpec spec;
    if (c.grain != ledger::Grain::kHour)
      hourly_from = std::max(hourly_from, c.as_of - kOffHoursDays * 86400);
    spec.from = hourly_from;
    spec.to = c.as_of;
    spec.group_by = attributes;
    spec.group_by.insert(spec.group_by.begin(), time_dimension(ledger::Grain::kHour));
    spec.filters = usage;
    spec.metric = ledger::Metric::kEffectiveCost;
    auto rows = c.ledger->query(spec);
    if (!rows) return Unexpected{rows.error()};
    for (const ledger::QueryRow& row : rows->rows) {
      if (!wanted(row, 1)) continue;
      auto it = groups.find(key_of(row.keys, 1));
      if (it == groups.end()) continue;
      auto t = parse_timestamp(row.keys[0]);
      if (!t) continue;
      Group& g = it->second;
      g.hourly_cost += row.value;
      if (off_hours(*t)) g.hourly_off += row.value;
      g.hours_of_day |= 1u << ((*t % 86400) / 3600);
    }
  }

  std::vector<Recommendation> out;
  for (const auto& [key, g] : groups) {
    const bool tagged = is_batch_purpose(g.purpose);
    // Off-hours bulk: at least 80% of the spend runs off-hours. Judged by the hour when the
    // group has records at an hour other than 00:00 (day-level records all start at 00:00
    // and say nothing about the hour), else by its weekend share.
    const bool by_hour = (g.hours_of_day & ~1u) != 0 && g.hourly_cost > 0;
    const __int128 share_num = by_hour ? g.hourly_off : g.weekend_cost;
    const __int128 share_den = by_hour ? g.hourly_cost : g.cost;
    const bool bulk = !tagged && share_den > 0 && share_num * 10 >= share_den * 8;
    if (!tagged && !bulk) continue;
    Discount d;
    const std::string key_name = batch_provider_key(g.provider, g.service);
    if (!discount_for(c, key_name, g.model, d)) continue;
    __int128 saving = mul_div_round(g.cost, d.fraction.nanos, kNanosPerUnit);
    if (saving <= 0) continue;
    Recommendation r;
    r.kind = "batch";
    std::string who = g.project == "(none)" ? "untagged project" : "project " + g.project;
    r.id = "batch:" + g.provider + "/" + g.model + "/" + g.project + "/" + g.purpose;
    r.subject = g.model + " traffic of " + who;
    r.title = "Send " + who + "'s " + g.model + " requests through the " +
              (key_name == "bedrock" ? std::string("Amazon Bedrock") : g.provider) + " batch API";
    r.action = "Submit these requests as batch jobs (results within 24 hours) instead of synchronous calls";
    r.monthly_saving = c.per_month(saving);
    r.confidence = tagged ? Confidence::kHigh : Confidence::kLow;
    if (tagged)
      r.assumptions.push_back("purpose \"" + g.purpose + "\" means the results can wait for a batch window");
    else if (by_hour)
      r.assumptions.push_back(
          "traffic that runs off-hours (00:00-06:00 UTC and weekends) can wait for a batch window");
    else
      r.assumptions.push_back("traffic that runs at weekends can wait for a batch window");
    r.assumptions.push_back("the model is offered through the batch API at the discount below");
    r.evidence.push_back({"synchronous cost in window", money_text(g.cost)});
    r.evidence.push_back({"batch discount", percent_text((double)d.fraction.nanos / 1e9) + " (" + d.source + ")"});
    if (!tagged && by_hour)
      r.evidence.push_back(
          {"off-hours share", percent_text((double)g.hourly_off / (double)g.hourly_cost) + " of " +
                                  money_text(g.hourly_cost) + " in hourly records from " +
                                  format_date(hourly_from)});
    else if (!tagged)
      r.evidence.push_back(
          {"weekend share", percent_text((double)g.weekend_cost / (double)g.cost)});
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
