#include "analyze/maturity.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "allocate/compliance.h"
#include "analyze/kpi.h"
#include "analyze/series.h"
#include "core/json_text.h"

namespace aifinops::analyze {

const char* maturity_level_name(MaturityLevel level) {
  switch (level) {
    case MaturityLevel::kCrawl:
      return "crawl";
    case MaturityLevel::kWalk:
      return "walk";
    case MaturityLevel::kRun:
      return "run";
  }
  return "";
}

namespace {

// Thresholds (docs/kpi-and-maturity.md explains each).
constexpr int64_t kAllocationRunPercent = 95, kAllocationWalkPercent = 80;
constexpr int64_t kBudgetRunCoveragePercent = 80;
constexpr int64_t kRecentDays = 7;  ///< a scheduled analysis ran within this many days
constexpr int64_t kForecastRunPercent = 10, kForecastWalkPercent = 20;
constexpr int kForecastHorizonDays = 30, kForecastOrigins = 3, kForecastHistoryDays = 365;
constexpr int64_t kGatewayRunPercent = 80, kGatewayWalkPercent = 25;
constexpr int64_t kIngestWindowDays = 30, kIngestRecurringDays = 4;
constexpr int64_t kValueRunPercent = 50;
/// Gateway records are the ones whose resource is a virtual key (gateway/spool.cc).
constexpr const char* kGatewayResourceType = "Virtual key";

using Keys = std::vector<std::string>;

ledger::Dimension attribute_dimension(Attr a) {
  ledger::Dimension d;
  d.attribute = a;
  d.label = std::string(attribute_name(a));
  return d;
}

std::string percent_text(__int128 nano_percent) { return format_decimal_fixed(nano_percent, 1); }

/// Share in nano-percent; 0 when there is no whole.
__int128 share(__int128 part, __int128 whole) { return whole > 0 ? percent_of(part, whole) : 0; }

bool at_least(__int128 nano_percent, int64_t percent) {
  return nano_percent >= (__int128)percent * kNanosPerUnit;
}

MaturityMeasure measure(std::string name, std::string value, std::string unit) {
  return MaturityMeasure{std::move(name), std::move(value), std::move(unit)};
}

class Assessor {
 public:
  Assessor(ledger::Ledger& ledger, const MaturityContext& context)
      : ledger_(ledger),
        context_(context),
        policy_(*context.policy),
        now_(context.clock->now_ms() / 1000) {}

  Result<MaturityScorecard> run() {
    if (auto r = find_window(); !r) return Unexpected{r.error()};
    for (auto step :
         {&Assessor::allocation_coverage, &Assessor::budgets, &Assessor::anomaly_detection,
          &Assessor::forecast_accuracy, &Assessor::gateway_coverage, &Assessor::automation,
          &Assessor::value_tracking}) {
      auto criterion = (this->*step)();
      if (!criterion) return Unexpected{criterion.error()};
      card_.criteria.push_back(std::move(*criterion));
    }
    card_.overall = MaturityLevel::kRun;
    for (const MaturityCriterion& c : card_.criteria) {
      card_.overall = std::min(card_.overall, c.level);
      card_.score += (int)c.level;
      card_.max_score += 3;
    }
    return std::move(card_);
  }

 private:
  /// The last three calendar months with spend: what "now" means for the spend criteria.
  Result<void> find_window() {
    ledger::QuerySpec spec;
    ledger::Dimension month;
    month.kind = ledger::Dimension::Kind::kTime;
    month.grain = ledger::Grain::kMonth;
    month.label = "month";
    spec.group_by.push_back(month);
    auto months = ledger_.query(spec);
    if (!months) return Unexpected{months.error()};
    std::optional<EpochSeconds> last;
    for (const ledger::QueryRow& row : months->rows) {
      if (row.value == 0) continue;
      auto t = parse_timestamp(row.keys[0] + "-01");
      if (t && (!last || *t > *last)) last = *t;
    }
    if (!last) return {};
    EpochSeconds from = *last;
    for (int i = 0; i < 2; ++i) from = floor_month(from - 1);
    card_.from = from;
    card_.to = next_month(*last);
    auto total = ledger_.query(
        ledger::QuerySpec{card_.from, card_.to, {}, {}, ledger::Metric::kEffectiveCost});
    if (!total) return Unexpected{total.error()};
    window_spend_ = total->total;
    return {};
  }

