// Self-hosted vs API cost per million tokens.
#include "optimize/self_hosted.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "optimize/model_fit.h"

namespace aifinops::optimize {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  return out;
}

/// "upstream" of a gateway record's extra JSON ({"upstream":"vllm-llama",...}; the gateway
/// writes upstream names without escapes).
std::string upstream_of(std::string_view extra) {
  constexpr std::string_view kNeedle = "\"upstream\":\"";
  size_t at = extra.find(kNeedle);
  if (at == std::string_view::npos) return "";
  size_t start = at + kNeedle.size(), end = extra.find('"', start);
  return end == std::string_view::npos ? "" : std::string(extra.substr(start, end - start));
}

/// The share of the GPU utilisation target a cluster can be run at before latency suffers:
/// spare capacity is counted up to this utilisation, not to 100%.
constexpr int64_t kTargetUtilizationPercent = 80;

std::string tokens_text(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

/// A price per million tokens: two to four decimals ("$0.22", "$0.075", "$3.8612").
std::string unit_price_text(__int128 nanos) {
  std::string s = format_decimal_fixed(nanos < 0 ? -nanos : nanos, 4);
  while (s.size() > 3 && s.back() == '0' && s[s.size() - 3] != '.') s.pop_back();
  return (nanos < 0 ? "-$" : "$") + s;
}
std::string per_million_text(__int128 nanos) { return unit_price_text(nanos) + " per 1M tokens"; }

struct TokenRow {
  std::string cluster, provider, model, day;
  bool self_hosted = false;
  int64_t input = 0, output = 0, requests = 0;
  __int128 cost = 0;
};

/// Token rows of the window by cluster, provider, model, gateway extra and day.
Result<std::vector<TokenRow>> load_token_rows(const RecommendContext& c, bool with_cost) {
  std::vector<ledger::Dimension> group = {
      attribute_dimension(c.cluster_dimension), attribute_dimension(Attr::kProviderName),
      attribute_dimension(Attr::kModel), attribute_dimension(Attr::kExtra),
      time_dimension(ledger::Grain::kDay)};
  std::map<std::vector<std::string>, TokenRow> rows;
  std::vector<ledger::Metric> metrics = {ledger::Metric::kInputTokens,
                                         ledger::Metric::kOutputTokens, ledger::Metric::kRequests};
  if (with_cost) metrics.push_back(ledger::Metric::kEffectiveCost);
  for (ledger::Metric metric : metrics) {
    auto result = query_window(c, group, {}, metric);
    if (!result) return Unexpected{result.error()};
    for (const ledger::QueryRow& row : result->rows) {
      if (row.keys[2] == "(none)") continue;  // not model traffic
      // Only rows that carry tokens start a row; requests and cost fill rows already there.
      auto it = rows.find(row.keys);
      if (it == rows.end()) {
        if (metric != ledger::Metric::kInputTokens && metric != ledger::Metric::kOutputTokens)
          continue;
        if (row.value <= 0) continue;
        TokenRow t;
        t.cluster = row.keys[0];
        t.provider = row.keys[1];
        t.model = row.keys[2];
        t.day = row.keys[4];
        t.self_hosted =
            is_self_hosted_provider(t.provider) ||
            (row.keys[3] != "(none)" && is_self_hosted_provider(upstream_of(row.keys[3])));
        it = rows.emplace(row.keys, std::move(t)).first;
      }
      TokenRow& t = it->second;
      switch (metric) {
        case ledger::Metric::kInputTokens:
          t.input += (int64_t)row.value;
          break;
        case ledger::Metric::kOutputTokens:
          t.output += (int64_t)row.value;
          break;
        case ledger::Metric::kRequests:
          t.requests += (int64_t)row.value;
          break;
        default:
          t.cost += row.value;
          break;
      }
    }
  }
  std::vector<TokenRow> out;
  out.reserve(rows.size());
  for (auto& [keys, row] : rows) out.push_back(std::move(row));
  return out;
}

/// An API offer for a self-hosted model's tokens.
struct Offer {
  const ScoredModel* model = nullptr;
  __int128 cost = 0;  ///< the same input and output tokens at its prices, nanos
  bool same = false;  ///< the same model (an alias of the same score row)
};

/// The comparable API offers for a model's tokens, cheapest first: the same model at an API,
/// or any API model in chat, completion or responses mode that scores at least as well.
std::vector<Offer> comparable_offers(const RecommendContext& c, const std::vector<ScoredModel>& api,
                                     const std::string& benchmark, const SelfHostedModel& m,
                                     bool scored, Decimal own_score) {
  const pricing::TokenUsage usage{m.input_tokens, 0, 0, m.output_tokens, 0, false};
  const ModelScore* own_row = c.rates->find_score(m.model, benchmark);
  std::vector<Offer> offers;
  for (const ScoredModel& s : api) {
    const bool same = own_row != nullptr && s.table_row == own_row;
    if (!same && !(scored && s.score >= own_score)) continue;
    if (!s.price->mode.empty() && s.price->mode != "chat" && s.price->mode != "completion" &&
        s.price->mode != "responses")
      continue;
    offers.push_back({&s, (__int128)pricing::token_cost(*s.price, usage).nanos, same});
  }
  std::sort(offers.begin(), offers.end(), [](const Offer& a, const Offer& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.model->model < b.model->model;
  });
  return offers;
}

}  // namespace

