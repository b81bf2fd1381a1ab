#include "config/catalog_yaml.h"

#include <gtest/gtest.h>

#include "config/embedded_catalog.h"

#include <fstream>
#include <sstream>

namespace aifinops::config {
namespace {

using pricing::Catalog;
using pricing::GpuInstancePrice;
using pricing::ModelPrice;
using pricing::PriceTier;
using pricing::TokenPrices;

Decimal d(std::string_view text) { return *parse_decimal(text); }
EpochSeconds t(std::string_view text) { return *parse_timestamp(text); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Field-by-field equality of everything the YAML carries (not `version`, a ledger row id).
bool same_prices(const TokenPrices& a, const TokenPrices& b) {
  return a.input == b.input && a.cached_input == b.cached_input && a.cache_write == b.cache_write &&
         a.output == b.output && a.reasoning == b.reasoning;
}

void expect_same_catalog(const Catalog& a, const Catalog& b) {
  auto am = a.model_prices(), bm = b.model_prices();
  ASSERT_EQ(am.size(), bm.size());
  for (size_t i = 0; i < am.size(); ++i) {
    const ModelPrice &x = *am[i], &y = *bm[i];
    SCOPED_TRACE(x.model);
    EXPECT_EQ(x.model, y.model);
    EXPECT_EQ(x.provider, y.provider);
    EXPECT_EQ(x.mode, y.mode);
    EXPECT_EQ(x.effective_from, y.effective_from);
    EXPECT_EQ(x.currency, y.currency);
    EXPECT_TRUE(same_prices(x.prices, y.prices));
    ASSERT_EQ(x.tiers.size(), y.tiers.size());
    for (size_t k = 0; k < x.tiers.size(); ++k) {
      EXPECT_EQ(x.tiers[k].above_input_tokens, y.tiers[k].above_input_tokens);
      EXPECT_TRUE(same_prices(x.tiers[k].prices, y.tiers[k].prices));
    }
    EXPECT_EQ(x.batch_discount, y.batch_discount);
    EXPECT_EQ(x.max_output_tokens, y.max_output_tokens);
    EXPECT_EQ(x.source, y.source);
  }
  auto ag = a.gpu_instance_prices(), bg = b.gpu_instance_prices();
  ASSERT_EQ(ag.size(), bg.size());
  for (size_t i = 0; i < ag.size(); ++i) {
    const GpuInstancePrice &x = *ag[i], &y = *bg[i];
    SCOPED_TRACE(x.sku);
    EXPECT_EQ(x.sku, y.sku);
    EXPECT_EQ(x.provider, y.provider);
    EXPECT_EQ(x.gpu_type, y.gpu_type);
    EXPECT_EQ(x.gpus, y.gpus);
    EXPECT_EQ(x.effective_from, y.effective_from);
    EXPECT_EQ(x.currency, y.currency);
    EXPECT_EQ(x.on_demand, y.on_demand);
    EXPECT_EQ(x.reserved, y.reserved);
    EXPECT_EQ(x.spot, y.spot);
    EXPECT_EQ(x.source, y.source);
  }
}

Catalog sample_catalog() {
  Catalog c;
  ModelPrice mini;
  mini.model = "gpt-4o-mini";
  mini.provider = "openai";
  mini.mode = "chat";
  mini.effective_from = t("2024-07-18");
  mini.prices.input = d("0.15");
  mini.prices.cached_input = d("0.075");
  mini.prices.cache_write = d("0.1875");
  mini.prices.output = d("0.6");
  mini.prices.reasoning = d("0.6");
  mini.batch_discount = d("0.5");
  mini.max_output_tokens = 16384;
  mini.source = "LiteLLM, 2026-07-24";
  c.add(mini);
  ModelPrice sonnet;
  sonnet.model = "anthropic.claude-v2:1";  // needs quoting in YAML
  sonnet.provider = "yes";                  // would read as a boolean if left plain
  sonnet.effective_from = t("2025-03-01T12:30:00Z");
  sonnet.currency = "EUR";
  sonnet.prices.input = d("0.000000001");
  sonnet.prices.output = d("9223372036.854775807");
  TokenPrices above;
  above.input = d("6");
  above.output = d("22.5");
  sonnet.tiers.push_back(PriceTier{200000, above});
  above.input = d("12");
  sonnet.tiers.push_back(PriceTier{1000000, above});
  sonnet.source = "a \"quoted\" source: with \\ and #hash";
  c.add(sonnet);
  ModelPrice embed;
  embed.model = "123-embed";
  embed.effective_from = t("2024-01-01");
  embed.prices.input = d("0");
  c.add(embed);
  GpuInstancePrice p5;
  p5.sku = "p5.48xlarge";
  p5.provider = "aws";
  p5.gpu_type = "H100 80GB";
  p5.gpus = 8;
  p5.effective_from = t("2024-01-01");
  p5.on_demand = d("98.32");
  p5.reserved = d("62.92");
  p5.spot = d("39.33");
  p5.source = "public list prices";
  c.add(p5);
  GpuInstancePrice cpu;
  cpu.sku = "m7i.2xlarge";
  cpu.effective_from = t("2025-01-01");
  cpu.on_demand = d("0.4032");
  c.add(cpu);
  return c;
}

TEST(CatalogYamlTest, RoundTripKeepsEveryPrice) {
  Catalog original = sample_catalog();
  std::string yaml = to_catalog_yaml(original, "Test catalog\nsecond line");
  EXPECT_EQ(yaml.rfind("# Test catalog\n# second line\n", 0), 0u) << yaml;
  auto parsed = parse_catalog_yaml(yaml, "round_trip.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message << "\n" << yaml;
  expect_same_catalog(original, *parsed);
  // Writing the parsed catalog again gives the same text: the output is deterministic.
  EXPECT_EQ(to_catalog_yaml(*parsed, "Test catalog\nsecond line"), yaml);
}

TEST(CatalogYamlTest, SharedValuesAreWrittenOnceAtTheTop) {
  Catalog c;
  for (std::string name : {"a", "b"}) {
    ModelPrice p;
    p.model = name;
    p.effective_from = t("2026-07-24");
    p.prices.input = d("1");
    p.source = "LiteLLM";
    c.add(p);
  }
  std::string yaml = to_catalog_yaml(c, "");
  EXPECT_EQ(yaml,
            "currency: USD\neffective_from: 2026-07-24\nsource: LiteLLM\nmodels:\n"
            "  - model: a\n    input: 1\n  - model: b\n    input: 1\n");
}

TEST(CatalogYamlTest, RoundTripsTheWholeLitellmFile) {
  std::string json = read_file(AIFINOPS_SHARED_DIR "/data/prices/litellm_model_prices.json");
  auto prices = pricing::parse_litellm_json(json, t("2026-07-24"), "LiteLLM");
  ASSERT_TRUE(prices.has_value());
  Catalog original;
  for (ModelPrice& p : *prices) original.add(std::move(p));
  auto parsed = parse_catalog_yaml(to_catalog_yaml(original, "x"), "litellm.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  expect_same_catalog(original, *parsed);
}

TEST(CatalogYamlTest, TopLevelDefaultsApplyUnlessAnEntryOverridesThem) {
  auto c = parse_catalog_yaml(R"(
currency: EUR
effective_from: 2025-01-01
source: top
models:
  - {model: a, input: 1}
  - {model: b, input: 2, effective_from: "2025-06-01T00:00:00+02:00", currency: USD, source: own}
gpu_instances:
  - {sku: x1, on_demand: 3}
)",
                              "defaults.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const ModelPrice* a = c->find_model("a", t("2025-01-01"));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->currency, "EUR");
  EXPECT_EQ(a->source, "top");
  const ModelPrice* b = c->find_model("b", t("2025-06-01"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->effective_from, t("2025-05-31T22:00:00Z"));
  EXPECT_EQ(b->currency, "USD");
  EXPECT_EQ(b->source, "own");
  EXPECT_EQ(c->find_gpu_instance("X1", t("2025-01-01"))->currency, "EUR");
}

TEST(CatalogYamlTest, NumbersAreReadFromTheirTextExactly) {
  auto c = parse_catalog_yaml(
      "models:\n  - {model: m, effective_from: 2024-01-01, input: 0.1, output: 1.5e-1, "
      "cached_input: \"0.000000001\"}\n",
      "exact.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const ModelPrice* m = c->find_model("m", t("2024-01-01"));
  EXPECT_EQ(m->prices.input->nanos, 100'000'000);
  EXPECT_EQ(m->prices.output->nanos, 150'000'000);
  EXPECT_EQ(m->prices.cached_input->nanos, 1);
}

std::string error_of(std::string_view yaml) {
  auto c = parse_catalog_yaml(yaml, "prices.yaml");
  return c ? std::string("(parsed)") : c.error().message;
}

TEST(CatalogYamlTest, ErrorsNameTheFileLineAndKeyPath) {
  EXPECT_EQ(error_of("models:\n  - model: m\n    effective_from: 2024-01-01\n    input: abc\n"),
            "prices.yaml:4: models[0].input: \"abc\" is not a decimal number");
  EXPECT_EQ(error_of("effective_from: 2024-01-01\nmodels:\n  - {model: a, input: 1}\n"
                     "  - {model: b, input: 1, tiers: [{above_input_tokens: 10, output: 1}, "
                     "{above_input_tokens: 20, output: -2}]}\n"),
            "prices.yaml:4: models[1].tiers[1].output: \"-2\" must not be negative");
  EXPECT_EQ(error_of("models:\n  - {model: a, input: 1, inptu: 2, effective_from: 2024-01-01}\n"),
            "prices.yaml:2: models[0].inptu: unknown key (expected one of: model, provider, mode, "
            "effective_from, currency, input, cached_input, cache_write, output, reasoning, "
            "batch_discount, max_output_tokens, tiers, source)");
  EXPECT_EQ(error_of("models:\n  - {model: a, input: 1}\n"),
            "prices.yaml:2: models[0].effective_from: missing (expected a date like 2024-07-18, "
            "here or at the top level)");
  EXPECT_EQ(error_of("models:\n  - {model: a, input: 1, effective_from: July}\n"),
            "prices.yaml:2: models[0].effective_from: \"July\" is not a date like 2024-07-18 or "
            "an RFC 3339 timestamp");
  EXPECT_EQ(error_of("effective_from: 2024-01-01\nmodels:\n  - {model: a, output: [1]}\n"),
            "prices.yaml:3: models[0].output: expected a decimal number, found a list");
  EXPECT_EQ(error_of("effective_from: 2024-01-01\nmodels:\n  - {model: a}\n"),
            "prices.yaml:3: models[0]: model a has neither an input nor an output price");
  EXPECT_EQ(error_of("effective_from: 2024-01-01\nmodels:\n  - {model: a, input: 1, batch_discount: 1.5}\n"),
            "prices.yaml:3: models[0].batch_discount: \"1.5\" must be a fraction between 0 and 1");
  EXPECT_EQ(error_of("effective_from: 2024-01-01\nmodels:\n  - {model: a, input: 1}\n  - {model: a, input: 2}\n"),
            "prices.yaml:4: models[1]: model a is listed twice from 2024-01-01T00:00:00Z");
  EXPECT_EQ(error_of("effective_from: 2024-01-01\ngpu_instances:\n  - {sku: x, gpus: two, on_demand: 1}\n"),
            "prices.yaml:3: gpu_instances[0].gpus: \"two\" is not a whole number >= 0");
  EXPECT_EQ(error_of("effective_from: 2024-01-01\ngpu_instances:\n  - {sku: x}\n"),
            "prices.yaml:3: gpu_instances[0]: instance x has none of on_demand, reserved, spot");
  EXPECT_EQ(error_of("currency: dollars\n"),
            "prices.yaml:1: currency: \"dollars\" is not an ISO 4217 currency code like USD");
  EXPECT_EQ(error_of("models: 3\n"), "prices.yaml:1: models: expected a list, found a scalar");
  EXPECT_EQ(error_of("- 1\n"),
            "prices.yaml:1: (top level): expected a mapping with models: and gpu_instances:");
}

TEST(CatalogYamlTest, YamlSyntaxErrorsAreValuesWithTheirPlace) {
  std::string message = error_of("models:\n  - {model: a, input: 1\n");
  EXPECT_EQ(message.rfind("prices.yaml:", 0), 0u) << message;
  EXPECT_NE(message.find("not valid YAML"), std::string::npos) << message;
}

TEST(CatalogYamlTest, EmptyTextIsAnEmptyCatalog) {
  auto c = parse_catalog_yaml("# nothing yet\n", "empty.yaml");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->size(), 0u);
}

TEST(CatalogYamlTest, MissingFileIsAnIoError) {
  auto c = load_catalog_yaml_file("/nonexistent/prices.yaml");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kIo);
  EXPECT_NE(c.error().message.find("/nonexistent/prices.yaml"), std::string::npos);
}

TEST(CatalogYamlTest, ShippedCatalogFilesParse) {
  for (const char* name : {"prices.yaml", "gpu_instances.yaml"}) {
    auto c = load_catalog_yaml_file(std::string(AIFINOPS_SOURCE_DIR "/config/") + name);
    EXPECT_TRUE(c.has_value()) << c.error().message;
  }
}

TEST(DefaultCatalogTest, HasCommonModelsAndInstances) {
  const Catalog& c = default_catalog();
  EpochSeconds now = t("2026-08-01");
  const ModelPrice* mini = c.find_model("gpt-4o-mini", now);
  ASSERT_NE(mini, nullptr);
  EXPECT_EQ(mini->prices.input, d("0.15"));
  const GpuInstancePrice* p5 = c.find_gpu_instance("p5.48xlarge", now);
  ASSERT_NE(p5, nullptr);
  EXPECT_EQ(p5->on_demand, d("98.32"));
  EXPECT_EQ(p5->gpus, 8);
  EXPECT_EQ(&default_catalog(), &c);  // parsed once
}

TEST(DefaultCatalogTest, EmbedsTheFilesByteForByte) {
  // The files are cut into many literal pieces at line ends; joined they must be the file.
  ASSERT_EQ(kEmbeddedCatalogFileCount, 2u);
  for (size_t i = 0; i < kEmbeddedCatalogFileCount; ++i) {
    std::string text;
    size_t pieces = 0;
    for (const char* const* piece = kEmbeddedCatalogFiles[i].pieces; *piece; ++piece, ++pieces) {
      EXPECT_LE(std::string_view(*piece).size(), 30000u);
      text += *piece;
    }
    std::string name = kEmbeddedCatalogFiles[i].name;
    EXPECT_EQ(text, read_file(std::string(AIFINOPS_SOURCE_DIR "/") + name)) << name;
    if (name == "config/prices.yaml") {
      EXPECT_GT(pieces, 1u);
    }
  }
}

TEST(DefaultCatalogTest, MatchesTheFilesInTheSourceTree) {
  // The embedded text is regenerated when the files change; this catches a stale build step.
  size_t models = 0, gpus = 0;
  for (const char* name : {"prices.yaml", "gpu_instances.yaml"}) {
    auto c = load_catalog_yaml_file(std::string(AIFINOPS_SOURCE_DIR "/config/") + name);
    ASSERT_TRUE(c.has_value()) << c.error().message;
    models += c->model_count();
    gpus += c->gpu_instance_count();
  }
  EXPECT_EQ(default_catalog().model_count(), models);
  EXPECT_EQ(default_catalog().gpu_instance_count(), gpus);
}

}  // namespace
}  // namespace aifinops::config
