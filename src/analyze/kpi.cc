#include "analyze/kpi.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "analyze/series.h"
#include "core/json_text.h"
#include "pricing/catalog.h"

namespace aifinops::analyze {

// ---- formulas ------------------------------------------------------------------------------

__int128 cost_per_unit(__int128 cost_nanos, __int128 count) {
  return mul_div_round(cost_nanos, 1, count);
}

__int128 cost_per_point(__int128 cost_nanos, __int128 points_nanos) {
  return mul_div_round(cost_nanos, kNanosPerUnit, points_nanos);
}

__int128 roi_percent(__int128 benefit_nanos, __int128 cost_nanos) {
  return mul_div_round(benefit_nanos - cost_nanos, (__int128)100 * kNanosPerUnit, cost_nanos);
}

__int128 percent_of(__int128 part, __int128 whole) {
  return mul_div_round(part, (__int128)100 * kNanosPerUnit, whole);
}

std::pair<int64_t, int64_t> calendar_months_between(EpochSeconds from, EpochSeconds to) {
  int64_t from_day = floor_day(from) / 86400, to_day = floor_day(to) / 86400;
  if (to_day <= from_day) return {0, 0};
  int64_t y1, y2;
  unsigned m1, d1, m2, d2;
  civil_from_days(from_day, y1, m1, d1);
  civil_from_days(to_day, y2, m2, d2);
  int64_t months = (y2 - y1) * 12 + ((int64_t)m2 - (int64_t)m1);
  // The day `months` calendar months after `from`, its day of month clamped (Jan 31 + 1 = Feb 28).
  auto add_months = [&](int64_t n) {
    int64_t total = y1 * 12 + (int64_t)m1 - 1 + n;
    int64_t y = total / 12;
    unsigned m = (unsigned)(total % 12) + 1;
    int64_t month_days =
        days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) - days_from_civil(y, m, 1);
    return days_from_civil(y, m, std::min<unsigned>(d1, (unsigned)month_days));
  };
  if (add_months(months) > to_day) --months;
  return {months, to_day - add_months(months)};
}

// ---- display -------------------------------------------------------------------------------

