// /metrics for `aifinops serve`: the ledger in Prometheus text format. Spend this month by
// team, project, provider and model; each budget's use; anomalies found in the last 30 days.
#pragma once

#include <string>

#include "config/policy_yaml.h"
#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"

namespace aifinops::server {

/// Renders the ledger metrics as of `now`. "This month" is the month of `now`, or the
/// ledger's latest month with records when the ledger ends before it (a demo, or a bill
/// export that lags), so that a dashboard over such a ledger is not empty; the `month`
/// label says which. Budgets and anomalies use the end of that month's data the same way.
/// Costs a few rollup queries plus one anomaly scan by team: callers cache it.
Result<std::string> render_ledger_metrics(ledger::Ledger& ledger, const config::Policy& policy,
                                          EpochSeconds now);

}  // namespace aifinops::server
