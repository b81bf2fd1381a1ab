// Builds a small ledger for a test: records with chosen attributes and facts, committed in
// one batch, in a temporary directory. Header-only; tests include it as "tests/testing/...".
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "core/money.h"
#include "core/record.h"
#include "core/time.h"
#include "ledger/ledger.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::testing {

class LedgerBuilder {
 public:
  LedgerBuilder() {
    auto opened = ledger::open_ledger(dir_.file("ledger.db"));
    EXPECT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
  }

  /// Adds one hourly record at `when` ("2025-10-01" or RFC 3339) with the given attributes
  /// and effective (= billed) cost; `more` can set other facts (tokens, gpu_milliseconds, ...).
  void add(std::initializer_list<std::pair<Attr, std::string>> attributes, const std::string& when,
           const std::string& cost, const std::function<void(UsageFacts&)>& more = {}) {
    if (batch_ == 0) {
      auto b = ledger_->begin_batch(ledger::BatchInfo{"test.csv", "focus", {}, 0});
      ASSERT_TRUE(b.has_value()) << b.error().message;
      batch_ = *b;
    }
    Record r;
    std::string fingerprint_text;
    for (const auto& [a, v] : attributes) {
      r[a] = v;
      fingerprint_text += std::to_string((int)a) + "=" + v + ";";
    }
    ledger::Fingerprint f{std::hash<std::string>()(fingerprint_text),
                          std::hash<std::string>()(fingerprint_text + "#")};
    auto id = ledger_->intern_attributes(r.views(), f);
    ASSERT_TRUE(id.has_value()) << id.error().message;
    UsageFacts facts;
    auto start = parse_timestamp(when);
    ASSERT_TRUE(start.has_value()) << when;
    facts.charge_period_start = *start;
    facts.charge_period_end = *start + 3600;
    auto money = parse_decimal(cost);
    ASSERT_TRUE(money.has_value()) << cost;
    facts.effective_cost = facts.billed_cost = *money;
    if (more) more(facts);
    ASSERT_TRUE(ledger_->append(*id, facts, Lineage{batch_, ++line_}).has_value());
    rows_++;
  }

  /// Commits the records added so far; returns the ledger for queries.
  ledger::Ledger& commit() {
    if (batch_ != 0) {
      ledger::BatchSummary s;
      s.fingerprint_hex = "test-" + std::to_string(++commits_);
      s.rows_read = s.rows_ingested = rows_;
      auto r = ledger_->commit_batch(s);
      EXPECT_TRUE(r.has_value()) << r.error().message;
      batch_ = 0;
      rows_ = 0;
    }
    return *ledger_;
  }

  ledger::Ledger& ledger() { return *ledger_; }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
  int64_t batch_ = 0, line_ = 0, rows_ = 0, commits_ = 0;
};

}  // namespace aifinops::testing
