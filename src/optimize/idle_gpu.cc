// Idle GPUs and the GPU fleet view.
#include "optimize/idle_gpu.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace aifinops::optimize {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  return out;
}

/// A value of the telemetry's own `extra` JSON ({"gpu_uuid":"GPU-1",...}, written by the
/// GPU readers with no escapes in these values).
std::string extra_value(std::string_view extra, std::string_view key) {
  std::string needle = "\"" + std::string(key) + "\":\"";
  size_t at = extra.find(needle);
  if (at == std::string_view::npos) return "";
  size_t start = at + needle.size(), end = extra.find('"', start);
  return end == std::string_view::npos ? "" : std::string(extra.substr(start, end - start));
}

Result<ledger::QueryResult> query_gpu_window(const RecommendContext& context, std::vector<Attr> by, bool by_day,
                                             ledger::Metric metric) {
  ledger::QuerySpec spec;
  spec.from = context.as_of - context.gpu_window_days * 86400;
  spec.to = context.as_of;
  for (Attr a : by) spec.group_by.push_back(attribute_dimension(a));
  if (by_day) spec.group_by.push_back(time_dimension(ledger::Grain::kDay));
  spec.metric = metric;
  return context.ledger->query(spec);
}

std::string key_of(const std::vector<std::string>& keys, size_t n) {
  std::string k;
  for (size_t i = 0; i < n; ++i) k += keys[i] + '\x1f';
  return k;
}

std::string none_as_empty(const std::string& v) { return v == "(none)" ? "" : v; }

}  // namespace

bool shutdown_allowed(std::string_view value) {
  std::string v = lower(value);
  return v == "true" || v == "yes";
}

