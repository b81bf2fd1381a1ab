// MemoryLimitStore: token buckets, daily quotas and period budgets with worst-case
// reservations, all under one mutex so that checking and reserving is one atomic step.
#include "gateway/limits.h"

#include <algorithm>
#include <limits>
#include <string_view>
#include <utility>

#include "core/time.h"

namespace aifinops::gateway {
namespace {

constexpr int64_t kMsPerMinute = 60'000;
constexpr int64_t kSecondsPerDay = 86'400;

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/// ceil(a / b) for a >= 0, b > 0.
__int128 ceil_div(__int128 a, __int128 b) { return (a + b - 1) / b; }

int64_t saturate(__int128 v) {
  constexpr int64_t lo = std::numeric_limits<int64_t>::min();
  constexpr int64_t hi = std::numeric_limits<int64_t>::max();
  return v < lo ? lo : v > hi ? hi : static_cast<int64_t>(v);
}

/// Whole seconds to wait from now_ms until until_ms, at least 1 (Retry-After is never 0).
int64_t seconds_until(EpochMillis now_ms, EpochMillis until_ms) {
  if (until_ms <= now_ms) return 1;
  return std::max<int64_t>(1, saturate(ceil_div(until_ms - now_ms, 1000)));
}


bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

/// Lets the map of keys be searched with the request's string_view.
struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

/// A token bucket holding at most `per_minute` tokens, refilled continuously at
/// per_minute / 60 tokens per second. The level is kept in 1/60000 of a token so that the
/// refill (per_minute units per millisecond) is exact integer arithmetic. The level may go
/// negative when a settle finds that a request used more than it was charged for; requests
/// then wait until it refills. Not thread-safe: guarded by the store's mutex.
class TokenBucket {
 public:
  /// Brings the level up to date at `now`. A bucket starts full.
  void refill(int64_t per_minute, EpochMillis now) {
    const int64_t capacity = saturate(static_cast<__int128>(per_minute) * kMsPerMinute);
    if (!started_) {
      started_ = true;
      level_ = capacity;
      updated_ms_ = now;
      return;
    }
    if (now > updated_ms_) {
      level_ = saturate(std::min<__int128>(
          capacity,
          static_cast<__int128>(level_) + static_cast<__int128>(now - updated_ms_) * per_minute));
      updated_ms_ = now;
    }
    level_ = std::min(level_, capacity);  // the limit may have been lowered
  }

  bool has(int64_t tokens) const { return static_cast<__int128>(level_) >= units(tokens); }

  /// Takes tokens (or gives them back when negative), capped at the capacity.
  void take(int64_t tokens, int64_t per_minute) {
    const __int128 capacity = static_cast<__int128>(per_minute) * kMsPerMinute;
    level_ = saturate(std::min<__int128>(capacity, static_cast<__int128>(level_) - units(tokens)));
  }

  /// Seconds until the bucket holds `tokens` again (at least 1).
  int64_t retry_after_s(int64_t tokens, int64_t per_minute) const {
    const __int128 deficit = units(tokens) - static_cast<__int128>(level_);
    if (deficit <= 0) return 1;
    const __int128 ms = ceil_div(deficit, per_minute);
    return std::max<int64_t>(1, saturate(ceil_div(ms, 1000)));
  }

 private:
  static __int128 units(int64_t tokens) { return static_cast<__int128>(tokens) * kMsPerMinute; }

  int64_t level_ = 0;
  EpochMillis updated_ms_ = 0;
  bool started_ = false;
};

/// Rate-limit buckets and the current UTC day's quota counters of one key.
struct KeyUsage {
  TokenBucket rpm;
  TokenBucket tpm;
  EpochSeconds day = std::numeric_limits<EpochSeconds>::min();  ///< the day the counters count
  int64_t requests = 0;
  int64_t tokens = 0;           ///< settled
  int64_t tokens_reserved = 0;  ///< estimated, of requests in flight
  Money usd;                    ///< settled
  Money usd_reserved;           ///< worst case, of requests in flight

