// The recommend framework: the list of recommendation kinds (name, description, function)
// written out in one place, the context every kind reads (ledger, catalog, business inputs,
// shipped rate tables, the window), and recommend(), which runs the chosen kinds.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "allocate/tag_policy.h"
#include "analyze/business_inputs.h"
#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"
#include "optimize/rate_tables.h"
#include "optimize/recommendation.h"
#include "pricing/catalog.h"
#include "pricing/gpu_models.h"

namespace aifinops::optimize {

/// What a recommendation kind reads. Plain struct of non-owning pointers; the caller keeps
/// everything alive for the run. The window is [as_of - window_days, as_of).
struct RecommendContext {
  ledger::Ledger* ledger = nullptr;
  const pricing::Catalog* catalog = nullptr;
  const analyze::BusinessInputs* business = nullptr;  ///< never null; empty without a file
  const allocate::TagPolicy* tags = nullptr;          ///< custom dimensions; may be null
  const RateTables* rates = nullptr;                  ///< shipped (or overridden) rate tables
  EpochSeconds as_of = 0;                             ///< end of the window (exclusive)
  int64_t window_days = 30;
  /// The time grain of usage histories (commitment, PTU): kDay answers from the day rollup
  /// (fast); kHour reads the records (exact for hourly data, slower on big ledgers).
  ledger::Grain grain = ledger::Grain::kDay;
  /// self-hosted (docs/unit-economics.md): the dimension GPU instance cost records and the
  /// token records of the models they serve share, naming the inference cluster.
  Attr cluster_dimension = Attr::kProject;
  // idle-gpu and rightsize (docs/gpu.md): their own window, the idle threshold, GPU specs.
  int64_t gpu_window_days = 7;
  Decimal idle_gpu_threshold{100'000'000};             ///< mean utilisation below this is idle (0.1 = 10%)
  const pricing::GpuModelTable* gpu_models = nullptr;  ///< memory and throughput; may be null

  EpochSeconds from() const { return as_of - window_days * 86400; }
  /// A window total scaled to a 30-day month.
  Money per_month(__int128 window_nanos) const;
};

using RecommendFunction = Result<std::vector<Recommendation>> (*)(const RecommendContext&);

/// One kind of recommendation.
struct RecommendationKind {
  std::string_view name;
  std::string_view description;
  RecommendFunction run;
};

/// Every kind, in the order they are documented (docs/recommendations.md).
const std::vector<RecommendationKind>& recommendation_kinds();
/// The kind named `name`; the error lists the known kinds.
Result<const RecommendationKind*> find_recommendation_kind(std::string_view name);

/// Runs `kinds` (every kind when empty) and returns their recommendations, largest monthly
/// saving first (then kind and id, so the order is stable). A kind that fails stops the run
/// with its error, prefixed by its name.
Result<std::vector<Recommendation>> recommend(const RecommendContext& context,
                                              const std::vector<const RecommendationKind*>& kinds);

// --- helpers the kinds share ------------------------------------------------------------

/// A ledger dimension for an attribute (or canonical dimension).
ledger::Dimension attribute_dimension(Attr a);
/// A time dimension of a grain.
ledger::Dimension time_dimension(ledger::Grain grain);
/// An attribute filter.
ledger::Filter attribute_filter(Attr a, std::string value);

/// Runs a grouped query over the context's window.
Result<ledger::QueryResult> query_window(const RecommendContext& context,
                                         std::vector<ledger::Dimension> group_by,
                                         std::vector<ledger::Filter> filters, ledger::Metric metric);

/// A provider's short key for the rate tables: "Amazon Web Services" and "AWS" -> "aws",
/// "Microsoft" and "Azure" -> "azure", "Google Cloud" -> "gcp", "Mistral AI" -> "mistral"; else
/// the lower-cased name.
std::string provider_key(std::string_view provider);

/// Whether a provider (or gateway upstream) name says the model runs on our own GPUs: one of
/// self-hosted, vllm, sglang, tgi, text-generation-inference, ollama, triton, tensorrt-llm,
/// lmdeploy, llama.cpp, localai (any case), alone or followed by '-', '_', '/' or '.' and more
/// ("vllm-llama" is a vLLM upstream). Docs: docs/unit-economics.md.
bool is_self_hosted_provider(std::string_view provider);

/// "$1,234.56" style text (two decimals, rounded) for titles and evidence.
std::string money_text(__int128 nanos);
/// A fraction as a percentage with one decimal: 0.4567 -> "45.7%".
std::string percent_text(double fraction);

/// The end of the last day before today with records: the default as-of, so that a window
/// covers data rather than an incomplete today. No earlier records: the end of today.
Result<EpochSeconds> last_data_day_end(ledger::Ledger& ledger, EpochSeconds now);

}  // namespace aifinops::optimize

namespace aifinops::optimize {

/// One recommendation as a JSON object (docs/recommendations.md): kind, id, subject, title,
/// action, monthly_saving (decimal string), currency, confidence, assumptions, evidence
/// [{label, value}], dimensions {name: value}.
std::string recommendation_json(const Recommendation& r);

}  // namespace aifinops::optimize
