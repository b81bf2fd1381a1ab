#include "optimize/model_fit.h"

#include <map>
#include <cctype>
#include <set>

namespace aifinops::optimize {
namespace {

bool same_benchmark(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return true;
}

struct Usage {
  std::string provider, model;
  pricing::TokenUsage tokens;
  __int128 cost = 0;
};

}  // namespace

bool model_score(const RecommendContext& c, const std::string& benchmark, const std::string& model,
                 Decimal& score, std::string& source) {
  // business.yaml's model_quality is on its quality_benchmark.
  if (same_benchmark(benchmark, c.business->quality_benchmark)) {
    for (const std::string& candidate : pricing::model_name_candidates(model))
      for (const auto& [name, value] : c.business->model_quality)
        for (const std::string& own : pricing::model_name_candidates(name))
          if (own == candidate) {
            score = value;
            source = "business.yaml model_quality";
            return true;
          }
  }
  if (const ModelScore* s = c.rates->find_score(model, benchmark)) {
    score = s->score;
    source = s->source + " (" + s->date + ")";
    return true;
  }
  return false;
}

bool is_api_offer(const pricing::ModelPrice& price) {
  if (!price.prices.input || !price.prices.output) return false;
  // A self-hosted model is registered at price 0 so that its traffic is metered: its cost
  // is the GPU bill, and it is no offer to move a workload to.
  if (is_self_hosted_provider(price.provider)) return false;
  return price.prices.input->nanos > 0 || price.prices.output->nanos > 0;
}

std::vector<ScoredModel> scored_api_models(const RecommendContext& c,
                                           const std::string& benchmark) {
  std::vector<ScoredModel> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& name) {
    if (c.catalog == nullptr) return;
    const pricing::ModelPrice* price = c.catalog->find_model(name, c.as_of - 1);
    if (price == nullptr || !is_api_offer(*price)) return;
    if (!seen.insert(price->model).second) return;
    ScoredModel cand;
    cand.model = price->model;
    cand.price = price;
    if (!model_score(c, benchmark, name, cand.score, cand.score_source)) return;
    cand.table_row = c.rates->find_score(name, benchmark);
    out.push_back(std::move(cand));
  };
  for (const auto& [name, value] : c.business->model_quality) add(name);
  for (const ModelScore& s : c.rates->model_scores) {
    if (!same_benchmark(s.benchmark, benchmark)) continue;
    add(s.model);
    for (const std::string& a : s.aliases) add(a);
  }
  return out;
}