__int128 cost_per_million_tokens(__int128 cost_nanos, int64_t tokens) {
  if (tokens <= 0) return 0;
  return mul_div_round(cost_nanos, 1'000'000, tokens);
}

Result<std::vector<InferenceCluster>> load_inference_clusters(const RecommendContext& c) {
  // One cheap look first (few groups, no days): most ledgers serve no model themselves.
  auto probe =
      query_window(c, {attribute_dimension(Attr::kProviderName), attribute_dimension(Attr::kExtra)},
                   {}, ledger::Metric::kTokens);
  if (!probe) return Unexpected{probe.error()};
  if (std::none_of(probe->rows.begin(), probe->rows.end(), [](const ledger::QueryRow& row) {
        return row.value > 0 &&
               (is_self_hosted_provider(row.keys[0]) ||
                (row.keys[1] != "(none)" && is_self_hosted_provider(upstream_of(row.keys[1]))));
      }))
    return std::vector<InferenceCluster>{};
  auto token_rows = load_token_rows(c, false);
  if (!token_rows) return Unexpected{token_rows.error()};
  // cluster -> day -> provider|model -> tokens. Nothing self-hosted: no further queries.
  std::map<std::string, std::map<std::string, std::map<std::string, SelfHostedModel>>> served;
  for (const TokenRow& t : *token_rows) {
    if (!t.self_hosted || t.cluster == "(none)") continue;
    SelfHostedModel& m = served[t.cluster][t.day][t.provider + "|" + t.model];
    m.provider = t.provider;
    m.model = t.model;
    m.input_tokens += t.input;
    m.output_tokens += t.output;
    m.requests += t.requests;
  }
  std::vector<InferenceCluster> out;
  if (served.empty()) return out;

  // The GPU bill: records with billed GPU-hours, by cluster, instance and day.
  const std::vector<ledger::Dimension> gpu_group = {
      attribute_dimension(c.cluster_dimension), attribute_dimension(Attr::kResourceId),
      attribute_dimension(Attr::kResourceName), time_dimension(ledger::Grain::kDay)};
  auto hours = query_window(c, gpu_group, {}, ledger::Metric::kGpuHours);
  if (!hours) return Unexpected{hours.error()};
  std::map<std::vector<std::string>, __int128> gpu_hours;  // keys -> GPU-hours
  for (const ledger::QueryRow& row : hours->rows)
    if (row.value > 0 && served.count(row.keys[0])) gpu_hours[row.keys] += row.value;
  if (gpu_hours.empty()) return out;
  auto cost = query_window(c, gpu_group, {}, ledger::Metric::kEffectiveCost);
  if (!cost) return Unexpected{cost.error()};

  struct Day {
    __int128 cost = 0, hours = 0;
  };
  std::map<std::string, std::map<std::string, Day>> billed;   // cluster -> day -> bill
  std::map<std::string, std::set<std::string>> instances;     // cluster -> resource ids
  std::unordered_map<std::string, std::string> host_cluster;  // lower-cased id / name -> cluster
  for (const auto& [keys, h] : gpu_hours) billed[keys[0]][keys[3]].hours += h;
  for (const ledger::QueryRow& row : cost->rows) {
    if (!gpu_hours.count(row.keys)) continue;  // not a GPU instance record
    billed[row.keys[0]][row.keys[3]].cost += row.value;
    const std::string& id = row.keys[1];
    const std::string& name = row.keys[2];
    instances[row.keys[0]].insert(id != "(none)" ? id : name);
    for (const std::string& key : {id, name})
      if (key != "(none)") host_cluster[lower(key)] = row.keys[0];
  }

  for (auto& [name, by_day] : served) {
    auto bill = billed.find(name);
    if (bill == billed.end()) continue;
    InferenceCluster cluster;
    cluster.name = name;
    cluster.resources.assign(instances[name].begin(), instances[name].end());
    std::map<std::string, SelfHostedModel> models;
    for (const auto& [day, day_models] : by_day) {
      auto b = bill->second.find(day);
      if (b == bill->second.end() || b->second.cost <= 0)
        continue;  // tokens without a bill that day
      cluster.days.push_back(day);
      cluster.gpu_cost += b->second.cost;
      cluster.gpu_hours += b->second.hours;
      for (const auto& [key, m] : day_models) {
        SelfHostedModel& into = models[key];
        into.provider = m.provider;
        into.model = m.model;
        into.input_tokens += m.input_tokens;
        into.output_tokens += m.output_tokens;
        into.requests += m.requests;
      }
    }
    if (cluster.days.empty()) continue;
    for (auto& [key, m] : models) {
      cluster.input_tokens += m.input_tokens;
      cluster.output_tokens += m.output_tokens;
      cluster.models.push_back(std::move(m));
    }
    const int64_t total = cluster.input_tokens + cluster.output_tokens;
    if (total <= 0) continue;
    // A cluster that serves several models: its cost is split by tokens (the GPUs' time is
    // not metered per model).
    __int128 assigned = 0;
    std::sort(cluster.models.begin(), cluster.models.end(),
              [](const SelfHostedModel& a, const SelfHostedModel& b) {
                int64_t ta = a.input_tokens + a.output_tokens,
                        tb = b.input_tokens + b.output_tokens;
                return ta != tb ? ta > tb : a.model < b.model;
              });
    for (size_t i = 0; i < cluster.models.size(); ++i) {
      SelfHostedModel& m = cluster.models[i];
      m.gpu_cost = i + 1 == cluster.models.size()
                       ? cluster.gpu_cost - assigned  // the rest: the shares add up exactly
                       : mul_div_round(cluster.gpu_cost, m.input_tokens + m.output_tokens, total);
      assigned += m.gpu_cost;
    }
    out.push_back(std::move(cluster));
  }
  if (out.empty()) return out;

  // Telemetry of the instances (joined by host as in docs/gpu.md) on the covered days.
  const std::vector<ledger::Dimension> telemetry_group = {attribute_dimension(Attr::kResourceId),
                                                          time_dimension(ledger::Grain::kDay)};
  auto observed = query_window(c, telemetry_group, {}, ledger::Metric::kGpuObservedHours);
  if (!observed) return Unexpected{observed.error()};
  auto utilization = query_window(c, telemetry_group, {}, ledger::Metric::kGpuUtilization);
  if (!utilization) return Unexpected{utilization.error()};
  std::map<std::vector<std::string>, __int128> utilization_of;
  for (const ledger::QueryRow& row : utilization->rows) utilization_of[row.keys] = row.value;
  std::map<std::string, InferenceCluster*> by_name;
  std::map<std::string, std::set<std::string>> covered_days;
  for (InferenceCluster& cl : out) {
    by_name[cl.name] = &cl;
    covered_days[cl.name].insert(cl.days.begin(), cl.days.end());
  }
  std::map<std::string, __int128> busy;
  for (const ledger::QueryRow& row : observed->rows) {
    if (row.value <= 0) continue;
    std::string host = lower(row.keys[0]);
    auto it = host_cluster.find(host);
    if (it == host_cluster.end()) {
      // An ARN or Azure resource path ends with the host.
      for (const auto& [key, cluster] : host_cluster) {
        size_t slash = key.find_last_of('/');
        if (slash != std::string::npos && key.substr(slash + 1) == host) {
          it = host_cluster.find(key);
          break;
        }
      }
      if (it == host_cluster.end()) continue;
    }
    if (!covered_days[it->second].count(row.keys[1])) continue;
    InferenceCluster* cl = by_name[it->second];
    cl->observed_hours += row.value;
    busy[it->second] += mul_div_round(utilization_of[row.keys], row.value, kNanosPerUnit);
  }
  for (InferenceCluster& cl : out)
    if (cl.observed_hours > 0)
      cl.utilization = mul_div_round(busy[cl.name], kNanosPerUnit, cl.observed_hours);
  return out;
}