  std::string window_words() const {
    if (!card_.from) return "the ledger (empty)";
    return format_month(*card_.from) + " to " + format_month(floor_month(*card_.to - 1));
  }

  MaturityCriterion make(std::string id, std::string name, std::string thresholds) const {
    MaturityCriterion c;
    c.id = std::move(id);
    c.name = std::move(name);
    c.thresholds = std::move(thresholds);
    return c;
  }

  std::optional<EpochSeconds> last_note(const std::vector<ledger::Note>& notes) const {
    std::optional<EpochSeconds> last;
    for (const ledger::Note& n : notes) {
      auto t = parse_timestamp(n.recorded_at);
      if (t && (!last || *t > *last)) last = *t;
    }
    return last;
  }

  std::string ago(EpochSeconds t) const {
    int64_t days = (now_ - t) / 86400;
    return days <= 0 ? "today" : days == 1 ? "1 day ago" : std::to_string(days) + " days ago";
  }

  /// Spend in the window that falls in any of the scopes.
  Result<__int128> covered_spend(const ScopeSet& scopes) {
    if (window_spend_ <= 0 || scopes.count() == 0) return (__int128)0;
    auto rows = ledger_.query(ledger::QuerySpec{
        card_.from, card_.to, scopes.dimensions(), {}, ledger::Metric::kEffectiveCost});
    if (!rows) return Unexpected{rows.error()};
    __int128 covered = 0;
    for (const ledger::QueryRow& row : rows->rows) {
      for (size_t i = 0; i < scopes.count(); ++i) {
        if (scopes.matches(i, row.keys)) {
          covered += row.value;
          break;
        }
      }
    }
    return covered;
  }

  // ---- allocation coverage ----

  Result<MaturityCriterion> allocation_coverage() {
    MaturityCriterion c =
        make("allocation_coverage", "Allocation coverage",
             "run: >= 95% of spend carries every required dimension with an allowed value; "
             "walk: >= 80%");
    if (window_spend_ <= 0) {
      c.evidence = "no spend in the ledger";
      c.next_step =
          "ingest a cost export (aifinops ingest FILE) and tag resources with the policy's "
          "dimensions";
      return c;
    }
    allocate::AuditRequest request;
    request.from = card_.from;
    request.to = card_.to;
    request.top_resources = 3;
    auto audit = allocate::audit_tags(ledger_, policy_.tags, request);
    if (!audit) return Unexpected{audit.error()};
    __int128 allocated_share = share(audit->allocated, audit->total);
    std::string required;
    for (const std::string& r : audit->required) required += (required.empty() ? "" : ", ") + r;
    c.measures = {measure("allocated share", percent_text(allocated_share), "%"),
                  measure("allocated cost", format_decimal(audit->allocated), "USD"),
                  measure("total cost", format_decimal(audit->total), "USD"),
                  measure("required dimensions", required, "")};
    c.level = at_least(allocated_share, kAllocationRunPercent)    ? MaturityLevel::kRun
              : at_least(allocated_share, kAllocationWalkPercent) ? MaturityLevel::kWalk
                                                                  : MaturityLevel::kCrawl;
    c.evidence =
        percent_text(allocated_share) + "% of " + display_money(audit->total) + " in " +
        window_words() + " carries " + required +
        (audit->required_by_default ? " (the policy requires nothing; team is used)" : "") + "; " +
        display_money(audit->total - audit->allocated) + " is not allocated";
    std::string top;
    for (const allocate::UntaggedResource& r : audit->untagged) {
      std::string name = r.resource_name != "(none)" ? r.resource_name
                         : r.resource != "(none)"    ? r.resource
                                                     : r.service;
      top += (top.empty() ? "" : ", ") + name + " (" + display_money(r.cost) + ")";
    }
    if (c.level == MaturityLevel::kRun) {
      c.next_step = "keep new resources tagged: review `aifinops tags audit` each month";
    } else {
      c.next_step = "tag the largest unallocated spend" +
                    (top.empty() ? std::string() : ": " + top) +
                    "; `aifinops tags audit` lists it, and shared_costs in policy.yaml can split "
                    "what has no owner";
    }
    return c;
  }