Result<std::vector<Recommendation>> recommend_model_fit(const RecommendContext& c) {
  std::vector<Recommendation> out;
  if (c.business->workloads.empty()) return out;
  analyze::ScopeSet scopes;
  for (const analyze::WorkloadQuality& w : c.business->workloads) {
    auto added = scopes.add(w.scope, w.origin, c.tags);
    if (!added) return Unexpected{added.error()};
  }
  std::vector<ledger::Dimension> group = scopes.dimensions();
  const size_t o = group.size();
  group.push_back(attribute_dimension(Attr::kProviderName));
  group.push_back(attribute_dimension(Attr::kModel));
  std::vector<ledger::Filter> filters = {attribute_filter(Attr::kChargeCategory, "Usage")};
  const ledger::Metric metrics[] = {ledger::Metric::kInputTokens, ledger::Metric::kCachedTokens,
                                    ledger::Metric::kOutputTokens, ledger::Metric::kEffectiveCost};
  // workload index -> provider|model -> usage
  std::vector<std::map<std::string, Usage>> usage(c.business->workloads.size());
  for (ledger::Metric metric : metrics) {
    auto rows = query_window(c, group, filters, metric);
    if (!rows) return Unexpected{rows.error()};
    for (const ledger::QueryRow& row : rows->rows) {
      if (row.keys[o + 1] == "(none)") continue;
      for (size_t w = 0; w < usage.size(); ++w) {
        if (!scopes.matches(w, row.keys)) continue;
        Usage& u = usage[w][row.keys[o] + "|" + row.keys[o + 1]];
        u.provider = row.keys[o];
        u.model = row.keys[o + 1];
        switch (metric) {
          case ledger::Metric::kInputTokens: u.tokens.input += (int64_t)row.value; break;
          case ledger::Metric::kCachedTokens: u.tokens.cached_input += (int64_t)row.value; break;
          case ledger::Metric::kOutputTokens: u.tokens.output += (int64_t)row.value; break;
          default: u.cost += row.value; break;
        }
      }
    }
  }
  for (size_t w = 0; w < usage.size(); ++w) {
    const analyze::WorkloadQuality& workload = c.business->workloads[w];
    const std::string& benchmark =
        workload.benchmark.empty() ? c.business->quality_benchmark : workload.benchmark;
    const std::vector<ScoredModel> all = scored_api_models(c, benchmark);
    for (const auto& [key, u] : usage[w]) {
      if (u.tokens.input + u.tokens.output <= 0) continue;
      const pricing::ModelPrice* current =
          c.catalog != nullptr ? c.catalog->find_model(u.model, c.as_of - 1) : nullptr;
      // The workload's tokens at the current model's catalog price; the ledger's cost when
      // the model is not in the catalog.
      __int128 current_cost = current != nullptr ? (__int128)pricing::token_cost(*current, u.tokens).nanos : u.cost;
      if (current_cost <= 0) continue;
      const ScoredModel* best = nullptr;
      __int128 best_cost = 0;
      for (const ScoredModel& cand : all) {
        if (cand.score < workload.required_quality) continue;
        if (current != nullptr && cand.price->model == current->model) continue;
        if (current != nullptr && !current->mode.empty() && !cand.price->mode.empty() &&
            cand.price->mode != current->mode)
          continue;
        __int128 cost = pricing::token_cost(*cand.price, u.tokens).nanos;
        if (best == nullptr || cost < best_cost || (cost == best_cost && cand.model < best->model)) {
          best = &cand;
          best_cost = cost;
        }
      }
      if (best == nullptr || best_cost >= current_cost) continue;
      Decimal current_score;
      std::string current_source;
      bool current_scored = model_score(c, benchmark, u.model, current_score, current_source);
      Recommendation r;
      r.kind = "model-fit";
      r.id = "model-fit:" + workload.name + "/" + u.model;
      r.subject = "workload " + workload.name + " on " + u.model;
      r.title = "Move workload " + workload.name + " from " + u.model + " to " + best->model;
      r.action = "Switch " + workload.name + " (" + analyze::scope_words(workload.scope) + ") to " +
                 best->model + " after checking it on the workload's own evaluation set";
      r.monthly_saving = c.per_month(current_cost - best_cost);
      r.confidence = Confidence::kMedium;
      r.assumptions.push_back("a public " + benchmark +
                              " score stands for quality on this workload; check on your own data");
      r.assumptions.push_back("the same token mix at catalog prices (input, cached input, output)");
      r.evidence.push_back({"required " + benchmark, format_decimal(workload.required_quality.nanos) + " (" +
                                                         workload.origin + ")"});
      r.evidence.push_back({"current model " + benchmark,
                            current_scored ? format_decimal(current_score.nanos) + " (" + current_source + ")"
                                           : std::string("unknown")});
      r.evidence.push_back({best->model + " " + benchmark,
                            format_decimal(best->score.nanos) + " (" + best->score_source + ")"});
      r.evidence.push_back({"tokens in window", std::to_string(u.tokens.input) + " input (" +
                                                    std::to_string(u.tokens.cached_input) + " cached), " +
                                                    std::to_string(u.tokens.output) + " output"});
      r.evidence.push_back({"ledger cost in window", money_text(u.cost)});
      r.evidence.push_back({"at catalog prices: " + u.model, money_text(current_cost)});
      r.evidence.push_back({"at catalog prices: " + best->model, money_text(best_cost)});
      std::string filters;
      for (const auto& [name, value] : scopes.terms(w)) filters += " --filter " + name + "=\"" + value + "\"";
      r.evidence.push_back({"records", "aifinops report --by model" + filters + " --filter model=\"" + u.model +
                                           "\" --from " + format_date(c.from()) + " --to " +
                                           format_date(c.as_of)});
      r.dimensions = scopes.terms(w);
      out.push_back(std::move(r));
    }
  }
  return out;
}

}  // namespace aifinops::optimize
