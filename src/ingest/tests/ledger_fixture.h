// A test fixture for readers: a fresh SQLite ledger in a temporary directory, the tag
// policy's defaults, a catalog, and helpers to ingest and to sum a metric.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "allocate/tag_policy.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::ingest::testing_support {

/// Owns the ledger and catalog of one test. The catalog is stored in the ledger first, so
/// price versions are real row ids.
class LedgerFixture : public ::testing::Test {
 protected:
  /// Subclasses fill the catalog they need; the default is empty.
  virtual pricing::Catalog make_catalog() { return {}; }

  void SetUp() override {
    auto opened = ledger::open_ledger(dir_.file("ledger.db"));
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
    std::vector<pricing::ModelPrice> models;
    std::vector<pricing::GpuInstancePrice> gpus;
    pricing::Catalog seed = make_catalog();
    for (auto* m : seed.model_prices()) models.push_back(*m);
    for (auto* g : seed.gpu_instance_prices()) gpus.push_back(*g);
    ASSERT_TRUE(ledger_->store_prices(models, gpus).has_value());
    catalog_ = *ledger_->load_catalog();
  }

  IngestContext context() { return IngestContext{*ledger_, catalog_, policy_}; }

  Result<IngestSummary> ingest(const std::string& path, const std::string& format = "auto",
                               bool replace = false, bool strict = false) {
    IngestOptions options;
    options.format = format;
    options.replace = replace;
    options.strict = strict;
    return ingest_file(context(), path, options);
  }

  __int128 total(ledger::Metric metric, std::vector<std::pair<std::string, std::string>> filters = {}) {
    ledger::QuerySpec spec;
    spec.metric = metric;
    for (auto& [dimension, value] : filters)
      spec.filters.push_back(ledger::Filter{*ledger::parse_dimension(dimension), value});
    auto r = ledger_->query(spec);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? r->total : -1;
  }

  /// Rows of a grouped sum as "key1|key2=value" strings, in the ledger's order.
  std::vector<std::string> grouped(ledger::Metric metric, std::vector<std::string> by) {
    ledger::QuerySpec spec;
    spec.metric = metric;
    for (auto& b : by) spec.group_by.push_back(*ledger::parse_dimension(b));
    auto r = ledger_->query(spec);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    std::vector<std::string> out;
    if (!r) return out;
    for (const ledger::QueryRow& row : r->rows) {
      std::string line;
      for (const std::string& k : row.keys) line += (line.empty() ? "" : "|") + k;
      out.push_back(line + "=" + std::to_string((long long)row.value));
    }
    return out;
  }

  static std::string shared_data(const std::string& relative) {
    return std::string(AIFINOPS_SHARED_DIR) + "/data/" + relative;
  }
  static std::string fixture(const std::string& relative) {
    return std::string(AIFINOPS_SOURCE_DIR) + "/tests/fixtures/" + relative;
  }

  aifinops::testing::TempDir dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  pricing::Catalog catalog_;
  allocate::TagPolicy policy_ = allocate::TagPolicy::defaults();
};

/// A model price for tests, per million tokens.
inline pricing::ModelPrice model_price(std::string model, std::string provider, const char* input,
                                       const char* cached, const char* cache_write,
                                       const char* output) {
  pricing::ModelPrice m;
  m.model = std::move(model);
  m.provider = std::move(provider);
  m.mode = "chat";
  m.effective_from = *parse_timestamp("2020-01-01");
  if (input) m.prices.input = *parse_decimal(input);
  if (cached) m.prices.cached_input = *parse_decimal(cached);
  if (cache_write) m.prices.cache_write = *parse_decimal(cache_write);
  if (output) m.prices.output = *parse_decimal(output);
  return m;
}

}  // namespace aifinops::ingest::testing_support