  // ---- budgets ----

  Result<MaturityCriterion> budgets() {
    MaturityCriterion c =
        make("budgets", "Budgets and alerts",
             "run: budgets cover >= 80% of spend, one alerts on the forecast, and alerts have been "
             "sent; walk: at least one budget matches spend");
    const std::vector<BudgetRule>& rules = policy_.budgets;
    auto alerts = ledger_.notes("budget_alert");
    if (!alerts) return Unexpected{alerts.error()};
    if (rules.empty()) {
      c.evidence =
          "no budgets in the policy" + (policy_.source.empty() ? std::string(" (built-in defaults)")
                                                               : " (" + policy_.source + ")");
      c.next_step =
          "add budgets: to policy.yaml for the largest teams or projects, with alert_at "
          "thresholds, and "
          "run `aifinops budgets alert` on a schedule";
      c.measures = {measure("budgets", "0", "budgets")};
      return c;
    }
    // Spend covered by any budget: one query grouped by every dimension a scope names. A
    // gateway-only scope ("key") matches no ledger column and covers nothing here.
    ScopeSet scopes;
    for (const BudgetRule& b : rules) (void)scopes.add(b.scope, b.name, &policy_.tags);
    auto covered_result = covered_spend(scopes);
    if (!covered_result) return Unexpected{covered_result.error()};
    __int128 covered = *covered_result;
    size_t forecast_thresholds = 0;
    for (const BudgetRule& b : rules)
      for (const AlertThreshold& t : b.alert_at) forecast_thresholds += t.forecast ? 1 : 0;
    auto last_alert = last_note(*alerts);
    __int128 coverage = share(covered, window_spend_);
    c.measures = {measure("budgets", std::to_string(rules.size()), "budgets"),
                  measure("spend covered", percent_text(coverage), "%"),
                  measure("forecast thresholds", std::to_string(forecast_thresholds), "thresholds"),
                  measure("alerts sent", std::to_string(alerts->size()), "alerts")};
    if (last_alert)
      c.measures.push_back(measure("last alert", format_timestamp(*last_alert), "date"));
    c.evidence = std::to_string(rules.size()) +
                 (rules.size() == 1 ? " budget covers " : " budgets cover ") +
                 percent_text(coverage) + "% of spend in " + window_words() + "; " +
                 std::to_string(forecast_thresholds) + " forecast threshold" +
                 (forecast_thresholds == 1 ? "" : "s") + "; " + std::to_string(alerts->size()) +
                 " alert" + (alerts->size() == 1 ? "" : "s") + " sent" +
                 (last_alert ? " (last " + ago(*last_alert) + ")" : std::string());
    if (covered <= 0) {
      c.level = MaturityLevel::kCrawl;
      c.next_step = "no budget scope matches spend in " + window_words() +
                    ": check the scopes' values against `aifinops report --by team`";
    } else if (at_least(coverage, kBudgetRunCoveragePercent) && forecast_thresholds > 0 &&
               !alerts->empty()) {
      c.level = MaturityLevel::kRun;
      c.next_step =
          "split budgets by component as spend stabilises (the paper's run stage) and review them "
          "quarterly";
    } else {
      c.level = MaturityLevel::kWalk;
      std::string missing;
      if (!at_least(coverage, kBudgetRunCoveragePercent))
        missing = "budget the spend no budget covers";
      if (forecast_thresholds == 0)
        missing += std::string(missing.empty() ? "" : "; ") + "add \"forecast 100%\" to alert_at";
      if (alerts->empty())
        missing += std::string(missing.empty() ? "" : "; ") +
                   "run `aifinops budgets alert` on a schedule so alerts go out";
      c.next_step = missing;
    }
    return c;
  }

