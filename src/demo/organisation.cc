#include "demo/organisation.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string_view>

#include "core/money.h"

namespace aifinops::demo {
namespace {

constexpr int64_t kDay = 86'400;
constexpr int64_t kNanosPerHour = kNanosPerUnit;  // hours are Decimals: 1 h = 1e9 nanos

// ------------------------------------------------------------------------------------
// Deterministic randomness. std::*_distribution differ between standard libraries, so
// only the engine (fully specified by the standard) is used; the rest is plain arithmetic
// (no libm calls), which gives the same bytes on every platform.
// ------------------------------------------------------------------------------------
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n); the modulo bias is irrelevant at these sizes.
  int64_t below(int64_t n) { return static_cast<int64_t>(engine_() % static_cast<uint64_t>(n)); }
  bool chance(double p) { return uniform() < p; }
  /// Approximately standard normal (Irwin-Hall: sum of 12 uniforms minus 6), in [-6, 6].
  double normal() {
    double sum = 0;
    for (int i = 0; i < 12; ++i) sum += uniform();
    return sum - 6.0;
  }
  /// 1 + sd × normal, kept positive: multiplicative day-to-day noise.
  double noise(double sd) { return std::max(0.3, 1.0 + sd * normal()); }

 private:
  std::mt19937_64 engine_;
};

