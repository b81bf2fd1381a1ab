// Limits and budgets for the gateway: token-bucket rate limits (RPM, TPM), daily request,
// token and dollar quotas per key, and budgets per scope and period with worst-case
// reservations, so that concurrent requests cannot overspend a hard budget by more than
// the reservation error. One interface (LimitStore) so that a fleet can share the state
// through Redis later; MemoryLimitStore keeps it in this process.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/budget.h"
#include "core/clock.h"
#include "core/money.h"

namespace aifinops::gateway {

/// Per-key limits; 0 (or unset) = no limit.
struct KeyLimits {
  int64_t rpm = 0;
  int64_t tpm = 0;
  int64_t requests_per_day = 0;
  int64_t tokens_per_day = 0;
  std::optional<Money> usd_per_day;
};

// Budgets have one shape for the gateway and the analyses (core/budget.h).
using aifinops::BudgetPeriod;
using aifinops::BudgetRule;

/// What a request brings to admission. The strings and tags are views, of the gateway's
/// configuration and the request: admission copies nothing, and they need to live only
/// until admit() (or admit_async()) returns.
struct AdmissionRequest {
  std::string_view key_id;
  std::string_view model;
  const std::map<std::string, std::string>* tags = nullptr;  ///< the key's canonical tags (team, project, ...); nullptr: none
  KeyLimits limits;
  int64_t estimated_tokens = 0;               ///< input estimate + max output: for TPM and token quota
  Money worst_case_cost;                      ///< reserved against dollar quotas and budgets
};

/// Why a request was refused (HTTP 429).
struct Refusal {
  std::string limit;        ///< "rpm", "tpm", "requests_per_day", "tokens_per_day", "usd_per_day", "budget"
  std::string scope;        ///< "key team-a-chatbot", "team=team-a (month)"
  std::string message;      ///< for the OpenAI-shaped error body
  int64_t retry_after_s = 1;
};

/// A soft budget whose settled spend went over its amount: reported (log line, webhook)
/// once per budget and period, never refused.
struct SoftBudgetNotice {
  std::string budget;  ///< the budget's name, e.g. "team=team-a (month)"
  Money spent, amount;
  EpochSeconds period_start = 0;
};

/// The result of admit(): either a reservation id to settle later, or a refusal.
struct Admission {
  bool admitted = false;
  uint64_t reservation = 0;
  Refusal refusal;
  /// Refused because the shared state (Redis) cannot be reached, not by a limit: HTTP 503,
  /// with the refusal's message and retry_after_s.
  bool unavailable = false;
};

// What every LimitStore decides alike (limits.cc), so that a fleet's Redis store answers
// exactly as this process's memory does.
/// Whether a request falls in a budget's scope (key, model, or the key's tags).
bool budget_in_scope(const BudgetRule& rule, const AdmissionRequest& request);
/// Which tag makes a request low priority ("criticality=low", "purpose=experimentation"),
/// throttled first near a budget; nullptr when none does.
const char* low_priority_reason(const std::map<std::string, std::string>* tags);
/// Dollars for refusal messages: cents, or every digit when a value has more.
std::string format_usd(Money m);

/// Shared limit and budget state. Implementations are thread-safe.
class LimitStore {
 public:
  virtual ~LimitStore() = default;
  /// Checks every limit in scope and, if all pass, reserves the request's estimate.
  /// Priority throttling: while a budget in scope is over 90% used, a request whose tags
  /// say criticality=low or purpose=experimentation is refused.
  virtual Admission admit(const AdmissionRequest& request) = 0;
  /// Receives an admission decided later; called exactly once, on the store's own thread.
  using AdmissionCallback = std::function<void(Admission)>;
  /// admit() for a caller that must not wait for a shared store (the gateway's I/O threads:
  /// while one request waits for Redis, every other request on that thread would wait too).
  /// Returns the admission when it is decided at once (a store in memory, or a shared store
  /// known to be unreachable); otherwise returns nothing and calls `done` exactly once, later,
  /// from another thread. The request's views need to live only until this returns. The
  /// default decides at once with admit().
  virtual std::optional<Admission> admit_async(const AdmissionRequest& request,
                                               AdmissionCallback done) {
    (void)done;
    return admit(request);
  }
  /// True when admit_async() always decides at once (the default above): a caller may then
  /// call admit() and spare the callback it would never call.
  virtual bool admits_at_once() const { return true; }
  /// Replaces the reservation with the real tokens and cost (0 for a failed request).
  /// Returns the soft budgets whose settled spend this request took over their amount for
  /// the first time in their period (usually none).
  virtual std::vector<SoftBudgetNotice> settle(uint64_t reservation, int64_t actual_tokens,
                                               Money actual_cost) = 0;
  /// Adds spend already recorded (e.g. from the ledger at start) to a budget's period.
  virtual void seed_budget_spend(const std::string& budget_name, Money spent) = 0;
  /// Spent plus reserved in the current period of a budget (for /metrics and tests).
  virtual Money budget_used(const std::string& budget_name) = 0;
  /// Prometheus text about the store itself, appended to /metrics: a shared store's
  /// health (errors, fail-open admissions); nothing for a store in memory.
  virtual std::string metrics_text() const { return {}; }
};

/// LimitStore in this process's memory, guarded by one mutex (admit and settle are short).
class MemoryLimitStore final : public LimitStore {
 public:
  MemoryLimitStore(std::vector<BudgetRule> budgets, const Clock& clock);
  ~MemoryLimitStore() override;  // defined where Impl is complete
  Admission admit(const AdmissionRequest& request) override;
  std::vector<SoftBudgetNotice> settle(uint64_t reservation, int64_t actual_tokens,
                                       Money actual_cost) override;
  void seed_budget_spend(const std::string& budget_name, Money spent) override;
  Money budget_used(const std::string& budget_name) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aifinops::gateway
