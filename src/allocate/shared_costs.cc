#include "allocate/shared_costs.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <tuple>
#include <unordered_map>

namespace aifinops::allocate {
namespace {

constexpr std::string_view kNone = "(none)";

/// The dimensions a split needs (the request's, every rule's, workload and month), each
/// once, so that one grouped query per metric answers everything.
class DimensionUnion {
 public:
  size_t add(const ledger::Dimension& d) {
    for (size_t i = 0; i < dims_.size(); ++i)
      if (same_dimension(dims_[i], d)) return i;
    dims_.push_back(d);
    return dims_.size() - 1;
  }
  const std::vector<ledger::Dimension>& dims() const { return dims_; }

 private:
  std::vector<ledger::Dimension> dims_;
};

/// One group of the ledger over the union of dimensions, with its sums.
struct Cell {
  std::vector<std::string> keys;
  std::vector<__int128> sums;      // per queried metric
  int rule = -1;                   // the first rule whose match selects the cell
  bool moved = false;              // its cost went to the rule's receivers
  std::vector<__int128> received;  // per rule
};

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) {
    out += k;
    out += '\x1f';
  }
  return out;
}

class CellTable {
 public:
  CellTable(size_t metrics, size_t rules) : metrics_(metrics), rules_(rules) {}

  size_t find_or_add(std::vector<std::string> keys) {
    auto [it, inserted] = index_.try_emplace(join_keys(keys), cells.size());
    if (inserted) {
      Cell c;
      c.keys = std::move(keys);
      c.sums.assign(metrics_, 0);
      c.received.assign(rules_, 0);
      cells.push_back(std::move(c));
    }
    return it->second;
  }

  std::vector<Cell> cells;

 private:
  size_t metrics_, rules_;
  std::unordered_map<std::string, size_t> index_;
};

/// A rule with its dimensions turned into positions in the union.
struct PreparedRule {
  std::vector<std::pair<size_t, std::string>> match;
  size_t by = 0;
  size_t driver = 0;  // metric index, for kProportional
};

/// Shared cells of one rule that are split together: one time bucket, one workload.
struct Partition {
  std::string time_key;
  std::string workload;
  std::vector<size_t> cells;
  __int128 amount = 0;
};

bool matches_filter(const std::string& key, const std::string& wanted) {
  if (wanted == kNone || wanted == kUnallocated) return key == kNone;
  return key == wanted;
}

/// Weights for spreading a receiver's part over its groups: the given sums, or 1 each when
/// none is positive.
std::vector<__int128> spread_weights(const std::vector<Cell>& cells, const std::vector<size_t>& ids,
                                     size_t metric) {
  std::vector<__int128> w;
  w.reserve(ids.size());
  bool any = false;
  for (size_t id : ids) {
    __int128 v = std::max<__int128>(cells[id].sums[metric], 0);
    any |= v > 0;
    w.push_back(v);
  }
  if (!any) std::fill(w.begin(), w.end(), 1);
  return w;
}

}  // namespace

const char* split_method_name(SplitMethod m) {
  switch (m) {
    case SplitMethod::kEven:
      return "even";
    case SplitMethod::kProportional:
      return "proportional";
    case SplitMethod::kFixed:
      return "fixed";
  }
  return "";
}

const char* split_driver_name(SplitDriver d) {
  switch (d) {
    case SplitDriver::kEffectiveCost:
      return "effective_cost";
    case SplitDriver::kTokens:
      return "tokens";
    case SplitDriver::kGpuHours:
      return "gpu_hours";
    case SplitDriver::kRequests:
      return "requests";
  }
  return "";
}

ledger::Metric driver_metric(SplitDriver d) {
  switch (d) {
    case SplitDriver::kEffectiveCost:
      return ledger::Metric::kEffectiveCost;
    case SplitDriver::kTokens:
      return ledger::Metric::kTokens;
    case SplitDriver::kGpuHours:
      return ledger::Metric::kGpuHours;
    case SplitDriver::kRequests:
      return ledger::Metric::kRequests;
  }
  return ledger::Metric::kEffectiveCost;
}

