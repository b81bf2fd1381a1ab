// The crawl/walk/run scorecard (R23): where an organisation stands in managing AI spend,
// computed from the ledger and the policy, criterion by criterion, each with the evidence
// that placed it and the next step. Criteria and thresholds are in docs/kpi-and-maturity.md.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "analyze/business_inputs.h"
#include "analyze/forecast.h"
#include "config/policy_yaml.h"
#include "core/clock.h"
#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::analyze {

/// The paper's three stages of managing AI cost.
enum class MaturityLevel { kCrawl = 1, kWalk = 2, kRun = 3 };
/// "crawl", "walk", "run".
const char* maturity_level_name(MaturityLevel level);

/// One measured fact behind a criterion.
struct MaturityMeasure {
  std::string name;   ///< "allocated share"
  std::string value;  ///< exact text: "82.4", "3", "2025-10-31T06:00:00Z"
  std::string unit;   ///< "%", "USD", "budgets", "days", "date"
};

struct MaturityCriterion {
  std::string id;    ///< "allocation_coverage"
  std::string name;  ///< "Allocation coverage"
  MaturityLevel level = MaturityLevel::kCrawl;
  std::string evidence;    ///< what the data shows, in one or two sentences
  std::string next_step;   ///< what reaches the next level; at run, what keeps it there
  std::string thresholds;  ///< "run: >= 95% of spend allocated; walk: >= 80%"
  std::vector<MaturityMeasure> measures;
};

struct MaturityScorecard {
  std::optional<EpochSeconds> from, to;  ///< the window the spend criteria read (to exclusive)
  std::vector<MaturityCriterion> criteria;
  MaturityLevel overall = MaturityLevel::kCrawl;  ///< the level every criterion reaches
  int score = 0, max_score = 0;                   ///< crawl 1, walk 2, run 3 per criterion
};

/// Backtests a daily history: see analyze::backtest. Tests pass a fake.
using Backtester =
    std::function<BacktestResult(std::span<const double> history, EpochSeconds history_start)>;

/// What the scorecard reads beside the ledger.
struct MaturityContext {
  const config::Policy* policy = nullptr;    ///< required; tag policy and budgets
  const BusinessInputs* business = nullptr;  ///< optional: value tracking
  const Clock* clock = nullptr;              ///< required: "recent" is relative to now
  Backtester backtest;                       ///< empty: analyze::backtest, 30 days, 3 origins
};

/// Scores every criterion over the last three months with data. Reads only.
Result<MaturityScorecard> assess_maturity(ledger::Ledger& ledger, const MaturityContext& context);

/// The scorecard as JSON (docs/kpi-and-maturity.md shows the shape).
std::string maturity_json(const MaturityScorecard& card);

}  // namespace aifinops::analyze
