// The price catalog's YAML form (config/prices.yaml): reading it into a pricing::Catalog,
// writing one out, and the default catalog compiled into the binary.
//
// Shape (every price is a decimal per 1M tokens, or per hour for instances; numbers are read
// from their text, never through a binary float):
//
//   # comment: where the prices come from and when
//   currency: USD                  # optional, default USD; entries may override it
//   effective_from: 2026-07-24     # optional default for entries that set none
//   source: "LiteLLM ..."          # optional default for entries that set none
//   models:
//     - model: gpt-4o-mini         # required; the name callers send
//       provider: openai
//       mode: chat                 # chat, completion, embedding, responses, ...
//       effective_from: 2024-07-18 # date (midnight UTC) or RFC 3339 timestamp
//       input: 0.15                # at least one of input and output is required
//       cached_input: 0.075        # cache read; defaults to input when unset
//       cache_write: 0.1875        # cache creation; defaults to input when unset
//       output: 0.60
//       reasoning: 0.60            # defaults to output when unset
//       batch_discount: 0.5        # fraction off for batch use, 0..1
//       max_output_tokens: 16384
//       tiers: [{above_input_tokens: 200000, input: 6, output: 22.5}]
//       source: "LiteLLM model_prices_and_context_window.json, 2026-07-24"
//   gpu_instances:
//     - sku: p5.48xlarge           # required; matched case-insensitively
//       provider: aws
//       gpu_type: H100 80GB        # empty for CPU-only instances
//       gpus: 8
//       effective_from: 2024-01-01
//       on_demand: 98.32           # per hour; at least one of the three is required
//       reserved: 62.92            # per hour, 1-year commitment
//       spot: 39.33                # per hour, typical
//       source: "..."
//
// Unknown keys are errors (a typo must not silently drop a price). Errors name the file, the
// line and the key path: `prices.yaml:7: models[0].input: "abc" is not a decimal number`.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "pricing/catalog.h"

namespace aifinops::config {

/// Parses catalog YAML. `file_name` is used in error messages only.
Result<pricing::Catalog> parse_catalog_yaml(std::string_view text, std::string_view file_name);

/// Writes the catalog as YAML that parse_catalog_yaml reads back to equal prices (versions,
/// i.e. ledger row ids, are not written). `header_comment` becomes leading "# " lines.
/// Entries come in name order, then effective-date order. `effective_from`, `source` and
/// `currency` are written once at the top when every entry shares them.
std::string to_catalog_yaml(const pricing::Catalog& catalog, std::string_view header_comment);

/// Reads and parses a catalog YAML file.
Result<pricing::Catalog> load_catalog_yaml_file(const std::string& path);

/// The catalog compiled into the binary (config/prices.yaml and config/gpu_instances.yaml
/// at build time), parsed on first use. Thread-safe (function-local static); lives until exit.
/// The embedded files are checked by tests, so a parse failure here is a build defect and
/// aborts with a message.
const pricing::Catalog& default_catalog();

}  // namespace aifinops::config