std::vector<__int128> split_exact(__int128 amount, const std::vector<__int128>& weights) {
  std::vector<__int128> parts(weights.size(), 0);
  std::vector<__int128> w(weights.size());
  __int128 sum = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    w[i] = std::max<__int128>(weights[i], 0);
    sum += w[i];
  }
  if (sum <= 0) return parts;
  // Keep rest * w[i] (< sum^2) inside 128 bits. Halving every weight keeps the largest
  // one positive, so the sum stays positive.
  constexpr __int128 kLimit = static_cast<__int128>(1) << 62;
  while (sum >= kLimit) {
    sum = 0;
    for (__int128& x : w) {
      x >>= 1;
      sum += x;
    }
  }
  bool negative = amount < 0;
  __int128 a = negative ? -amount : amount;
  __int128 whole = a / sum, rest = a % sum;
  std::vector<__int128> remainder(w.size());
  __int128 given = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    __int128 p = rest * w[i];
    parts[i] = whole * w[i] + p / sum;
    remainder[i] = p % sum;
    given += parts[i];
  }
  // What is left is the sum of the fractional parts: fewer nano-units than parts.
  std::vector<size_t> order(w.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return remainder[x] > remainder[y]; });
  for (__int128 left = a - given, k = 0; k < left; ++k) parts[order[(size_t)k]] += 1;
  if (negative)
    for (__int128& p : parts) p = -p;
  return parts;
}

Result<ledger::Dimension> resolve_dimension(const TagPolicy& policy, std::string_view name) {
  if (const CustomDimension* custom = policy.find_custom(name)) {
    ledger::Dimension d;
    d.kind = ledger::Dimension::Kind::kTag;
    d.tag_keys = custom->aliases;
    d.label = std::string(name);
    return d;
  }
  return ledger::parse_dimension(name);
}

bool same_dimension(const ledger::Dimension& a, const ledger::Dimension& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case ledger::Dimension::Kind::kAttribute:
      return a.attribute == b.attribute;
    case ledger::Dimension::Kind::kTag:
      return a.tag_keys == b.tag_keys;
    case ledger::Dimension::Kind::kTime:
      return a.grain == b.grain;
  }
  return false;
}

bool is_allocation_dimension(const ledger::Dimension& d) {
  if (d.kind == ledger::Dimension::Kind::kTag) return true;
  return d.kind == ledger::Dimension::Kind::kAttribute && d.attribute >= kFirstDimension &&
         d.attribute <= kLastDimension;
}

__int128 AllocatedRow::total() const {
  __int128 t = direct;
  for (__int128 s : shared) t += s;
  return t;
}

