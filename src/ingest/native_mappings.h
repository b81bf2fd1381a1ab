// Reference tables for mapping native cloud exports to FOCUS (service categories, Azure
// regions, services and units of measure) and the AI recognisers (models, GPUs) they share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace aifinops::ingest {

/// One row of Microsoft's open data Services table.
struct AzureService {
  std::string service_name;
  std::string category;
  std::string subcategory;
};

/// One unit of measure from Microsoft's open data PricingUnits table.
struct AzurePricingUnit {
  int64_t block_size = 1;  ///< "10K" → 10000: the export's quantity counts blocks
  std::string unit;        ///< FOCUS-style distinct unit ("Hours", "GB", "Units")
};

/// The mapping tables of config/focus-mappings/, parsed once per ingest and then read-only
/// (thread-safe for reads). Keys are matched case-insensitively.
class FocusMappings {
 public:
  /// The tables compiled into the binary from config/focus-mappings/.
  static Result<FocusMappings> builtin();
  /// The same tables read from a directory holding files with the same names (for a
  /// newer copy than the one built in). Missing files are an error naming them.
  static Result<FocusMappings> from_directory(const std::string& directory);

  /// FOCUS ServiceCategory of an AWS product code ("AmazonBedrock"); "Other" when unknown.
  std::string_view aws_category(std::string_view product_code) const;
  /// Of a Google Cloud service description ("Vertex AI"); "Other" when unknown.
  std::string_view gcp_category(std::string_view service_description) const;
  /// Of an OCI product/service ("COMPUTE", "GENERATIVE_AI"); "Other" when unknown.
  std::string_view oci_category(std::string_view service) const;
  /// An Azure service from the resource type ("microsoft.storage/storageaccounts"), else
  /// from the consumed service ("Microsoft.Storage"); nullptr when neither is known.
  const AzureService* azure_service(std::string_view resource_type,
                                    std::string_view consumed_service) const;
  /// Category from the FinOps Foundation converter's table (consumed service), or "".
  std::string_view azure_category(std::string_view consumed_service) const;
  /// Azure region id and name ("uksouth", "UK South") from an export's spelling
  /// ("UK South", "uksouth", "gbs"); false when unknown.
  bool azure_region(std::string_view original, std::string& id, std::string& name) const;
  /// The unit of measure's block size and unit; nullptr when unknown.
  const AzurePricingUnit* azure_unit(std::string_view unit_of_measure) const;

 private:
  Result<void> load(std::string_view name, std::string_view text);

  std::unordered_map<std::string, std::string> aws_, gcp_, oci_, azure_category_;
  std::vector<std::pair<std::string, std::string>> aws_prefixes_;  // "AWS App2Container*"
  std::unordered_map<std::string, AzureService> azure_by_type_, azure_by_consumed_;
  std::unordered_map<std::string, std::pair<std::string, std::string>> azure_regions_;
  std::unordered_map<std::string, AzurePricingUnit> azure_units_;
};

/// Splits CSV text held in memory (RFC 4180 quoting) into rows of fields. For the small
/// reference tables only; big inputs go through CsvReader.
std::vector<std::vector<std::string>> split_csv_text(std::string_view text);

/// The GPU model named in an instance type, SKU or meter text: "p4d.24xlarge" → "A100",
/// "Standard_NC24ads_A100_v4" → "A100", "Nvidia Tesla T4 GPU" → "T4", "BM.GPU.H100.8" →
/// "H100". Empty when none is recognised. Instance families map by the providers'
/// published specifications (docs/cloud-exports.md lists them).
std::string gpu_type_from_text(std::string_view text);

/// Which part of a token meter a usage line counts.
enum class TokenMeter : uint8_t { kNone, kInput, kCachedInput, kCacheWrite, kOutput };

/// A model and token direction read from a provider's usage type or meter name.
struct ModelMeter {
  std::string model;  ///< lower-case, e.g. "claude-3-5-sonnet", "gpt-4o", "gemini-1.5-pro"
  TokenMeter tokens = TokenMeter::kNone;
  int64_t tokens_per_unit = 1;  ///< the meter counts 1K or 1M tokens per unit
};

/// Bedrock usage types: "USE1-Claude3.5Sonnet-input-tokens",
/// "USW2-anthropic.claude-3-haiku-20240307-v1:0-output-tokens" (region prefix, model,
/// direction suffix). Empty model when the usage type names none.
ModelMeter bedrock_model_meter(std::string_view usage_type);
/// Azure OpenAI meter names: "gpt-4o-0806-Inp-glbl Tokens", "gpt 4.1 Inp glbl Tokens",
/// "5.4 mini cd Inp Gl 1M Tokens", "text-embedding-3-large-glbl Tokens".
ModelMeter azure_openai_model_meter(std::string_view meter_name);
/// Vertex AI SKU descriptions: "Gemini 1.5 Pro Input Text", "Claude 3.5 Sonnet Output
/// Tokens", "Gemini 2.0 Flash cached input tokens".
ModelMeter vertex_model_meter(std::string_view sku_description);

/// ASCII case-insensitive "contains".
bool contains_nocase(std::string_view hay, std::string_view needle);
/// ASCII lower-case copy.
std::string to_lower(std::string_view s);

}  // namespace aifinops::ingest
