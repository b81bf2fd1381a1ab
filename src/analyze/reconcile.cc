#include "analyze/reconcile.h"

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>

#include "core/json_text.h"

namespace aifinops::analyze {
namespace {

bool missing(std::string_view v) { return v.empty() || v == "(none)"; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  return out;
}

ledger::Dimension attribute(Attr a) {
  ledger::Dimension d;
  d.attribute = a;
  d.label = std::string(attribute_name(a));
  return d;
}

std::string money(__int128 nanos) { return format_decimal_fixed(nanos, 2); }

}  // namespace

std::string catalog_model(const pricing::Catalog& catalog, std::string_view model, EpochSeconds at) {
  // The most general spelling the catalog knows: a gateway records "gpt-4o" where the bill
  // says "gpt-4o-2024-08-06", and the catalog lists both.
  std::vector<std::string> candidates = pricing::model_name_candidates(model);
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it)
    if (const pricing::ModelPrice* p = catalog.find_model(*it, at)) return p->model;
  return lower(model);
}

CostSide cost_side(const SideAttributes& a) {
  if (a.resource_type == "Virtual key") return CostSide::kMetered;
  if (!missing(a.charge_description) || !missing(a.billing_account_id)) return CostSide::kBilled;
  return CostSide::kMetered;
}

std::string_view reconcile_status_name(ReconcileStatus s) {
  switch (s) {
    case ReconcileStatus::kMatched: return "matched";
    case ReconcileStatus::kMeteredNotBilled: return "metered_not_billed";
    case ReconcileStatus::kBilledNotMetered: return "billed_not_metered";
  }
  return "unknown";
}

std::string catalog_provider(std::string_view provider) {
  std::string p = lower(provider);
  if (p == "microsoft" || p == "microsoft azure" || p == "azure openai" || p == "azure") return "azure";
  if (p == "amazon web services" || p == "aws" || p == "amazon bedrock" || p == "bedrock") return "bedrock";
  if (p == "google cloud" || p == "google" || p == "gcp" || p == "vertex ai" || p == "vertex_ai")
    return "vertex_ai";
  return p;
}