  // ---- anomaly detection ----

  Result<MaturityCriterion> anomaly_detection() {
    MaturityCriterion c =
        make("anomaly_detection", "Anomaly detection",
             "run: detection ran in the last 7 days (scheduled); walk: it has run");
    auto runs = ledger_.notes("anomalies_run");
    if (!runs) return Unexpected{runs.error()};
    auto last = last_note(*runs);
    c.measures = {measure("runs recorded", std::to_string(runs->size()), "runs")};
    if (!last) {
      c.evidence = "anomaly detection has never run on this ledger";
      c.next_step =
          "run `aifinops anomalies --by team` and look at what it finds; then schedule it daily";
      return c;
    }
    c.measures.push_back(measure("last run", format_timestamp(*last), "date"));
    c.evidence = "anomaly detection last ran " + ago(*last) + " (" + format_timestamp(*last) + ")";
    if (now_ - *last <= kRecentDays * 86400) {
      c.level = MaturityLevel::kRun;
      c.next_step =
          "keep it scheduled; send what it finds to the owners (the explanations name the model or "
          "resource)";
    } else {
      c.level = MaturityLevel::kWalk;
      c.next_step =
          "schedule `aifinops anomalies` daily (cron or CI) so that spikes are caught within a day";
    }
    return c;
  }

  // ---- forecast accuracy ----

  Result<MaturityCriterion> forecast_accuracy() {
    MaturityCriterion c =
        make("forecast_accuracy", "Forecast accuracy",
             "run: 30-day forecasts of total spend within 10% (mean absolute error of the "
             "backtest); walk: within 20%");
    if (!card_.to) {
      c.evidence = "no spend in the ledger";
      c.next_step = "ingest at least two months of cost data";
      return c;
    }
    SeriesSpec spec;
    spec.to = std::min<EpochSeconds>(*card_.to, floor_day(now_));
    spec.from = spec.to.value() - (EpochSeconds)kForecastHistoryDays * 86400;
    auto set = load_series(ledger_, spec);
    if (!set) return Unexpected{set.error()};
    std::vector<double> history;
    if (!set->series.empty()) history = set->series[0].values;
    size_t lead = 0;
    while (lead < history.size() && history[lead] == 0) ++lead;
    while (!history.empty() && history.back() == 0) history.pop_back();  // days not yet ingested
    std::span<const double> days(history.data() + std::min(lead, history.size()),
                                 history.size() - std::min(lead, history.size()));
    EpochSeconds start = set->start + (EpochSeconds)lead * 86400;
    BacktestResult result;
    if (!days.empty()) {
      result = context_.backtest
                   ? context_.backtest(days, start)
                   : backtest(days, kForecastHorizonDays, 0.8, kForecastOrigins, start);
    }
    c.measures = {measure("history", std::to_string(days.size()), "days"),
                  measure("backtest origins", std::to_string(result.origins), "forecasts")};
    if (result.origins == 0) {
      c.evidence = "not enough history to test a forecast: " + std::to_string(days.size()) +
                   " days of spend (a 30-day backtest needs about 60)";
      c.next_step =
          "keep ingesting daily cost data; forecasts are tested once two months are in the ledger";
      return c;
    }
    __int128 mape =
        (__int128)std::llround(result.monthly_total_mape * 1000) * (kNanosPerUnit / 10);  // nano-%
    c.measures.push_back(measure("30-day total error (MAPE)", percent_text(mape), "%"));
    c.measures.push_back(measure(
        "interval coverage",
        percent_text((__int128)std::llround(result.coverage * 1000) * (kNanosPerUnit / 10)), "%"));
    c.evidence = "forecasts of the next 30 days' spend missed by " + percent_text(mape) +
                 "% on average over " + std::to_string(result.origins) + " backtests of " +
                 std::to_string(days.size()) + " days of history";
    if (mape > (__int128)kForecastRunPercent * kNanosPerUnit) {
      c.level = mape <= (__int128)kForecastWalkPercent * kNanosPerUnit ? MaturityLevel::kWalk
                                                                       : MaturityLevel::kCrawl;
      c.next_step =
          "look at what the forecast misses with `aifinops forecast --by team`: one-off charges, "
          "untagged spend and new projects; budget them apart";
    } else {
      c.level = MaturityLevel::kRun;
      c.next_step =
          "alert on forecast spend (\"forecast 100%\" thresholds) so budgets act before they run "
          "out";
    }
    return c;
  }