  void roll(EpochSeconds now_s) {
    const EpochSeconds today = floor_day(now_s);
    if (today > day) {  // a clock that steps back does not reopen an old day
      day = today;
      requests = 0;
      tokens = 0;
      tokens_reserved = 0;
      usd = Money{};
      usd_reserved = Money{};
    }
  }
};

/// One budget and its current period's counters.
struct BudgetState {
  BudgetRule rule;
  std::string scope;  ///< scope_text(rule.scope), for messages
  EpochSeconds start = std::numeric_limits<EpochSeconds>::min();  ///< current period
  EpochSeconds end = std::numeric_limits<EpochSeconds>::min();    ///< its end (next start)
  Money spent;     ///< settled (and seeded) spend in the current period
  Money reserved;  ///< worst-case cost of requests admitted in this period, not yet settled
  bool notified = false;  ///< a soft budget's crossing was reported in this period

  Money used() const { return spent + reserved; }

  void roll(EpochSeconds now_s) {
    if (now_s >= start && now_s < end) return;  // the usual case: no calendar arithmetic
    const EpochSeconds current = period_start(rule.period, now_s);
    if (current > start) {
      start = current;
      end = period_end(rule.period, current);
      spent = Money{};
      reserved = Money{};
      notified = false;
    }
  }

  bool in_scope(const AdmissionRequest& request) const { return budget_in_scope(rule, request); }

  /// Over 90% used: 10 × used > 9 × amount, exactly.
  bool nearly_exhausted(Money used_now) const {
    return static_cast<__int128>(used_now.nanos) * 10 >
           static_cast<__int128>(rule.amount.nanos) * 9;
  }

  /// "team=team-a (month)"
  std::string refusal_scope() const { return scope + " (" + period_name(rule.period) + ")"; }

  /// "team=team-a, month: 100.00 of 100.00 USD used"
  std::string usage_text() const {
    return scope + ", " + period_name(rule.period) + ": " + format_usd(used()) + " of " +
           format_usd(rule.amount) + " USD used";
  }
};

/// What admit() took, so that settle() can give back exactly that.
struct Reservation {
  KeyUsage* key = nullptr;  ///< map nodes are never erased, so the pointer stays valid
  EpochSeconds day = 0;     ///< the key's quota day it was counted in
  int64_t tokens = 0;       ///< estimated tokens
  Money cost;               ///< worst-case cost
  int64_t tpm = 0;          ///< the TPM limit charged (0: none)
  std::vector<std::pair<size_t, EpochSeconds>> budgets;  ///< budget index, period start
};


Admission refused(std::string limit, std::string scope, std::string message,
                  int64_t retry_after_s) {
  Admission admission;
  admission.refusal =
      Refusal{std::move(limit), std::move(scope), std::move(message), retry_after_s};
  return admission;
}

}  // namespace

bool budget_in_scope(const BudgetRule& rule, const AdmissionRequest& request) {
  for (const auto& [dimension, value] : rule.scope) {
    if (dimension == "key") {
      if (request.key_id != value) return false;
    } else if (dimension == "model") {
      if (request.model != value) return false;
    } else {
      if (request.tags == nullptr) return false;
      auto it = request.tags->find(dimension);
      if (it == request.tags->end() || it->second != value) return false;
    }
  }
  return true;
}

const char* low_priority_reason(const std::map<std::string, std::string>* tags) {
  if (tags == nullptr) return nullptr;
  auto criticality = tags->find("criticality");
  if (criticality != tags->end() && iequals(criticality->second, "low")) return "criticality=low";
  auto purpose = tags->find("purpose");
  if (purpose != tags->end() && iequals(purpose->second, "experimentation"))
    return "purpose=experimentation";
  return nullptr;
}

// Cents, unless that would hide the amount (a $0.001 budget must not read as 0.00).
std::string format_usd(Money m) {
  std::string cents = format_decimal_fixed(m.nanos, 2);
  return (m.nanos % 10'000'000 == 0) ? cents : format_decimal(m.nanos);
}

// What a shared store (Redis) must replicate: admit() is one atomic step (a script) that
// reads every counter in scope, refuses without writing anything if one check fails, and
// otherwise takes from the buckets, adds the reservation to the quotas and budgets, and
// records what it took under the reservation id; settle() is one atomic step that deletes
// that record and, only if it existed, moves reserved to spent. Counters can be keyed by
// period start with a TTL, which gives the roll-over below for free.
//
// TODO: expire reservations that are never settled (a gateway that crashed mid-request);
// until then the caller must settle every admission on every path.
struct MemoryLimitStore::Impl {
  explicit Impl(const Clock& c) : clock(c) {}