Result<Allocation> allocate_costs(ledger::Ledger& ledger, const TagPolicy& policy,
                                  const std::vector<SharedCostRule>& rules,
                                  const AllocationRequest& request) {
  if (!ledger::metric_is_money(request.metric))
    return make_error(ErrorCode::kInvalidArgument,
                      "only money is split by shared-cost rules: use effective_cost, billed_cost, "
                      "list_cost or contracted_cost instead of " +
                          std::string(ledger::metric_name(request.metric)));
  DimensionUnion dims;
  std::vector<size_t> group_index, filter_index;
  for (const ledger::Dimension& d : request.group_by) group_index.push_back(dims.add(d));
  for (const ledger::Filter& f : request.filters) {
    if (f.dimension.kind == ledger::Dimension::Kind::kTime)
      return make_error(ErrorCode::kInvalidArgument, "filter on time: use --from and --to instead");
    filter_index.push_back(dims.add(f.dimension));
  }
  // Metrics: the money being split first, then drivers and usage, each queried once.
  std::vector<ledger::Metric> metrics{request.metric};
  auto metric_index = [&](ledger::Metric m) {
    auto it = std::find(metrics.begin(), metrics.end(), m);
    if (it != metrics.end()) return (size_t)(it - metrics.begin());
    metrics.push_back(m);
    return metrics.size() - 1;
  };
  std::vector<PreparedRule> prepared;
  for (const SharedCostRule& rule : rules) {
    PreparedRule p;
    for (const auto& [name, value] : rule.match) {
      auto d = resolve_dimension(policy, name);
      if (!d)
        return make_error(
            ErrorCode::kInvalidArgument,
            "shared_costs rule \"" + rule.name + "\": match." + name + ": " + d.error().message);
      p.match.emplace_back(dims.add(*d), value);
    }
    auto by = resolve_dimension(policy, rule.by);
    if (!by)
      return make_error(ErrorCode::kInvalidArgument,
                        "shared_costs rule \"" + rule.name + "\": by: " + by.error().message);
    if (by->kind == ledger::Dimension::Kind::kTime)
      return make_error(ErrorCode::kInvalidArgument,
                        "shared_costs rule \"" + rule.name + "\": by: " + rule.by +
                            " is a time grain; split over a dimension such as team or project");
    p.by = dims.add(*by);
    if (rule.split == SplitMethod::kProportional)
      p.driver = metric_index(driver_metric(rule.driver));
    prepared.push_back(std::move(p));
  }
  std::vector<size_t> usage_index;
  for (ledger::Metric m : request.usage_metrics) usage_index.push_back(metric_index(m));
  ledger::Dimension workload_dim;
  workload_dim.attribute = Attr::kWorkload;
  workload_dim.label = "workload";
  size_t workload = dims.add(workload_dim);
  auto month = ledger::parse_dimension("month");
  if (!month) return Unexpected{month.error()};
  dims.add(*month);  // splits never mix months
  std::vector<size_t> time_index;
  for (size_t i = 0; i < dims.dims().size(); ++i)
    if (dims.dims()[i].kind == ledger::Dimension::Kind::kTime) time_index.push_back(i);

  // The ledger's sums over the union of dimensions, one query per metric (rollups).
  CellTable table(metrics.size(), rules.size());
  ledger::QuerySpec spec;
  spec.from = request.from;
  spec.to = request.to;
  spec.group_by = dims.dims();
  for (size_t m = 0; m < metrics.size(); ++m) {
    spec.metric = metrics[m];
    auto result = ledger.query(spec);
    if (!result) return Unexpected{result.error()};
    for (ledger::QueryRow& row : result->rows) {
      size_t c = table.find_or_add(std::move(row.keys));
      table.cells[c].sums[m] += row.value;
    }
  }
  std::vector<Cell>& cells = table.cells;
  const size_t original = cells.size();
  auto time_key = [&](const Cell& c) {
    std::string k;
    for (size_t i : time_index) k += c.keys[i] + '\x1f';
    return k;
  };
  for (Cell& c : cells) {
    for (size_t r = 0; r < prepared.size() && c.rule < 0; ++r) {
      bool all = std::all_of(prepared[r].match.begin(), prepared[r].match.end(),
                             [&](const auto& m) { return c.keys[m.first] == m.second; });
      if (all) c.rule = (int)r;
    }
  }

  Allocation out;
  for (size_t r = 0; r < prepared.size(); ++r) {
    const SharedCostRule& rule = rules[r];
    const PreparedRule& p = prepared[r];
    RuleOutcome outcome;
    outcome.name = rule.name;
    std::set<std::string> receivers_seen;
    // Receivers come from records no rule selected that name a value of `by`.
    std::unordered_map<std::string, std::vector<size_t>> consumers_by_time;
    std::map<std::string, Partition> partitions;
    for (size_t c = 0; c < original; ++c) {
      if (cells[c].rule < 0 && cells[c].keys[p.by] != kNone) {
        consumers_by_time[time_key(cells[c])].push_back(c);
      } else if (cells[c].rule == (int)r) {
        std::string t = time_key(cells[c]);
        Partition& part = partitions[t + '\x1e' + cells[c].keys[workload]];
        part.time_key = t;
        part.workload = cells[c].keys[workload];
        part.cells.push_back(c);
        part.amount += cells[c].sums[0];
      }
    }
    for (auto& [unused, part] : partitions) {
      outcome.matched += part.amount;
      std::map<std::string, std::vector<size_t>> groups;  // receiver value -> its cells
      for (size_t c : consumers_by_time[part.time_key])
        if (part.workload == kNone || cells[c].keys[workload] == part.workload)
          groups[cells[c].keys[p.by]].push_back(c);
      std::vector<std::string> receivers;
      std::vector<__int128> weights;
      for (const auto& [value, ids] : groups) {
        if (rule.split == SplitMethod::kEven) {
          receivers.push_back(value);
          weights.push_back(1);
        } else if (rule.split == SplitMethod::kProportional) {
          __int128 driver = 0;
          for (size_t c : ids) driver += cells[c].sums[p.driver];
          if (driver <= 0) continue;
          receivers.push_back(value);
          weights.push_back(driver);
        }
      }
      if (rule.split == SplitMethod::kFixed) {
        for (const auto& [value, weight] : rule.weights) {
          receivers.push_back(value);
          weights.push_back(weight.nanos);
        }
      }
      if (receivers.empty()) {
        outcome.unallocated += part.amount;
        continue;
      }
      std::vector<__int128> parts = split_exact(part.amount, weights);
      for (size_t i = 0; i < receivers.size(); ++i) {
        std::vector<size_t> ids = groups[receivers[i]];
        if (ids.empty()) {
          // A fixed-weight receiver with no records here: a group of its own.
          std::vector<std::string> keys(dims.dims().size(), std::string(kNone));
          for (size_t t : time_index) keys[t] = cells[part.cells.front()].keys[t];
          keys[workload] = part.workload;
          keys[p.by] = receivers[i];
          ids.push_back(table.find_or_add(std::move(keys)));
        }
        size_t spread_metric = rule.split == SplitMethod::kProportional ? p.driver : 0;
        std::vector<__int128> spread =
            split_exact(parts[i], spread_weights(cells, ids, spread_metric));
        for (size_t j = 0; j < ids.size(); ++j) cells[ids[j]].received[r] += spread[j];
        receivers_seen.insert(receivers[i]);
      }
      for (size_t c : part.cells) cells[c].moved = true;
      outcome.allocated += part.amount;
    }
    outcome.receivers.assign(receivers_seen.begin(), receivers_seen.end());
    out.rules.push_back(std::move(outcome));
  }

  // Regroup by the request's dimensions, after the filters.
  std::unordered_map<std::string, size_t> row_index;
  for (const Cell& c : cells) {
    bool keep = true;
    for (size_t f = 0; f < filter_index.size() && keep; ++f)
      keep = matches_filter(c.keys[filter_index[f]], request.filters[f].value);
    if (!keep) continue;
    std::vector<std::string> keys;
    keys.reserve(group_index.size());
    for (size_t g = 0; g < group_index.size(); ++g) {
      const std::string& k = c.keys[group_index[g]];
      keys.push_back(k == kNone && is_allocation_dimension(request.group_by[g])
                         ? std::string(kUnallocated)
                         : k);
    }
    auto [it, inserted] = row_index.try_emplace(join_keys(keys), out.rows.size());
    if (inserted) {
      AllocatedRow row;
      row.keys = std::move(keys);
      row.shared.assign(rules.size(), 0);
      row.usage.assign(usage_index.size(), 0);
      out.rows.push_back(std::move(row));
    }
    AllocatedRow& row = out.rows[it->second];
    if (!c.moved) row.direct += c.sums[0];
    for (size_t r = 0; r < rules.size(); ++r) row.shared[r] += c.received[r];
    for (size_t u = 0; u < usage_index.size(); ++u) row.usage[u] += c.sums[usage_index[u]];
  }
  std::erase_if(out.rows, [](const AllocatedRow& row) {
    bool shared =
        std::any_of(row.shared.begin(), row.shared.end(), [](__int128 s) { return s != 0; });
    bool usage = std::any_of(row.usage.begin(), row.usage.end(), [](__int128 u) { return u != 0; });
    return row.direct == 0 && !shared && !usage;
  });
  for (const AllocatedRow& row : out.rows) out.total += row.total();
  std::vector<size_t> time_columns;
  for (size_t g = 0; g < request.group_by.size(); ++g)
    if (request.group_by[g].kind == ledger::Dimension::Kind::kTime) time_columns.push_back(g);
  std::sort(out.rows.begin(), out.rows.end(), [&](const AllocatedRow& a, const AllocatedRow& b) {
    for (size_t i : time_columns)
      if (a.keys[i] != b.keys[i]) return a.keys[i] < b.keys[i];
    __int128 ta = a.total(), tb = b.total();
    if (ta != tb) return ta > tb;
    return a.keys < b.keys;
  });
  return out;
}