/// FNV-1a: stable ids derived from names, so resource ids do not change with the seed.
uint64_t stable_hash(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// splitmix64's finaliser: spreads every input bit over the output, so that ids of
/// similar names ("node-01", "node-02") do not look alike.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string hex_id(std::string_view text, size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t seed = stable_hash(text);
  std::string out;
  uint64_t h = 0;
  for (size_t i = 0; i < digits; ++i) {
    if (i % 16 == 0) h = mix(seed + i);
    out += kHex[h & 15];
    h >>= 4;
  }
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

int64_t round_to_int(double x) { return static_cast<int64_t>(std::llround(x)); }

Decimal decimal(std::string_view literal) { return *parse_decimal(literal); }

// ------------------------------------------------------------------------------------
// The organisation. Tables first; the generator below only walks them day by day.
// ------------------------------------------------------------------------------------

enum class Env { kProduction, kStaging, kDevelopment };

std::string_view env_name(Env env) {
  switch (env) {
    case Env::kProduction:
      return "production";
    case Env::kStaging:
      return "staging";
    case Env::kDevelopment:
      return "development";
  }
  return "";
}

/// How completely a resource is tagged. Real estates always have some of each.
enum class Tagging { kFull, kProjectOnly, kUntagged };

/// Weekly shape of usage: user-facing traffic dips at weekends, developer tools nearly
/// stop, batch pipelines run every day.
enum class Rhythm { kInteractive, kWeekdays, kBatch };

double rhythm_factor(Rhythm rhythm, int weekday) {  // weekday: 0 = Monday
  if (weekday < 5 || rhythm == Rhythm::kBatch) return 1.0;
  if (rhythm == Rhythm::kInteractive) return weekday == 5 ? 0.62 : 0.55;
  return weekday == 5 ? 0.15 : 0.10;
}

enum class Cloud { kAws, kAzure, kGcp, kOpenAi, kAnthropic };

/// Raw tag keys as each provider's users happen to spell them; the tag policy's aliases
/// map them back to one dimension.
struct TagKeys {
  std::string_view team, project, environment, cost_center, workload, criticality, purpose;
};

struct BillingAccount {
  Cloud cloud;
  std::string_view provider;        // ProviderName (also ServiceProviderName)
  std::string_view publisher;       // PublisherName of first-party services
  std::string_view invoice_issuer;  // InvoiceIssuerName
  std::string_view id, name;        // BillingAccountId / Name
  std::string_view invoice_code;    // InvoiceId prefix
  // Cloud sub-accounts: one for production, one for everything else. SaaS providers
  // (OpenAI projects, Anthropic workspaces) get one per team instead.
  std::string_view prod_sub_id, prod_sub_name, dev_sub_id, dev_sub_name;
  std::string_view region_id, region_name;
  TagKeys tag_keys;
};

// clang-format off
constexpr BillingAccount kAccounts[] = {
    {Cloud::kAws, "AWS", "AWS", "Amazon Web Services, Inc.", "730335218211", "northwind-payer",
     "AWS", "418295731650", "northwind-ml-prod", "592017734482", "northwind-ml-dev",
     "us-east-1", "US East (N. Virginia)",
     {"Team", "Project", "Environment", "CostCenter", "Workload", "Criticality", "Purpose"}},
    {Cloud::kAzure, "Microsoft", "Microsoft", "Microsoft Corporation",
     "6a4c6e1d-2f0b-4f7e-9b61-3c2d8e5a9f10:0b9d3c51-7e24-4a8f-b6d3-5f1e2a7c8d94_2019-05-31",
     "Northwind Labs EA", "AZ", "b3f1c2d4-8a6e-4c1b-9d2f-7e5a3b1c0d98", "sub-ai-prod",
     "c7e2a9f0-1b3d-4e5f-8a7c-6d9e0f1a2b3c", "sub-ai-sandbox", "eastus", "East US",
     {"team", "project", "env", "cost-center", "workload", "criticality", "purpose"}},
    {Cloud::kGcp, "Google Cloud", "Google", "Google LLC", "01F3A2-7C9D4E-B51A08",
     "Northwind Labs billing", "GCP", "nw-prod-318204", "nw-prod", "nw-research-77410",
     "nw-research", "us-central1", "Iowa",
     {"owner-team", "project", "environment", "cost-center", "workload", "criticality", "purpose"}},
    {Cloud::kOpenAi, "OpenAI", "OpenAI", "OpenAI, L.L.C.", "org-Nw4kP2qT8vX1yZ6bR3mD9sLc",
     "Northwind Labs", "OAI", "", "", "", "", "", "",
     {"team", "Project", "env", "CostCenter", "Workload", "Criticality", "Purpose"}},
    {Cloud::kAnthropic, "Anthropic", "Anthropic", "Anthropic, PBC",
     "org_01JNW8H3K5M7P9R2T4V6X8Z0B1", "Northwind Labs", "ANT", "", "", "", "", "", "",
     {"Team", "project", "Environment", "cost-center", "Workload", "Criticality", "Purpose"}},
};
// clang-format on

const BillingAccount& account_of(Cloud cloud) { return kAccounts[static_cast<int>(cloud)]; }

struct Team {
  std::string_view name;
  std::string_view cost_center;
};

constexpr Team kTeams[] = {
    {"support-bot", "CC-1042"}, {"search", "CC-2001"},        {"ml-research", "CC-3100"},
    {"code-assist", "CC-2002"}, {"data-platform", "CC-4200"}, {"growth", "CC-5300"},
};

std::string_view cost_center_of(std::string_view team) {
  for (const Team& t : kTeams) {
    if (t.name == team) return t.cost_center;
  }
  return "";
}

/// The ways an LLM is bought: directly from its lab, or through a cloud's model service.
enum class LlmRoute { kOpenAiApi, kClaudeApi, kAzureOpenAi, kBedrock, kVertexAi };

struct LlmRouteInfo {
  Cloud cloud;
  std::string_view service;
  std::string_view region_id, region_name;
  std::string_view resource_type;
};

constexpr LlmRouteInfo kLlmRoutes[] = {
    {Cloud::kOpenAi, "OpenAI API", "", "", "API Key"},
    {Cloud::kAnthropic, "Claude API", "", "", "API Key"},
    {Cloud::kAzure, "Azure OpenAI Service", "swedencentral", "Sweden Central",
     "Cognitive Services account"},
    {Cloud::kAws, "Amazon Bedrock", "us-east-1", "US East (N. Virginia)", "Inference profile"},
    {Cloud::kGcp, "Vertex AI", "us-central1", "Iowa", "Model endpoint"},
};

/// One application's use of one model. Volumes are prompt tokens on a weekday at the
/// start of the period, in millions; they grow ~8% a month.
struct LlmUse {
  std::string_view team, project;
  Env env;
  LlmRoute route;
  std::string_view model;  // catalog name
  double prompt_mtokens;
  double cached_share;  // of prompt tokens read from the provider's prompt cache
  double output_ratio;  // output tokens per prompt token
  Rhythm rhythm;
  Tagging tagging;
  bool runaway = false;  // the target of the injected runaway-loop anomaly
  /// Tagged purpose "batch_processing": offline work sent as synchronous calls, which the
  /// `batch` recommendation moves to the provider's batch API.
  bool batch_purpose = false;
};

constexpr Env P = Env::kProduction, S = Env::kStaging, D = Env::kDevelopment;
using enum LlmRoute;
using enum Rhythm;
using enum Tagging;

constexpr LlmUse kLlmUses[] = {
    {"support-bot", "support-chatbot", P, kClaudeApi, "claude-sonnet-4-5", 220, 0.55, 0.12,
     kInteractive, kFull, true},
    {"support-bot", "support-chatbot", P, kOpenAiApi, "text-embedding-3-small", 300, 0, 0,
     kInteractive, kFull},
    {"support-bot", "ticket-triage", P, kAzureOpenAi, "gpt-4o-mini", 400, 0.30, 0.05, kInteractive,
     kFull},
    {"support-bot", "support-chatbot", S, kClaudeApi, "claude-haiku-4-5", 20, 0.40, 0.15, kWeekdays,
     kFull},
    {"search", "semantic-search", P, kOpenAiApi, "text-embedding-3-small", 1500, 0, 0, kBatch,
     kFull},
    {"search", "semantic-search", P, kOpenAiApi, "gpt-4o-mini", 500, 0.40, 0.06, kInteractive,
     kFull},
    {"search", "query-rewrite", P, kVertexAi, "gemini-2.5-flash", 300, 0.20, 0.08, kInteractive,
     kFull},
    {"code-assist", "code-copilot", P, kClaudeApi, "claude-sonnet-4-5", 350, 0.70, 0.08, kWeekdays,
     kFull},
    {"code-assist", "pr-review-bot", P, kOpenAiApi, "o3", 60, 0.20, 0.25, kWeekdays, kFull},
    {"code-assist", "code-copilot", D, kOpenAiApi, "gpt-4o", 15, 0.10, 0.20, kWeekdays, kFull},
    {"code-assist", "code-copilot", S, kBedrock, "claude-haiku-4-5", 30, 0, 0.15, kWeekdays, kFull},
    {"growth", "onboarding-assistant", P, kAzureOpenAi, "gpt-4o", 80, 0.30, 0.15, kInteractive,
     kFull},
    {"growth", "onboarding-assistant", P, kAzureOpenAi, "gpt-4o-mini", 100, 0.20, 0.10,
     kInteractive, kProjectOnly},
    {"growth", "email-personalisation", P, kBedrock, "claude-haiku-4-5", 120, 0, 0.30, kBatch,
     kFull},
    {"ml-research", "eval-harness", D, kOpenAiApi, "o3", 20, 0, 0.30, kWeekdays, kFull},
    {"ml-research", "eval-harness", D, kClaudeApi, "claude-sonnet-4-5", 15, 0, 0.20, kWeekdays,
     kFull},
    // Synthetic training data, labelled overnight with synchronous calls (the batch API would do).
    {"ml-research", "foundation-model", D, kVertexAi, "gemini-2.5-flash", 200, 0, 0.50, kBatch,
     kFull, false, true},
    {"data-platform", "feature-store", P, kBedrock, "claude-haiku-4-5", 50, 0, 0.20, kBatch, kFull},
    {"data-platform", "data-lake", P, kOpenAiApi, "text-embedding-3-small", 800, 0, 0, kBatch,
     kFull},
    // Staging and development copies of the production apps.
    {"support-bot", "ticket-triage", S, kAzureOpenAi, "gpt-4o-mini", 15, 0.30, 0.05, kWeekdays,
     kFull},
    {"search", "query-rewrite", S, kVertexAi, "gemini-2.5-flash", 20, 0.20, 0.08, kWeekdays, kFull},
    {"code-assist", "pr-review-bot", S, kOpenAiApi, "o3", 5, 0.20, 0.25, kWeekdays, kFull},
    {"growth", "email-personalisation", S, kBedrock, "claude-haiku-4-5", 8, 0, 0.30, kWeekdays,
     kFull},
    {"data-platform", "data-lake", D, kOpenAiApi, "gpt-4o-mini", 30, 0.10, 0.10, kWeekdays, kFull},
    // Shadow AI: an old FAQ bot nobody tagged, and a hackathon key with a project only.
    {"", "legacy-faq-bot", P, kAzureOpenAi, "gpt-4o", 40, 0, 0.10, kInteractive, kUntagged},
    {"", "hackathon", D, kOpenAiApi, "gpt-4o", 10, 0, 0.25, kWeekdays, kProjectOnly},
};

/// When instances of a group run.
enum class Schedule {
  kAlwaysOn,      // 24 h a day (services, committed capacity, forgotten dev boxes)
  kTrainingRuns,  // whole days in runs of 1-3 weeks with gaps between
  kWorkHours,     // 8-12 h on weekdays
  kOccasional,    // a few hours on about one weekday in three
};

enum class Commitment { kOnDemand, kSavingsPlan, kReservation, kCommittedUse };

/// A group of identical instances. Node counts move linearly from start to end (growth).
struct InstanceGroup {
  std::string_view team, project;
  Env env;
  Cloud cloud;
  std::string_view sku;
  int nodes_start, nodes_end;
  std::string_view name;      // ResourceName prefix
  std::string_view workload;  // training | inference | "" (not an AI workload)
  Schedule schedule;
  Commitment commitment;
  Tagging tagging;
  bool shutdown_eligible = false;
  bool left_running = false;  // the target of the injected "left running" anomaly
};

using enum Schedule;
using enum Commitment;
using enum Cloud;

constexpr InstanceGroup kInstanceGroups[] = {
    // Training (H100 / A100 class)
    {"ml-research", "foundation-model", P, kAws, "p5.48xlarge", 2, 2, "fm-train-p5", "training",
     kAlwaysOn, kSavingsPlan, kFull},
    {"ml-research", "foundation-model", P, kAws, "p5.48xlarge", 2, 2, "fm-burst-p5", "training",
     kTrainingRuns, kOnDemand, kFull},
    {"code-assist", "code-copilot", P, kAzure, "Standard_ND96isr_H100_v5", 1, 1, "copilot-ft",
     "training", kAlwaysOn, kReservation, kFull},
    {"search", "ranking-model", P, kGcp, "a3-highgpu-8g", 1, 1, "ranker-train", "training",
     kTrainingRuns, kOnDemand, kFull},
    {"search", "ranking-model", D, kAws, "p4d.24xlarge", 2, 2, "search-ranker-dev", "training",
     kOccasional, kOnDemand, kFull, true, true},
    // Inference (L4 / A10G / A100)
    {"support-bot", "support-chatbot", P, kAws, "g6.xlarge", 3, 5, "intent-l4", "inference",
     kAlwaysOn, kOnDemand, kFull},
    {"search", "semantic-search", P, kAws, "g5.12xlarge", 2, 3, "reranker-a10g", "inference",
     kAlwaysOn, kOnDemand, kFull},
    {"search", "semantic-search", P, kGcp, "g2-standard-8", 2, 2, "embed-l4", "inference",
     kAlwaysOn, kCommittedUse, kFull},
    // Self-hosted Llama 3.1 8B on vLLM, summarising support tickets: its spans are the demo's
    // OTLP traces, so that its cost per million tokens can be set beside API prices (R22).
    {"support-bot", "ticket-summarizer", P, kAws, "g6.xlarge", 2, 2, "llama-vllm-l4", "inference",
     kAlwaysOn, kOnDemand, kFull},
    // Its traffic moved to an LLM API; the owners flagged the pool for shutdown, which has not
    // happened yet (the telemetry shows it idle: the idle-gpu recommendation's target).
    {"growth", "onboarding-assistant", P, kAzure, "Standard_NC24ads_A100_v4", 1, 2, "persona-a100",
     "inference", kAlwaysOn, kOnDemand, kFull, true},
    // Development GPUs: notebooks left on (idle most of the time) and a weekday dev box.
    {"ml-research", "eval-harness", D, kAws, "g5.12xlarge", 2, 2, "research-notebook", "training",
     kAlwaysOn, kOnDemand, kFull, true},
    {"code-assist", "code-copilot", D, kAws, "g6.xlarge", 1, 1, "copilot-dev-l4", "inference",
     kWorkHours, kOnDemand, kFull, true},
    {"", "", D, kAzure, "Standard_NC24ads_A100_v4", 2, 2, "gpu-sandbox", "", kAlwaysOn, kOnDemand,
     kUntagged},
    // CPU application servers around the models.
    {"support-bot", "support-chatbot", P, kAws, "m7i.2xlarge", 4, 6, "support-api", "inference",
     kAlwaysOn, kOnDemand, kFull},
    {"support-bot", "support-chatbot", S, kAws, "m7i.2xlarge", 1, 1, "support-api-stg", "inference",
     kAlwaysOn, kOnDemand, kFull},
    {"search", "semantic-search", P, kAws, "m7i.2xlarge", 6, 8, "search-api", "inference",
     kAlwaysOn, kOnDemand, kFull},
    {"code-assist", "code-copilot", P, kAws, "m7i.2xlarge", 3, 4, "copilot-gateway", "inference",
     kAlwaysOn, kOnDemand, kFull},
    {"growth", "onboarding-assistant", P, kAzure, "Standard_D8s_v5", 2, 3, "onboarding-web",
     "inference", kAlwaysOn, kOnDemand, kFull},
    {"data-platform", "data-lake", P, kGcp, "n2-standard-8", 4, 4, "etl-worker", "", kAlwaysOn,
     kOnDemand, kFull},
    {"data-platform", "feature-store", P, kAws, "m7i.2xlarge", 3, 3, "feature-store", "", kAlwaysOn,
     kOnDemand, kProjectOnly},
};

/// Storage is not in the price catalog (it is not AI-specific), so prices are listed here.
struct StorageUse {
  std::string_view team, project;
  Env env;
  Cloud cloud;
  std::string_view service, subcategory, meter, unit, price;  // price per unit-month
  std::string_view resource_type, name;
  double start_tb, growth_tb_per_month;
  Tagging tagging;
};

constexpr StorageUse kStorageUses[] = {
    {"ml-research", "foundation-model", P, kAws, "Amazon Simple Storage Service", "Object Storage",
     "Standard storage", "GB-Month", "0.023", "Bucket", "nw-fm-datasets", 180, 12, kFull},
    {"ml-research", "foundation-model", P, kAws, "Amazon Simple Storage Service", "Object Storage",
     "Standard storage", "GB-Month", "0.023", "Bucket", "nw-fm-checkpoints", 60, 15, kFull},
    {"ml-research", "foundation-model", P, kAws, "Amazon FSx", "File Storage", "Lustre SSD storage",
     "GB-Month", "0.145", "File system", "fm-train-lustre", 48, 0, kFull},
    {"ml-research", "eval-harness", D, kGcp, "Cloud Storage", "Object Storage", "Standard Storage",
     "GiB-Month", "0.020", "Bucket", "nw-eval-results", 6, 0.8, kProjectOnly},
    {"search", "semantic-search", P, kGcp, "Cloud Storage", "Object Storage", "Standard Storage",
     "GiB-Month", "0.020", "Bucket", "nw-search-corpus", 25, 1.5, kFull},
    {"search", "semantic-search", P, kAws, "Amazon Elastic Block Store", "Block Storage",
     "gp3 storage", "GB-Month", "0.08", "Volume", "vector-index-gp3", 8, 0.6, kFull},
    {"data-platform", "data-lake", P, kAws, "Amazon Simple Storage Service", "Object Storage",
     "Standard storage", "GB-Month", "0.023", "Bucket", "nw-data-lake", 400, 20, kFull},
    {"data-platform", "feature-store", P, kAzure, "Storage", "Object Storage",
     "Hot LRS Data Stored", "GB-Month", "0.0184", "Storage account", "nwfeaturestore", 30, 1,
     kFull},
    {"code-assist", "code-copilot", P, kAzure, "Storage", "Block Storage",
     "Premium SSD v2 Capacity", "GB-Month", "0.082", "Disk", "copilot-ft-data", 12, 0.5, kFull},
    {"support-bot", "support-chatbot", P, kAws, "Amazon Simple Storage Service", "Object Storage",
     "Standard storage", "GB-Month", "0.023", "Bucket", "nw-support-transcripts", 15, 1.2, kFull},
    {"growth", "onboarding-assistant", P, kAzure, "Storage", "Object Storage",
     "Hot LRS Data Stored", "GB-Month", "0.0184", "Storage account", "nwonboardingassets", 5, 0.2,
     kFull},
    {"", "", D, kAws, "Amazon FSx", "File Storage", "Lustre SSD storage", "GB-Month", "0.145",
     "File system", "scratch-lustre", 24, 0, kUntagged},
};

/// Data transfer out; mostly untagged, as on real bills.
struct EgressUse {
  std::string_view team, project;
  Env env;
  Cloud cloud;
  std::string_view service, meter, unit, price;  // price per unit
  double units_per_day;
  Rhythm rhythm;
  Tagging tagging;
};

constexpr EgressUse kEgressUses[] = {
    {"search", "semantic-search", P, kAws, "AWS Data Transfer", "Data Transfer Out to Internet",
     "GB", "0.09", 800, kInteractive, kFull},
    {"", "", P, kAws, "AWS Data Transfer", "Inter-Region Data Transfer Out", "GB", "0.02", 3000,
     kBatch, kUntagged},
    {"", "", P, kAzure, "Bandwidth", "Standard Data Transfer Out", "GB", "0.087", 400, kInteractive,
     kUntagged},
    {"growth", "onboarding-assistant", P, kGcp, "Networking",
     "Network Internet Egress from Americas", "GiB", "0.12", 300, kInteractive, kFull},
};

constexpr double kDailyGrowth = 1.00253;  // ~8% a month, compounded daily
constexpr int kRunawayMultiplier = 4;
constexpr int kLeftRunningDays = 7;
constexpr int64_t kSalesTaxPercent = 6;  // on OpenAI and Anthropic invoices

// The FOCUS columns written, in order. x_ columns are custom (allowed by FOCUS):
// x_TokenType says which token meter a row is (input, cached_input, output) so that
// readers can fill token counts; x_GpuCount lets them compute GPU-hours.
constexpr std::string_view kColumns[] = {
    "BillingAccountId",
    "BillingAccountName",
    "SubAccountId",
    "SubAccountName",
    "InvoiceIssuerName",
    "ProviderName",
    "PublisherName",
    "ServiceProviderName",
    "InvoiceId",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ServiceName",
    "ServiceCategory",
    "ServiceSubcategory",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "SkuId",
    "SkuPriceId",
    "SkuMeter",
    "PricingCategory",
    "PricingUnit",
    "PricingQuantity",
    "ConsumedUnit",
    "ConsumedQuantity",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "ListCost",
    "ContractedCost",
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "CommitmentDiscountId",
    "CommitmentDiscountType",
    "CommitmentDiscountCategory",
    "CommitmentDiscountStatus",
    "Tags",
    "x_Model",
    "x_TokenType",
    "x_Operation",
    "x_GpuType",
    "x_GpuCount",
};

// ------------------------------------------------------------------------------------
// Writing rows
// ------------------------------------------------------------------------------------

/// One FOCUS row. Quantities and unit prices are left empty when their unit is empty
/// (tax and fee rows have none).
struct FocusRow {
  const BillingAccount* account = nullptr;
  std::string sub_account_id, sub_account_name;
  std::string_view publisher;
  EpochSeconds charge_start = 0, charge_end = 0;
  std::string_view charge_category = "Usage", charge_frequency = "Usage-Based";
  std::string description;
  std::string_view service, service_category, service_subcategory;
  std::string_view region_id, region_name;
  std::string resource_id, resource_name;
  std::string_view resource_type;
  std::string sku_id, sku_price_id;
  std::string_view sku_meter;
  std::string_view pricing_category = "Standard", pricing_unit, consumed_unit;
  Decimal pricing_quantity, consumed_quantity, list_unit_price, contracted_unit_price;
  Decimal list_cost, contracted_cost, billed_cost, effective_cost;
  std::string commitment_id;
  std::string_view commitment_type, commitment_category, commitment_status;
  std::string tags = "{}";
  bool has_team = false;
  std::string_view model, token_type, operation, gpu_type;
  int gpus = 0;
};

class FocusCsvWriter {
 public:
  FocusCsvWriter(std::ostream& out, DemoStats& stats) : out_(out), stats_(stats) {}

  void write_header() {
    for (std::string_view column : kColumns) field(column);
    end_line();
  }

  void write(const FocusRow& r) {
    const BillingAccount& a = *r.account;
    EpochSeconds period_start = floor_month(r.charge_start);
    field(a.id);
    field(a.name);
    field(r.sub_account_id);
    field(r.sub_account_name);
    field(a.invoice_issuer);
    field(a.provider);
    field(r.publisher.empty() ? a.publisher : r.publisher);
    field(a.provider);
    std::string month = format_month(period_start);
    month.erase(4, 1);
    field("INV-" + std::string(a.invoice_code) + "-" + month);
    field(format_timestamp(period_start));
    field(format_timestamp(next_month(period_start)));
    field(format_timestamp(r.charge_start));
    field(format_timestamp(r.charge_end));
    field(r.charge_category);
    field("");  // ChargeClass: only corrections have one
    field(r.description);
    field(r.charge_frequency);
    field(r.service);
    field(r.service_category);
    field(r.service_subcategory);
    field(r.region_id);
    field(r.region_name);
    field(r.resource_id);
    field(r.resource_name);
    field(r.resource_type);
    field(r.sku_id);
    field(r.sku_price_id);
    field(r.sku_meter);
    field(r.pricing_category);
    bool priced = !r.pricing_unit.empty();
    field(r.pricing_unit);
    field(priced ? format_decimal(r.pricing_quantity.nanos) : "");
    field(r.consumed_unit);
    field(r.consumed_unit.empty() ? "" : format_decimal(r.consumed_quantity.nanos));
    field(priced ? format_decimal(r.list_unit_price.nanos) : "");
    field(priced ? format_decimal(r.contracted_unit_price.nanos) : "");
    field(format_decimal(r.list_cost.nanos));
    field(format_decimal(r.contracted_cost.nanos));
    field(format_decimal(r.billed_cost.nanos));
    field(format_decimal(r.effective_cost.nanos));
    field("USD");
    field(r.commitment_id);
    field(r.commitment_type);
    field(r.commitment_category);
    field(r.commitment_status);
    field(r.tags);
    field(r.model);
    field(r.token_type);
    field(r.operation);
    field(r.gpu_type);
    field(r.gpus > 0 ? std::to_string(r.gpus) : "");
    end_line();

    ++stats_.rows;
    stats_.billed_cost += r.billed_cost.nanos;
    stats_.effective_cost += r.effective_cost.nanos;
    if (!r.has_team) stats_.untagged_effective_cost += r.effective_cost.nanos;
  }

  /// Writes what is buffered; false if the stream failed.
  bool flush() {
    out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    stats_.bytes += static_cast<int64_t>(buffer_.size());
    buffer_.clear();
    return static_cast<bool>(out_);
  }

 private:
  void field(std::string_view value) {
    if (!at_line_start_) buffer_ += ',';
    at_line_start_ = false;
    if (value.find_first_of(",\"\r\n") == std::string_view::npos) {
      buffer_ += value;
      return;
    }
    buffer_ += '"';
    for (char c : value) {
      if (c == '"') buffer_ += '"';
      buffer_ += c;
    }
    buffer_ += '"';
  }

  void end_line() {
    buffer_ += '\n';
    at_line_start_ = true;
    if (buffer_.size() > (1u << 20)) flush();
  }

  std::ostream& out_;
  DemoStats& stats_;
  std::string buffer_;
  bool at_line_start_ = true;
};

/// Appends "key":"value" to a JSON object being built (values here need no escaping
/// beyond quotes and backslashes, which never occur, but are handled anyway).
void add_tag(std::string& json, std::string_view key, std::string_view value) {
  if (key.empty() || value.empty()) return;
  json += json.size() > 1 ? ",\"" : "\"";
  json += key;
  json += "\":\"";
  for (char c : value) {
    if (c == '"' || c == '\\') json += '\\';
    json += c;
  }
  json += '"';
}

/// The Tags JSON of a resource, in its provider's spelling. Sets row.tags and has_team.
void tag_row(FocusRow& row, Cloud cloud, std::string_view team, std::string_view project, Env env,
             std::string_view workload, Tagging tagging, bool shutdown_eligible,
             std::string_view purpose = {}) {
  const TagKeys& keys = account_of(cloud).tag_keys;
  std::string json = "{";
  if (tagging != Tagging::kUntagged) {
    if (tagging == Tagging::kFull) add_tag(json, keys.team, team);
    add_tag(json, keys.project, project);
    if (tagging == Tagging::kFull) {
      add_tag(json, keys.environment, env_name(env));
      add_tag(json, keys.cost_center, cost_center_of(team));
      add_tag(json, keys.workload, workload);
      add_tag(json, keys.criticality, env == Env::kProduction ? "high" : "low");
      add_tag(json, keys.purpose,
              !purpose.empty()              ? purpose
              : env == Env::kProduction     ? "production"
                                            : "experimentation");
      if (shutdown_eligible) add_tag(json, "ShutdownEligible", "true");
    }
  }
  json += '}';
  row.tags = std::move(json);
  row.has_team = tagging == Tagging::kFull && !team.empty();
}

/// Sub-account of a resource: per environment on clouds, per team on SaaS providers.
void set_sub_account(FocusRow& row, Cloud cloud, std::string_view team, std::string_view project,
                     Env env) {
  const BillingAccount& a = account_of(cloud);
  row.account = &a;
  if (!a.prod_sub_id.empty()) {
    bool prod = env == Env::kProduction;
    row.sub_account_id = prod ? a.prod_sub_id : a.dev_sub_id;
    row.sub_account_name = prod ? a.prod_sub_name : a.dev_sub_name;
    return;
  }
  std::string owner(team.empty() ? project : team);
  if (cloud == Cloud::kOpenAi) {
    row.sub_account_id = "proj_" + hex_id("openai-project/" + owner, 24);
  } else {
    row.sub_account_id = "wrkspc_01" + upper(hex_id("anthropic-workspace/" + owner, 24));
  }
  row.sub_account_name = owner;
}

std::string_view publisher_of_model(std::string_view model) {
  if (model.starts_with("claude")) return "Anthropic";
  if (model.starts_with("gemini")) return "Google";
  if (model.starts_with("gpt") || model.starts_with("o1") || model.starts_with("o3") ||
      model.starts_with("o4") || model.starts_with("text-embedding")) {
    return "OpenAI";
  }
  return "";
}

Decimal cost_of(Decimal quantity, Decimal unit_price) {
  return Decimal{
      static_cast<int64_t>(mul_div_round(quantity.nanos, unit_price.nanos, kNanosPerUnit))};
}

std::string money_text(__int128 nanos) {
  std::string digits = format_decimal_fixed(nanos, 2);
  size_t point = digits.find('.');
  size_t start = digits[0] == '-' ? 1 : 0;
  for (size_t i = point; i > start + 3; i -= 3) digits.insert(i - 3, ",");
  return "$" + digits;
}

/// The price in effect on `day`; before the catalog's first version of a name, that first
/// version. A demo period may start before the catalog was written, and leaving the first
/// months without LLM or GPU spend would make a poor demo.
const pricing::ModelPrice* model_price(const pricing::Catalog& catalog, std::string_view model,
                                       EpochSeconds day) {
  if (const pricing::ModelPrice* price = catalog.find_model(model, day)) return price;
  std::vector<const pricing::ModelPrice*> versions = catalog.model_versions(model);
  return versions.empty() ? nullptr : versions.front();
}

const pricing::GpuInstancePrice* instance_price(const pricing::Catalog& catalog,
                                                std::string_view sku, EpochSeconds day) {
  if (const pricing::GpuInstancePrice* price = catalog.find_gpu_instance(sku, day)) return price;
  std::vector<const pricing::GpuInstancePrice*> versions = catalog.gpu_instance_versions(sku);
  return versions.empty() ? nullptr : versions.front();
}

// ------------------------------------------------------------------------------------
// The generator
// ------------------------------------------------------------------------------------

struct CommitmentMonth {
  Decimal hours;
  Decimal fee;
  Decimal unit_price;
};

class Generator {
 public:
  Generator(const pricing::Catalog& catalog, const DemoOptions& options, FocusCsvWriter& writer,
            DemoStats& stats)
      : catalog_(catalog),
        options_(options),
        writer_(writer),
        stats_(stats),
        random_(options.seed) {}

  void run() {
    EpochSeconds end = options_.start;
    for (int m = 0; m < options_.months; ++m) end = next_month(end);
    stats_.period_start = options_.start;
    stats_.period_end = end;
    days_ = static_cast<int>((end - options_.start) / kDay);
    plan();
    writer_.write_header();
    double growth = 1.0;
    for (int d = 0; d < days_; ++d) {
      EpochSeconds day = options_.start + d * kDay;
      for (const LlmUse& use : kLlmUses) write_llm_day(use, d, day, growth);
      for (size_t g = 0; g < std::size(kInstanceGroups); ++g) write_instance_day(g, d, day);
      for (const StorageUse& use : kStorageUses) write_storage_day(use, d, day);
      for (const EgressUse& use : kEgressUses) write_egress_day(use, day, growth);
      if (next_month(day) == day + kDay) write_month_end(floor_month(day));
      growth *= kDailyGrowth;
    }
    finish_anomalies();
  }

 private:
  /// Decisions made once, before the first row: training-run calendars and anomaly days.
  void plan() {
    for (size_t g = 0; g < std::size(kInstanceGroups); ++g) {
      std::vector<bool>& on = runs_[g];
      on.assign(static_cast<size_t>(days_), false);
      if (kInstanceGroups[g].schedule != Schedule::kTrainingRuns) continue;
      int d = static_cast<int>(random_.below(8));  // the first run starts in the first week
      while (d < days_) {
        int run = 7 + static_cast<int>(random_.below(15));
        for (int k = 0; k < run && d < days_; ++k, ++d) on[static_cast<size_t>(d)] = true;
        d += 3 + static_cast<int>(random_.below(8));
      }
    }
    // The runaway loop: a weekday in the second half of the period.
    runaway_day_ = days_ * 55 / 100 + static_cast<int>(random_.below(std::max(1, days_ / 5)));
    while (weekday(options_.start + runaway_day_ * kDay) >= 5) --runaway_day_;
    // The forgotten cluster: a week starting on a Friday in the first half.
    left_running_day_ = days_ * 30 / 100 + static_cast<int>(random_.below(std::max(1, days_ / 6)));
    while (weekday(options_.start + left_running_day_ * kDay) != 4) ++left_running_day_;
    if (left_running_day_ + kLeftRunningDays > days_) left_running_day_ = days_ - kLeftRunningDays;
  }

  static int weekday(EpochSeconds day) {  // 0 = Monday; 1970-01-01 was a Thursday
    int64_t z = day >= 0 ? day / kDay : (day - kDay + 1) / kDay;
    return static_cast<int>(((z % 7) + 7 + 3) % 7);
  }

  // ---- LLM tokens ------------------------------------------------------------------

  void write_llm_day(const LlmUse& use, int d, EpochSeconds day, double growth) {
    // Draw the noise before looking at the catalog, so that the numbers of one use do
    // not depend on which other models the catalog happens to contain.
    double volume = growth * rhythm_factor(use.rhythm, weekday(day)) * random_.noise(0.08);
    double cached_noise = random_.noise(0.05);
    double output_noise = random_.noise(0.10);
    const pricing::ModelPrice* price = model_price(catalog_, use.model, day);
    if (price == nullptr || !price->prices.input) return;

    int64_t prompt = round_to_int(use.prompt_mtokens * 1e6 * volume);
    int64_t cached = 0;
    if (price->prices.cached_input && use.cached_share > 0) {
      cached = std::min(
          prompt, round_to_int(static_cast<double>(prompt) * use.cached_share * cached_noise));
    }
    int64_t output = 0;
    if (price->prices.output && use.output_ratio > 0) {
      output = round_to_int(static_cast<double>(prompt) * use.output_ratio * output_noise);
    }
    bool runaway = use.runaway && d == runaway_day_;
    int64_t factor = runaway ? kRunawayMultiplier : 1;

    const LlmRouteInfo& route = kLlmRoutes[static_cast<int>(use.route)];
    FocusRow row;
    set_sub_account(row, route.cloud, use.team, use.project, use.env);
    row.publisher =
        use.route == LlmRoute::kOpenAiApi || use.route == LlmRoute::kClaudeApi
            ? std::string_view{}
            : (use.route == LlmRoute::kAzureOpenAi ? "Microsoft" : publisher_of_model(use.model));
    row.charge_start = day;
    row.charge_end = day + kDay;
    row.service = route.service;
    row.service_category = "AI and Machine Learning";
    row.service_subcategory = "Generative AI";
    row.region_id = route.region_id;
    row.region_name = route.region_name;
    row.resource_type = route.resource_type;
    std::string key = std::string(use.team) + "/" + std::string(use.project) + "/" +
                      std::string(env_name(use.env)) + "/" + std::string(use.model);
    switch (use.route) {
      case LlmRoute::kOpenAiApi:
        row.resource_id = row.sub_account_id + "/key_" + hex_id(key, 16);
        row.resource_name = std::string(use.project) + "-" + std::string(env_name(use.env));
        break;
      case LlmRoute::kClaudeApi:
        row.resource_id = "apikey_01" + upper(hex_id(key, 22));
        row.resource_name = std::string(use.project) + "-" + std::string(env_name(use.env));
        break;
      case LlmRoute::kAzureOpenAi:
        row.resource_name =
            "aoai-" + std::string(use.project) + "-" + std::string(env_name(use.env).substr(0, 4));
        row.resource_id = "/subscriptions/" + row.sub_account_id + "/resourceGroups/rg-" +
                          std::string(use.project) +
                          "/providers/Microsoft.CognitiveServices/accounts/" + row.resource_name;
        break;
      case LlmRoute::kBedrock:
        row.resource_name = std::string(use.project) + "-" + std::string(use.model);
        row.resource_id = "arn:aws:bedrock:" + std::string(route.region_id) + ":" +
                          row.sub_account_id + ":application-inference-profile/" + hex_id(key, 12);
        break;
      case LlmRoute::kVertexAi:
        row.resource_name = std::string(use.project) + "-" + std::string(use.model);
        row.resource_id = "//aiplatform.googleapis.com/projects/" + row.sub_account_id +
                          "/locations/" + std::string(route.region_id) +
                          "/publishers/google/models/" + std::string(use.model);
        break;
    }
    tag_row(row, route.cloud, use.team, use.project, use.env, "inference", use.tagging, false,
            use.batch_purpose ? "batch_processing" : "");
    row.model = price->model;
    bool embedding = price->mode == "embedding" || !price->prices.output;
    row.operation = embedding ? "embedding" : "chat";
    row.pricing_unit = "1M Tokens";
    row.consumed_unit = "Tokens";

    struct Meter {
      std::string_view token_type, meter, sku_suffix;
      int64_t tokens;
      std::optional<Decimal> price;
    };
    const Meter meters[] = {
        {"input", "Input Tokens", "input", prompt - cached, price->prices.input},
        {"cached_input", "Cached Input Tokens", "cached-input", cached, price->prices.cached_input},
        {"output", "Output Tokens", "output", output, price->prices.output},
    };
    for (const Meter& m : meters) {
      if (m.tokens <= 0 || !m.price) continue;
      int64_t tokens = m.tokens * factor;
      row.token_type = m.token_type;
      row.sku_meter = m.meter;
      row.sku_id = upper(std::string(publisher_of_model(use.model)).substr(0, 3)) + "-" +
                   std::string(use.model) + "-" + std::string(m.sku_suffix);
      row.sku_price_id = row.sku_id + ":" + hex_id(std::string(route.service) + row.sku_id, 8);
      row.description = std::string(price->model) + " " + std::string(m.meter) + " (" +
                        std::string(route.service) + ")";
      row.consumed_quantity = Decimal{tokens * kNanosPerUnit};
      row.pricing_quantity = Decimal{tokens * 1000};  // tokens / 1e6, exactly
      row.list_unit_price = row.contracted_unit_price = *m.price;
      // tokens × price per 1M, rounded half-to-even to the nano only if the price has
      // more than three decimals (none of the built-in ones do).
      Decimal cost{static_cast<int64_t>(mul_div_round(tokens, m.price->nanos, 1'000'000))};
      row.list_cost = row.contracted_cost = row.billed_cost = row.effective_cost = cost;
      writer_.write(row);
      add_to_month(route.cloud, cost);
      if (runaway) {
        Decimal usual{static_cast<int64_t>(mul_div_round(m.tokens, m.price->nanos, 1'000'000))};
        runaway_extra_ += cost.nanos - usual.nanos;
        runaway_use_ = &use;
      }
    }
  }

  // ---- instances -------------------------------------------------------------------

  void write_instance_day(size_t g, int d, EpochSeconds day) {
    const InstanceGroup& group = kInstanceGroups[g];
    int nodes = group.nodes_start;
    if (days_ > 1) nodes += (group.nodes_end - group.nodes_start) * d / (days_ - 1);
    bool left_running =
        group.left_running && d >= left_running_day_ && d < left_running_day_ + kLeftRunningDays;
    int wd = weekday(day);
    for (int n = 0; n < nodes; ++n) {
      int64_t quarters = 0;  // hours in quarter-hours, so that costs stay short decimals
      switch (group.schedule) {
        case Schedule::kAlwaysOn:
          quarters = 96;
          break;
        case Schedule::kTrainingRuns:
          quarters = runs_[g][static_cast<size_t>(d)] ? 96 : 0;
          break;
        case Schedule::kWorkHours:
          quarters = wd < 5 ? 32 + random_.below(17) : 0;
          break;
        case Schedule::kOccasional: {
          // The cluster is used by the team as a whole: one draw per day, not per node.
          if (n == 0)
            occasional_quarters_ = wd < 5 && random_.chance(0.35) ? 8 + random_.below(17) : 0;
          quarters = occasional_quarters_;
          break;
        }
      }
      int64_t usual_quarters = quarters;
      if (left_running) quarters = 96;
      if (quarters == 0) continue;
      const pricing::GpuInstancePrice* price = instance_price(catalog_, group.sku, day);
      if (price == nullptr || !price->on_demand) continue;
      Decimal hours{quarters * kNanosPerHour / 4};
      FocusRow row = instance_row(group, n, day, *price);
      row.consumed_quantity = row.pricing_quantity = hours;
      row.list_unit_price = *price->on_demand;
      row.list_cost = cost_of(hours, *price->on_demand);
      if (group.commitment == Commitment::kOnDemand) {
        row.contracted_unit_price = row.list_unit_price;
        row.contracted_cost = row.billed_cost = row.effective_cost = row.list_cost;
      } else {
        Decimal rate = committed_rate(group.commitment, *price);
        row.pricing_category = "Committed";
        row.contracted_unit_price = rate;
        row.contracted_cost = row.effective_cost = cost_of(hours, rate);
        row.billed_cost = Decimal{};  // paid by the commitment's monthly fee
        set_commitment(row, group);
        row.commitment_status = "Used";
        CommitmentMonth& month = commitment_months_[g];
        month.hours += hours;
        month.fee += row.effective_cost;
        month.unit_price = rate;
      }
      writer_.write(row);
      add_to_month(group.cloud, row.billed_cost);
      if (price->gpus > 0 && d >= days_ - kDemoTelemetryDays)
        plan_telemetry(g, n, row.resource_name, *price, d - (days_ - kDemoTelemetryDays), quarters);
      if (left_running) {
        left_running_extra_ +=
            row.effective_cost.nanos -
            cost_of(Decimal{usual_quarters * kNanosPerHour / 4}, *price->on_demand).nanos;
        left_running_nodes_ = nodes;
      }
    }
  }

  FocusRow instance_row(const InstanceGroup& group, int node, EpochSeconds day,
                        const pricing::GpuInstancePrice& price) {
    FocusRow row;
    const BillingAccount& a = account_of(group.cloud);
    set_sub_account(row, group.cloud, group.team, group.project, group.env);
    row.charge_start = day;
    row.charge_end = day + kDay;
    row.service_category = "Compute";
    row.service_subcategory = "Virtual Machines";
    row.region_id = a.region_id;
    row.region_name = a.region_name;
    row.resource_name =
        std::string(group.name) + (node < 9 ? "-0" : "-") + std::to_string(node + 1);
    std::string sku(group.sku);
    switch (group.cloud) {
      case Cloud::kAzure:
        row.service = "Virtual Machines";
        row.resource_type = "Virtual machine";
        row.resource_id = "/subscriptions/" + row.sub_account_id + "/resourceGroups/rg-" +
                          std::string(group.project.empty() ? "sandbox" : group.project) +
                          "/providers/Microsoft.Compute/virtualMachines/" + row.resource_name;
        row.sku_id = "DZH318Z0" + upper(hex_id(sku, 4)) + "/" + sku;
        row.sku_meter = "Compute Hours";
        break;
      case Cloud::kGcp:
        row.service = "Compute Engine";
        row.resource_type = "Compute instance";
        row.resource_id = "//compute.googleapis.com/projects/" + row.sub_account_id + "/zones/" +
                          std::string(a.region_id) + "-a/instances/" + row.resource_name;
        row.sku_id =
            upper(hex_id(sku, 4) + "-" + hex_id(sku + "/gcp", 4) + "-" + hex_id(sku + "/sku", 4));
        row.sku_meter = "Instance Core and Ram Running";
        break;
      default:
        row.service = "Amazon Elastic Compute Cloud";
        row.resource_type = "Instance";
        row.resource_id = "arn:aws:ec2:" + std::string(a.region_id) + ":" + row.sub_account_id +
                          ":instance/i-0" + hex_id(row.resource_name, 16);
        row.sku_id = upper(hex_id(sku + "/aws", 16));
        row.sku_meter = "BoxUsage";
        break;
    }
    row.sku_price_id = row.sku_id + "." + upper(hex_id(sku + "/ondemand", 10));
    row.description =
        sku +
        (price.gpus > 0 ? " (" + std::to_string(price.gpus) + "x " + price.gpu_type + ")"
                        : std::string{}) +
        " instance hours";
    row.pricing_unit = row.consumed_unit = "Hours";
    row.gpu_type = price.gpu_type;
    row.gpus = price.gpus;
    tag_row(row, group.cloud, group.team, group.project, group.env, group.workload, group.tagging,
            group.shutdown_eligible);
    return row;
  }

  /// The commitment's hourly rate: the catalog's reserved price if it has one, else a
  /// typical discount off on-demand.
  static Decimal committed_rate(Commitment commitment, const pricing::GpuInstancePrice& price) {
    if (price.reserved) return *price.reserved;
    int64_t percent = commitment == Commitment::kSavingsPlan   ? 72
                      : commitment == Commitment::kReservation ? 60
                                                               : 63;
    return Decimal{static_cast<int64_t>(mul_div_round(price.on_demand->nanos, percent, 100))};
  }

  static void set_commitment(FocusRow& row, const InstanceGroup& group) {
    std::string key = std::string(group.name) + "/commitment";
    switch (group.commitment) {
      case Commitment::kSavingsPlan:
        row.commitment_id = "arn:aws:savingsplans::" + std::string(account_of(Cloud::kAws).id) +
                            ":savingsplan/" + hex_id(key, 8) + "-" + hex_id(key + "2", 4) + "-" +
                            hex_id(key + "3", 4) + "-" + hex_id(key + "4", 4) + "-" +
                            hex_id(key + "5", 12);
        row.commitment_type = "Compute Savings Plan";
        row.commitment_category = "Spend";
        break;
      case Commitment::kReservation:
        row.commitment_id = "/providers/Microsoft.Capacity/reservationOrders/" + hex_id(key, 8) +
                            "-" + hex_id(key + "2", 4) + "/reservations/" + hex_id(key + "3", 8);
        row.commitment_type = "Reservation";
        row.commitment_category = "Usage";
        break;
      case Commitment::kCommittedUse:
        row.commitment_id = "projects/" + std::string(account_of(Cloud::kGcp).prod_sub_id) +
                            "/regions/" + std::string(account_of(Cloud::kGcp).region_id) +
                            "/commitments/cud-" + hex_id(key, 8);
        row.commitment_type = "Committed Use Discount";
        row.commitment_category = "Usage";
        break;
      case Commitment::kOnDemand:
        break;
    }
  }

  // ---- storage and egress ----------------------------------------------------------

  void write_storage_day(const StorageUse& use, int d, EpochSeconds day) {
    // Whole GB; the size grows linearly (data accumulates) with a little churn.
    double tb = use.start_tb + use.growth_tb_per_month * d / 30.44;
    int64_t gb = round_to_int(tb * 1000 * random_.noise(0.002));
    const BillingAccount& a = account_of(use.cloud);
    FocusRow row;
    set_sub_account(row, use.cloud, use.team, use.project, use.env);
    row.charge_start = day;
    row.charge_end = day + kDay;
    row.service = use.service;
    row.service_category = "Storage";
    row.service_subcategory = use.subcategory;
    row.region_id = a.region_id;
    row.region_name = a.region_name;
    row.resource_name = std::string(use.name);
    row.resource_type = use.resource_type;
    switch (use.cloud) {
      case Cloud::kAzure:
        row.resource_id =
            "/subscriptions/" + row.sub_account_id + "/resourceGroups/rg-data" +
            (use.resource_type == "Disk" ? "/providers/Microsoft.Compute/disks/"
                                         : "/providers/Microsoft.Storage/storageAccounts/") +
            row.resource_name;
        break;
      case Cloud::kGcp:
        row.resource_id = "//storage.googleapis.com/projects/_/buckets/" + row.resource_name;
        break;
      default:
        row.resource_id =
            use.resource_type == "Bucket"
                ? "arn:aws:s3:::" + row.resource_name
                : "arn:aws:" + std::string(use.resource_type == "Volume" ? "ec2" : "fsx") + ":" +
                      std::string(a.region_id) + ":" + row.sub_account_id + ":" +
                      (use.resource_type == "Volume" ? "volume/vol-0" : "file-system/fs-0") +
                      hex_id(row.resource_name, 16);
        break;
    }
    row.sku_id = upper(hex_id(std::string(use.service) + std::string(use.meter), 12));
    row.sku_price_id = row.sku_id + "." + upper(hex_id(std::string(use.meter) + "/price", 8));
    row.sku_meter = use.meter;
    row.description = std::string(use.meter) + " (" + std::string(use.unit) + ")";
    // A day's share of a month: size × 1/days-in-month, rounded to the nano.
    int64_t days_in_month = (next_month(day) - floor_month(day)) / kDay;
    row.pricing_unit = use.unit;
    row.consumed_unit = use.unit.starts_with("GiB") ? "GiB-Hours" : "GB-Hours";
    row.consumed_quantity = Decimal{gb * 24 * kNanosPerUnit};
    row.pricing_quantity =
        Decimal{static_cast<int64_t>(mul_div_round(gb * kNanosPerUnit, 1, days_in_month))};
    row.list_unit_price = row.contracted_unit_price = decimal(use.price);
    row.list_cost = row.contracted_cost = row.billed_cost = row.effective_cost =
        cost_of(row.pricing_quantity, row.list_unit_price);
    tag_row(row, use.cloud, use.team, use.project, use.env, "", use.tagging, false);
    writer_.write(row);
    add_to_month(use.cloud, row.billed_cost);
  }

  void write_egress_day(const EgressUse& use, EpochSeconds day, double growth) {
    double units =
        use.units_per_day * growth * rhythm_factor(use.rhythm, weekday(day)) * random_.noise(0.15);
    Decimal quantity{round_to_int(units * 1000) * 1'000'000};  // to the MB
    const BillingAccount& a = account_of(use.cloud);
    FocusRow row;
    set_sub_account(row, use.cloud, use.team, use.project, use.env);
    row.charge_start = day;
    row.charge_end = day + kDay;
    row.service = use.service;
    row.service_category = "Networking";
    row.service_subcategory = "Network Connectivity";
    row.region_id = a.region_id;
    row.region_name = a.region_name;
    row.sku_id = upper(hex_id(std::string(use.service) + std::string(use.meter), 12));
    row.sku_price_id = row.sku_id + "." + upper(hex_id(std::string(use.meter) + "/price", 8));
    row.sku_meter = use.meter;
    row.description = std::string(use.meter) + " (" + std::string(use.unit) + ")";
    row.pricing_unit = row.consumed_unit = use.unit;
    row.pricing_quantity = row.consumed_quantity = quantity;
    row.list_unit_price = row.contracted_unit_price = decimal(use.price);
    row.list_cost = row.contracted_cost = row.billed_cost = row.effective_cost =
        cost_of(quantity, row.list_unit_price);
    tag_row(row, use.cloud, use.team, use.project, use.env, "", use.tagging, false);
    writer_.write(row);
    add_to_month(use.cloud, row.billed_cost);
  }

  // ---- monthly rows: commitment fees, support, tax ---------------------------------

  void write_month_end(EpochSeconds month) {
    EpochSeconds month_end = next_month(month);
    for (size_t g = 0; g < std::size(kInstanceGroups); ++g) {
      CommitmentMonth& c = commitment_months_[g];
      if (c.fee.nanos == 0) continue;
      const InstanceGroup& group = kInstanceGroups[g];
      FocusRow row;
      set_sub_account(row, group.cloud, group.team, group.project, group.env);
      row.charge_start = month;
      row.charge_end = month_end;
      row.charge_category = "Purchase";
      row.charge_frequency = "Recurring";
      set_commitment(row, group);
      row.description =
          std::string(row.commitment_type) + " monthly fee for " + std::string(group.sku);
      row.service = group.cloud == Cloud::kAws     ? "Savings Plans for AWS Compute usage"
                    : group.cloud == Cloud::kAzure ? "Virtual Machines"
                                                   : "Compute Engine";
      row.service_category = "Compute";
      row.service_subcategory = "Virtual Machines";
      row.resource_id = row.commitment_id;
      row.resource_name = std::string(group.name) + "-commitment";
      row.resource_type = "Commitment";
      row.sku_id = upper(hex_id(row.commitment_id, 12));
      row.sku_price_id = row.sku_id + ".MONTHLY";
      row.sku_meter = "Commitment fee";
      row.pricing_category = "Committed";
      // FOCUS leaves consumption empty on purchases: the usage rows carry it (and readers
      // must not count these hours twice as GPU-hours).
      row.pricing_unit = "Hours";
      row.pricing_quantity = c.hours;
      row.list_unit_price = row.contracted_unit_price = c.unit_price;
      // Paid now, already spread over the usage rows as effective cost.
      row.list_cost = row.contracted_cost = row.billed_cost = c.fee;
      row.effective_cost = Decimal{};
      tag_row(row, group.cloud, group.team, group.project, group.env, group.workload, group.tagging,
              false);
      writer_.write(row);
      add_to_month(group.cloud, row.billed_cost);
      c = CommitmentMonth{};
    }
    write_support_fee(month, month_end);
    for (Cloud cloud : {Cloud::kOpenAi, Cloud::kAnthropic})
      write_sales_tax(cloud, month, month_end);
    month_billed_.fill(0);
  }

  /// AWS Business support: a falling percentage of the month's AWS charges.
  void write_support_fee(EpochSeconds month, EpochSeconds month_end) {
    __int128 billed = month_billed_[static_cast<int>(Cloud::kAws)];
    if (billed <= 0) return;
    struct Band {
      int64_t up_to_units, percent;
    };
    constexpr Band kBands[] = {
        {10'000, 10}, {80'000, 7}, {250'000, 5}, {INT64_MAX / kNanosPerUnit, 3}};
    __int128 fee = 0, lower = 0;
    for (const Band& band : kBands) {
      __int128 upper_nanos = static_cast<__int128>(band.up_to_units) * kNanosPerUnit;
      if (billed <= lower) break;
      fee += mul_div_round(std::min(billed, upper_nanos) - lower, band.percent, 100);
      lower = upper_nanos;
    }
    FocusRow row;
    set_sub_account(row, Cloud::kAws, "", "", Env::kProduction);
    row.charge_start = month;
    row.charge_end = month_end;
    row.charge_category = "Purchase";
    row.charge_frequency = "Recurring";
    row.description = "AWS Support (Business) monthly fee";
    row.service = "AWS Support (Business)";
    row.service_category = "Management and Governance";
    row.service_subcategory = "Support";
    row.sku_id = "AWSSUPPORT-BUSINESS";
    row.sku_price_id = "AWSSUPPORT-BUSINESS.MONTHLY";
    row.pricing_category = "Standard";
    Decimal amount{static_cast<int64_t>(fee)};
    row.pricing_unit = "Month";
    row.pricing_quantity = Decimal::from_units(1);
    row.list_unit_price = row.contracted_unit_price = amount;
    row.list_cost = row.contracted_cost = row.billed_cost = row.effective_cost = amount;
    writer_.write(row);
  }

  void write_sales_tax(Cloud cloud, EpochSeconds month, EpochSeconds month_end) {
    __int128 billed = month_billed_[static_cast<int>(cloud)];
    if (billed <= 0) return;
    FocusRow row;
    set_sub_account(row, cloud, "", "", Env::kProduction);
    row.sub_account_id.clear();  // tax is charged on the organisation's invoice
    row.sub_account_name.clear();
    row.charge_start = month;
    row.charge_end = month_end;
    row.charge_category = "Tax";
    row.charge_frequency = "Recurring";
    row.description = "Sales tax (" + std::to_string(kSalesTaxPercent) + "%)";
    row.service = kLlmRoutes[static_cast<int>(cloud == Cloud::kOpenAi ? LlmRoute::kOpenAiApi
                                                                      : LlmRoute::kClaudeApi)]
                      .service;
    row.service_category = "AI and Machine Learning";
    row.service_subcategory = "Generative AI";
    row.pricing_category = "";
    Decimal amount{static_cast<int64_t>(mul_div_round(billed, kSalesTaxPercent, 100))};
    row.list_cost = row.contracted_cost = row.billed_cost = row.effective_cost = amount;
    writer_.write(row);
  }

  void add_to_month(Cloud cloud, Decimal billed) {
    month_billed_[static_cast<int>(cloud)] += billed.nanos;
  }

  // ---- GPU telemetry ---------------------------------------------------------------

 public:
  /// Writes the DCGM exporter text of the hosts planned while writing the bill, one stream
  /// per region (`stream_for` is asked once per region; null skips that region).
  DemoTelemetryStats write_telemetry(
      const std::function<std::ostream*(const std::string&)>& stream_for) {
    DemoTelemetryStats t;
    t.start = stats_.period_end - kDemoTelemetryDays * kDay;
    t.end = stats_.period_end;
    // Its own engine: the bill's bytes must not depend on whether telemetry is written.
    Random random(options_.seed ^ 0x9e3779b97f4a7c15ull);
    plan_serving();
    struct Output {
      std::ostream* out = nullptr;
      std::string text;
    };
    std::vector<std::string> region_names;
    std::vector<Output> outputs;
    std::vector<size_t> region_of(telemetry_hosts_.size());
    for (size_t h = 0; h < telemetry_hosts_.size(); ++h) {
      const TelemetryHost& host = telemetry_hosts_[h];
      t.hosts.push_back(host.name);
      t.host_regions.push_back(host.region);
      t.gpus += host.gpus;
      if (host.role == GpuRole::kIdle && t.idle_pool.empty())
        t.idle_pool = std::string(kInstanceGroups[host.group].name);
      if (host.role == GpuRole::kSlice) t.rightsize_host = host.name;
      auto it = std::find(region_names.begin(), region_names.end(), host.region);
      if (it == region_names.end()) {
        region_names.push_back(host.region);
        outputs.push_back({stream_for(host.region), {}});
        it = region_names.end() - 1;
      }
      region_of[h] = static_cast<size_t>(it - region_names.begin());
    }
    t.regions = region_names;
    auto flush = [&](Output& o) {
      if (o.out != nullptr) *o.out << o.text;
      t.bytes += static_cast<int64_t>(o.text.size());
      o.text.clear();
    };
    std::vector<int> sandbox_burst(telemetry_hosts_.size(), -1);  // burst end hour, per host
    for (int hour = 0; hour < kDemoTelemetryDays * 24; ++hour) {
      EpochSeconds at = t.start + static_cast<int64_t>(hour) * 3600;
      int hour_of_day = hour % 24;
      bool weekday = Generator::weekday(at - at % kDay) < 5;
      for (Output& o : outputs) o.text += "# scrape at " + format_timestamp(at) + "\n";
      ++t.scrapes;
      for (size_t h = 0; h < telemetry_hosts_.size(); ++h) {
        const TelemetryHost& host = telemetry_hosts_[h];
        std::string& text = outputs[region_of[h]].text;
        if (!host.on[static_cast<size_t>(hour)]) continue;
        if (host.role == GpuRole::kSandbox && hour_of_day == 0) {
          // Someone tries something on about half the weekdays, for a few hours.
          sandbox_burst[h] = -1;
          if (weekday && random.chance(0.5)) {
            int begin = 10 + static_cast<int>(random.below(4));
            sandbox_burst[h] = begin * 100 + begin + 4 + static_cast<int>(random.below(4));
          }
        }
        for (int gpu = 0; gpu < host.gpus; ++gpu) {
          int64_t total = memory_mib(host.gpu_type);
          int64_t util = 0, memory = 0;
          switch (host.role) {
            case GpuRole::kTraining:
              util = random.chance(0.03) ? 20 + random.below(31) : 82 + random.below(17);
              memory = total * (84 + random.below(12)) / 100;
              break;
            case GpuRole::kInference: {
              // Traffic follows the working day (UTC), lower at weekends.
              double load = hour_of_day >= 8 && hour_of_day < 20 ? 0.68 : 0.22;
              if (!weekday) load *= 0.6;
              util = std::min<int64_t>(100, round_to_int(100 * load * random.noise(0.12)));
              memory = total * (74 + random.below(5)) / 100;
              break;
            }
            case GpuRole::kServing: {
              // vLLM: busy with the hour's requests (the traces), its KV cache holds 90% of memory.
              double load = serving_load_[h][static_cast<size_t>(hour)];
              util = std::min<int64_t>(100, round_to_int(45 * load + 3) + random.below(3));
              memory = total * 90 / 100 + random.below(100);
              break;
            }
            case GpuRole::kIdle:  // the model is loaded; no request reaches it
              util = random.below(3);
              memory = total * 42 / 100 + random.below(200);
              break;
            case GpuRole::kSlice:  // one GPU of four fine-tunes a small model by day
              if (gpu == 0) {
                bool working = weekday && hour_of_day >= 9 && hour_of_day < 18;
                util = working ? 25 + random.below(21) : 1 + random.below(3);
                memory = 12'000 + random.below(2'400);
              }
              break;
            case GpuRole::kNotebook: {  // every GPU used in office hours, memory held all day
              bool working = weekday && hour_of_day >= 9 && hour_of_day < 19;
              util = working ? 40 + random.below(36) : random.below(3);
              memory = 20'500 + random.below(2'000);
              break;
            }
            case GpuRole::kSandbox: {
              int burst = sandbox_burst[h];
              bool busy = burst >= 0 && hour_of_day >= burst / 100 && hour_of_day < burst % 100;
              util = busy ? 60 + random.below(36) : random.below(2);
              memory = busy ? 30'000 + random.below(20'000) : 0;
              break;
            }
          }
          // One Kubernetes namespace per team (dcgm-exporter's pod mapping adds namespace and
          // pod), so that telemetry records carry the team: energy and emissions by team.
          std::string labels = "{gpu=\"" + std::to_string(gpu) + "\",modelName=\"" +
                               std::string(dcgm_model_name(host.gpu_type)) + "\",Hostname=\"" +
                               host.name + "\"";
          if (!host.namespace_name.empty()) labels += ",namespace=\"" + host.namespace_name + "\"";
          if (!host.pod.empty()) labels += ",pod=\"" + host.pod + "\",container=\"vllm\"";
          labels += "} ";
          text += "DCGM_FI_DEV_GPU_UTIL" + labels + std::to_string(util) + "\n";
          text += "DCGM_FI_DEV_FB_USED" + labels + std::to_string(std::min(memory, total)) + "\n";
          t.samples += 2;
        }
      }
      for (Output& o : outputs)
        if (o.text.size() > (1u << 20)) flush(o);
    }
    for (Output& o : outputs) flush(o);
    return t;
  }

  /// Writes the self-hosted cluster's GenAI spans as OTLP/JSON lines, one export an hour.
  DemoTracesStats write_traces(std::ostream& out) {
    DemoTracesStats t;
    plan_serving();
    Random random(options_.seed ^ 0x2545f4914f6cdd1dull);
    const EpochSeconds start = stats_.period_end - kDemoTelemetryDays * kDay;
    std::vector<size_t> serving;
    for (size_t h = 0; h < telemetry_hosts_.size(); ++h) {
      if (telemetry_hosts_[h].role != GpuRole::kServing) continue;
      serving.push_back(h);
      t.hosts.push_back(telemetry_hosts_[h].name);
      t.cluster = std::string(kInstanceGroups[telemetry_hosts_[h].group].project);
    }
    auto hex = [&](int digits) {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string id;
      for (int i = 0; i < digits; ++i) id += kHex[random.below(16)];
      return id;
    };
    auto attribute = [](std::string& json, std::string_view key, std::string_view value,
                        bool integer) {
      if (json.back() != '[') json += ',';
      json += "{\"key\":\"" + std::string(key) + "\",\"value\":{\"" +
              (integer ? "intValue" : "stringValue") + "\":\"" + std::string(value) + "\"}}";
    };
    std::string line;
    for (int hour = 0; hour < kDemoTelemetryDays * 24; ++hour) {
      const EpochSeconds at = start + static_cast<int64_t>(hour) * 3600;
      line = "{\"resourceSpans\":[";
      bool any = false;
      for (size_t h : serving) {
        const TelemetryHost& host = telemetry_hosts_[h];
        if (!host.on[static_cast<size_t>(hour)]) continue;
        const InstanceGroup& group = kInstanceGroups[host.group];
        const int64_t requests = round_to_int(60 * serving_load_[h][static_cast<size_t>(hour)]);
        if (requests <= 0) continue;
        if (any) line += ',';
        any = true;
        line += "{\"resource\":{\"attributes\":[";
        // OTEL_SERVICE_NAME of the deployment: the project it serves (service.name is an alias
        // of project in the default policy).
        attribute(line, "service.name", group.project, false);
        attribute(line, "host.name", host.name, false);
        attribute(line, "cloud.region", host.region, false);
        attribute(line, "deployment.environment.name", "production", false);
        attribute(line, "team", group.team, false);
        line += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"vllm\"},\"spans\":[";
        for (int64_t r = 0; r < requests; ++r) {
          // A ticket thread with the knowledge-base articles retrieved for it, summarised.
          const int64_t input = 8'000 + random.below(6'001);
          const int64_t output = 300 + random.below(601);
          const int64_t begin_ms = at * 1000 + random.below(3'600'000);
          const int64_t end_ms = begin_ms + 250 + output * 25;  // about 40 tokens a second
          if (r > 0) line += ',';
          line += "{\"traceId\":\"" + hex(32) + "\",\"spanId\":\"" + hex(16) +
                  "\",\"name\":\"chat " + std::string(kDemoSelfHostedModel) +
                  "\",\"kind\":2,\"startTimeUnixNano\":\"" + std::to_string(begin_ms) +
                  "000000\",\"endTimeUnixNano\":\"" + std::to_string(end_ms) +
                  "000000\",\"attributes\":[";
          attribute(line, "gen_ai.operation.name", "chat", false);
          attribute(line, "gen_ai.provider.name", "vllm", false);
          attribute(line, "gen_ai.request.model", kDemoSelfHostedModel, false);
          attribute(line, "gen_ai.response.model", kDemoSelfHostedModel, false);
          attribute(line, "gen_ai.usage.input_tokens", std::to_string(input), true);
          attribute(line, "gen_ai.usage.output_tokens", std::to_string(output), true);
          line += "]}";
          ++t.spans;
          t.input_tokens += input;
          t.output_tokens += output;
        }
        line += "]}]}";
      }
      if (!any) continue;
      line += "]}\n";
      out << line;
      t.bytes += static_cast<int64_t>(line.size());
    }
    return t;
  }

 private:
  enum class GpuRole { kTraining, kInference, kServing, kIdle, kSlice, kNotebook, kSandbox };

  struct TelemetryHost {
    std::string name;
    size_t group = 0;
    int gpus = 0;
    std::string gpu_type;
    GpuRole role = GpuRole::kTraining;
    std::string region;          ///< the bill's RegionId
    std::string namespace_name;  ///< the team's Kubernetes namespace; empty when untagged
    std::string pod;             ///< the vLLM pod on a serving host
    std::vector<bool> on;  ///< by hour of the telemetry window
  };

  /// The request load of every serving host by hour of the telemetry window (0..~1), drawn
  /// once so that the telemetry's utilisation and the traces' requests agree.
  void plan_serving() {
    if (!serving_load_.empty()) return;
    Random random(options_.seed ^ 0xd1b54a32d192ed03ull);
    const EpochSeconds start = stats_.period_end - kDemoTelemetryDays * kDay;
    serving_load_.resize(telemetry_hosts_.size());
    for (size_t h = 0; h < telemetry_hosts_.size(); ++h) {
      if (telemetry_hosts_[h].role != GpuRole::kServing) continue;
      std::vector<double>& load = serving_load_[h];
      load.assign(static_cast<size_t>(kDemoTelemetryDays) * 24, 0.0);
      for (size_t hour = 0; hour < load.size(); ++hour) {
        const EpochSeconds at = start + static_cast<int64_t>(hour) * 3600;
        const int64_t hour_of_day = static_cast<int64_t>(hour % 24);
        double l = hour_of_day >= 8 && hour_of_day < 20 ? 0.68 : 0.22;
        if (Generator::weekday(at - at % kDay) >= 5) l *= 0.6;
        load[hour] = l * random.noise(0.12);
      }
    }
  }

  std::vector<std::vector<double>> serving_load_;  ///< by telemetry host, by hour

  /// Notes the hours a GPU instance runs on day `d` of the telemetry window: all day, or
  /// from 09:00 for the bill's hours (rounded up to whole hours) on part-time days.
  void plan_telemetry(size_t g, int node, const std::string& name,
                      const pricing::GpuInstancePrice& price, int d, int64_t quarters) {
    auto it = std::find_if(telemetry_hosts_.begin(), telemetry_hosts_.end(),
                           [&](const TelemetryHost& h) { return h.name == name; });
    if (it == telemetry_hosts_.end()) {
      const InstanceGroup& group = kInstanceGroups[g];
      TelemetryHost host;
      host.name = name;
      host.group = g;
      host.gpus = price.gpus;
      host.gpu_type = price.gpu_type;
      std::string_view group_name = group.name;
      host.region = std::string(account_of(group.cloud).region_id);
      if (group.tagging == Tagging::kFull && !group.team.empty())
        host.namespace_name = std::string(group.team);
      if (group_name == "llama-vllm-l4")  // a StatefulSet's pods: vllm-llama-0, -1, ...
        host.pod = "vllm-llama-" + std::to_string(node);
      host.role = group_name == "llama-vllm-l4"  ? GpuRole::kServing
                  : group_name == "persona-a100" ? GpuRole::kIdle
                  : group_name == "research-notebook"
                      ? (node == 0 ? GpuRole::kSlice : GpuRole::kNotebook)
                  : group_name == "gpu-sandbox"  ? GpuRole::kSandbox
                  : group.workload == "training" ? GpuRole::kTraining
                                                 : GpuRole::kInference;
      host.on.assign(static_cast<size_t>(kDemoTelemetryDays) * 24, false);
      telemetry_hosts_.push_back(std::move(host));
      it = telemetry_hosts_.end() - 1;
    }
    int64_t hours = quarters >= 96 ? 24 : (quarters + 3) / 4;
    int first = quarters >= 96 ? 0 : 9;
    for (int64_t h = first; h < first + hours && h < 24; ++h)
      it->on[static_cast<size_t>(d * 24 + h)] = true;
  }

  /// The memory DCGM reports (used + free, MiB) for a catalog GPU type.
  static int64_t memory_mib(std::string_view gpu_type) {
    if (gpu_type.starts_with("H100")) return 81'559;
    if (gpu_type == "A100 80GB") return 81'920;
    if (gpu_type.starts_with("A100")) return 40'960;
    if (gpu_type.starts_with("T4")) return 15'360;
    return 23'034;  // the 24 GB boards: L4, A10G
  }

  /// The model name the exporter labels a GPU with, for a catalog GPU type.
  static std::string_view dcgm_model_name(std::string_view gpu_type) {
    if (gpu_type.starts_with("H100")) return "NVIDIA H100 80GB HBM3";
    if (gpu_type == "A100 80GB") return "NVIDIA A100 80GB PCIe";
    if (gpu_type.starts_with("A100")) return "NVIDIA A100-SXM4-40GB";
    if (gpu_type.starts_with("A10G")) return "NVIDIA A10G";
    if (gpu_type.starts_with("L4")) return "NVIDIA L4";
    if (gpu_type.starts_with("T4")) return "Tesla T4";
    return gpu_type;
  }

  std::vector<TelemetryHost> telemetry_hosts_;

  // ---- anomalies -------------------------------------------------------------------

  void finish_anomalies() {
    if (runaway_use_ != nullptr) {
      const LlmUse& use = *runaway_use_;
      DemoAnomaly a;
      a.kind = "llm_runaway";
      a.team = use.team;
      a.project = use.project;
      a.environment = env_name(use.env);
      a.service = kLlmRoutes[static_cast<int>(use.route)].service;
      a.resource = use.model;
      a.start = options_.start + runaway_day_ * kDay;
      a.days = 1;
      a.extra_cost = runaway_extra_;
      a.description = a.team + " (" + a.project + ", " + a.environment + "): " + a.resource +
                      " tokens x" + std::to_string(kRunawayMultiplier) + " on " +
                      format_date(a.start) + " in " + a.service + ", a runaway agent loop; " +
                      money_text(a.extra_cost) + " above the usual";
      stats_.anomalies.push_back(std::move(a));
    }
    if (left_running_nodes_ > 0) {
      const InstanceGroup* group = nullptr;
      for (const InstanceGroup& g : kInstanceGroups) {
        if (g.left_running) group = &g;
      }
      DemoAnomaly a;
      a.kind = "gpu_left_running";
      a.team = group->team;
      a.project = group->project;
      a.environment = env_name(group->env);
      a.service = group->cloud == Cloud::kAws     ? "Amazon Elastic Compute Cloud"
                  : group->cloud == Cloud::kAzure ? "Virtual Machines"
                                                  : "Compute Engine";
      a.resource = group->name;
      a.start = options_.start + left_running_day_ * kDay;
      a.days = kLeftRunningDays;
      a.extra_cost = left_running_extra_;
      a.description = a.team + " (" + a.project + ", " + a.environment +
                      "): " + std::to_string(left_running_nodes_) + " x " +
                      std::string(group->sku) + " (" + a.resource + ") left running 24h for " +
                      std::to_string(a.days) + " days from " + format_date(a.start) + "; " +
                      money_text(a.extra_cost) + " above the usual";
      stats_.anomalies.push_back(std::move(a));
    }
  }

  const pricing::Catalog& catalog_;
  const DemoOptions& options_;
  FocusCsvWriter& writer_;
  DemoStats& stats_;
  Random random_;
  int days_ = 0;
  std::array<std::vector<bool>, std::size(kInstanceGroups)> runs_;
  std::array<CommitmentMonth, std::size(kInstanceGroups)> commitment_months_{};
  std::array<__int128, std::size(kAccounts)> month_billed_{};
  int64_t occasional_quarters_ = 0;
  int runaway_day_ = 0, left_running_day_ = 0;
  const LlmUse* runaway_use_ = nullptr;
  __int128 runaway_extra_ = 0, left_running_extra_ = 0;
  int left_running_nodes_ = 0;
};

}  // namespace

