// Budgets against the ledger: spend so far in the current period, the forecast for the
// whole period, % used, the projected exhaustion date and which alert thresholds are
// crossed; and the alerts themselves: one Slack-compatible message per budget with new
// crossings, each (budget, threshold, period) remembered in the ledger so it alerts once.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "analyze/forecast.h"
#include "core/budget.h"
#include "core/result.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

/// A budget with its scope as ledger filters (the caller resolves dimension names against
/// the policy's custom dimensions).
struct ScopedBudget {
  BudgetRule rule;
  std::vector<ledger::Filter> filters;
};

struct BudgetOptions {
  /// The moment of the status. The current period is the one containing the second before
  /// it; effective cost of every day that has started by then counts as actual spend (the
  /// ledger keeps whole days, so today's spend so far counts in full).
  EpochSeconds as_of = 0;
  double interval = 0.8;   ///< of the period forecast
  int history_days = 120;  ///< days before as_of the forecast learns from
};

/// One alert threshold of a budget, and whether the status crosses it.
struct ThresholdStatus {
  AlertThreshold threshold;
  __int128 at = 0;  ///< the amount it fires at, in nanos of USD
  bool crossed = false;
  std::string key;  ///< the ledger note that remembers its alert for this period
};

/// Where a budget stands. Money in nanos of USD (exact); forecasts in dollars (statistics).
struct BudgetStatus {
  std::string name;
  std::string scope;  ///< scope_text(): "team=alpha"
  BudgetPeriod period = BudgetPeriod::kMonth;
  bool hard = true;
  EpochSeconds period_start = 0, period_end = 0;  ///< [start, end)
  EpochSeconds as_of = 0;
  __int128 amount = 0;
  __int128 actual = 0;   ///< effective cost from period start to as_of
  int days_elapsed = 0;  ///< days of the period that have started (a partial day counts)
  int days_in_period = 0;
  double forecast = 0;  ///< actual + forecast of the rest of the period
  double forecast_lower = 0, forecast_upper = 0;
  double used_percent = 0;                   ///< actual / amount * 100
  double forecast_percent = 0;               ///< forecast / amount * 100
  std::optional<EpochSeconds> exhausted_on;  ///< the day actual spend reached the amount
  std::optional<EpochSeconds>
      projected_exhaustion;  ///< the day the forecast reaches it, if in the period
  std::vector<ThresholdStatus> thresholds;
  // Inputs of the forecast, so that it can be explained.
  EpochSeconds history_start = 0;  ///< first day learnt from (the last is the day before as_of's)
  ForecastModel model;             ///< method "none" when no day of the period is left
  double remaining_forecast = 0;   ///< the forecast part: from as_of to the period end
};

/// The status of every budget at `options.as_of`, from the day rollup: one query filtered on
/// each budget's scope, or, for more than three budgets scoped on the same dimensions, one
/// query grouped by those dimensions and day for all of them.
Result<std::vector<BudgetStatus>> budget_status(ledger::Ledger& ledger,
                                                std::span<const ScopedBudget> budgets,
                                                const BudgetOptions& options);

/// "alpha monthly|80%|2025-10-01": the ledger note key of one alert.
std::string budget_alert_key(const std::string& budget, const AlertThreshold& threshold,
                             EpochSeconds period_start);

/// "the end of 2025-10-20" for a midnight, else the RFC 3339 time.
std::string as_of_text(EpochSeconds as_of);

/// The period as people say it: "2025-10", "week of 2025-10-13", "2025-10-14".
std::string period_label(BudgetPeriod period, EpochSeconds start);

/// The Slack-compatible message ({"text": ..., "blocks": [...]}) for a budget's newly
/// crossed thresholds.
std::string budget_alert_message(const BudgetStatus& status,
                                 std::span<const ThresholdStatus> crossed);

/// What became of one crossed threshold in an alert run.
struct AlertOutcome {
  enum class State { kSent, kAlreadySent, kWouldSend, kFailed };
  State state = State::kSent;
  std::string budget;
  std::string threshold;  ///< label: "80%", "forecast 100%"
  EpochSeconds period_start = 0;
  std::string key;
  int message = -1;   ///< index into AlertRun::messages; -1 for kAlreadySent
  std::string error;  ///< kFailed: why
};

struct AlertRun {
  std::vector<AlertOutcome> outcomes;
  std::vector<std::string> messages;  ///< JSON payloads, one per budget with new crossings
  int failed = 0;                     ///< messages that could not be delivered
};

/// Delivers one JSON payload (a webhook POST in production, a recorder in tests).
using AlertPoster = std::function<Result<void>(const std::string& json)>;

/// For each budget whose crossed thresholds include some not yet alerted in this period:
/// one message listing them, posted with `post`; after a successful post each threshold is
/// remembered (Ledger::note_once, kind "budget_alert"), so a later run does not repeat it.
/// A failed post is reported and not remembered, so the next run tries again. `dry_run`
/// builds the messages without posting or remembering. Errors only for ledger failures.
Result<AlertRun> send_budget_alerts(ledger::Ledger& ledger, std::span<const BudgetStatus> statuses,
                                    const AlertPoster& post, bool dry_run);

/// "alert_sent", "already_sent", "would_send", "failed".
const char* alert_state_name(AlertOutcome::State state);

}  // namespace aifinops::analyze