Result<ReconcileReport> reconcile(ledger::Ledger& ledger, const pricing::Catalog& catalog,
                                  const ReconcileQuery& query) {
  // A row's side needs its charge description only when it names no billing account, and
  // its attribution (team, project) only on the metered side. Grouping every row by those
  // columns multiplies the groups (descriptions are per SKU, projects per team), so the
  // ledger is asked in parts: rows with an account by provider, model, resource type and
  // account; rows without one with their description, team and project; and, only if
  // there are any, virtual-key rows that have an account, with their team and project.
  enum Column {
    kProvider,
    kModel,
    kResourceType,
    kDescription,
    kAccount,
    kTeam,
    kProject,
    kColumns
  };
  const Attr column_attr[kColumns] = {
      Attr::kProviderName,     Attr::kModel, Attr::kResourceType, Attr::kChargeDescription,
      Attr::kBillingAccountId, Attr::kTeam,  Attr::kProject};
  const std::vector<ledger::Filter> ai_usage = {
      {attribute(Attr::kServiceCategory), "AI and Machine Learning"},
      {attribute(Attr::kChargeCategory), "Usage"}};

  // (period, provider, model) -> row; models and providers in the catalog's spelling.
  std::map<std::tuple<std::string, std::string, std::string>, ReconcileRow> rows;
  std::map<std::string, std::string> model_names;  // as recorded -> catalog spelling
  const EpochSeconds at = query.to ? *query.to - 1 : (EpochSeconds)4102444800;  // 2100-01-01
  auto row_for = [&](const std::string& period, const std::string& provider_name,
                     const std::string& model_name) -> ReconcileRow& {
    std::string provider =
        query.by_provider ? catalog_provider(missing(provider_name) ? "" : provider_name) : "";
    std::string model;
    if (query.by_model) {
      auto [it, fresh] = model_names.try_emplace(model_name);
      if (fresh)
        it->second = missing(model_name) ? "(none)" : catalog_model(catalog, model_name, at);
      model = it->second;
    }
    ReconcileRow& r = rows[{period, provider, model}];
    r.period = period;
    r.provider = provider.empty() && query.by_provider ? "(none)" : provider;
    r.model = model;
    return r;
  };

  /// One part: grouped by `columns` (and time), with `filters` besides AI usage. `take`
  /// says whether a row belongs to this part. Returns whether it saw a row `flag` marks.
  const std::string none = "(none)";
  auto part = [&](const std::vector<Column>& columns, std::vector<ledger::Filter> filters,
                  const std::function<bool(const std::string* k)>& take,
                  const std::function<bool(const std::string* k)>& flag,
                  bool& flagged) -> Result<void> {
    ledger::QuerySpec spec;
    spec.from = query.from;
    spec.to = query.to;
    for (Column c : columns) spec.group_by.push_back(attribute(column_attr[c]));
    if (query.grain != ledger::Grain::kNone) {
      ledger::Dimension t;
      t.kind = ledger::Dimension::Kind::kTime;
      t.grain = query.grain;
      t.label = query.grain == ledger::Grain::kMonth ? "month" : "day";
      spec.group_by.push_back(t);
    }
    spec.filters = ai_usage;
    for (ledger::Filter& f : filters) spec.filters.push_back(std::move(f));
    for (ledger::Metric metric : {ledger::Metric::kEffectiveCost, ledger::Metric::kTokens}) {
      spec.metric = metric;
      auto result = ledger.query(spec);
      if (!result) return Unexpected{result.error()};
      for (const ledger::QueryRow& q : result->rows) {
        std::string k[kColumns];
        for (size_t i = 0; i < kColumns; ++i) k[i] = none;
        for (size_t i = 0; i < columns.size(); ++i) k[columns[i]] = q.keys[i];
        if (flag(k)) flagged = true;
        if (!take(k)) continue;
        const std::string period = query.grain == ledger::Grain::kNone ? "" : q.keys.back();
        CostSide side = cost_side({k[kResourceType], k[kDescription], k[kAccount]});
        ReconcileRow& r = row_for(period, k[kProvider], k[kModel]);
        bool attributed = !missing(k[kTeam]) || !missing(k[kProject]);
        if (metric == ledger::Metric::kEffectiveCost) {
          (side == CostSide::kBilled ? r.billed_cost : r.metered_cost) += q.value;
          if (side == CostSide::kMetered && attributed) r.metered_attributed_cost += q.value;
        } else {
          (side == CostSide::kBilled ? r.billed_tokens : r.metered_tokens) += (int64_t)q.value;
        }
      }
    }
    return {};
  };
  auto virtual_key = [](const std::string* k) { return k[kResourceType] == "Virtual key"; };
  auto never = [](const std::string*) { return false; };
  bool keyed_with_account = false, unused = false;
  // Rows with an account: billed, unless a virtual key (metered: taken with its team below).
  if (auto r = part(
          {kProvider, kModel, kResourceType, kAccount}, {},
          [&](const std::string* k) { return !missing(k[kAccount]) && !virtual_key(k); },
          virtual_key, keyed_with_account);
      !r)
    return Unexpected{r.error()};
  if (auto r = part(
          {kProvider, kModel, kResourceType, kDescription, kTeam, kProject},
          {{attribute(Attr::kBillingAccountId), none}}, [](const std::string*) { return true; },
          never, unused);
      !r)
    return Unexpected{r.error()};
  if (keyed_with_account) {
    if (auto r = part(
            {kProvider, kModel, kResourceType, kAccount, kTeam, kProject},
            {{attribute(Attr::kResourceType), "Virtual key"}},
            [](const std::string* k) { return !missing(k[kAccount]); }, never, unused);
        !r)
      return Unexpected{r.error()};
  }
  ReconcileReport report;
  for (auto& [key, r] : rows) {
    if (r.metered_cost == 0 && r.billed_cost == 0 && r.metered_tokens == 0 && r.billed_tokens == 0) continue;
    const bool metered = r.metered_cost != 0 || r.metered_tokens != 0;
    const bool billed = r.billed_cost != 0 || r.billed_tokens != 0;
    r.status = metered && billed ? ReconcileStatus::kMatched
               : metered         ? ReconcileStatus::kMeteredNotBilled
                                 : ReconcileStatus::kBilledNotMetered;
    report.billed_cost += r.billed_cost;
    report.metered_cost += r.metered_cost;
    report.matched += std::min(r.billed_cost, r.metered_cost);
    report.matched_attributed += std::min(r.billed_cost, r.metered_attributed_cost);
    if (r.billed_cost > r.metered_cost) report.billed_not_metered += r.billed_cost - r.metered_cost;
    if (r.metered_cost > r.billed_cost) report.metered_not_billed += r.metered_cost - r.billed_cost;
    report.rows.push_back(r);
  }
  std::stable_sort(report.rows.begin(), report.rows.end(), [](const ReconcileRow& a, const ReconcileRow& b) {
    if (a.period != b.period) return a.period < b.period;
    if (a.billed_cost != b.billed_cost) return a.billed_cost > b.billed_cost;
    return std::tie(a.provider, a.model) < std::tie(b.provider, b.model);
  });
  if (report.billed_cost > 0) {
    report.coverage = (double)report.matched / (double)report.billed_cost;
    report.attributed_coverage = (double)report.matched_attributed / (double)report.billed_cost;
  }
  return report;
}