EpochSeconds demo_start_before(EpochSeconds now, int months) {
  EpochSeconds start = floor_month(now);
  for (int m = 0; m < months; ++m) start = floor_month(start - 1);
  return start;
}

pricing::ModelPrice demo_self_hosted_price(EpochSeconds from) {
  pricing::ModelPrice p;
  p.model = kDemoSelfHostedModel;
  p.provider = "self-hosted";
  p.mode = "chat";
  p.effective_from = from;
  p.currency = "USD";
  p.prices.input = Decimal{0};
  p.prices.output = Decimal{0};
  p.source =
      "aifinops demo: served on the organisation's own GPUs (vLLM); the cost is the GPU bill";
  return p;
}

Result<DemoStats> write_demo(const pricing::Catalog& catalog, const DemoOptions& options,
                             std::ostream& out, const DemoSources& sources) {
  if (options.months < 1 || options.months > 12) {
    return make_error(ErrorCode::kInvalidArgument, "demo: months must be between 1 and 12, not " +
                                                       std::to_string(options.months));
  }
  if (floor_month(options.start) != options.start) {
    return make_error(ErrorCode::kInvalidArgument, "demo: start " +
                                                       format_timestamp(options.start) +
                                                       " is not the first second of a month (UTC)");
  }
  DemoStats stats;
  FocusCsvWriter writer(out, stats);
  Generator generator(catalog, options, writer, stats);
  generator.run();
  if (!writer.flush()) {
    return make_error(ErrorCode::kIo, "demo: could not write the CSV output");
  }
  if (sources.gpu_telemetry) {
    std::vector<std::ostream*> streams;
    stats.telemetry = generator.write_telemetry([&](const std::string& region) {
      std::ostream* s = sources.gpu_telemetry(region);
      streams.push_back(s);
      return s;
    });
    for (std::ostream* s : streams)
      if (s != nullptr && !s->flush())
        return make_error(ErrorCode::kIo, "demo: could not write the GPU telemetry output");
  }
  if (sources.inference_traces != nullptr) {
    stats.traces = generator.write_traces(*sources.inference_traces);
    if (!sources.inference_traces->flush())
      return make_error(ErrorCode::kIo, "demo: could not write the inference traces");
  }
  return stats;
}