  // ---- gateway coverage ----

  Result<MaturityCriterion> gateway_coverage() {
    MaturityCriterion c =
        make("gateway_coverage", "Gateway coverage of AI spend",
             "run: >= 80% of LLM API spend is metered by the gateway; walk: >= 25%");
    if (window_spend_ <= 0) {
      c.evidence = "no spend in the ledger";
      c.next_step =
          "route LLM API calls through `aifinops gateway` so each request is metered and tagged";
      return c;
    }
    std::vector<ledger::Dimension> dims = {attribute_dimension(Attr::kResourceType),
                                           attribute_dimension(Attr::kModel)};
    std::map<Keys, std::pair<__int128, __int128>> rows;  // cost, tokens
    for (ledger::Metric m : {ledger::Metric::kEffectiveCost, ledger::Metric::kTokens}) {
      auto result = ledger_.query(ledger::QuerySpec{card_.from, card_.to, dims, {}, m});
      if (!result) return Unexpected{result.error()};
      for (const ledger::QueryRow& row : result->rows)
        (m == ledger::Metric::kTokens ? rows[row.keys].second : rows[row.keys].first) += row.value;
    }
    // Per model: what the providers billed and what the gateway metered. When both are in
    // the ledger the bill includes the gateway's traffic, so a model's spend is the larger.
    std::map<std::string, std::pair<__int128, __int128>> models;  // billed, metered
    for (const auto& [keys, v] : rows) {
      if (v.second == 0) continue;  // not token-billed
      auto& m = models[keys[1]];
      (keys[0] == kGatewayResourceType ? m.second : m.first) += v.first;
    }
    __int128 spend = 0, metered = 0, top_gap = 0;
    std::string top_model;
    for (const auto& [model, bm] : models) {
      spend += std::max(bm.first, bm.second);
      metered += bm.second;
      if (bm.first - bm.second > top_gap) {
        top_gap = bm.first - bm.second;
        top_model = model;
      }
    }
    if (spend <= 0) {
      c.level = MaturityLevel::kRun;
      c.evidence =
          "no LLM API (token) spend in " + window_words() + ": nothing for the gateway to meter";
      c.next_step = "route LLM API calls through `aifinops gateway` when they start";
      return c;
    }
    __int128 coverage = share(metered, spend);
    c.measures = {measure("metered by the gateway", format_decimal(metered), "USD"),
                  measure("LLM API spend", format_decimal(spend), "USD"),
                  measure("coverage", percent_text(coverage), "%")};
    c.evidence = percent_text(coverage) + "% of " + display_money(spend) + " of LLM API spend in " +
                 window_words() + " went through the gateway";
    c.level = at_least(coverage, kGatewayRunPercent)    ? MaturityLevel::kRun
              : at_least(coverage, kGatewayWalkPercent) ? MaturityLevel::kWalk
                                                        : MaturityLevel::kCrawl;
    c.next_step =
        c.level == MaturityLevel::kRun
            ? "give each application its own virtual key with tags, and set limits per key"
            : "route the largest unmetered spend through `aifinops gateway`" +
                  (top_model.empty() ? std::string()
                                     : ": " + top_model + " (" + display_money(top_gap) + ")");
    return c;
  }

