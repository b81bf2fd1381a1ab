#include "optimize/recommend.h"

#include <algorithm>
#include <cmath>

#include "core/json_text.h"
#include "optimize/batch.h"
#include "optimize/cache.h"
#include "optimize/commitment.h"
#include "optimize/idle_gpu.h"
#include "optimize/model_fit.h"
#include "optimize/rightsize.h"
#include "optimize/self_hosted.h"
#include "optimize/waste.h"

namespace aifinops::optimize {

const std::vector<RecommendationKind>& recommendation_kinds() {
  // The list of kinds, written out in one place: add a row to add a kind.
  static const std::vector<RecommendationKind> kinds = {
      {"idle-gpu",
       "GPUs under the utilisation threshold over the GPU window: wasted cost and a shutdown list "
       "that honours shutdown_eligible",
       &recommend_idle_gpu},
      {"rightsize", "GPU hosts whose peak memory and compute fit a cheaper GPU instance, or no GPU",
       &recommend_rightsize},
      {"commitment",
       "Reserved instances, savings plans or CUDs sized to the on-demand usage history (1- and "
       "3-year terms), and Azure PTU sizing from token throughput",
       &recommend_commitments},
      {"model-fit", "A cheaper model that still meets a workload's required quality score",
       &recommend_model_fit},
      {"cache", "Repeated requests an exact response cache would answer", &recommend_cache},
      {"batch", "Non-realtime traffic that would cost less through the provider's batch API",
       &recommend_batch},
      {"self-hosted",
       "Self-hosted inference clusters against API prices per million tokens: move the traffic to "
       "a "
       "comparable API model when that is cheaper, or API traffic onto a cheaper cluster's spare "
       "capacity",
       &recommend_self_hosted},
      {"waste",
       "Cross-region data transfer, hot storage without access, and model endpoints with cost "
       "but no traffic",
       &recommend_waste},
  };
  return kinds;
}

Result<const RecommendationKind*> find_recommendation_kind(std::string_view name) {
  std::string known;
  for (const RecommendationKind& k : recommendation_kinds()) {
    if (k.name == name) return &k;
    known += (known.empty() ? "" : ", ") + std::string(k.name);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown recommendation kind \"" + std::string(name) + "\" (known: " + known + ")");
}

Money RecommendContext::per_month(__int128 window_nanos) const {
  if (window_days <= 0) return Money{0};
  return Money{(int64_t)mul_div_round(window_nanos, 30, window_days)};
}

Result<std::vector<Recommendation>> recommend(const RecommendContext& context,
                                              const std::vector<const RecommendationKind*>& kinds) {
  std::vector<const RecommendationKind*> run = kinds;
  if (run.empty())
    for (const RecommendationKind& k : recommendation_kinds()) run.push_back(&k);
  std::vector<Recommendation> out;
  for (const RecommendationKind* kind : run) {
    auto found = kind->run(context);
    if (!found)
      return make_error(found.error().code,
                        std::string(kind->name) + ": " + found.error().message);
    for (Recommendation& r : *found) out.push_back(std::move(r));
  }
  std::stable_sort(out.begin(), out.end(), [](const Recommendation& a, const Recommendation& b) {
    if (a.monthly_saving != b.monthly_saving) return a.monthly_saving > b.monthly_saving;
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.id < b.id;
  });
  return out;
}

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
  d.label = grain == ledger::Grain::kHour ? "hour" : grain == ledger::Grain::kMonth ? "month" : "day";
  return d;
}

ledger::Filter attribute_filter(Attr a, std::string value) {
  return ledger::Filter{attribute_dimension(a), std::move(value)};
}

Result<ledger::QueryResult> query_window(const RecommendContext& context,
                                         std::vector<ledger::Dimension> group_by,
                                         std::vector<ledger::Filter> filters, ledger::Metric metric) {
  ledger::QuerySpec spec;
  spec.from = context.from();
  spec.to = context.as_of;
  spec.group_by = std::move(group_by);
  spec.filters = std::move(filters);
  spec.metric = metric;
  return context.ledger->query(spec);
}