Result<DemoStats> write_demo_focus_csv(const pricing::Catalog& catalog, const DemoOptions& options,
                                       std::ostream& out, std::ostream* gpu_telemetry) {
  DemoSources sources;
  if (gpu_telemetry != nullptr)
    sources.gpu_telemetry = [gpu_telemetry](const std::string&) { return gpu_telemetry; };
  return write_demo(catalog, options, out, sources);
}

Result<DemoStats> write_demo_files(const pricing::Catalog& catalog, const DemoOptions& options,
                                   DemoFiles& files) {
  files.telemetry_files.clear();
  std::ofstream out(files.bill, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::kIo, files.bill + ": cannot create the file");
  // unique_ptr: the streams' addresses are handed out while more are added.
  std::vector<std::unique_ptr<std::ofstream>> telemetry;
  std::optional<Error> failed;
  DemoSources sources;
  if (!files.telemetry_prefix.empty()) {
    sources.gpu_telemetry = [&](const std::string& region) -> std::ostream* {
      std::string path = files.telemetry_prefix + "." +
                         (region.empty() ? std::string("global") : region) + ".prom";
      telemetry.push_back(
          std::make_unique<std::ofstream>(path, std::ios::binary | std::ios::trunc));
      files.telemetry_files.push_back(path);
      if (!*telemetry.back() && !failed)
        failed = Error{ErrorCode::kIo, path + ": cannot create the file"};
      return telemetry.back().get();
    };
  }
  std::ofstream traces;
  if (!files.traces_path.empty()) {
    traces.open(files.traces_path, std::ios::binary | std::ios::trunc);
    if (!traces) return make_error(ErrorCode::kIo, files.traces_path + ": cannot create the file");
    sources.inference_traces = &traces;
  }
  Result<DemoStats> stats = write_demo(catalog, options, out, sources);
  if (failed) return Unexpected{*failed};
  if (!stats) return stats;
  out.close();
  if (!out) return make_error(ErrorCode::kIo, files.bill + ": write failed (disk full?)");
  for (size_t i = 0; i < telemetry.size(); ++i) {
    telemetry[i]->close();
    if (!*telemetry[i])
      return make_error(ErrorCode::kIo, files.telemetry_files[i] + ": write failed (disk full?)");
  }
  if (!files.traces_path.empty()) {
    traces.close();
    if (!traces)
      return make_error(ErrorCode::kIo, files.traces_path + ": write failed (disk full?)");
  }
  return stats;
}

Result<DemoStats> write_demo_focus_csv_file(const pricing::Catalog& catalog,
                                            const DemoOptions& options, const std::string& path,
                                            const std::string& telemetry_path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::kIo, path + ": cannot create the file");
  std::ofstream telemetry;
  if (!telemetry_path.empty()) {
    telemetry.open(telemetry_path, std::ios::binary | std::ios::trunc);
    if (!telemetry) return make_error(ErrorCode::kIo, telemetry_path + ": cannot create the file");
  }
  Result<DemoStats> stats =
      write_demo_focus_csv(catalog, options, out, telemetry_path.empty() ? nullptr : &telemetry);
  if (!stats) return stats;
  out.close();
  if (!out) return make_error(ErrorCode::kIo, path + ": write failed (disk full?)");
  if (!telemetry_path.empty()) {
    telemetry.close();
    if (!telemetry) return make_error(ErrorCode::kIo, telemetry_path + ": write failed (disk full?)");
  }
  return stats;
}

}  // namespace aifinops::demo