  // ---- automation ----

  Result<MaturityCriterion> automation() {
    MaturityCriterion c =
        make("automation", "Automation",
             "run: data arrives by itself (ingest on >= 4 days in 30, or the gateway) and "
             "anomaly detection and budget alerts run on a schedule; walk: data arrives by itself");
    auto batches = ledger_.batches();
    if (!batches) return Unexpected{batches.error()};
    auto runs = ledger_.notes("anomalies_run");
    if (!runs) return Unexpected{runs.error()};
    auto alerts = ledger_.notes("budget_alert");
    if (!alerts) return Unexpected{alerts.error()};
    std::optional<EpochSeconds> latest;
    bool gateway = false;
    for (const ledger::BatchSummary& b : *batches) {
      gateway |= b.source_kind == "gateway";
      auto t = parse_timestamp(b.ingested_at);
      if (t && (!latest || *t > *latest)) latest = *t;
    }
    std::set<EpochSeconds> days;
    for (const ledger::BatchSummary& b : *batches) {
      auto t = parse_timestamp(b.ingested_at);
      if (t && latest && *latest - *t < kIngestWindowDays * 86400) days.insert(floor_day(*t));
    }
    auto last_run = last_note(*runs);
    bool recurring = gateway || (int64_t)days.size() >= kIngestRecurringDays;
    bool scheduled_anomalies = last_run && now_ - *last_run <= kRecentDays * 86400;
    bool alerting = !alerts->empty();
    c.measures = {
        measure("batches", std::to_string(batches->size()), "batches"),
        measure("ingest days in the last 30", std::to_string(days.size()), "days"),
        measure("gateway batches", gateway ? "yes" : "no", ""),
        measure("anomaly detection in the last 7 days", scheduled_anomalies ? "yes" : "no", ""),
        measure("budget alerts sent", std::to_string(alerts->size()), "alerts")};
    c.evidence =
        std::to_string(batches->size()) + (batches->size() == 1 ? " batch" : " batches") +
        ", ingested on " + std::to_string(days.size()) + (days.size() == 1 ? " day" : " days") +
        " in the 30 days before the last one" +
        (gateway ? "; the gateway writes usage as it happens" : "") + "; anomaly detection " +
        (scheduled_anomalies ? "ran in the last 7 days" : "has not run in the last 7 days") + "; " +
        (alerting ? "budget alerts have been sent" : "no budget alerts sent");
    if (!recurring) {
      c.level = MaturityLevel::kCrawl;
      c.next_step =
          "ingest the providers' cost exports on a schedule (daily cron of `aifinops ingest`), or "
          "meter LLM "
          "calls with `aifinops gateway`";
    } else if (scheduled_anomalies && alerting) {
      c.level = MaturityLevel::kRun;
      c.next_step =
          "keep the schedule monitored: alert when an ingest or a detection run is missing";
    } else {
      c.level = MaturityLevel::kWalk;
      c.next_step = std::string("schedule ") + (scheduled_anomalies ? "" : "`aifinops anomalies`") +
                    (!scheduled_anomalies && !alerting ? " and " : "") +
                    (alerting ? "" : "`aifinops budgets alert`") + " after each ingest";
    }
    return c;
  }

  // ---- value tracking ----