Result<std::vector<GpuHost>> load_gpu_fleet(const RecommendContext& context) {
  using ledger::Metric;
  const std::vector<Attr> gpu_key = {Attr::kResourceId, Attr::kExtra, Attr::kGpuType};
  auto hours = query_gpu_window(context, gpu_key, false, Metric::kGpuObservedHours);
  if (!hours) return Unexpected{hours.error()};
  // No telemetry in the window: nothing to join, and the peak query (which reads records,
  // not rollups) is skipped on ledgers of bills only.
  if (std::none_of(hours->rows.begin(), hours->rows.end(), [](const ledger::QueryRow& r) { return r.value > 0; }))
    return std::vector<GpuHost>{};
  auto utilization = query_gpu_window(context, gpu_key, false, Metric::kGpuUtilization);
  if (!utilization) return Unexpected{utilization.error()};
  auto daily = query_gpu_window(context, gpu_key, true, Metric::kGpuUtilization);
  if (!daily) return Unexpected{daily.error()};
  auto peak = query_gpu_window(context, gpu_key, false, Metric::kGpuMemoryPeakMib);
  if (!peak) return Unexpected{peak.error()};
  auto telemetry_dims = query_gpu_window(
      context, {Attr::kResourceId, Attr::kShutdownEligible, Attr::kTeam, Attr::kProject}, false,
      Metric::kGpuObservedHours);
  if (!telemetry_dims) return Unexpected{telemetry_dims.error()};

  // GPUs: rows with observed time (cost records group here too, with none).
  std::map<std::string, GpuHost> hosts;  // by resource, in name order
  std::unordered_map<std::string, ObservedGpu*> gpus;
  for (const ledger::QueryRow& row : hours->rows) {
    if (row.value <= 0 || row.keys[0] == "(none)") continue;
    GpuHost& host = hosts[row.keys[0]];
    host.resource = row.keys[0];
    ObservedGpu gpu;
    const std::string extra = none_as_empty(row.keys[1]);
    gpu.uuid = extra_value(extra, "gpu_uuid");
    if (gpu.uuid.empty()) gpu.uuid = "index " + extra_value(extra, "gpu_index");
    gpu.model = none_as_empty(row.keys[2]);
    gpu.observed_hours = row.value;
    std::string total = extra_value(extra, "gpu_memory_total_mib");
    gpu.memory_total_mib = total.empty() ? 0 : std::stoll(total);
    host.gpus.push_back(gpu);
  }
  for (auto& [name, host] : hosts)
    for (ObservedGpu& g : host.gpus) gpus[name + '\x1f' + g.uuid + '\x1f' + g.model] = &g;
  auto find_gpu = [&](const std::vector<std::string>& keys) -> ObservedGpu* {
    const std::string extra = none_as_empty(keys[1]);
    std::string uuid = extra_value(extra, "gpu_uuid");
    if (uuid.empty()) uuid = "index " + extra_value(extra, "gpu_index");
    auto it = gpus.find(keys[0] + '\x1f' + uuid + '\x1f' + none_as_empty(keys[2]));
    return it == gpus.end() ? nullptr : it->second;
  };
  for (const ledger::QueryRow& row : utilization->rows)
    if (ObservedGpu* g = find_gpu(row.keys)) g->utilization = row.value;
  for (const ledger::QueryRow& row : daily->rows) {
    if (ObservedGpu* g = find_gpu(row.keys)) {
      g->peak_daily_utilization = std::max(g->peak_daily_utilization, row.value);
      ++g->days;
    }
  }
  for (const ledger::QueryRow& row : peak->rows)
    if (ObservedGpu* g = find_gpu(row.keys)) g->peak_memory_mib = std::max<int64_t>(g->peak_memory_mib, (int64_t)row.value);
  for (const ledger::QueryRow& row : telemetry_dims->rows) {
    auto it = hosts.find(row.keys[0]);
    if (it == hosts.end() || row.value <= 0) continue;
    GpuHost& h = it->second;
    if (h.shutdown_eligible.empty()) h.shutdown_eligible = none_as_empty(row.keys[1]);
    if (h.team.empty()) h.team = none_as_empty(row.keys[2]);
    if (h.project.empty()) h.project = none_as_empty(row.keys[3]);
  }

  // The bill: GPU instance cost records over the same window, joined by host.
  auto billed_hours = query_gpu_window(context, {Attr::kResourceId, Attr::kResourceName}, false, Metric::kGpuHours);
  if (!billed_hours) return Unexpected{billed_hours.error()};
  auto cost = query_gpu_window(context,
                               {Attr::kResourceId, Attr::kResourceName, Attr::kSkuId, Attr::kProviderName,
                                Attr::kRegionId, Attr::kShutdownEligible, Attr::kTeam, Attr::kProject},
                               false, Metric::kEffectiveCost);
  if (!cost) return Unexpected{cost.error()};
  std::unordered_map<std::string, GpuHost*> by_name;  // lower-cased host name -> host
  for (auto& [name, host] : hosts) by_name[lower(name)] = &host;
  auto host_of = [&](const std::string& id, const std::string& name) -> GpuHost* {
    for (const std::string& candidate : {id, name}) {
      if (candidate.empty() || candidate == "(none)") continue;
      if (auto it = by_name.find(lower(candidate)); it != by_name.end()) return it->second;
    }
    size_t slash = id.find_last_of('/');
    if (slash != std::string::npos)
      if (auto it = by_name.find(lower(id.substr(slash + 1))); it != by_name.end()) return it->second;
    return nullptr;
  };
  std::unordered_map<std::string, __int128> gpu_hours_by_resource;
  for (const ledger::QueryRow& row : billed_hours->rows) {
    if (row.value <= 0) continue;
    gpu_hours_by_resource[key_of(row.keys, 2)] += row.value;
    if (GpuHost* h = host_of(row.keys[0], row.keys[1])) {
      h->billed = true;
      h->billed_gpu_hours += row.value;
      if (h->billed_resource_id.empty()) h->billed_resource_id = row.keys[0];
    }
  }
  std::unordered_map<const GpuHost*, bool> labelled;
  for (const ledger::QueryRow& row : cost->rows) {  // largest cost first: its labels win
    if (!gpu_hours_by_resource.count(key_of(row.keys, 2))) continue;  // not a GPU instance record
    GpuHost* h = host_of(row.keys[0], row.keys[1]);
    if (h == nullptr) continue;
    h->cost += row.value;
    auto fill = [](std::string& into, const std::string& v) {
      if (into.empty() && v != "(none)") into = v;
    };
    fill(h->sku, row.keys[2]);
    fill(h->provider, row.keys[3]);
    fill(h->region, row.keys[4]);
    // The bill's allocation (of its largest row) decides over the telemetry's.
    if (!labelled[h]) {
      labelled[h] = true;
      if (row.keys[5] != "(none)") h->shutdown_eligible = row.keys[5];
      if (row.keys[6] != "(none)") h->team = row.keys[6];
      if (row.keys[7] != "(none)") h->project = row.keys[7];
    }
  }
  std::vector<GpuHost> out;
  for (auto& [name, host] : hosts) out.push_back(std::move(host));
  return out;
}

__int128 gpu_hour_price(const RecommendContext& context, const GpuHost& host, std::string& source) {
  if (host.billed && host.billed_gpu_hours > 0) {
    source = "bill of " + host.billed_resource_id + ": " + money_text(host.cost) + " over " +
             format_decimal(host.billed_gpu_hours) + " GPU-hours";
    return mul_div_round(host.cost, kNanosPerUnit, host.billed_gpu_hours);
  }
  if (host.gpus.empty() || context.catalog == nullptr) return 0;
  const std::string& model = host.gpus.front().model;
  const pricing::GpuModelSpec* spec = context.gpu_models ? context.gpu_models->find(model) : nullptr;
  __int128 best = 0;
  for (const pricing::GpuInstancePrice* p : context.catalog->gpu_instance_prices()) {
    if (p->gpus <= 0 || p->gpu_type.empty()) continue;
    const pricing::GpuInstancePrice* current = context.catalog->find_gpu_instance(p->sku, context.as_of - 1);
    if (current != p || !p->on_demand) continue;  // only the version in effect
    const pricing::GpuModelSpec* s = context.gpu_models ? context.gpu_models->find(p->gpu_type) : nullptr;
    if (spec == nullptr || s != spec) continue;
    __int128 per_gpu = p->on_demand->nanos / p->gpus;
    if (best == 0 || per_gpu < best) {
      best = per_gpu;
      source = "catalog: " + p->sku + " on-demand " + money_text(p->on_demand->nanos) + "/h for " +
               std::to_string(p->gpus) + " GPU(s) (no bill for this host)";
    }
  }
  return best;
}