Result<std::vector<Recommendation>> recommend_self_hosted(const RecommendContext& c) {
  auto clusters = load_inference_clusters(c);
  if (!clusters) return Unexpected{clusters.error()};
  std::vector<Recommendation> out;
  if (clusters->empty()) return out;
  const std::string& benchmark = c.business->quality_benchmark;
  const std::vector<ScoredModel> api = scored_api_models(c, benchmark);
  const std::string dimension(attribute_name(c.cluster_dimension));
  std::vector<TokenRow> api_rows;  // read once, when a cluster is cheaper than the API
  bool api_rows_read = false;

  for (const InferenceCluster& cl : *clusters) {
    const int64_t days = (int64_t)cl.days.size();
    const std::string period = cl.days.front() + " .. " + cl.days.back() + " (" +
                               std::to_string(days) + " day" + (days == 1 ? "" : "s") +
                               " with GPU cost and tokens)";
    for (const SelfHostedModel& m : cl.models) {
      const int64_t tokens = m.input_tokens + m.output_tokens;
      if (tokens <= 0 || m.gpu_cost <= 0) continue;
      Decimal own_score;
      std::string own_source;
      const bool scored = model_score(c, benchmark, m.model, own_score, own_source);
      const std::vector<Offer> offers = comparable_offers(c, api, benchmark, m, scored, own_score);
      if (offers.empty()) continue;  // nothing shown to be comparable: no claim either way
      const Offer& best = offers.front();
      const __int128 own_per_million = cost_per_million_tokens(m.gpu_cost, tokens);
      const __int128 api_per_million = cost_per_million_tokens(best.cost, tokens);
      const std::string where = dimension + "=" + cl.name;

      Recommendation r;
      r.kind = "self-hosted";
      r.subject = m.model + " on inference cluster " + where;
      r.confidence = Confidence::kMedium;
      r.dimensions.push_back({dimension, cl.name});
      auto common_evidence = [&] {
        std::string instances;
        for (size_t i = 0; i < cl.resources.size() && i < 5; ++i)
          instances += (i ? ", " : "") + cl.resources[i];
        if (cl.resources.size() > 5)
          instances += ", ... (" + std::to_string(cl.resources.size()) + ")";
        r.evidence.push_back({"cluster", where + ": " + std::to_string(cl.resources.size()) +
                                             " GPU instance(s): " + instances});
        r.evidence.push_back({"period", period});
        r.evidence.push_back(
            {"GPU cost (idle time included)",
             money_text(m.gpu_cost) +
                 (cl.models.size() > 1
                      ? " (this model's token share of " + money_text(cl.gpu_cost) + ")"
                      : std::string()) +
                 " over " + format_decimal(cl.gpu_hours) + " billed GPU-hours" +
                 (cl.utilization
                      ? "; idle share " +
                            money_text(m.gpu_cost -
                                       mul_div_round(m.gpu_cost, *cl.utilization, kNanosPerUnit))
                      : std::string())});
        r.evidence.push_back(
            {"mean GPU utilisation",
             cl.utilization
                 ? percent_text((double)*cl.utilization / 1e9) + " over " +
                       format_decimal(cl.observed_hours) + " observed GPU-hours (telemetry)"
                 : std::string("unknown (no GPU telemetry joins the cluster's instances)")});
        r.evidence.push_back({"tokens served", tokens_text(m.input_tokens) + " input, " +
                                                   tokens_text(m.output_tokens) + " output, " +
                                                   tokens_text(m.requests) + " requests (" +
                                                   m.provider + ")"});
        r.evidence.push_back({"self-hosted cost", per_million_text(own_per_million)});
        r.evidence.push_back({m.model + " " + benchmark,
                              scored ? format_decimal(own_score.nanos) + " (" + own_source + ")"
                                     : std::string("unknown")});
        for (size_t i = 0; i < offers.size() && i < 4; ++i) {
          const Offer& o = offers[i];
          r.evidence.push_back(
              {"API: " + o.model->model + " (" + o.model->price->provider + ")",
               per_million_text(cost_per_million_tokens(o.cost, tokens)) + " for this mix (" +
                   unit_price_text(o.model->price->prices.input->nanos) + " input, " +
                   unit_price_text(o.model->price->prices.output->nanos) + " output per 1M; " +
                   benchmark + " " + format_decimal(o.model->score.nanos) +
                   (o.same ? ", the same model" : "") + "): " + money_text(o.cost) +
                   " for these tokens"});
        }
        // Same-model offers further down the list are the most telling comparison.
        for (size_t i = 4; i < offers.size(); ++i)
          if (offers[i].same) {
            r.evidence.push_back(
                {"API: " + offers[i].model->model + " (" + offers[i].model->price->provider + ")",
                 per_million_text(cost_per_million_tokens(offers[i].cost, tokens)) +
                     " for this mix (the same model)"});
            break;
          }
        auto last = parse_timestamp(cl.days.back());
        r.evidence.push_back({"records", "aifinops report --by resource,day --filter " + dimension +
                                             "=\"" + cl.name + "\" --from " + cl.days.front() +
                                             " --to " +
                                             (last ? format_date(*last + 86400) : cl.days.back())});
      };

      if (best.cost < m.gpu_cost) {
        // The API is cheaper: the cluster's GPUs (idle time included) cost more than the tokens.
        r.id = "self-hosted:" + cl.name + "/" + m.model;
        r.title = "Serve " + m.model + " of " + where + " through " + best.model->model + " (" +
                  best.model->price->provider + "): " + unit_price_text(api_per_million) +
                  " per 1M tokens against " + unit_price_text(own_per_million) + " self-hosted";
        r.action = "Route the cluster's " + m.model + " traffic to " + best.model->model + " at " +
                   best.model->price->provider + ", then release its GPU instances";
        r.monthly_saving = Money{(int64_t)mul_div_round(m.gpu_cost - best.cost, 30, days)};
        r.assumptions.push_back(
            "the cluster's GPU instances can be released once the traffic moves (their whole cost, "
            "idle time "
            "included, is saved)");
        r.assumptions.push_back(
            "the same token mix at the API's list prices, without prompt caching or batch "
            "discounts");
        if (!best.same)
          r.assumptions.push_back("a public " + benchmark +
                                  " score stands for quality on this workload; check " +
                                  best.model->model + " on your own evaluation set");
        if (cl.models.size() > 1)
          r.assumptions.push_back("the cluster's cost is split between its models by tokens");
        common_evidence();
        // What self-hosting would need to win: the tokens a day at which the GPUs cost what
        // the API would, and the cost per token at the target utilisation.
        const __int128 gpu_per_day = m.gpu_cost / days;
        if (best.cost > 0) {
          const __int128 break_even = mul_div_round(gpu_per_day, tokens, best.cost);
          r.evidence.push_back({"break-even volume", tokens_text((int64_t)break_even) +
                                                         " tokens a day (served: " +
                                                         tokens_text(tokens / days) + " a day)"});
        }
        if (cl.utilization && *cl.utilization > 0) {
          const __int128 at_target = mul_div_round(own_per_million, *cl.utilization,
                                                   kTargetUtilizationPercent * 10'000'000);
          r.evidence.push_back(
              {"self-hosted at " + std::to_string(kTargetUtilizationPercent) + "% utilisation",
               per_million_text(at_target) +
                   (at_target < api_per_million
                        ? " (cheaper than the API: fill the cluster instead)"
                        : " (still dearer than the API)")});
        }
        out.push_back(std::move(r));
        continue;
      }

      // The cluster is cheaper. With spare capacity, API traffic of models it matches on
      // quality (score at most the self-hosted model's) can move onto it at no extra cost.
      if (!scored || !cl.utilization || *cl.utilization <= 0 ||
          *cl.utilization * 100 >= (__int128)kTargetUtilizationPercent * kNanosPerUnit)
        continue;
      if (!api_rows_read) {
        auto rows = load_token_rows(c, true);
        if (!rows) return Unexpected{rows.error()};
        api_rows = std::move(*rows);
        api_rows_read = true;
      }
      const std::set<std::string> covered(cl.days.begin(), cl.days.end());
      struct Traffic {
        std::string provider, model;
        int64_t tokens = 0;
        __int128 cost = 0;
      };
      std::map<std::string, Traffic> traffic;
      for (const TokenRow& t : api_rows) {
        if (t.self_hosted || t.cost <= 0 || !covered.count(t.day)) continue;
        Decimal s;
        std::string source;
        if (!model_score(c, benchmark, t.model, s, source) || s > own_score) continue;
        Traffic& into = traffic[t.provider + "|" + t.model];
        into.provider = t.provider;
        into.model = t.model;
        into.tokens += t.input + t.output;
        into.cost += t.cost;
      }
      // Dearest tokens first, up to the spare capacity at the target utilisation.
      std::vector<Traffic> ordered;
      for (auto& [key, t] : traffic)
        if (t.tokens > 0) ordered.push_back(t);
      std::sort(ordered.begin(), ordered.end(), [](const Traffic& a, const Traffic& b) {
        return a.cost * b.tokens > b.cost * a.tokens;
      });
      __int128 spare =
          mul_div_round(tokens, (__int128)kTargetUtilizationPercent * 10'000'000, *cl.utilization) -
          tokens;
      __int128 moved_tokens = 0, saved = 0;
      std::string moved;
      for (const Traffic& t : ordered) {
        if (spare <= 0) break;
        const __int128 take = std::min<__int128>(spare, t.tokens);
        saved += mul_div_round(t.cost, take, t.tokens);
        moved_tokens += take;
        spare -= take;
        moved += (moved.empty() ? "" : "; ") + t.model + " (" + t.provider +
                 "): " + tokens_text((int64_t)take) + " of " + tokens_text(t.tokens) + " tokens, " +
                 money_text(mul_div_round(t.cost, take, t.tokens));
      }
      if (saved <= 0) continue;
      r.id = "self-hosted:" + cl.name + "/" + m.model + "/fill";
      r.title = "Move API traffic onto " + where + "'s " + m.model + ": " +
                unit_price_text(own_per_million) + " per 1M tokens self-hosted against " +
                unit_price_text(api_per_million) + " at the cheapest comparable API, at " +
                percent_text((double)*cl.utilization / 1e9) + " GPU utilisation";
      r.action = "Route the API traffic listed in the evidence to the cluster's " + m.model +
                 " endpoint (after checking quality on your own evaluation set)";
      r.monthly_saving = Money{(int64_t)mul_div_round(saved, 30, days)};
      r.confidence = Confidence::kLow;
      r.assumptions.push_back("the cluster's throughput grows with utilisation up to " +
                              std::to_string(kTargetUtilizationPercent) +
                              "%, so the spare capacity costs nothing extra");
      r.assumptions.push_back("the moved models score at most " + m.model + "'s " + benchmark +
                              ", so it can do their work; check on your own data");
      common_evidence();
      r.evidence.push_back({"traffic to move", moved});
      r.evidence.push_back({"tokens moved", tokens_text((int64_t)moved_tokens)});
      out.push_back(std::move(r));
    }
  }
  return out;
}