Result<Showback> build_showback(ledger::Ledger& ledger, const TagPolicy& policy,
                                const std::vector<SharedCostRule>& rules,
                                const ledger::Dimension& owner, std::optional<EpochSeconds> from,
                                std::optional<EpochSeconds> to) {
  if (owner.kind == ledger::Dimension::Kind::kTime)
    return make_error(ErrorCode::kInvalidArgument,
                      "showback --by " + owner.label +
                          ": a statement is per owner (team, project, "
                          "cost_center, ...), not per time bucket; use --period");
  AllocationRequest request;
  request.from = from;
  request.to = to;
  auto attribute = [](Attr a, const char* label) {
    ledger::Dimension d;
    d.attribute = a;
    d.label = label;
    return d;
  };
  request.group_by = {
      owner, attribute(Attr::kServiceName, "service"), attribute(Attr::kResourceId, "resource"),
      attribute(Attr::kResourceName, "resource_name"), attribute(Attr::kModel, "model")};
  request.usage_metrics = {ledger::Metric::kTokens};
  auto allocation = allocate_costs(ledger, policy, rules, request);
  if (!allocation) return Unexpected{allocation.error()};

  Showback out;
  for (const SharedCostRule& r : rules) out.rule_names.push_back(r.name);
  out.total = allocation->total;
  out.rules = allocation->rules;
  std::map<std::string, ShowbackStatement> by_owner;
  std::map<std::string, std::map<std::string, ShowbackModel>> models;
  for (const AllocatedRow& row : allocation->rows) {
    ShowbackStatement& s = by_owner[row.keys[0]];
    if (s.shared.empty()) {
      s.owner = row.keys[0];
      s.shared.assign(rules.size(), 0);
    }
    s.direct += row.direct;
    for (size_t r = 0; r < rules.size(); ++r) s.shared[r] += row.shared[r];
    s.tokens += row.usage[0];
    if (row.direct != 0 || row.usage[0] != 0)
      s.lines.push_back(
          {row.keys[1], row.keys[2], row.keys[3], row.keys[4], row.direct, row.usage[0]});
    if (row.keys[4] != kNone) {
      ShowbackModel& m = models[s.owner][row.keys[4]];
      m.model = row.keys[4];
      m.cost += row.direct;
      m.tokens += row.usage[0];
    }
  }
  for (auto& [name, s] : by_owner) {
    s.total = s.direct;
    for (__int128 v : s.shared) s.total += v;
    std::sort(s.lines.begin(), s.lines.end(), [](const ShowbackLine& a, const ShowbackLine& b) {
      if (a.cost != b.cost) return a.cost > b.cost;
      return std::tie(a.service, a.resource, a.resource_name, a.model) <
             std::tie(b.service, b.resource, b.resource_name, b.model);
    });
    for (auto& [model, m] : models[name]) s.models.push_back(m);
    std::sort(s.models.begin(), s.models.end(), [](const ShowbackModel& a, const ShowbackModel& b) {
      if (a.cost != b.cost) return a.cost > b.cost;
      return a.model < b.model;
    });
    out.statements.push_back(std::move(s));
  }
  std::sort(out.statements.begin(), out.statements.end(),
            [](const ShowbackStatement& a, const ShowbackStatement& b) {
              bool ua = a.owner == kUnallocated || a.owner == kNone;
              bool ub = b.owner == kUnallocated || b.owner == kNone;
              if (ua != ub) return ub;
              if (a.total != b.total) return a.total > b.total;
              return a.owner < b.owner;
            });
  return out;
}

}  // namespace aifinops::allocate
