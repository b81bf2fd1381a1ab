// The shipped rate tables the savings estimates rest on: commitment discounts per provider,
// type and term; batch discounts; provisioned-throughput (Azure PTU) offers; public model
// quality scores. Embedded from config/commitment_discounts.yaml and config/model_scores.yaml;
// a user's file with the same shape replaces matching rows (--rates FILE).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/result.h"

namespace aifinops::optimize {

/// A commitment discount: a fraction off the on-demand rate for committing for a term.
struct CommitmentRate {
  std::string provider;  ///< provider key: aws, azure, gcp, ...
  std::string type;      ///< reserved_instance | savings_plan | committed_use
  int term_years = 1;    ///< 1 or 3
  Decimal discount;      ///< 0.37 = 37% off on-demand
  std::string basis;     ///< "published rate", "published maximum", "planning default"
  std::string source;    ///< URL or document, with date
  bool shipped = false;  ///< from the built-in table (a user's --rates row is not)
};

/// A batch-API discount (a fraction off the synchronous price).
struct BatchDiscount {
  std::string provider;
  Decimal discount;
  std::string source;
  bool shipped = false;  ///< from the built-in table (a user's --rates row is not)
};

/// A provisioned-throughput offer for one model (Azure OpenAI PTU).
struct ThroughputOffer {
  std::string provider;
  std::string model;
  int64_t input_tpm_per_unit = 0;   ///< input tokens per minute one unit serves
  int64_t output_token_weight = 1;  ///< one output token counts as this many input tokens
  int64_t minimum_units = 1;
  int64_t increment = 1;
  Decimal monthly_per_unit;         ///< monthly reservation, per unit and month
  Decimal annual_per_unit_month;    ///< annual reservation, per unit and month
  std::string source;
};

/// A public benchmark score of a model.
struct ModelScore {
  std::string model;
  std::vector<std::string> aliases;  ///< other spellings (Bedrock ids, dated snapshots)
  std::string benchmark;             ///< "MMLU"
  Decimal score;                     ///< 0..100
  std::string source;                ///< URL
  std::string date;                  ///< when published
};

/// Every table. Plain value type.
struct RateTables {
  std::vector<CommitmentRate> commitments;
  std::vector<BatchDiscount> batch_discounts;
  std::vector<ThroughputOffer> throughput_offers;
  std::vector<ModelScore> model_scores;
  std::vector<std::string> files;  ///< what was read, in order

  const CommitmentRate* find_commitment(std::string_view provider, std::string_view type,
                                        int term_years) const;
  const BatchDiscount* find_batch_discount(std::string_view provider) const;
  const ThroughputOffer* find_throughput_offer(std::string_view model) const;
  /// A model's score on `benchmark` (case-insensitive), matching the name or an alias with
  /// the catalog's spelling rules (provider prefix and dated suffix dropped).
  const ModelScore* find_score(std::string_view model, std::string_view benchmark) const;
};

/// Reads a rates file (either table file's shape; both keys may appear in one file) and
/// merges it into `into`: a row with the key of an existing row replaces it. Errors name the
/// file, line and key.
Result<void> parse_rate_tables_yaml(std::string_view text, std::string_view file_name,
                                    RateTables& into);

/// The tables compiled into the binary (config/commitment_discounts.yaml,
/// config/model_scores.yaml).
Result<RateTables> builtin_rate_tables();

}  // namespace aifinops::optimize