namespace {

/// "1234567.89" -> "1,234,567.89".
std::string group_digits(const std::string& number) {
  size_t point = number.find('.');
  if (point == std::string::npos) point = number.size();
  size_t first = !number.empty() && number[0] == '-' ? 1 : 0;
  std::string out = number.substr(0, first);
  for (size_t i = first; i < point; ++i) {
    out += number[i];
    size_t left = point - i - 1;
    if (left > 0 && left % 3 == 0) out += ',';
  }
  return out + number.substr(point);
}

/// Trailing zeros off, keeping at least `keep` decimals.
std::string trim_zeros(std::string s, size_t keep) {
  size_t point = s.find('.');
  if (point == std::string::npos) return s;
  while (s.size() > point + 1 + keep && s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string text(__int128 nanos) { return format_decimal(nanos); }

/// Days of history detect_anomalies needs before it scores a series (three weekly seasons,
/// analyze/anomaly.h): days before that are not counted as observed.
constexpr size_t kDetectorWarmupDays = 21;
/// Days of history read before the period for the baseline to settle.
constexpr int64_t kAnomalyHistoryDays = 91;
std::string count_text(__int128 n) { return format_decimal(n * kNanosPerUnit); }

}  // namespace

std::string display_money(__int128 nanos) {
  bool negative = nanos < 0;
  __int128 v = negative ? -nanos : nanos;
  std::string digits;
  if (v >= kNanosPerUnit)
    digits = group_digits(format_decimal_fixed(v, 2));
  else if (v >= 100'000)
    digits = trim_zeros(format_decimal_fixed(v, 6), 2);
  else
    digits = v == 0 ? "0.00" : format_decimal(v);
  return std::string(negative ? "-$" : "$") + digits;
}

std::string display_percent(__int128 nano_percent) {
  return group_digits(format_decimal_fixed(nano_percent, 1)) + "%";
}

namespace {

std::string display_days(int64_t days, std::optional<std::pair<int64_t, int64_t>> months) {
  std::string s = group_digits(std::to_string(days)) + (days == 1 ? " day" : " days");
  if (months && months->first > 0) {
    s += " (" + std::to_string(months->first) + (months->first == 1 ? " month" : " months");
    if (months->second > 0)
      s += " " + std::to_string(months->second) + (months->second == 1 ? " day" : " days");
    s += ")";
  }
  return s;
}

std::string display_points(__int128 nanos) {
  std::string s = format_decimal_fixed(nanos, 1);
  return (nanos > 0 ? "+" : "") + s + " points";
}

// ---- ledger helpers ------------------------------------------------------------------------

using Keys = std::vector<std::string>;

ledger::Dimension attribute_dimension(Attr a) {
  ledger::Dimension d;
  d.kind = ledger::Dimension::Kind::kAttribute;
  d.attribute = a;
  d.label = std::string(attribute_name(a));
  return d;
}

ledger::Dimension time_dimension(ledger::Grain grain) {
  ledger::Dimension d;
  d.kind = ledger::Dimension::Kind::kTime;
  d.grain = grain;
  d.label = grain == ledger::Grain::kMonth ? "month" : "day";
  return d;
}

/// Sums of several metrics over one grouping: keys -> one value per metric.
using GroupedSums = std::map<Keys, std::vector<__int128>>;

Result<GroupedSums> grouped_sums(ledger::Ledger& ledger,
                                 const std::vector<ledger::Dimension>& group_by,
                                 std::optional<EpochSeconds> from, std::optional<EpochSeconds> to,
                                 const std::vector<ledger::Filter>& filters,
                                 const std::vector<ledger::Metric>& metrics) {
  GroupedSums sums;
  for (size_t i = 0; i < metrics.size(); ++i) {
    ledger::QuerySpec spec;
    spec.group_by = group_by;
    spec.from = from;
    spec.to = to;
    spec.filters = filters;
    spec.metric = metrics[i];
    auto result = ledger.query(spec);
    if (!result) return Unexpected{result.error()};
    for (const ledger::QueryRow& row : result->rows) {
      std::vector<__int128>& values = sums[row.keys];
      values.resize(metrics.size(), 0);
      values[i] += row.value;
    }
  }
  return sums;
}

Keys head(const Keys& keys, size_t n) { return Keys(keys.begin(), keys.begin() + (ptrdiff_t)n); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (char)std::tolower((unsigned char)c);
  return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

/// Single quotes for the shell when a value needs them.
std::string shell_word(const std::string& s) {
  bool plain =
      !s.empty() && s.find_first_not_of(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,") ==
                        std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// The phase of spend a group of records belongs to, from its workload, usage_type and
/// operation (the paper's tags: Model_Training, Model_Inference, Batch_Inference,
/// GPU_Training, API_Inference) and whether it used tokens or counted requests.
enum class Phase { kTraining, kInference, kOther };

Phase classify(std::string_view workload, std::string_view usage_type, std::string_view operation,
               bool used_tokens_or_requests) {
  const std::string values[] = {lower(workload), lower(usage_type), lower(operation)};
  for (const std::string& v : values)
    if (contains(v, "train") || contains(v, "finetun") || contains(v, "fine-tun") ||
        contains(v, "fine_tun"))
      return Phase::kTraining;
  for (const std::string& v : values)
    if (contains(v, "infer") || contains(v, "serving")) return Phase::kInference;
  static const char* const kInferenceOperations[] = {
      "chat",  "completion", "completions", "embedding", "embeddings", "image",
      "audio", "batch",      "responses",   "rerank",    "moderation"};
  for (const char* op : kInferenceOperations)
    if (values[2] == op) return Phase::kInference;
  return used_tokens_or_requests ? Phase::kInference : Phase::kOther;
}

/// What a per-request or per-token KPI says when what it counts ("requests", "tokens") cost
/// nothing in its own records.
std::string unpriced_note(const std::string& what) {
  return "the " + what +
         " counted cost nothing in their own records (self-hosted models, whose cost is the GPU "
         "bill): `aifinops recommend --unit-economics` gives their cost per million tokens";
}

/// "workload=inference operation=chat", or "untagged" when every value is missing.
std::string describe_group(const std::vector<std::string>& names, const Keys& keys, size_t offset) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (keys[offset + i] == "(none)") continue;
    s += (s.empty() ? "" : " ") + names[i] + "=" + keys[offset + i];
  }
  return s.empty() ? "untagged" : s;
}

std::string list_some(const std::set<std::string>& items, size_t most = 8) {
  std::string s;
  size_t n = 0;
  for (const std::string& item : items) {
    if (n == most) {
      s += "; and " + std::to_string(items.size() - most) + " more";
      break;
    }
    s += (n++ ? "; " : "") + item;
  }
  return s;
}

/// Models that can stand in for each other: text generation (chat, completion, responses),
/// embeddings, images, audio.
std::string mode_family(std::string_view mode) {
  if (mode == "chat" || mode == "completion" || mode == "responses") return "text";
  return std::string(mode);
}

// ---- business scopes -----------------------------------------------------------------------

/// "--filter project=support-chatbot" for each term of scope i.
std::string filter_flags(const ScopeSet& scopes, size_t i) {
  std::string s;
  for (const auto& [name, value] : scopes.terms(i))
    s += " --filter " + shell_word(name + "=" + value);
  return s;
}

// ---- the computation -----------------------------------------------------------------------

class KpiBuilder {
 public:
  KpiBuilder(ledger::Ledger& ledger, const KpiQuery& query, const KpiContext& context)
      : ledger_(ledger), query_(query), context_(context) {
    for (const ledger::Dimension& d : query.group_by) labels_.push_back(d.label);
  }

  Result<KpiReport> run() {
    report_.from = query_.from;
    report_.to = query_.to;
    report_.group_by = labels_;
    if (context_.business != nullptr) report_.business_files = context_.business->files;
    // Every ledger KPI reads one grouping: the --by dimensions, then what tells training from
    // inference, then service and model; the month rollup answers it for whole-month periods.
    std::vector<ledger::Dimension> dims = query_.group_by;
    for (Attr a :
         {Attr::kWorkload, Attr::kUsageType, Attr::kOperation, Attr::kServiceName, Attr::kModel})
      dims.push_back(attribute_dimension(a));
    auto base = grouped_sums(ledger_, dims, query_.from, query_.to, {},
                             {ledger::Metric::kEffectiveCost, ledger::Metric::kRequests,
                              ledger::Metric::kTokens, ledger::Metric::kGpuHours});
    if (!base) return Unexpected{base.error()};
    base_ = std::move(*base);
    std::map<Keys, __int128> totals;
    for (const auto& [keys, v] : base_) totals[head(keys, labels_.size())] += v[kCost];
    for (const auto& [keys, cost] : totals) groups_.push_back({cost, keys});
    std::sort(groups_.begin(), groups_.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    if (groups_.empty() && query_.group_by.empty()) groups_.push_back({0, {}});

    for (auto step :
         {&KpiBuilder::cost_per_inference, &KpiBuilder::training_cost_efficiency,
          &KpiBuilder::cost_per_token, &KpiBuilder::resource_utilisation, &KpiBuilder::anomalies,
          &KpiBuilder::roi, &KpiBuilder::cost_per_api_call, &KpiBuilder::time_to_value,
          &KpiBuilder::time_to_first_prompt, &KpiBuilder::model_quality_gap}) {
      if (auto r = (this->*step)(); !r) return Unexpected{r.error()};
    }
    return std::move(report_);
  }

 private:
  // ---- shared pieces ----

  Kpi make(std::string id, std::string name, std::string formula, std::string unit, KpiKind kind,
           const Keys& by_keys) const {
    Kpi k;
    k.id = std::move(id);
    k.name = std::move(name);
    k.formula = std::move(formula);
    k.unit = std::move(unit);
    k.kind = kind;
    for (size_t i = 0; i < labels_.size() && i < by_keys.size(); ++i)
      k.group.push_back({labels_[i], by_keys[i]});
    return k;
  }

  std::string period_flags() const {
    std::string s;
    if (query_.from) s += " --from " + format_date(*query_.from);
    if (query_.to) s += " --to " + format_date(*query_.to);
    return s;
  }

  /// `aifinops report` over the period, grouped by the --by dimensions and `more`.
  std::string report_command(const std::vector<std::string>& more, std::string_view metric,
                             const std::string& extra = "") const {
    std::vector<std::string> dims = labels_;
    dims.insert(dims.end(), more.begin(), more.end());
    std::string s = "aifinops report";
    if (!dims.empty()) {
      std::string joined;
      for (const std::string& d : dims) joined += (joined.empty() ? "" : ",") + d;
      s += " --by " + shell_word(joined);
    }
    if (metric != "effective_cost") s += " --metric " + std::string(metric);
    return s + extra + period_flags();
  }

  std::string period_words() const {
    if (!query_.from && !query_.to) return "the whole ledger";
    std::string s = query_.from ? format_date(*query_.from) : std::string("the start");
    return s + " to " +
           (query_.to ? format_date(*query_.to) + " (exclusive)" : std::string("the end"));
  }

  /// With --by, groups with nothing to measure are left out; without it, the total always shows.
  bool grouped() const { return !labels_.empty() && !whole_ledger_; }

  static KpiInput ledger_input(std::string name, std::string value, std::string unit) {
    return KpiInput{std::move(name), std::move(value), std::move(unit), "ledger"};
  }

  /// Runs `fn(by_keys)` for each --by group, largest spend first. When `fn` leaves every
  /// group out, `fn` runs once more for the whole ledger, so that each KPI has a row that
  /// says why there is nothing to show.
  template <typename F>
  void for_each_group(F fn) {
    size_t before = report_.kpis.size();
    for (const auto& [cost, keys] : groups_) fn(keys);
    if (report_.kpis.size() == before && grouped()) {
      whole_ledger_ = true;
      fn(Keys{});
      whole_ledger_ = false;
    }
  }

  // ---- cost per inference -------------------------------------------------------------------

  Result<void> cost_per_inference() {
    const std::vector<std::string> names = {"workload", "usage_type", "operation"};
    const size_t n = labels_.size();
    struct Phases {
      __int128 metered_cost = 0, requests = 0, unmetered_cost = 0, training_cost = 0;
      __int128 unpriced_requests = 0;
    };
    std::map<Keys, Phases> by_group;
    std::set<std::string> inference_groups, training_groups;
    for (const auto& [keys, v] : base_) {
      Phase phase =
          classify(keys[n], keys[n + 1], keys[n + 2], v[kRequests] != 0 || v[kTokens] != 0);
      Phases& p = by_group[head(keys, n)];
      if (phase == Phase::kInference && served_at_no_recorded_cost(v)) {
        p.unpriced_requests += v[kRequests];
      } else if (phase == Phase::kInference) {
        // Inference spend whose records count no requests (GPU serving, token-billed APIs)
        // is left out: dividing it by other records' requests would say nothing.
        (v[kRequests] != 0 ? p.metered_cost : p.unmetered_cost) += v[kCost];
        p.requests += v[kRequests];
        if (v[kRequests] != 0)
          inference_groups.insert(describe_group(names, keys, n) + " " +
                                  describe_group({"service", "model"}, keys, n + 3));
      } else if (phase == Phase::kTraining) {
        p.training_cost += v[kCost];
        training_groups.insert(describe_group(names, keys, n));
      }
    }
    for (const auto& [keys, p] : by_group) training_[keys] = p.training_cost;
    std::string source =
        "records of " + period_words() +
        " that count requests and are inference: their workload, usage_type or operation say so, "
        "or "
        "they are not training (counted: " +
        (inference_groups.empty() ? std::string("none") : list_some(inference_groups)) + ")";
    for_each_group([&](const Keys& g) {
      const Phases p = by_group.count(g) ? by_group.at(g) : Phases{};
      if (grouped() && p.metered_cost == 0 && p.unmetered_cost == 0 && p.requests == 0) return;
      Kpi k = make("cost_per_inference", "Cost per inference",
                   "inference cost / inference requests", "USD per request", KpiKind::kMoney, g);
      k.inputs.push_back(ledger_input("inference cost", text(p.metered_cost), "USD"));
      k.inputs.push_back(ledger_input("inference requests", count_text(p.requests), "requests"));
      k.inputs.push_back(ledger_input("inference cost without request counts (left out)",
                                      text(p.unmetered_cost), "USD"));
      if (p.unpriced_requests != 0)
        k.inputs.push_back(ledger_input("inference requests at no recorded cost (left out)",
                                        count_text(p.unpriced_requests), "requests"));
      k.source = source;
      k.command = report_command(kBaseNames, "requests");
      if (p.requests > 0) {
        k.value = cost_per_unit(p.metered_cost, p.requests);
        k.display = display_money(*k.value) + " per request";
        if (p.unmetered_cost != 0)
          k.note =
              "inference spend whose records count no requests (GPU serving, token-billed APIs) is "
              "left out; "
              "meter it through the gateway to include it";
      } else if (p.unpriced_requests != 0) {
        k.note = unpriced_note("requests");
      } else if (p.unmetered_cost != 0) {
        k.note =
            "no request counts for the inference spend: cloud bills carry tokens and hours, not "
            "calls; requests come from the gateway (aifinops gateway) and AI usage exports";
      } else {
        k.note = "no inference spend in " + period_words();
      }
      report_.kpis.push_back(std::move(k));
    });
    training_source_ = training_groups.empty() ? std::string("none") : list_some(training_groups);
    return {};
  }

  // ---- training cost efficiency -------------------------------------------------------------

  Result<void> training_cost_efficiency() {
    const BusinessInputs* b = context_.business;
    if (b == nullptr || b->training_runs.empty()) {
      for_each_group([&](const Keys& g) {
        Kpi k = make("training_cost_efficiency", "Training cost efficiency",
                     "training cost / performance metric (e.g. accuracy)", "USD per accuracy point",
                     KpiKind::kMoney, g);
        __int128 cost = training_.count(g) ? training_.at(g) : 0;
        if (grouped() && cost == 0) return;
        k.inputs.push_back(ledger_input("training cost", text(cost), "USD"));
        k.source =
            "records of " + period_words() +
            " whose workload, usage_type or operation say training (counted: " + training_source_ +
            ")";
        k.command = report_command(kBaseNames, "effective_cost");
        k.note =
            "needs the accuracy each training run reached: list the runs under training_runs: in "
            "business.yaml (--business)";
        report_.kpis.push_back(std::move(k));
      });
      return {};
    }
    size_t before = report_.kpis.size();
    for (const TrainingRun& run : b->training_runs) {
      if (query_.from && run.to <= *query_.from) continue;
      if (query_.to && run.from >= *query_.to) continue;
      ScopeSet scopes;
      auto added = scopes.add(run.scope, run.origin, context_.tags);
      if (!added) return Unexpected{added.error()};
      Kpi k = make("training_cost_efficiency", "Training cost efficiency",
                   "training cost / performance metric (" + run.metric + ")",
                   "USD per " + run.metric + " point", KpiKind::kMoney, {});
      k.group.push_back({"training_run", run.name});
      __int128 cost = 0;
      if (run.cost) {
        cost = run.cost->nanos;
        k.inputs.push_back({"training cost", text(cost), "USD", run.origin});
        k.source = "cost_usd given in " + run.origin;
      } else {
        auto sums = grouped_sums(ledger_, {}, run.from, run.to, scopes.filters(0),
                                 {ledger::Metric::kEffectiveCost});
        if (!sums) return Unexpected{sums.error()};
        for (const auto& [keys, v] : *sums) cost += v[0];
        k.inputs.push_back(ledger_input("training cost", text(cost), "USD"));
        k.source = "records with " + scope_words(run.scope) + " from " + format_date(run.from) +
                   " to " + format_date(run.to - 86400) + " (both days included)";
        k.command = "aifinops report --by service" + filter_flags(scopes, 0) + " --from " +
                    format_date(run.from) + " --to " + format_date(run.to);
      }
      k.inputs.push_back({run.metric, text(run.accuracy.nanos), "points", run.origin});
      if (cost > 0) {
        k.value = cost_per_point(cost, run.accuracy.nanos);
        k.display = display_money(*k.value) + " per " + run.metric + " point";
      } else {
        k.note = "no spend in the ledger for " + scope_words(run.scope) + " in the run's dates";
      }
      report_.kpis.push_back(std::move(k));
    }
    if (report_.kpis.size() == before) {
      Kpi k = make("training_cost_efficiency", "Training cost efficiency",
                   "training cost / performance metric (e.g. accuracy)", "USD per accuracy point",
                   KpiKind::kMoney, {});
      k.note = "no training run in the business inputs overlaps " + period_words();
      report_.kpis.push_back(std::move(k));
    }
    return {};
  }

  // ---- cost per token -----------------------------------------------------------------------

  Result<void> cost_per_token() {
    const size_t n = labels_.size();
    std::map<Keys, std::pair<__int128, __int128>> by_group;  // cost, tokens
    std::map<Keys, std::map<std::string, std::pair<__int128, __int128>>> by_model;
    std::map<Keys, __int128> unpriced;  // tokens at no recorded cost (self-hosted models)
    for (const auto& [keys, v] : base_) {
      if (v[kTokens] == 0) continue;  // no tokens: not token-billed
      auto& model = by_model[head(keys, n)][keys[n + 4]];
      model.first += v[kCost];
      model.second += v[kTokens];
      if (v[kCost] == 0) {
        unpriced[head(keys, n)] += v[kTokens];
        continue;
      }
      auto& total = by_group[head(keys, n)];
      total.first += v[kCost];
      total.second += v[kTokens];
    }
    std::string source =
        "records of " + period_words() + " that used tokens (input + output), by model";
    std::vector<Kpi> model_rows;
    for_each_group([&](const Keys& g) {
      auto [cost, tokens] =
          by_group.count(g) ? by_group.at(g) : std::pair<__int128, __int128>{0, 0};
      const __int128 left_out = unpriced.count(g) ? unpriced.at(g) : 0;
      if (grouped() && tokens == 0 && left_out == 0) return;
      Kpi k = make("cost_per_token", "Cost per token", "token cost / tokens", "USD per token",
                   KpiKind::kMoney, g);
      k.inputs.push_back(ledger_input("token cost", text(cost), "USD"));
      k.inputs.push_back(ledger_input("tokens", count_text(tokens), "tokens"));
      if (left_out != 0)
        k.inputs.push_back(
            ledger_input("tokens at no recorded cost (left out)", count_text(left_out), "tokens"));
      k.source = source;
      k.command = report_command(kBaseNames, "tokens");
      if (tokens > 0) {
        k.value = cost_per_unit(cost, tokens);
        k.display = display_money(*k.value) + " per token (" +
                    display_money(cost_per_unit(cost * 1'000'000, tokens)) + " per 1M tokens)";
      } else if (left_out != 0) {
        k.note = unpriced_note("tokens");
      } else {
        k.note = "no tokens in " + period_words();
      }
      report_.kpis.push_back(std::move(k));
      if (!by_model.count(g)) return;
      std::vector<std::pair<std::string, std::pair<__int128, __int128>>> list(
          by_model.at(g).begin(), by_model.at(g).end());
      std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
        return a.second.first != b.second.first ? a.second.first > b.second.first
                                                : a.first < b.first;
      });
      for (const auto& [model, cost_tokens] : list) {
        Kpi m = make("cost_per_million_tokens", "Cost per million tokens",
                     "token cost / tokens x 1,000,000", "USD per 1M tokens", KpiKind::kMoney, g);
        m.group.push_back({"model", model});
        m.inputs.push_back(ledger_input("token cost", text(cost_tokens.first), "USD"));
        m.inputs.push_back(ledger_input("tokens", count_text(cost_tokens.second), "tokens"));
        if (cost_tokens.first != 0) {
          m.value = cost_per_unit(cost_tokens.first * 1'000'000, cost_tokens.second);
          m.display = display_money(*m.value) + " per 1M tokens";
        } else {
          m.note = unpriced_note("tokens");
        }
        m.source = "records of model " + model + " in " + period_words();
        m.command =
            report_command(kBaseNames, "tokens", " --filter " + shell_word("model=" + model));
        model_rows.push_back(std::move(m));
      }
    });
    for (Kpi& m : model_rows) report_.kpis.push_back(std::move(m));
    return {};
  }

  // ---- resource utilisation -----------------------------------------------------------------

  Result<void> resource_utilisation() {
    const BusinessInputs* b = context_.business;
    const std::string formula = "used GPU-hours / provisioned GPU-hours";
    if (b != nullptr && !b->gpu_busy_hours.empty()) {
      ScopeSet scopes;
      std::vector<const GpuBusyHours*> entries;
      for (const GpuBusyHours& g : b->gpu_busy_hours) {
        if (query_.from && next_month(g.month) <= *query_.from) continue;
        if (query_.to && g.month >= *query_.to) continue;
        auto added = scopes.add(g.scope, g.origin, context_.tags);
        if (!added) return Unexpected{added.error()};
        entries.push_back(&g);
      }
      if (entries.empty()) return {};
      std::vector<ledger::Dimension> dims = scopes.dimensions();
      dims.push_back(time_dimension(ledger::Grain::kMonth));
      auto sums =
          grouped_sums(ledger_, dims, query_.from, query_.to, {}, {ledger::Metric::kGpuHours});
      if (!sums) return Unexpected{sums.error()};
      // One row per name, over its months in the period.
      std::vector<std::string> names;
      for (const GpuBusyHours* e : entries)
        if (std::find(names.begin(), names.end(), e->name) == names.end()) names.push_back(e->name);
      for (const std::string& name : names) {
        __int128 used = 0, provisioned = 0;
        std::string months, origin, scope;
        size_t scope_index = 0;
        for (size_t i = 0; i < entries.size(); ++i) {
          const GpuBusyHours* e = entries[i];
          if (e->name != name) continue;
          used += e->busy_gpu_hours.nanos;
          months += (months.empty() ? "" : ", ") + format_month(e->month);
          if (origin.empty()) origin = e->origin;
          scope = scope_words(e->scope);
          scope_index = i;
          for (const auto& [keys, v] : *sums)
            if (keys.back() == format_month(e->month) && scopes.matches(i, keys, 0))
              provisioned += v[0];
        }
        Kpi k = make("resource_utilisation", "Resource utilisation", formula, "%",
                     KpiKind::kPercent, {});
        k.group.push_back({"gpu_pool", name});
        k.inputs.push_back({"used GPU-hours", text(used), "GPU-hours", origin});
        k.inputs.push_back(ledger_input("provisioned GPU-hours", text(provisioned), "GPU-hours"));
        k.source = "GPU instance hours x GPUs of records with " + scope + " in " + months;
        k.command = "aifinops report --by month --metric gpu_hours" +
                    filter_flags(scopes, scope_index) + period_flags();
        if (provisioned > 0) {
          k.value = percent_of(used, provisioned);
          k.display = display_percent(*k.value);
        } else {
          k.note = "no GPU-hours in the ledger for " + scope + " in " + months;
        }
        report_.kpis.push_back(std::move(k));
      }
      return {};
    }
    std::map<Keys, __int128> gpu_hours;
    for (const auto& [keys, v] : base_) gpu_hours[head(keys, labels_.size())] += v[kGpuHours];
    bool any = false;
    for_each_group([&](const Keys& g) {
      __int128 hours = gpu_hours.count(g) ? gpu_hours.at(g) : 0;
      if (hours == 0 && grouped()) return;
      any = true;
      Kpi k =
          make("resource_utilisation", "Resource utilisation", formula, "%", KpiKind::kPercent, g);
      k.inputs.push_back(ledger_input("provisioned GPU-hours", text(hours), "GPU-hours"));
      k.source = "GPU instance hours x GPUs of " + period_words();
      k.command = report_command({}, "gpu_hours");
      k.note = hours == 0
                   ? "no GPU-hours in " + period_words()
                   : "needs the GPU-hours the GPUs were busy (GPU telemetry, e.g. DCGM): give "
                     "gpu_busy_hours in business.yaml (--business)";
      report_.kpis.push_back(std::move(k));
    });
    if (!any) {
      Kpi k =
          make("resource_utilisation", "Resource utilisation", formula, "%", KpiKind::kPercent, {});
      k.note = "no GPU-hours in " + period_words();
      report_.kpis.push_back(std::move(k));
    }
    return {};
  }

  // ---- anomaly rate and anomalous spend ------------------------------------------------------

  Result<void> anomalies() {
    const std::string rate_formula = "days with a spend anomaly / days scored";
    const std::string spend_formula = "sum over anomalies of (actual - expected spend)";
    AnomalyDetector detect = context_.detect;
    if (!detect) {
      detect = [](std::span<const double> values, size_t first) {
        return detect_anomalies(values, DetectorOptions{}, first);
      };
    }
    SeriesSpec spec;
    spec.group_by = query_.group_by;
    // Recurring charges (monthly fees, support, tax) land on the first of a month and would
    // be a spike every month; they are left out, as `aifinops anomalies` leaves them out.
    spec.group_by.push_back(attribute_dimension(Attr::kChargeFrequency));
    spec.metric = ledger::Metric::kEffectiveCost;
    spec.grain = ledger::Grain::kDay;
    spec.to = query_.to;
    // Thirteen weeks of history before the period, as `aifinops anomalies --since` reads.
    if (query_.from) spec.from = floor_day(*query_.from) - kAnomalyHistoryDays * 86400;
    auto set = load_series(ledger_, spec);
    if (!set) return Unexpected{set.error()};
    const size_t n = labels_.size();
    std::map<Keys, std::vector<double>> series;
    size_t last_data = 0;
    for (const Series& s : set->series) {
      if (lower(s.keys[n]) == "recurring") continue;
      std::vector<double>& values = series[head(s.keys, n)];
      values.resize(set->buckets, 0.0);
      for (size_t i = 0; i < s.values.size(); ++i) {
        values[i] += s.values[i];
        if (s.values[i] != 0) last_data = std::max(last_data, i + 1);
      }
    }
    size_t period_start = 0;
    if (query_.from && *query_.from > set->start)
      period_start = (size_t)((*query_.from - set->start) / 86400);
    auto cents = [](double dollars) {
      return (__int128)std::llround(dollars * 100) * (kNanosPerUnit / 100);
    };
    std::vector<Kpi> spend_rows;
    for_each_group([&](const Keys& g) {
      Kpi rate = make("anomaly_rate", "Anomaly rate", rate_formula, "%", KpiKind::kPercent, g);
      Kpi spend =
          make("anomalous_spend", "Anomalous spend", spend_formula, "USD", KpiKind::kMoney, g);
      std::string source =
          "daily effective cost of " + period_words() +
          " without recurring charges, scored by the detector of `aifinops anomalies`";
      rate.source = spend.source = source;
      rate.command = spend.command =
          "aifinops anomalies" +
          (labels_.empty() ? std::string() : " --by " + shell_word(labels_[0])) +
          (query_.from ? " --since " + format_date(*query_.from) : std::string()) +
          (query_.to ? " --to " + format_date(*query_.to) : std::string());
      auto it = series.find(g);
      size_t first = period_start, end = last_data;
      if (it != series.end()) {
        const std::vector<double>& v = it->second;
        size_t first_spend = 0;
        while (first_spend < v.size() && v[first_spend] == 0) ++first_spend;
        first = std::max(first, first_spend + kDetectorWarmupDays);
      }
      if (it == series.end() || first >= end) {
        if (grouped() && it == series.end()) return;
        rate.note = spend.note = "no daily spend to score in " + period_words() +
                                 " (the detector needs three weeks of history first)";
        report_.kpis.push_back(std::move(rate));
        spend_rows.push_back(std::move(spend));
        return;
      }
      const std::vector<double>& v = it->second;
      std::vector<PointAnomaly> found = detect(std::span<const double>(v.data(), end), first);
      int64_t days = (int64_t)(end - first), anomalous = 0;
      double excess = 0, actual = 0, expected = 0, total = 0;
      for (size_t i = first; i < end; ++i) total += v[i];
      for (const PointAnomaly& a : found) {
        if (a.index < first || a.index >= end) continue;
        ++anomalous;
        excess += std::max(0.0, a.impact);
        actual += a.actual;
        expected += a.expected;
      }
      rate.inputs = {ledger_input("days with an anomaly", std::to_string(anomalous), "days"),
                     ledger_input("days scored", std::to_string(days), "days")};
      spend.inputs = {ledger_input("spend on anomalous days", text(cents(actual)), "USD"),
                      {"expected spend on those days", text(cents(expected)), "USD",
                       "anomaly detector baseline"},
                      ledger_input("spend on the days scored", text(cents(total)), "USD")};
      rate.value = percent_of(anomalous, days);
      rate.display = display_percent(*rate.value) + " (" + std::to_string(anomalous) + " of " +
                     std::to_string(days) + " days)";
      spend.value = cents(excess);
      spend.display = display_money(*spend.value);
      if (total > 0)
        spend.display +=
            " (" + display_percent(percent_of(*spend.value, cents(total))) + " of spend)";
      spend.note = "an estimate: actual minus the detector's expected spend, rounded to cents";
      report_.kpis.push_back(std::move(rate));
      spend_rows.push_back(std::move(spend));
    });
    for (Kpi& k : spend_rows) report_.kpis.push_back(std::move(k));
    return {};
  }

  // ---- project inputs: one query per question, every project at once --------------------------

  struct ProjectScopes {
    ScopeSet scopes;
    std::vector<const ProjectInputs*> projects;
  };

  Result<void> project_scopes() {
    if (projects_ready_) return {};
    projects_ready_ = true;
    if (context_.business == nullptr) return {};
    for (const ProjectInputs& p : context_.business->projects) {
      auto added = projects_.scopes.add(p.scope, p.origin, context_.tags);
      if (!added) return Unexpected{added.error()};
      projects_.projects.push_back(&p);
    }
    return {};
  }

  /// Cost of every project scope by month over all time up to the period's end, and by
  /// environment, so that ROI, break-even and the first production month share one query.
  Result<void> project_history() {
    if (history_ready_) return {};
    history_ready_ = true;
    if (projects_.projects.empty()) return {};
    std::vector<ledger::Dimension> dims = projects_.scopes.dimensions();
    dims.push_back(attribute_dimension(Attr::kEnvironment));
    dims.push_back(time_dimension(ledger::Grain::kMonth));
    auto sums =
        grouped_sums(ledger_, dims, std::nullopt, query_.to, {}, {ledger::Metric::kEffectiveCost});
    if (!sums) return Unexpected{sums.error()};
    history_ = std::move(*sums);
    return {};
  }

  /// Project i's cost by month ("2025-05" -> nanos), from the history query.
  std::map<std::string, __int128> project_months(size_t i) const {
    std::map<std::string, __int128> months;
    for (const auto& [keys, v] : history_)
      if (projects_.scopes.matches(i, keys, 0)) months[keys.back()] += v[0];
    return months;
  }

  bool in_period_month(const std::string& month) const {
    auto start = parse_timestamp(month + "-01");
    if (!start) return false;
    if (query_.from && *start < floor_month(*query_.from)) return false;
    if (query_.to && *start >= *query_.to) return false;
    return true;
  }

  // ---- ROI ---------------------------------------------------------------------------------

  Result<void> roi() {
    if (auto r = project_scopes(); !r) return r;
    const std::string formula = "(financial benefit - cost) / cost x 100%";
    std::vector<size_t> with_value;
    for (size_t i = 0; i < projects_.projects.size(); ++i)
      if (!projects_.projects[i]->value_by_month.empty()) with_value.push_back(i);
    if (with_value.empty()) {
      Kpi k = make("roi", "ROI", formula, "%", KpiKind::kPercent, {});
      k.note =
          "needs the value each project delivered: value_usd per month under projects: in "
          "business.yaml, or a "
          "CSV with project, month, value_usd (--business)";
      report_.kpis.push_back(std::move(k));
      return {};
    }
    // The period's cost comes from the month history when the period is whole months.
    bool whole_months = (!query_.from || floor_month(*query_.from) == *query_.from) &&
                        (!query_.to || floor_month(*query_.to) == *query_.to);
    GroupedSums period_sums;
    if (!whole_months) {
      std::vector<ledger::Dimension> dims = projects_.scopes.dimensions();
      auto sums =
          grouped_sums(ledger_, dims, query_.from, query_.to, {}, {ledger::Metric::kEffectiveCost});
      if (!sums) return Unexpected{sums.error()};
      period_sums = std::move(*sums);
    } else if (auto r = project_history(); !r) {
      return r;
    }
    __int128 all_benefit = 0, all_cost = 0;
    std::string all_projects;
    for (size_t i : with_value) {
      const ProjectInputs& p = *projects_.projects[i];
      __int128 benefit = 0, cost = 0;
      std::set<std::string> value_months, missing;
      for (const auto& [month, value] : p.value_by_month) {
        if (!in_period_month(format_month(month))) continue;
        benefit += value.nanos;
        value_months.insert(format_month(month));
      }
      if (whole_months) {
        for (const auto& [month, c] : project_months(i)) {
          if (!in_period_month(month)) continue;
          cost += c;
          if (c != 0 && !value_months.count(month)) missing.insert(month);
        }
      } else {
        for (const auto& [keys, v] : period_sums)
          if (projects_.scopes.matches(i, keys, 0)) cost += v[0];
      }
      Kpi k = make("roi", "ROI", formula, "%", KpiKind::kPercent, {});
      k.group.push_back({"project", p.name});
      k.inputs.push_back({"financial benefit", text(benefit), "USD", p.origin});
      k.inputs.push_back(ledger_input("cost", text(cost), "USD"));
      k.source = "value_usd of " + p.name + " (" + p.origin + ") and the cost of records with " +
                 scope_words(p.scope) + " in " + period_words();
      k.command = "aifinops report --by month" + filter_flags(projects_.scopes, i) + period_flags();
      if (cost > 0) {
        k.value = roi_percent(benefit, cost);
        k.display = display_percent(*k.value);
        all_benefit += benefit;
        all_cost += cost;
        all_projects += (all_projects.empty() ? "" : ", ") + p.name;
      } else {
        k.note = "no spend in the ledger for " + scope_words(p.scope) + " in " + period_words();
      }
      if (!missing.empty())
        k.note =
            "no value given for " + list_some(missing, 12) + " (months with spend): counted as 0";
      report_.kpis.push_back(std::move(k));
    }
    if (with_value.size() > 1 && all_cost > 0) {
      Kpi k = make("roi", "ROI", formula, "%", KpiKind::kPercent, {});
      k.group.push_back({"project", "(all with value)"});
      k.inputs.push_back({"financial benefit", text(all_benefit), "USD", "business inputs"});
      k.inputs.push_back(ledger_input("cost", text(all_cost), "USD"));
      k.value = roi_percent(all_benefit, all_cost);
      k.display = display_percent(*k.value);
      k.source = "the projects above: " + all_projects;
      k.note = "projects whose scopes overlap are counted once each";
      report_.kpis.push_back(std::move(k));
    }
    return {};
  }

  // ---- cost per API call --------------------------------------------------------------------

  Result<void> cost_per_api_call() {
    const size_t n = labels_.size();
    std::map<Keys, std::pair<__int128, __int128>> by_group;
    std::map<Keys, __int128> unpriced;
    std::set<std::string> counted;
    for (const auto& [keys, v] : base_) {
      if (v[kRequests] == 0) continue;
      if (served_at_no_recorded_cost(v)) {
        unpriced[head(keys, n)] += v[kRequests];
        continue;
      }
      auto& t = by_group[head(keys, n)];
      t.first += v[kCost];
      t.second += v[kRequests];
      counted.insert(describe_group({"service", "model"}, keys, n + 3));
    }
    for_each_group([&](const Keys& g) {
      auto [cost, calls] = by_group.count(g) ? by_group.at(g) : std::pair<__int128, __int128>{0, 0};
      const __int128 left_out = unpriced.count(g) ? unpriced.at(g) : 0;
      if (grouped() && calls == 0 && left_out == 0) return;
      Kpi k = make("cost_per_api_call", "Cost per API call", "API cost / API calls", "USD per call",
                   KpiKind::kMoney, g);
      k.inputs.push_back(ledger_input("API cost", text(cost), "USD"));
      k.inputs.push_back(ledger_input("API calls", count_text(calls), "calls"));
      if (left_out != 0)
        k.inputs.push_back(
            ledger_input("calls at no recorded cost (left out)", count_text(left_out), "calls"));
      k.source = "records of " + period_words() +
                 " that counted requests, by service and model (counted: " +
                 (counted.empty() ? std::string("none") : list_some(counted)) + ")";
      k.command = report_command(kBaseNames, "requests");
      if (calls > 0) {
        k.value = cost_per_unit(cost, calls);
        k.display = display_money(*k.value) + " per call";
      } else if (left_out != 0) {
        k.note = unpriced_note("requests");
      } else {
        k.note = "no request counts in " + period_words() +
                 ": cloud bills carry tokens and hours, not calls; requests come from the gateway "
                 "(aifinops gateway) and AI usage exports";
      }
      report_.kpis.push_back(std::move(k));
    });
    return {};
  }

  // ---- time to value -------------------------------------------------------------------------

  Result<void> time_to_value() {
    if (auto r = project_scopes(); !r) return r;
    const std::string formula = "date the monthly value reached its target - start date";
    bool any = false;
    for (size_t i = 0; i < projects_.projects.size(); ++i) {
      const ProjectInputs& p = *projects_.projects[i];
      if (!p.started) continue;
      any = true;
      Kpi k = make("time_to_value", "Time to value", formula, "days", KpiKind::kDays, {});
      k.group.push_back({"project", p.name});
      k.inputs.push_back({"started", format_date(*p.started), "date", p.origin});
      if (p.value_target_per_month)
        k.inputs.push_back(
            {"target value per month", text(p.value_target_per_month->nanos), "USD", p.origin});
      if (p.value_expected_by) {
        k.inputs.push_back(
            {"value expected by", format_date(*p.value_expected_by), "date", p.origin});
        k.inputs.push_back({"expected time to value",
                            std::to_string((*p.value_expected_by - *p.started) / 86400), "days",
                            p.origin});
      }
      std::optional<EpochSeconds> reached = p.value_reached;
      std::string how = "value_reached given";
      if (!reached) {
        for (const auto& [month, value] : p.value_by_month) {
          bool at_target =
              p.value_target_per_month ? value >= *p.value_target_per_month : value.nanos > 0;
          if (at_target && month >= floor_month(*p.started)) {
            reached = std::max(month, *p.started);
            how = p.value_target_per_month ? "the first month whose value_usd reached the target"
                                           : "the first month with value_usd (no target given)";
            break;
          }
        }
      }
      k.source = p.origin + ": " + how;
      if (!p.value_by_month.empty()) {
        const auto& [last_month, last_value] = *p.value_by_month.rbegin();
        k.inputs.push_back(
            {"value in " + format_month(last_month), text(last_value.nanos), "USD", p.origin});
      }
      if (reached) {
        k.inputs.push_back({"value reached", format_date(*reached), "date", p.origin});
        int64_t days = (*reached - *p.started) / 86400;
        k.value = (__int128)days * kNanosPerUnit;
        k.display = display_days(days, calendar_months_between(*p.started, *reached));
      } else {
        k.note = p.value_by_month.empty()
                     ? "needs value_usd per month (or value_reached) for the project"
                     : "the monthly value has not reached the target yet";
      }
      report_.kpis.push_back(std::move(k));
    }
    for (size_t i = 0; i < projects_.projects.size(); ++i) {
      const ProjectInputs& p = *projects_.projects[i];
      if (!p.alternative_cost_per_day) continue;
      any = true;
      if (auto r = break_even(i); !r) return r;
    }
    if (!any) {
      Kpi k = make("time_to_value", "Time to value", formula, "days", KpiKind::kDays, {});
      k.note =
          "needs started: and the monthly value (value_usd, value_target_usd_per_month) of "
          "projects in "
          "business.yaml (--business)";
      report_.kpis.push_back(std::move(k));
    }
    return {};
  }

  /// The paper's break-even form of time to value: what the AI service cost, in days of
  /// what the same work costs without it.
  Result<void> break_even(size_t i) {
    if (auto r = project_history(); !r) return r;
    const ProjectInputs& p = *projects_.projects[i];
    __int128 cost = 0;
    for (const auto& [month, c] : project_months(i)) cost += c;
    Kpi k =
        make("time_to_value_break_even", "Time to value (break-even)",
             "cost of the AI service / daily cost of the alternative", "days", KpiKind::kDays, {});
    k.group.push_back({"project", p.name});
    k.inputs.push_back(ledger_input("AI service cost to date", text(cost), "USD"));
    k.inputs.push_back(
        {"alternative cost per day", text(p.alternative_cost_per_day->nanos), "USD", p.origin});
    k.source = "records with " + scope_words(p.scope) + " up to " +
               (query_.to ? format_date(*query_.to) + " (exclusive)"
                          : std::string("the end of the ledger"));
    k.command = "aifinops report --by month" + filter_flags(projects_.scopes, i) +
                (query_.to ? " --to " + format_date(*query_.to) : std::string());
    __int128 days = mul_div_round(cost, kNanosPerUnit, p.alternative_cost_per_day->nanos);
    k.value = days;
    k.display = trim_zeros(format_decimal_fixed(days, 1), 0) + " days";
    k.note =
        "the paper's formula, reading \"total value of the AI service\" as what it cost: the days "
        "of "
        "the alternative's cost that repay it";
    report_.kpis.push_back(std::move(k));
    return {};
  }

  // ---- time to first prompt ------------------------------------------------------------------

  Result<void> time_to_first_prompt() {
    if (auto r = project_scopes(); !r) return r;
    const std::string formula = "deploy date - development start date";
    std::vector<size_t> started;
    for (size_t i = 0; i < projects_.projects.size(); ++i)
      if (projects_.projects[i]->started) started.push_back(i);
    if (started.empty()) {
      Kpi k =
          make("time_to_first_prompt", "Time to first prompt", formula, "days", KpiKind::kDays, {});
      k.note =
          "needs started: (and deployed:, or production spend in the ledger) of projects in "
          "business.yaml "
          "(--business)";
      report_.kpis.push_back(std::move(k));
      return {};
    }
    // Deploy dates the business inputs leave out: the first day with production spend.
    std::map<size_t, EpochSeconds> first_production;
    bool need_ledger = false;
    for (size_t i : started) need_ledger |= !projects_.projects[i]->deployed;
    if (need_ledger) {
      if (auto r = project_history(); !r) return r;
      const size_t env = projects_.scopes.size();
      std::map<size_t, std::string> first_month;
      for (size_t i : started) {
        if (projects_.projects[i]->deployed) continue;
        for (const auto& [keys, v] : history_) {
          if (v[0] == 0 || !lower(keys[env]).starts_with("prod") ||
              !projects_.scopes.matches(i, keys, 0))
            continue;
          if (!first_month.count(i) || keys.back() < first_month[i]) first_month[i] = keys.back();
        }
      }
      if (!first_month.empty()) {
        std::string lo = first_month.begin()->second, hi = lo;
        for (const auto& [i, m] : first_month) {
          lo = std::min(lo, m);
          hi = std::max(hi, m);
        }
        std::vector<ledger::Dimension> dims = projects_.scopes.dimensions();
        dims.push_back(attribute_dimension(Attr::kEnvironment));
        dims.push_back(time_dimension(ledger::Grain::kDay));
        EpochSeconds from = *parse_timestamp(lo + "-01"),
                     to = next_month(*parse_timestamp(hi + "-01"));
        auto days = grouped_sums(ledger_, dims, from, to, {}, {ledger::Metric::kEffectiveCost});
        if (!days) return Unexpected{days.error()};
        for (const auto& [i, month] : first_month) {
          for (const auto& [keys, v] : *days) {
            if (v[0] == 0 || !lower(keys[env]).starts_with("prod") ||
                !projects_.scopes.matches(i, keys, 0))
              continue;
            auto day = parse_timestamp(keys.back());
            if (day && (!first_production.count(i) || *day < first_production[i]))
              first_production[i] = *day;
          }
        }
      }
    }
    for (size_t i : started) {
      const ProjectInputs& p = *projects_.projects[i];
      Kpi k =
          make("time_to_first_prompt", "Time to first prompt", formula, "days", KpiKind::kDays, {});
      k.group.push_back({"project", p.name});
      k.inputs.push_back({"development started", format_date(*p.started), "date", p.origin});
      std::optional<EpochSeconds> deployed = p.deployed;
      if (deployed) {
        k.inputs.push_back({"deployed", format_date(*deployed), "date", p.origin});
        k.source = p.origin;
      } else if (first_production.count(i)) {
        deployed = first_production[i];
        k.inputs.push_back(ledger_input("deployed (first day with production spend)",
                                        format_date(*deployed), "date"));
        k.source = p.origin + " and the first day with spend in a production environment for " +
                   scope_words(p.scope);
        k.command = "aifinops report --by environment,month" + filter_flags(projects_.scopes, i);
      }
      if (deployed && *deployed >= *p.started) {
        int64_t days = (*deployed - *p.started) / 86400;
        k.value = (__int128)days * kNanosPerUnit;
        k.display = display_days(days, calendar_months_between(*p.started, *deployed));
      } else if (deployed) {
        k.note = "production spend starts before started: (" + format_date(*deployed) +
                 "); give deployed:";
      } else {
        k.note =
            "no deployed: date and no production spend in the ledger for " + scope_words(p.scope);
      }
      report_.kpis.push_back(std::move(k));
    }
    return {};
  }

  // ---- model-selection quality gap -----------------------------------------------------------

  Result<void> model_quality_gap() {
    const BusinessInputs* b = context_.business;
    const std::string formula =
        "quality score of the model used - quality score the workload needs";
    if (b == nullptr || b->workloads.empty()) {
      Kpi k = make("model_quality_gap", "Model-selection quality gap", formula, "points",
                   KpiKind::kPoints, {});
      k.note =
          "needs the required quality of each workload (workloads:) and the models' scores "
          "(model_quality:) "
          "in business.yaml (--business)";
      report_.kpis.push_back(std::move(k));
      return {};
    }
    ScopeSet scopes;
    for (const WorkloadQuality& w : b->workloads) {
      auto added = scopes.add(w.scope, w.origin, context_.tags);
      if (!added) return Unexpected{added.error()};
    }
    std::vector<ledger::Dimension> dims = scopes.dimensions();
    dims.push_back(attribute_dimension(Attr::kModel));
    auto sums = grouped_sums(ledger_, dims, query_.from, query_.to, {},
                             {ledger::Metric::kEffectiveCost, ledger::Metric::kInputTokens,
                              ledger::Metric::kCachedTokens, ledger::Metric::kOutputTokens});
    if (!sums) return Unexpected{sums.error()};
    auto catalog = ledger_.load_catalog();
    if (!catalog) return Unexpected{catalog.error()};
    // Prices in effect at the end of the period (or now: the latest version).
    EpochSeconds price_time =
        query_.to ? *query_.to - 1 : (EpochSeconds)4'102'444'800;  // 2100-01-01
    auto score_of = [&](const std::string& model) -> std::optional<Decimal> {
      auto it = b->model_quality.find(model);
      if (it != b->model_quality.end()) return it->second;
      for (const auto& [name, score] : b->model_quality)
        if (lower(name) == lower(model)) return score;
      return std::nullopt;
    };
    for (size_t w = 0; w < b->workloads.size(); ++w) {
      const WorkloadQuality& wl = b->workloads[w];
      struct Used {
        std::string model;
        __int128 cost = 0;
        pricing::TokenUsage tokens;
      };
      std::map<std::string, Used> used;
      for (const auto& [keys, v] : *sums) {
        if (!scopes.matches(w, keys, 0) || (v[1] == 0 && v[3] == 0)) continue;
        Used& u = used[keys.back()];
        u.model = keys.back();
        u.cost += v[0];
        u.tokens.input += (int64_t)v[1];
        u.tokens.cached_input += (int64_t)v[2];
        u.tokens.output += (int64_t)v[3];
      }
      Kpi k = make("model_quality_gap", "Model-selection quality gap", formula, "points",
                   KpiKind::kPoints, {});
      k.group.push_back({"workload", wl.name});
      k.inputs.push_back({"required " + b->quality_benchmark, text(wl.required_quality.nanos),
                          "points", wl.origin});
      k.source = "token records with " + scope_words(wl.scope) + " in " + period_words() +
                 ", by model; scores from " +
                 (b->files.empty() ? std::string("business inputs") : b->files.front());
      k.command = "aifinops report --by model" + filter_flags(scopes, w) + period_flags();
      if (used.empty()) {
        k.note =
            "no token usage in the ledger for " + scope_words(wl.scope) + " in " + period_words();
        report_.kpis.push_back(std::move(k));
        continue;
      }
      // Cost-weighted gap over the models with a score.
      __int128 weighted = 0, weight = 0, spend = 0;
      std::string unscored, mode;
      __int128 largest = -1;
      for (auto it = used.begin(); it != used.end();) {
        const auto& [model, u] = *it;
        auto score = score_of(model);
        if (!score) {
          unscored += (unscored.empty() ? "" : ", ") + model;
          it = used.erase(it);
          continue;
        }
        ++it;
        spend += u.cost;
        k.inputs.push_back(ledger_input("spend on " + model, text(u.cost), "USD"));
        k.inputs.push_back(
            {b->quality_benchmark + " of " + model, text(score->nanos), "points", "model_quality"});
        __int128 w_cost = std::max<__int128>(u.cost, 0);
        weighted += (__int128)(score->nanos - wl.required_quality.nanos) * w_cost;
        weight += w_cost;
        if (u.cost > largest) {
          largest = u.cost;
          if (const pricing::ModelPrice* price = catalog->find_model(model, price_time))
            mode = price->mode;
        }
      }
      if (weight == 0) {
        k.note = unscored.empty() ? "no spend on the workload's models"
                                  : "no " + b->quality_benchmark + " score for " + unscored +
                                        " (model_quality:)";
        report_.kpis.push_back(std::move(k));
        continue;
      }
      k.value = mul_div_round(weighted, 1, weight);
      k.display = display_points(*k.value);
      // The paper's last step: what the cheapest model that meets the requirement would cost.
      std::string best_model;
      __int128 best_cost = -1;
      for (const auto& [candidate, score] : b->model_quality) {
        if (score < wl.required_quality) continue;
        const pricing::ModelPrice* price = catalog->find_model(candidate, price_time);
        if (price == nullptr || (!mode.empty() && !price->mode.empty() &&
                                 mode_family(price->mode) != mode_family(mode)))
          continue;
        pricing::ModelPrice base = *price;
        base.tiers
            .clear();  // the tokens are summed over many requests: no per-request tier applies
        __int128 cost = 0;
        for (const auto& [model, u] : used) cost += token_cost(base, u.tokens).nanos;
        if (best_cost < 0 || cost < best_cost) {
          best_cost = cost;
          best_model = candidate;
        }
      }
      if (best_cost >= 0) {
        k.inputs.push_back({"cheapest model meeting the requirement", best_model, "model",
                            "model_quality and the price catalog"});
        k.inputs.push_back({"cost with " + best_model, text(best_cost), "USD", "price catalog"});
        k.inputs.push_back(
            {"cost difference", text(spend - best_cost), "USD", "ledger and price catalog"});
        k.display += "; " + display_money(spend) + " spent, " + display_money(best_cost) +
                     " with " + best_model;
      }
      if (!unscored.empty())
        k.note = "no " + b->quality_benchmark + " score for " + unscored + " (left out of the gap)";
      report_.kpis.push_back(std::move(k));
    }
    return {};
  }

  ledger::Ledger& ledger_;
  const KpiQuery& query_;
  const KpiContext& context_;
  std::vector<std::string> labels_;
  bool whole_ledger_ = false;  // for_each_group's fallback row is running
  /// The shared grouping: --by keys, workload, usage_type, operation, service, model ->
  /// cost, requests, tokens, GPU-hours (indexes kCost ... kGpuHours).
  GroupedSums base_;
  static constexpr size_t kCost = 0, kRequests = 1, kTokens = 2, kGpuHours = 3;
  /// Requests whose own records cost nothing: a self-hosted model's calls (their cost is the
  /// GPU bill, which counts no requests). Dividing nothing by them would claim free
  /// inference, so the per-request KPIs leave them out and say so.
  template <typename Values>
  static bool served_at_no_recorded_cost(const Values& v) {
    return v[kRequests] != 0 && v[kCost] == 0;
  }
  /// The shared grouping's dimensions after --by, as `aifinops report --by` spells them.
  inline static const std::vector<std::string> kBaseNames = {"workload", "usage_type", "operation",
                                                             "service", "model"};
  std::vector<std::pair<__int128, Keys>> groups_;  // --by groups, largest spend first
  std::map<Keys, __int128> training_;              // training cost by --by group
  std::string training_source_;
  ProjectScopes projects_;
  bool projects_ready_ = false, history_ready_ = false;
  GroupedSums history_;
  KpiReport report_;
};

const char* kind_name(KpiKind kind) {
  switch (kind) {
    case KpiKind::kMoney:
      return "money";
    case KpiKind::kPercent:
      return "percent";
    case KpiKind::kDays:
      return "days";
    case KpiKind::kPoints:
      return "points";
  }
  return "";
}

void json_field(std::string& out, std::string_view key, std::string_view value, bool comma = true) {
  if (comma) out += ',';
  append_json_string(out, key);
  out += ':';
  append_json_string(out, value);
}

}  // namespace

Result<Period> parse_period(std::string_view text) {
  auto bad = [&] {
    return make_error(
        ErrorCode::kInvalidArgument,
        "--period " + std::string(text) +
            ": expected a month (2025-10), a quarter (2025-Q3), a year (2025), a range of dates "
            "FROM..TO (2025-06-01..2025-07-01, TO exclusive) or all");
  };
  Period p;
  if (text == "all" || text.empty()) return p;
  auto digits = [](std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (size_t dots = text.find(".."); dots != std::string_view::npos) {
    TimestampStyle from_style = TimestampStyle::kRfc3339, to_style = TimestampStyle::kRfc3339;
    auto from = parse_timestamp(text.substr(0, dots), &from_style);
    auto to = parse_timestamp(text.substr(dots + 2), &to_style);
    if (!from || !to || *to <= *from || from_style != TimestampStyle::kDateOnly ||
        to_style != TimestampStyle::kDateOnly)
      return bad();
    p.from = *from;
    p.to = *to;
    return p;
  }
  if (text.size() == 4 && digits(text)) {
    auto from = parse_timestamp(std::string(text) + "-01-01");
    if (!from) return bad();
    p.from = *from;
    p.to = *parse_timestamp(std::to_string(std::stoi(std::string(text)) + 1) + "-01-01");
    return p;
  }
  if (text.size() == 7 && digits(text.substr(0, 4)) && text[4] == '-' &&
      (text[5] == 'Q' || text[5] == 'q') && text[6] >= '1' && text[6] <= '4') {
    int quarter = text[6] - '0';
    auto from = parse_timestamp(std::string(text.substr(0, 4)) + "-" + (quarter < 4 ? "0" : "") +
                                std::to_string(quarter * 3 - 2) + "-01");
    if (!from) return bad();
    p.from = *from;
    EpochSeconds to = *from;
    for (int i = 0; i < 3; ++i) to = next_month(to);
    p.to = to;
    return p;
  }
  if (text.size() == 7 && digits(text.substr(0, 4)) && text[4] == '-' && digits(text.substr(5))) {
    auto from = parse_timestamp(std::string(text) + "-01");
    if (!from) return bad();
    p.from = *from;
    p.to = next_month(*from);
    return p;
  }
  return bad();
}

Result<KpiReport> compute_kpis(ledger::Ledger& ledger, const KpiQuery& query,
                               const KpiContext& context) {
  return KpiBuilder(ledger, query, context).run();
}

namespace {

/// The ledger as the months of a trend read it: a query over exactly one month of the trend
/// is answered from one query grouped by month over the whole trend, made the first time
/// that question (grouping, filters, metric) is asked for any month; every other query
/// passes through. Sums over a month are the month's rows of the grouped query (the month
/// rollup answers both), so the answers are the same. Ratios and maxima pass through:
/// their totals cannot be put together from the rows.
class MonthSplitLedger final : public ledger::Ledger {
 public:
  MonthSplitLedger(ledger::Ledger& inner, EpochSeconds from, EpochSeconds to)
      : inner_(inner), from_(from), to_(to) {}

  size_t grouped_queries() const { return by_question_.size(); }

  Result<ledger::QueryResult> query(const ledger::QuerySpec& spec) override {
    const bool one_month = spec.from && spec.to && *spec.from >= from_ && *spec.to <= to_ &&
                           floor_month(*spec.from) == *spec.from &&
                           next_month(*spec.from) == *spec.to;
    const bool splittable =
        one_month && ledger::metric_is_additive(spec.metric) &&
        std::none_of(spec.group_by.begin(), spec.group_by.end(), [](const ledger::Dimension& d) {
          return d.kind == ledger::Dimension::Kind::kTime;
        });
    if (!splittable) return inner_.query(spec);
    const std::string question = question_key(spec);
    auto it = by_question_.find(question);
    if (it == by_question_.end()) {
      ledger::QuerySpec grouped = spec;
      grouped.from = from_;
      grouped.to = to_;
      ledger::Dimension month;
      month.kind = ledger::Dimension::Kind::kTime;
      month.grain = ledger::Grain::kMonth;
      month.label = "month";
      grouped.group_by.insert(grouped.group_by.begin(), month);
      auto result = inner_.query(grouped);
      if (!result) return Unexpected{result.error()};
      std::map<std::string, ledger::QueryResult> months;
      for (ledger::QueryRow& row : result->rows) {
        ledger::QueryResult& m = months[row.keys[0]];
        row.keys.erase(row.keys.begin());
        m.total += row.value;
        m.rows.push_back(std::move(row));  // in the grouped order: value, then keys
      }
      for (auto& [key, m] : months) m.source_table = result->source_table;
      it = by_question_.emplace(question, std::move(months)).first;
    }
    auto month = it->second.find(format_month(*spec.from));
    if (month == it->second.end()) return ledger::QueryResult{};
    return month->second;
  }

  // Everything else is the inner ledger's.
  Result<int64_t> begin_batch(const ledger::BatchInfo& info) override {
    return inner_.begin_batch(info);
  }
  Result<int64_t> intern_attributes(const AttributeViews& a,
                                    const ledger::Fingerprint& f) override {
    return inner_.intern_attributes(a, f);
  }
  Result<void> append(int64_t id, const UsageFacts& f, const Lineage& l) override {
    return inner_.append(id, f, l);
  }
  Result<void> quarantine(int64_t batch, const ledger::QuarantinedRow& row) override {
    return inner_.quarantine(batch, row);
  }
  Result<void> commit_batch(const ledger::BatchSummary& s) override {
    return inner_.commit_batch(s);
  }
  void abort_batch() override { inner_.abort_batch(); }
  Result<std::optional<ledger::BatchSummary>> find_batch_by_fingerprint(
      const ledger::Fingerprint& f) override {
    return inner_.find_batch_by_fingerprint(f);
  }
  Result<std::vector<ledger::BatchSummary>> find_batches_by_path(const std::string& p) override {
    return inner_.find_batches_by_path(p);
  }
  Result<void> remove_batch(int64_t id) override { return inner_.remove_batch(id); }
  Result<std::vector<ledger::QuarantinedRow>> quarantined_rows(int64_t id) override {
    return inner_.quarantined_rows(id);
  }
  Result<std::vector<ledger::BatchSummary>> batches() override { return inner_.batches(); }
  Result<bool> note_once(std::string_view kind, std::string_view key,
                         std::string_view detail) override {
    return inner_.note_once(kind, key, detail);
  }
  Result<void> note(std::string_view kind, std::string_view key, std::string_view detail) override {
    return inner_.note(kind, key, detail);
  }
  Result<std::vector<ledger::Note>> notes(std::string_view kind) override {
    return inner_.notes(kind);
  }
  Result<int64_t> store_prices(std::vector<pricing::ModelPrice>& m,
                               std::vector<pricing::GpuInstancePrice>& g) override {
    return inner_.store_prices(m, g);
  }
  Result<pricing::Catalog> load_catalog() override { return inner_.load_catalog(); }

 private:
  static std::string question_key(const ledger::QuerySpec& spec) {
    std::string key = std::string(ledger::metric_name(spec.metric));
    auto dimension = [&](const ledger::Dimension& d) {
      key += '\x1e' + std::to_string((int)d.kind) + ':' + std::to_string((int)d.attribute);
      for (const std::string& t : d.tag_keys) key += '\x1f' + t;
    };
    for (const ledger::Dimension& d : spec.group_by) dimension(d);
    key += '\x1d';
    for (const ledger::Filter& f : spec.filters) {
      dimension(f.dimension);
      key += '=' + f.value;
    }
    return key;
  }

  ledger::Ledger& inner_;
  EpochSeconds from_, to_;
  std::map<std::string, std::map<std::string, ledger::QueryResult>> by_question_;
};

}  // namespace

Result<std::vector<KpiTrendMonth>> compute_kpi_trend(ledger::Ledger& ledger, const KpiQuery& query,
                                                     const KpiContext& context, int months) {
  if (!query.to)
    return make_error(ErrorCode::kInvalidArgument,
                      "--trend needs a period with an end (--period 2025-10)");
  if (months < 1 || months > 36)
    return make_error(ErrorCode::kInvalidArgument,
                      "--trend " + std::to_string(months) + ": expected 1 to 36 months");
  const EpochSeconds last = floor_month(*query.to - 1);
  EpochSeconds first = last;
  for (int i = 1; i < months; ++i) first = floor_month(first - 1);
  MonthSplitLedger split(ledger, first, next_month(last));
  std::vector<KpiTrendMonth> trend;
  for (EpochSeconds m = first; m <= last; m = next_month(m)) {
    KpiQuery q = query;
    q.from = m;
    q.to = next_month(m);
    auto report = compute_kpis(split, q, context);
    if (!report) return Unexpected{report.error()};
    trend.push_back({m, std::move(*report)});
  }
  return trend;
}

std::string kpi_trend_json(const std::vector<KpiTrendMonth>& trend) {
  std::string out = "[";
  for (size_t i = 0; i < trend.size(); ++i) {
    out += i ? ",{\"month\":\"" : "{\"month\":\"";
    out += format_month(trend[i].month) + "\",\"kpis\":[";
    const std::vector<Kpi>& kpis = trend[i].report.kpis;
    for (size_t k = 0; k < kpis.size(); ++k) {
      out += k ? ",{" : "{";
      json_field(out, "id", kpis[k].id, false);
      out += ",\"group\":{";
      for (size_t g = 0; g < kpis[k].group.size(); ++g)
        json_field(out, kpis[k].group[g].first, kpis[k].group[g].second, g > 0);
      out += "},\"value\":";
      out += kpis[k].value ? "\"" + format_decimal(*kpis[k].value) + "\"" : std::string("null");
      out += '}';
    }
    out += "]}";
  }
  return out + "]";
}

std::string kpi_report_json(const KpiReport& report) {
  std::string out = "{\"period\":{\"from\":";
  out += report.from ? "\"" + format_date(*report.from) + "\"" : std::string("null");
  out += ",\"to\":";
  out += report.to ? "\"" + format_date(*report.to) + "\"" : std::string("null");
  out += "},\"by\":[";
  for (size_t i = 0; i < report.group_by.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, report.group_by[i]);
  }
  out += "],\"business_files\":[";
  for (size_t i = 0; i < report.business_files.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, report.business_files[i]);
  }
  out += "],\"kpis\":[";
  for (size_t i = 0; i < report.kpis.size(); ++i) {
    const Kpi& k = report.kpis[i];
    if (i) out += ',';
    out += '{';
    json_field(out, "id", k.id, false);
    json_field(out, "name", k.name);
    json_field(out, "formula", k.formula);
    json_field(out, "unit", k.unit);
    json_field(out, "kind", kind_name(k.kind));
    out += ",\"group\":{";
    for (size_t g = 0; g < k.group.size(); ++g)
      json_field(out, k.group[g].first, k.group[g].second, g > 0);
    out += "},\"value\":";
    out += k.value ? "\"" + format_decimal(*k.value) + "\"" : std::string("null");
    json_field(out, "display", k.display);
    out += ",\"inputs\":[";
    for (size_t n = 0; n < k.inputs.size(); ++n) {
      const KpiInput& in = k.inputs[n];
      out += n ? ",{" : "{";
      json_field(out, "name", in.name, false);
      json_field(out, "value", in.value);
      json_field(out, "unit", in.unit);
      json_field(out, "source", in.source);
      out += '}';
    }
    out += ']';
    json_field(out, "source", k.source);
    json_field(out, "command", k.command);
    json_field(out, "note", k.note);
    out += '}';
  }
  out += "]}\n";
  return out;
}

}  // namespace aifinops::analyze