Result<std::vector<UnitEconomicsRow>> unit_economics(const RecommendContext& c) {
  auto clusters = load_inference_clusters(c);
  if (!clusters) return Unexpected{clusters.error()};
  std::vector<UnitEconomicsRow> out;
  if (clusters->empty()) return out;
  const std::string& benchmark = c.business->quality_benchmark;
  const std::vector<ScoredModel> api = scored_api_models(c, benchmark);
  for (const InferenceCluster& cl : *clusters) {
    for (const SelfHostedModel& m : cl.models) {
      UnitEconomicsRow row;
      row.cluster = cl.name;
      row.model = m.model;
      row.provider = m.provider;
      row.first_day = cl.days.front();
      row.last_day = cl.days.back();
      row.days = (int64_t)cl.days.size();
      row.input_tokens = m.input_tokens;
      row.output_tokens = m.output_tokens;
      row.requests = m.requests;
      row.gpu_cost = m.gpu_cost;
      row.gpu_hours = cl.gpu_hours;
      row.utilization = cl.utilization;
      row.self_hosted_per_million =
          cost_per_million_tokens(m.gpu_cost, m.input_tokens + m.output_tokens);
      Decimal score;
      std::string source;
      const bool scored = model_score(c, benchmark, m.model, score, source);
      if (scored) row.score = score;
      for (const Offer& o : comparable_offers(c, api, benchmark, m, scored, score)) {
        const __int128 per_million =
            cost_per_million_tokens(o.cost, m.input_tokens + m.output_tokens);
        if (row.cheapest_api.empty()) {
          row.cheapest_api = o.model->model + " (" + o.model->price->provider + ")";
          row.cheapest_api_per_million = per_million;
        }
        if (o.same && row.same_model_api.empty()) {
          row.same_model_api = o.model->model + " (" + o.model->price->provider + ")";
          row.same_model_api_per_million = per_million;
        }
      }
      out.push_back(std::move(row));
    }
  }
  return out;
}

}  // namespace aifinops::optimize