  const Clock& clock;
  std::mutex mutex;
  std::vector<BudgetState> budgets;  // fixed after construction
  std::vector<std::pair<size_t, EpochSeconds>> budgets_in_scope;  // admit()'s scratch list
  std::unordered_map<std::string, size_t> budget_by_name;
  std::unordered_map<std::string, KeyUsage, TextHash, std::equal_to<>> keys;
  // Reservations in flight, in slots that are reused: an admission then allocates nothing
  // (a map node and a budget list each took a malloc per request). A reservation id is the
  // slot's index in its low 32 bits and the slot's use count in its high 32, so an id that
  // was settled, or never given, is recognised after its slot was reused.
  struct Slot {
    Reservation reservation;
    uint32_t uses = 0;     // times the slot was taken; the id's high half
    bool in_use = false;
  };
  std::vector<Slot> slots;
  std::vector<uint32_t> free_slots;

  /// A free slot for a new reservation, marked in use, and its id in `id`; its budget list
  /// is empty but keeps its capacity.
  Reservation& take_slot(uint64_t& id) {
    uint32_t index;
    if (free_slots.empty()) {
      index = static_cast<uint32_t>(slots.size());
      slots.emplace_back();
    } else {
      index = free_slots.back();
      free_slots.pop_back();
    }
    Slot& slot = slots[index];
    slot.in_use = true;
    slot.uses += 1;
    slot.reservation.budgets.clear();
    id = (static_cast<uint64_t>(slot.uses) << 32) | index;
    return slot.reservation;
  }
  /// The reservation in flight under `id`; nullptr when unknown or already settled.
  Slot* find_slot(uint64_t id) {
    const uint64_t index = id & 0xffffffffu;
    if (index >= slots.size()) return nullptr;
    Slot& slot = slots[index];
    if (!slot.in_use || slot.uses != static_cast<uint32_t>(id >> 32)) return nullptr;
    return &slot;
  }
  void release_slot(Slot& slot) {
    slot.in_use = false;
    free_slots.push_back(static_cast<uint32_t>(&slot - slots.data()));
  }