std::string reconcile_report_json(const ReconcileReport& report, const ReconcileQuery& query) {
  std::string s = "{\"from\":";
  s += query.from ? "\"" + format_date(*query.from) + "\"" : "null";
  s += ",\"to\":";
  s += query.to ? "\"" + format_date(*query.to) + "\"" : "null";
  s += ",\"grain\":\"";
  s += query.grain == ledger::Grain::kNone ? "none" : query.grain == ledger::Grain::kMonth ? "month" : "day";
  s += "\",\"by\":[";
  if (query.by_provider) s += "\"provider\"";
  if (query.by_model) s += query.by_provider ? ",\"model\"" : "\"model\"";
  char coverage[64];
  std::snprintf(coverage, sizeof coverage, "%.6f,\"attributed_coverage\":%.6f", report.coverage,
                report.attributed_coverage);
  s += "],\"totals\":{\"billed_cost\":\"" + money(report.billed_cost) + "\",\"metered_cost\":\"" +
       money(report.metered_cost) + "\",\"matched\":\"" + money(report.matched) +
       "\",\"billed_not_metered\":\"" + money(report.billed_not_metered) + "\",\"metered_not_billed\":\"" +
       money(report.metered_not_billed) + "\",\"coverage\":" + coverage + "},\"rows\":[";
  for (size_t i = 0; i < report.rows.size(); ++i) {
    const ReconcileRow& r = report.rows[i];
    if (i > 0) s += ",\n";
    s += "{\"period\":";
    append_json_string(s, r.period);
    s += ",\"provider\":";
    append_json_string(s, r.provider);
    s += ",\"model\":";
    append_json_string(s, r.model);
    s += ",\"status\":\"" + std::string(reconcile_status_name(r.status)) + "\",\"billed_cost\":\"" +
         money(r.billed_cost) + "\",\"metered_cost\":\"" + money(r.metered_cost) + "\",\"cost_difference\":\"" +
         money(r.cost_difference()) + "\",\"metered_attributed_cost\":\"" + money(r.metered_attributed_cost) +
         "\",\"billed_tokens\":" + std::to_string(r.billed_tokens) + ",\"metered_tokens\":" +
         std::to_string(r.metered_tokens) + ",\"token_difference\":" + std::to_string(r.token_difference()) + "}";
  }
  s += "]}\n";
  return s;
}

}  // namespace aifinops::analyze