std::string provider_key(std::string_view provider) {
  std::string p(provider);
  for (char& c : p)
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  if (p == "amazon web services" || p == "aws" || p == "amazon") return "aws";
  if (p == "microsoft" || p == "azure" || p == "microsoft azure" || p == "azure_ai" ||
      p == "azure openai")
    return "azure";
  if (p == "google cloud" || p == "google" || p == "gcp" || p == "google cloud platform" ||
      p == "vertex_ai" || p == "gemini")
    return "gcp";
  if (p == "mistral ai" || p == "mistral_ai" || p == "mistralai") return "mistral";
  return p;
}

bool is_self_hosted_provider(std::string_view provider) {
  static constexpr std::string_view kEngines[] = {"self-hosted",
                                                  "self_hosted",
                                                  "selfhosted",
                                                  "vllm",
                                                  "sglang",
                                                  "tgi",
                                                  "text-generation-inference",
                                                  "ollama",
                                                  "triton",
                                                  "tensorrt-llm",
                                                  "trtllm",
                                                  "lmdeploy",
                                                  "llama.cpp",
                                                  "llamacpp",
                                                  "localai"};
  std::string p(provider);
  for (char& c : p)
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  for (std::string_view e : kEngines) {
    if (p == e) return true;
    if (p.size() > e.size() && p.starts_with(e)) {
      char next = p[e.size()];
      if (next == '-' || next == '_' || next == '/' || next == '.') return true;
    }
  }
  return false;
}

std::string money_text(__int128 nanos) {
  bool negative = nanos < 0;
  std::string digits = format_decimal_fixed(negative ? -nanos : nanos, 2);
  // Thousands separators on the whole part.
  size_t dot = digits.find('.');
  std::string whole = digits.substr(0, dot), grouped;
  for (size_t i = 0; i < whole.size(); ++i) {
    if (i > 0 && (whole.size() - i) % 3 == 0) grouped += ',';
    grouped += whole[i];
  }
  return std::string(negative ? "-$" : "$") + grouped + digits.substr(dot);
}

std::string percent_text(double fraction) {
  double v = std::round(fraction * 1000.0) / 10.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", v == 0.0 ? 0.0 : v);
  return buf;
}

Result<EpochSeconds> last_data_day_end(ledger::Ledger& ledger, EpochSeconds now) {
  ledger::QuerySpec spec;
  spec.group_by.push_back(time_dimension(ledger::Grain::kDay));
  spec.metric = ledger::Metric::kEffectiveCost;
  spec.to = floor_day(now);  // today is incomplete: left out while earlier days have data
  auto rows = ledger.query(spec);
  if (!rows) return Unexpected{rows.error()};
  if (rows->rows.empty()) return floor_day(now) + 86400;
  auto last = parse_timestamp(rows->rows.back().keys[0]);
  if (!last) return floor_day(now);
  return floor_day(*last) + 86400;
}

}  // namespace aifinops::optimize

namespace aifinops::optimize {

std::string recommendation_json(const Recommendation& r) {
  std::string s = "{\"kind\":";
  append_json_string(s, r.kind);
  s += ",\"id\":";
  append_json_string(s, r.id);
  s += ",\"subject\":";
  append_json_string(s, r.subject);
  s += ",\"title\":";
  append_json_string(s, r.title);
  s += ",\"action\":";
  append_json_string(s, r.action);
  s += ",\"monthly_saving\":\"" + format_decimal_fixed(r.monthly_saving.nanos, 2) + "\",\"currency\":";
  append_json_string(s, r.currency);
  s += ",\"confidence\":\"" + std::string(confidence_name(r.confidence)) + "\",\"assumptions\":[";
  for (size_t i = 0; i < r.assumptions.size(); ++i) {
    if (i > 0) s += ',';
    append_json_string(s, r.assumptions[i]);
  }
  s += "],\"evidence\":[";
  for (size_t i = 0; i < r.evidence.size(); ++i) {
    s += i > 0 ? ",{\"label\":" : "{\"label\":";
    append_json_string(s, r.evidence[i].label);
    s += ",\"value\":";
    append_json_string(s, r.evidence[i].value);
    s += '}';
  }
  s += "],\"dimensions\":{";
  for (size_t i = 0; i < r.dimensions.size(); ++i) {
    if (i > 0) s += ',';
    append_json_string(s, r.dimensions[i].first);
    s += ':';
    append_json_string(s, r.dimensions[i].second);
  }
  s += "}}";
  return s;
}

}  // namespace aifinops::optimize
