// Self-hosted vs API unit economics (R22): what a million tokens cost on our own inference
// clusters (their whole GPU bill, idle time included, over the tokens they served) next to
// the API prices of comparable models, and the `self-hosted` recommendation kind.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "optimize/recommend.h"

namespace aifinops::optimize {

/// One model served by an inference cluster, over the cluster's covered days.
struct SelfHostedModel {
  std::string model;
  std::string provider;  ///< as the token records name it (vllm, self-hosted, ...)
  int64_t input_tokens = 0, output_tokens = 0, requests = 0;
  __int128 gpu_cost = 0;  ///< the cluster's GPU cost × this model's share of the tokens
};

/// An inference cluster: the GPU instances (cost records with GPU-hours) and the
/// self-hosted token records that share one value of the cluster dimension. Plain value.
struct InferenceCluster {
  std::string name;                    ///< the cluster dimension's value
  std::vector<std::string> resources;  ///< its GPU instances (resource ids), sorted
  /// Days (UTC, "2025-09-15") that have both GPU cost and self-hosted tokens: every figure
  /// below is over these days only, so that cost and tokens cover the same time.
  std::vector<std::string> days;
  __int128 gpu_cost = 0;   ///< effective cost of the GPU instances, nanos
  __int128 gpu_hours = 0;  ///< billed GPU-hours, nanos of an hour
  /// Mean GPU utilisation from telemetry joined to the instances by host (docs/gpu.md),
  /// nanos (1e9 = 100%); unset without telemetry on those days.
  std::optional<__int128> utilization;
  __int128 observed_hours = 0;          ///< GPU time the telemetry covered, nanos of an hour
  std::vector<SelfHostedModel> models;  ///< by tokens, largest first
  int64_t input_tokens = 0, output_tokens = 0;
};

/// The inference clusters in the context's window, by name.
Result<std::vector<InferenceCluster>> load_inference_clusters(const RecommendContext& context);

/// cost × 1,000,000 / tokens, in nanos (the cost of a million tokens); 0 without tokens.
__int128 cost_per_million_tokens(__int128 cost_nanos, int64_t tokens);

/// One line of the unit-economics view (`aifinops recommend --unit-economics`): a model on a
/// cluster over the cluster's covered days, its cost per million tokens beside the cheapest
/// comparable API's and the same model's at an API. Money in nanos; per-million figures are
/// the cost of a million of these tokens (this input/output mix); 0 and empty when none.
struct UnitEconomicsRow {
  std::string cluster, model, provider;
  std::string first_day, last_day;
  int64_t days = 0;
  int64_t input_tokens = 0, output_tokens = 0, requests = 0;
  __int128 gpu_cost = 0, gpu_hours = 0;
  std::optional<__int128> utilization;
  std::optional<Decimal> score;  ///< on the business inputs' quality benchmark
  __int128 self_hosted_per_million = 0;
  std::string cheapest_api;  ///< "gpt-4o-mini (openai)"
  __int128 cheapest_api_per_million = 0;
  std::string same_model_api;  ///< "meta.llama3-1-8b-instruct-v1:0 (bedrock)"
  __int128 same_model_api_per_million = 0;
};

/// Every cluster and model of the window, whether or not a recommendation follows.
Result<std::vector<UnitEconomicsRow>> unit_economics(const RecommendContext& context);

/// The `self-hosted` recommendation kind: per cluster and model, move the traffic to the
/// cheapest comparable API model when that costs less than the cluster, or, when the cluster
/// is cheaper and has spare capacity, move API traffic of models it matches onto it.
Result<std::vector<Recommendation>> recommend_self_hosted(const RecommendContext& context);

}  // namespace aifinops::optimize