Result<std::vector<Recommendation>> recommend_idle_gpu(const RecommendContext& context) {
  auto fleet = load_gpu_fleet(context);
  if (!fleet) return Unexpected{fleet.error()};
  const __int128 threshold = context.idle_gpu_threshold.nanos;
  std::vector<Recommendation> out;
  for (const GpuHost& host : *fleet) {
    std::vector<const ObservedGpu*> idle;
    __int128 busy = 0, observed = 0, idle_hours = 0;
    for (const ObservedGpu& g : host.gpus) {
      busy += mul_div_round(g.utilization, g.observed_hours, kNanosPerUnit);
      observed += g.observed_hours;
      // Idle = under the threshold on average and on every day of the window.
      if (g.utilization < threshold && g.peak_daily_utilization < threshold) {
        idle.push_back(&g);
        idle_hours += g.observed_hours;
      }
    }
    if (idle.empty()) continue;
    std::string price_source;
    const __int128 price = gpu_hour_price(context, host, price_source);
    const __int128 wasted = mul_div_round(idle_hours, price, kNanosPerUnit);
    const bool all_idle = idle.size() == host.gpus.size();
    const bool allowed = shutdown_allowed(host.shutdown_eligible);
    const __int128 mean = observed > 0 ? mul_div_round(busy, kNanosPerUnit, observed) : 0;
    const std::string mean_text = percent_text((double)mean / 1e9);
    const std::string days = std::to_string(context.gpu_window_days) + " days";

    Recommendation r;
    r.kind = "idle-gpu";
    r.id = "idle-gpu:" + host.resource;
    r.subject = host.resource;
    if (all_idle && allowed) {
      r.title = "Shut down " + host.resource + ": its " + std::to_string(host.gpus.size()) + " GPU(s) averaged " +
                mean_text + " utilisation over " + days;
      r.action = "Stop or terminate " + host.resource + " (shutdown_eligible is \"" + host.shutdown_eligible + "\")";
    } else if (all_idle) {
      r.title = "Review " + host.resource + " for shutdown: its " + std::to_string(host.gpus.size()) +
                " GPU(s) averaged " + mean_text + " utilisation over " + days;
      r.action = "Needs owner review: shutdown_eligible is " +
                 (host.shutdown_eligible.empty() ? std::string("not set") : "\"" + host.shutdown_eligible + "\"") +
                 "; ask the owner" + (host.team.empty() ? std::string() : " (team " + host.team + ")") +
                 " whether " + host.resource + " can be stopped";
    } else {
      r.title = std::to_string(idle.size()) + " of " + std::to_string(host.gpus.size()) + " GPUs on " +
                host.resource + " stayed under " + percent_text((double)threshold / 1e9) + " utilisation over " + days;
      r.action = "Consolidate the work on " + host.resource +
                 " onto fewer GPUs, or move it to an instance with fewer GPUs";
    }
    r.monthly_saving = Money{(int64_t)mul_div_round(wasted, 30, std::max<int64_t>(1, context.gpu_window_days))};
    r.confidence = price == 0 ? Confidence::kLow : host.billed ? Confidence::kHigh : Confidence::kLow;
    if (!host.billed)
      r.assumptions.push_back("no cost record joins this host; priced at the catalog's cheapest on-demand price per GPU of the same model");
    if (price == 0) r.assumptions.push_back("no price known for this host's GPUs: the saving is not estimated");
    r.assumptions.push_back("the saving is the idle GPUs' cost over the window, scaled to 30 days");
    r.evidence.push_back({"shutdown list", all_idle ? (allowed ? "yes" : "needs owner review") : "no (GPUs in use on the host)"});
    r.evidence.push_back({"mean GPU utilisation", mean_text + " over " + format_decimal(observed) + " observed GPU-hours"});
    for (const ObservedGpu* g : idle)
      r.evidence.push_back({"idle GPU " + g->uuid, g->model + ": " + percent_text((double)g->utilization / 1e9) +
                                                       " mean, busiest day " +
                                                       percent_text((double)g->peak_daily_utilization / 1e9) + ", " +
                                                       format_decimal(g->observed_hours) + " GPU-hours"});
    r.evidence.push_back({"cost per GPU-hour", price == 0 ? "unknown" : money_text(price) + " (" + price_source + ")"});
    r.evidence.push_back({"wasted cost in window", money_text(wasted)});
    r.evidence.push_back({"shutdown_eligible", host.shutdown_eligible.empty() ? "(not set)" : host.shutdown_eligible});
    if (!host.team.empty()) r.dimensions.push_back({"team", host.team});
    if (!host.project.empty()) r.dimensions.push_back({"project", host.project});
    if (!host.shutdown_eligible.empty()) r.dimensions.push_back({"shutdown_eligible", host.shutdown_eligible});
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace aifinops::optimize