  BudgetState* find_budget(const std::string& name) {
    auto it = budget_by_name.find(name);
    return it == budget_by_name.end() ? nullptr : &budgets[it->second];
  }
};

MemoryLimitStore::MemoryLimitStore(std::vector<BudgetRule> budgets, const Clock& clock)
    : impl_(std::make_unique<Impl>(clock)) {
  impl_->budgets.reserve(budgets.size());
  for (BudgetRule& rule : budgets) {
    BudgetState state;
    state.scope = scope_text(rule.scope);
    if (rule.name.empty()) {
      rule.name = state.scope + " (" + period_name(rule.period) + ")";
    }
    state.rule = std::move(rule);
    // The first budget of a name wins for seed_budget_spend and budget_used; config
    // validation is expected to reject duplicate names.
    impl_->budget_by_name.emplace(state.rule.name, impl_->budgets.size());
    impl_->budgets.push_back(std::move(state));
  }
}

MemoryLimitStore::~MemoryLimitStore() = default;

Admission MemoryLimitStore::admit(const AdmissionRequest& request) {
  const int64_t tokens = std::max<int64_t>(0, request.estimated_tokens);
  const Money cost{std::max<int64_t>(0, request.worst_case_cost.nanos)};
  const KeyLimits& limits = request.limits;

  std::lock_guard<std::mutex> lock(impl_->mutex);
  // Read under the lock so that every update sees time move forward.
  const EpochMillis now_ms = impl_->clock.now_ms();
  const EpochSeconds now_s = floor_div(now_ms, 1000);
  const EpochMillis day_end_ms = (floor_day(now_s) + kSecondsPerDay) * 1000;

  auto found = impl_->keys.find(request.key_id);
  if (found == impl_->keys.end()) found = impl_->keys.emplace(request.key_id, KeyUsage{}).first;
  KeyUsage& key = found->second;
  key.roll(now_s);
  // Text for a refusal, built only then.
  auto key_id = [&] { return std::string(request.key_id); };
  auto key_scope = [&] { return "key " + key_id(); };

  // 1. Checks. Nothing is taken until every check has passed, so a refusal leaves no trace.
  if (limits.rpm > 0) {
    key.rpm.refill(limits.rpm, now_ms);
    if (!key.rpm.has(1)) {
      const int64_t retry = key.rpm.retry_after_s(1, limits.rpm);
      return refused("rpm", key_scope(),
                     "Rate limit reached for key " + key_id() + ": " +
                         std::to_string(limits.rpm) + " requests per minute (rpm). Retry after " +
                         std::to_string(retry) + " s.",
                     retry);
    }
  }
  if (limits.tpm > 0) {
    if (tokens > limits.tpm) {
      // Like OpenAI: a request larger than the whole bucket can never pass, so waiting is
      // pointless; the fix is a smaller max_tokens or input.
      return refused("tpm", key_scope(),
                     "Request too large for key " + key_id() + ": an estimated " +
                         std::to_string(tokens) +
                         " tokens (input + max_tokens) exceed the limit of " +
                         std::to_string(limits.tpm) +
                         " tokens per minute (tpm). Lower max_tokens or shorten the input.",
                     60);
    }
    key.tpm.refill(limits.tpm, now_ms);
    if (!key.tpm.has(tokens)) {
      const int64_t retry = key.tpm.retry_after_s(tokens, limits.tpm);
      return refused("tpm", key_scope(),
                     "Rate limit reached for key " + key_id() + ": " +
                         std::to_string(limits.tpm) +
                         " tokens per minute (tpm), this request needs " + std::to_string(tokens) +
                         ". Retry after " + std::to_string(retry) + " s.",
                     retry);
    }
  }
  if (limits.requests_per_day > 0 && key.requests + 1 > limits.requests_per_day) {
    const int64_t retry = seconds_until(now_ms, day_end_ms);
    return refused(
        "requests_per_day", key_scope(),
        "Quota reached for key " + key_id() + ": " + std::to_string(limits.requests_per_day) +
            " requests per day (requests_per_day). Retry after " + std::to_string(retry) + " s.",
        retry);
  }
  if (limits.tokens_per_day > 0 &&
      key.tokens + key.tokens_reserved + tokens > limits.tokens_per_day) {
    // When settled use alone leaves room, requests in flight block this one, and their
    // settlement may free the quota soon: retry in a second rather than tomorrow.
    const int64_t retry =
        key.tokens + tokens <= limits.tokens_per_day ? 1 : seconds_until(now_ms, day_end_ms);
    return refused("tokens_per_day", key_scope(),
                   "Quota reached for key " + key_id() + ": " +
                       std::to_string(limits.tokens_per_day) +
                       " tokens per day (tokens_per_day), " +
                       std::to_string(key.tokens + key.tokens_reserved) +
                       " used or reserved, this request needs up to " + std::to_string(tokens) +
                       ". Retry after " + std::to_string(retry) + " s.",
                   retry);
  }
  if (limits.usd_per_day && key.usd + key.usd_reserved + cost > *limits.usd_per_day) {
    const int64_t retry =
        key.usd + cost <= *limits.usd_per_day ? 1 : seconds_until(now_ms, day_end_ms);
    return refused("usd_per_day", key_scope(),
                   "Quota reached for key " + key_id() + ": " + format_usd(*limits.usd_per_day) +
                       " USD per day (usd_per_day), " + format_usd(key.usd + key.usd_reserved) +
                       " used or reserved, this request may cost up to " + format_usd(cost) +
                       ". Retry after " + std::to_string(retry) + " s.",
                   retry);
  }

  // The budgets in scope, gathered in a list that keeps its capacity between admissions.
  std::vector<std::pair<size_t, EpochSeconds>>& in_scope = impl_->budgets_in_scope;
  in_scope.clear();
  const BudgetState* nearly_exhausted = nullptr;
  for (size_t i = 0; i < impl_->budgets.size(); ++i) {
    BudgetState& budget = impl_->budgets[i];
    if (!budget.in_scope(request)) continue;
    budget.roll(now_s);
    if (budget.rule.hard && budget.used() + cost > budget.rule.amount) {
      // If settled spend alone leaves room, in-flight reservations block it: retry soon.
      const int64_t retry = budget.spent + cost <= budget.rule.amount
                                ? 1
                                : seconds_until(now_ms, budget.end * 1000);
      std::string message = "Budget exhausted: " + budget.usage_text();
      if (budget.used() < budget.rule.amount) {
        message += "; this request may cost up to " + format_usd(cost) + " USD";
      }
      message += ".";
      return refused("budget", budget.refusal_scope(), std::move(message), retry);
    }
    if (!nearly_exhausted && budget.nearly_exhausted(budget.used())) nearly_exhausted = &budget;
    in_scope.emplace_back(i, budget.start);
  }
  if (nearly_exhausted) {
    if (const char* reason = low_priority_reason(request.tags)) {
      const BudgetState& budget = *nearly_exhausted;
      const int64_t retry =
          budget.nearly_exhausted(budget.spent) ? seconds_until(now_ms, budget.end * 1000) : 1;
      return refused("budget", budget.refusal_scope(),
                     "Budget over 90% used: " + budget.usage_text() + "; requests with " + reason +
                         " are throttled by priority.",
                     retry);
    }
  }

  // 2. Every check passed: take from every bucket, quota and budget.
  Admission admission;
  admission.admitted = true;
  if (limits.rpm > 0) key.rpm.take(1, limits.rpm);
  if (limits.tpm > 0) key.tpm.take(tokens, limits.tpm);
  key.requests += 1;
  key.tokens_reserved += tokens;
  key.usd_reserved += cost;
  for (const auto& [index, start] : in_scope) impl_->budgets[index].reserved += cost;
  Reservation& reservation = impl_->take_slot(admission.reservation);
  reservation.key = &key;
  reservation.day = key.day;
  reservation.tokens = tokens;
  reservation.cost = cost;
  reservation.tpm = limits.tpm;
  reservation.budgets.assign(in_scope.begin(), in_scope.end());
  return admission;
}

std::vector<SoftBudgetNotice> MemoryLimitStore::settle(uint64_t reservation_id,
                                                      int64_t actual_tokens, Money actual_cost) {
  const int64_t tokens = std::max<int64_t>(0, actual_tokens);
  const Money cost{std::max<int64_t>(0, actual_cost.nanos)};

  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<SoftBudgetNotice> notices;
  Impl::Slot* slot = impl_->find_slot(reservation_id);
  if (!slot) return notices;  // unknown or already settled
  const Reservation& reservation = slot->reservation;

  const EpochMillis now_ms = impl_->clock.now_ms();
  const EpochSeconds now_s = floor_div(now_ms, 1000);
  KeyUsage& key = *reservation.key;
  if (reservation.tpm > 0) {
    // The bucket is continuous, so the correction applies whenever it arrives.
    key.tpm.refill(reservation.tpm, now_ms);
    key.tpm.take(saturate(static_cast<__int128>(tokens) - reservation.tokens), reservation.tpm);
  }
  // A reservation settles into the day or period it was admitted in. This store keeps only
  // the current one, so after a roll-over the old counters are gone and the settlement is
  // dropped: the new period starts from zero, and history is the ledger's job.
  key.roll(now_s);
  if (key.day == reservation.day) {
    key.tokens_reserved -= reservation.tokens;
    key.tokens += tokens;
    key.usd_reserved += -reservation.cost;
    key.usd += cost;
  }
  for (const auto& [index, start] : reservation.budgets) {
    BudgetState& budget = impl_->budgets[index];
    budget.roll(now_s);
    if (budget.start != start) continue;
    budget.reserved += -reservation.cost;
    budget.spent += cost;
    // A soft budget is reported on its settled spend (a reservation is only a worst case),
    // once per period: also when seeded spend had already crossed it before the start.
    if (!budget.rule.hard && !budget.notified && budget.spent > budget.rule.amount) {
      budget.notified = true;
      notices.push_back(SoftBudgetNotice{budget.rule.name, budget.spent, budget.rule.amount,
                                         budget.start});
    }
  }
  impl_->release_slot(*slot);
  return notices;
}

void MemoryLimitStore::seed_budget_spend(const std::string& budget_name, Money spent) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  BudgetState* budget = impl_->find_budget(budget_name);
  if (!budget) return;
  budget->roll(floor_div(impl_->clock.now_ms(), 1000));
  budget->spent += spent;
}

Money MemoryLimitStore::budget_used(const std::string& budget_name) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  BudgetState* budget = impl_->find_budget(budget_name);
  if (!budget) return Money{};
  budget->roll(floor_div(impl_->clock.now_ms(), 1000));
  return budget->used();
}

}  // namespace aifinops::gateway