  Result<MaturityCriterion> value_tracking() {
    MaturityCriterion c =
        make("value_tracking", "Value tracking (ROI)",
             "run: projects with value recorded account for >= 50% of spend; walk: value is "
             "recorded for at least one project");
    const BusinessInputs* b = context_.business;
    std::vector<const ProjectInputs*> valued;
    if (b != nullptr && card_.from) {
      for (const ProjectInputs& p : b->projects) {
        bool in_window = std::any_of(
            p.value_by_month.begin(), p.value_by_month.end(),
            [&](const auto& mv) { return mv.first >= *card_.from && mv.first < *card_.to; });
        if (in_window) valued.push_back(&p);
      }
    }
    if (valued.empty()) {
      c.evidence = b == nullptr || b->files.empty()
                       ? "no business inputs (business.yaml) given"
                       : "no project has value_usd in " + window_words();
      c.next_step =
          "record the value each AI project delivers per month (value_usd in business.yaml, or a "
          "CSV) so "
          "that `aifinops kpi` computes ROI";
      c.measures = {measure("projects with value", "0", "projects")};
      return c;
    }
    // Spend of the valued projects: one query grouped by the dimensions their scopes name.
    ScopeSet scopes;
    for (const ProjectInputs* p : valued) {
      auto added = scopes.add(p->scope, p->origin, &policy_.tags);
      if (!added) return Unexpected{added.error()};
    }
    auto covered = covered_spend(scopes);
    if (!covered) return Unexpected{covered.error()};
    __int128 coverage = share(*covered, window_spend_);
    c.measures = {measure("projects with value", std::to_string(valued.size()), "projects"),
                  measure("their share of spend", percent_text(coverage), "%")};
    c.evidence = std::to_string(valued.size()) +
                 (valued.size() == 1 ? " project has" : " projects have") + " value recorded in " +
                 window_words() + ", " + percent_text(coverage) + "% of spend";
    if (at_least(coverage, kValueRunPercent)) {
      c.level = MaturityLevel::kRun;
      c.next_step = "review ROI per project (`aifinops kpi --by project`) when budgets are set";
    } else {
      c.level = MaturityLevel::kWalk;
      c.next_step =
          "record value for the projects with the most spend (`aifinops report --by project`)";
    }
    return c;
  }

  ledger::Ledger& ledger_;
  const MaturityContext& context_;
  const config::Policy& policy_;
  EpochSeconds now_;
  __int128 window_spend_ = 0;
  MaturityScorecard card_;
};

void json_field(std::string& out, std::string_view key, std::string_view value, bool comma = true) {
  if (comma) out += ',';
  append_json_string(out, key);
  out += ':';
  append_json_string(out, value);
}

}  // namespace

Result<MaturityScorecard> assess_maturity(ledger::Ledger& ledger, const MaturityContext& context) {
  if (context.policy == nullptr || context.clock == nullptr)
    return make_error(ErrorCode::kInternal, "assess_maturity needs a policy and a clock");
  return Assessor(ledger, context).run();
}

std::string maturity_json(const MaturityScorecard& card) {
  std::string out = "{\"window\":{\"from\":";
  out += card.from ? "\"" + format_date(*card.from) + "\"" : std::string("null");
  out += ",\"to\":";
  out += card.to ? "\"" + format_date(*card.to) + "\"" : std::string("null");
  out += "}";
  json_field(out, "overall", maturity_level_name(card.overall));
  out += ",\"score\":" + std::to_string(card.score) +
         ",\"max_score\":" + std::to_string(card.max_score);
  out += ",\"criteria\":[";
  for (size_t i = 0; i < card.criteria.size(); ++i) {
    const MaturityCriterion& c = card.criteria[i];
    out += i ? ",{" : "{";
    json_field(out, "id", c.id, false);
    json_field(out, "name", c.name);
    json_field(out, "level", maturity_level_name(c.level));
    json_field(out, "evidence", c.evidence);
    json_field(out, "next_step", c.next_step);
    json_field(out, "thresholds", c.thresholds);
    out += ",\"measures\":[";
    for (size_t m = 0; m < c.measures.size(); ++m) {
      out += m ? ",{" : "{";
      json_field(out, "name", c.measures[m].name, false);
      json_field(out, "value", c.measures[m].value);
      json_field(out, "unit", c.measures[m].unit);
      out += '}';
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

}  // namespace aifinops::analyze
