#include "ledger/sqlite/sqlite_ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "ledger/ledger.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::ledger {
namespace {

class SqliteLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = open_ledger(dir_.file("l.db"));
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    ledger_ = std::move(*opened);
  }

  int64_t attributes(const std::string& service, const std::string& team, const std::string& tags = "") {
    AttributeViews v{};
    v[(size_t)Attr::kServiceName] = service;
    v[(size_t)Attr::kTeam] = team;
    v[(size_t)Attr::kTags] = tags;
    Fingerprint f{std::hash<std::string>()(service), std::hash<std::string>()(team + "|" + tags)};
    auto id = ledger_->intern_attributes(v, f);
    EXPECT_TRUE(id.has_value());
    return *id;
  }

  void add(int64_t attrs, const std::string& when, const std::string& cost, int64_t tokens = 0) {
    UsageFacts f;
    f.charge_period_start = *parse_timestamp(when);
    f.charge_period_end = f.charge_period_start + 3600;
    f.effective_cost = f.billed_cost = *parse_decimal(cost);
    f.input_tokens = tokens;
    ASSERT_TRUE(ledger_->append(attrs, f, Lineage{batch_, ++line_}).has_value());
    billed_ += f.billed_cost.nanos;
  }

  void begin() { batch_ = *ledger_->begin_batch(BatchInfo{"f.csv", "focus", {}, 0}); }
  void commit(const std::string& fingerprint = "fp") {
    BatchSummary s;
    s.fingerprint_hex = fingerprint;
    s.billed_cost = billed_;
    ASSERT_TRUE(ledger_->commit_batch(s).has_value());
  }

  QueryResult query(std::vector<std::string> by, std::optional<std::string> from = {},
                    std::optional<std::string> to = {}, std::vector<Filter> filters = {},
                    Metric metric = Metric::kEffectiveCost) {
    QuerySpec spec;
    for (auto& b : by) spec.group_by.push_back(*parse_dimension(b));
    if (from) spec.from = *parse_timestamp(*from);
    if (to) spec.to = *parse_timestamp(*to);
    spec.filters = std::move(filters);
    spec.metric = metric;
    auto r = ledger_->query(spec);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return *r;
  }

  testing::TempDir dir_;
  std::unique_ptr<Ledger> ledger_;
  int64_t batch_ = 0, line_ = 0;
  __int128 billed_ = 0;
};

TEST_F(SqliteLedgerTest, GroupsByDimensionsAndMonthsFromTheRollups) {
  begin();
  int64_t a = attributes("Compute", "alpha"), b = attributes("Compute", "beta"), c = attributes("Storage", "");
  add(a, "2025-01-05T10:00:00Z", "10.5");
  add(a, "2025-02-01T00:00:00Z", "1");
  add(b, "2025-01-31T23:00:00Z", "2.25");
  add(c, "2025-01-10T00:00:00Z", "0.000000001");
  commit();
  QueryResult r = query({"month", "team"});
  EXPECT_EQ(r.source_table, "rollup_month");
  ASSERT_EQ(r.rows.size(), 4u);
  EXPECT_EQ(r.rows[0].keys, (std::vector<std::string>{"2025-01", "alpha"}));
  EXPECT_EQ(format_decimal(r.rows[0].value), "10.5");
  EXPECT_EQ(r.rows[2].keys, (std::vector<std::string>{"2025-01", "(none)"}));
  EXPECT_EQ(r.rows[3].keys, (std::vector<std::string>{"2025-02", "alpha"}));
  EXPECT_EQ(format_decimal(r.total), "13.750000001");
}

TEST_F(SqliteLedgerTest, KeepsEveryRecordFlagBitIncludingTheGatewaysRepeatMark) {
  // The gateway's flags (spool.cc): a repeat answered by the upstream, a cache hit that
  // repeats, and the rest; the ledger stores them as given.
  const std::vector<uint32_t> flags = {kFlagPricedFromCatalog, kFlagPricedFromCatalog | kFlagRepeat,
                                       kFlagPricedFromCatalog | kFlagRepeat | kFlagCacheHit,
                                       kFlagEstimated | kFlagPartial | kFlagRepeat};
  begin();
  int64_t a = attributes("OpenAI API", "support");
  for (uint32_t bits : flags) {
    UsageFacts f;
    f.charge_period_start = *parse_timestamp("2025-01-05T10:00:00Z");
    f.charge_period_end = f.charge_period_start + 1;
    f.requests = 1;
    f.flags = bits;
    ASSERT_TRUE(ledger_->append(a, f, Lineage{batch_, ++line_}).has_value());
  }
  commit();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("l.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT flags FROM records ORDER BY line", -1, &st, nullptr), SQLITE_OK);
  std::vector<uint32_t> stored;
  while (sqlite3_step(st) == SQLITE_ROW) stored.push_back((uint32_t)sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  EXPECT_EQ(stored, flags);
}

TEST_F(SqliteLedgerTest, EveryTableGivesTheSameAnswer) {
  begin();
  int64_t a = attributes("Compute", "alpha");
  add(a, "2025-01-05T10:00:00Z", "1");
  add(a, "2025-01-06T10:00:00Z", "2");
  add(a, "2025-01-06T23:00:00Z", "4");
  add(a, "2025-02-01T00:00:00Z", "8");
  commit();
  EXPECT_EQ(query({}, "2025-01-01", "2025-02-01").source_table, "rollup_month");
  EXPECT_EQ(format_decimal(query({}, "2025-01-01", "2025-02-01").total), "7");
  EXPECT_EQ(query({}, "2025-01-06", "2025-02-01").source_table, "rollup_day");
  EXPECT_EQ(format_decimal(query({}, "2025-01-06", "2025-02-01").total), "6");
  QueryResult hourly = query({}, "2025-01-06T12:00:00Z", "2025-02-01T00:00:00Z");
  EXPECT_EQ(hourly.source_table, "records");
  EXPECT_EQ(format_decimal(hourly.total), "4");
  QueryResult days = query({"day"});
  EXPECT_EQ(days.source_table, "rollup_day");
  ASSERT_EQ(days.rows.size(), 3u);
  EXPECT_EQ(days.rows[1].keys[0], "2025-01-06");
  EXPECT_EQ(format_decimal(days.rows[1].value), "6");
  QueryResult weeks = query({"week"});
  ASSERT_EQ(weeks.rows.size(), 3u);  // Mon 2024-12-30, Mon 2025-01-06, Mon 2025-01-27
  EXPECT_EQ(weeks.rows[0].keys[0], "2024-12-30");
  QueryResult hours = query({"hour"});
  EXPECT_EQ(hours.source_table, "records");
  EXPECT_EQ(hours.rows[0].keys[0], "2025-01-05T10:00:00Z");
}

TEST_F(SqliteLedgerTest, FiltersMatchValuesMissingValuesAndRawTags) {
  begin();
  int64_t a = attributes("Compute", "alpha", R"({"Owner":"ann"})");
  int64_t b = attributes("Compute", "", R"({"Owner":"bob"})");
  add(a, "2025-01-05T10:00:00Z", "1");
  add(b, "2025-01-05T10:00:00Z", "2");
  commit();
  EXPECT_EQ(format_decimal(query({}, {}, {}, {{*parse_dimension("team"), "alpha"}}).total), "1");
  EXPECT_EQ(format_decimal(query({}, {}, {}, {{*parse_dimension("team"), "(none)"}}).total), "2");
  EXPECT_EQ(format_decimal(query({}, {}, {}, {{*parse_dimension("tag:Owner"), "bob"}}).total), "2");
  QueryResult by_owner = query({"tag:Owner"});
  ASSERT_EQ(by_owner.rows.size(), 2u);
  EXPECT_EQ(by_owner.rows[0].keys[0], "bob");
}

TEST_F(SqliteLedgerTest, ACustomDimensionTakesTheFirstAliasPresent) {
  begin();
  add(attributes("Compute", "", R"({"Owner":"ann"})"), "2025-01-05T10:00:00Z", "1");
  add(attributes("Compute", "", R"({"owner-email":"bob@x"})"), "2025-01-05T10:00:00Z", "2");
  add(attributes("Compute", "", R"({"Owner":"cy","owner-email":"cy@x"})"), "2025-01-05T10:00:00Z", "4");
  commit();
  Dimension owner;
  owner.kind = Dimension::Kind::kTag;
  owner.tag_keys = {"Owner", "owner-email"};
  owner.label = "owner";
  QuerySpec spec;
  spec.group_by = {owner};
  auto r = ledger_->query(spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->rows.size(), 3u);
  EXPECT_EQ(r->rows[0].keys[0], "cy");
  EXPECT_EQ(r->rows[1].keys[0], "bob@x");
  spec.group_by.clear();
  spec.filters = {{owner, "ann"}};
  EXPECT_EQ(format_decimal(ledger_->query(spec)->total), "1");
}

TEST_F(SqliteLedgerTest, AnAbortedBatchLeavesNothing) {
  begin();
  add(attributes("Compute", "alpha"), "2025-01-05T10:00:00Z", "1");
  ledger_->abort_batch();
  EXPECT_EQ(query({}).total, 0);
  EXPECT_TRUE(ledger_->batches()->empty());
}

TEST_F(SqliteLedgerTest, RemovingABatchSubtractsItFromEveryRollup) {
  begin();
  int64_t a = attributes("Compute", "alpha");
  add(a, "2025-01-05T10:00:00Z", "1");
  commit("first");
  int64_t first = batch_;
  billed_ = 0;
  begin();
  add(a, "2025-01-05T11:00:00Z", "5");
  ASSERT_TRUE(ledger_->remove_batch(first).has_value());
  commit("second");
  EXPECT_EQ(format_decimal(query({}).total), "5");
  EXPECT_EQ(format_decimal(query({"day"}).total), "5");
  EXPECT_EQ(format_decimal(query({"hour"}).total), "5");
  auto batches = ledger_->batches();
  ASSERT_EQ(batches->size(), 1u);
  EXPECT_EQ((*batches)[0].fingerprint_hex, "second");
}

/// The rollup answers (summed in memory) against the same question put to the records: a
/// range that starts and ends one second before midnight reads the records, and holds the
/// same records when they all start on the hour.
TEST_F(SqliteLedgerTest, RollupAnswersSummedInMemoryEqualTheRecords) {
  begin();
  const int64_t a = attributes("Compute", "alpha", R"({"Owner":"ann"})");
  const int64_t b = attributes("Compute", "beta", R"({"Owner":"bob"})");
  const int64_t c = attributes("Storage", "", R"({"Cost":"x"})");
  const int64_t d = attributes("Storage", "beta");
  const char* days[] = {"2024-12-30", "2025-01-05", "2025-01-06", "2025-01-31",
                        "2025-02-01", "2025-02-14", "2025-03-02"};
  int n = 0;
  for (const char* day : days) {
    for (int64_t attrs : {a, b, c, d}) {
      ++n;
      add(attrs, std::string(day) + "T" + (n % 2 ? "03" : "17") + ":00:00Z",
          std::to_string(n) + "." + std::to_string(n * 7 % 10), n * 1000);
    }
  }
  add(d, "2025-01-06T05:00:00Z", "-9");  // with +9 below: a group that sums to zero
  add(d, "2025-01-06T06:00:00Z", "9");
  commit();
  const std::vector<std::vector<std::string>> groupings = {
      {"day"},  {"team", "day"}, {"week", "service"}, {"month", "team"},
      {"team"}, {"tag:Owner"},   {"day", "month"},    {"service", "week", "team"},
      {}};
  const std::vector<std::vector<Filter>> filter_lists = {{},
                                                         {{*parse_dimension("team"), "beta"}},
                                                         {{*parse_dimension("team"), "(none)"}},
                                                         {{*parse_dimension("tag:Owner"), "ann"}}};
  for (const auto& by : groupings) {
    for (const auto& filters : filter_lists) {
      for (Metric metric : {Metric::kEffectiveCost, Metric::kInputTokens}) {
        SCOPED_TRACE(::testing::Message()
                     << "by " << ::testing::PrintToString(by) << ", " << filters.size()
                     << " filters, metric " << metric_name(metric));
        QueryResult rollup = query(by, "2024-12-01", "2025-04-01", filters, metric);
        QueryResult records =
            query(by, "2024-11-30T23:59:59Z", "2025-03-31T23:59:59Z", filters, metric);
        EXPECT_NE(rollup.source_table, "records");
        EXPECT_EQ(records.source_table, "records");
        EXPECT_EQ(rollup.total, records.total);
        ASSERT_EQ(rollup.rows.size(), records.rows.size());
        for (size_t i = 0; i < rollup.rows.size(); ++i) {
          EXPECT_EQ(rollup.rows[i].keys, records.rows[i].keys) << i;
          EXPECT_EQ(rollup.rows[i].value, records.rows[i].value) << i;
        }
      }
    }
  }
  // A tag present but empty and a tag missing are one "(none)" group (not two rows that
  // read alike).
  begin();
  add(attributes("Storage", "", R"({"Owner":""})"), "2025-01-05T03:00:00Z", "0.5");
  commit("empty owner");
  QueryResult owners = query({"tag:Owner"}, "2025-01-01", "2025-02-01");
  EXPECT_EQ(std::count_if(owners.rows.begin(), owners.rows.end(),
                          [](const QueryRow& r) { return r.keys[0] == "(none)"; }),
            1);
  // The zero-sum group is a row, as SQL's GROUP BY gives it.
  QueryResult by_day = query({"day", "service", "team"}, "2025-01-06", "2025-01-07");
  bool zero_row = false;
  for (const QueryRow& row : by_day.rows)
    zero_row |= row.keys[2] == "beta" && row.keys[1] == "Storage";
  EXPECT_TRUE(zero_row);
}

TEST_F(SqliteLedgerTest, AnswersFollowWritesOfThisAndOtherConnections) {
  begin();
  const int64_t a = attributes("Compute", "alpha");
  add(a, "2025-01-05T10:00:00Z", "1");
  commit("first");
  EXPECT_EQ(format_decimal(query({"day"}).total), "1");  // read into memory
  // Another connection (the gateway, an ingest) commits: this one sees it.
  {
    auto other = open_ledger(dir_.file("l.db"));
    ASSERT_TRUE(other.has_value());
    auto id = (*other)->begin_batch(BatchInfo{"g.csv", "focus", {}, 0});
    ASSERT_TRUE(id.has_value());
    AttributeViews v{};
    v[(size_t)Attr::kServiceName] = "Compute";
    v[(size_t)Attr::kTeam] = "gamma";
    auto attrs = (*other)->intern_attributes(v, Fingerprint{7, 7});
    ASSERT_TRUE(attrs.has_value());
    UsageFacts f;
    f.charge_period_start = *parse_timestamp("2025-01-05T11:00:00Z");
    f.charge_period_end = f.charge_period_start + 3600;
    f.effective_cost = f.billed_cost = *parse_decimal("2");
    ASSERT_TRUE((*other)->append(*attrs, f, Lineage{*id, 1}).has_value());
    BatchSummary s;
    s.fingerprint_hex = "other";
    ASSERT_TRUE((*other)->commit_batch(s).has_value());
  }
  QueryResult after = query({"day", "team"});
  EXPECT_EQ(format_decimal(after.total), "3");
  ASSERT_EQ(after.rows.size(), 2u);
  EXPECT_EQ(after.rows[0].keys[1], "gamma");
  // This connection replaces its own batch: its next answer has the new numbers.
  const int64_t first = batch_;
  billed_ = 0;
  begin();
  add(a, "2025-01-05T12:00:00Z", "5");
  ASSERT_TRUE(ledger_->remove_batch(first).has_value());
  commit("second");
  EXPECT_EQ(format_decimal(query({"day"}).total), "7");
  EXPECT_EQ(format_decimal(query({"month", "team"}).total), "7");
}

TEST_F(SqliteLedgerTest, ConnectionsSharingRollupSumsSeeEachOthersCommits) {
  begin();
  const int64_t a = attributes("Compute", "alpha");
  for (const char* day : {"2025-01-05", "2025-02-05", "2025-03-05"})
    add(a, std::string(day) + "T10:00:00Z", "1");
  commit("first");
  auto shared = SqliteLedger::new_rollup_cache();
  auto reader = SqliteLedger::open(dir_.file("l.db"), shared);
  auto writer = SqliteLedger::open(dir_.file("l.db"), shared);
  ASSERT_TRUE(reader.has_value() && writer.has_value());
  QuerySpec by_day;
  by_day.group_by = {*parse_dimension("day"), *parse_dimension("team")};
  EXPECT_EQ(format_decimal((*reader)->query(by_day)->total), "3");
  // Four threads, a connection each, one cache: the same answers.
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto mine = SqliteLedger::open(dir_.file("l.db"), shared);
      if (!mine) {
        ++wrong;
        return;
      }
      for (int i = 0; i < 20; ++i) {
        QuerySpec spec = by_day;
        spec.from = *parse_timestamp(i % 2 ? "2025-02-01" : "2025-01-01");
        auto r = (*mine)->query(spec);
        if (!r || format_decimal(r->total) != (i % 2 ? "2" : "3")) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
  // A commit through the other connection is seen through this one.
  auto id = (*writer)->begin_batch(BatchInfo{"g.csv", "focus", {}, 0});
  ASSERT_TRUE(id.has_value());
  AttributeViews v{};
  v[(size_t)Attr::kServiceName] = "Compute";
  v[(size_t)Attr::kTeam] = "beta";
  auto attrs = (*writer)->intern_attributes(v, Fingerprint{9, 9});
  ASSERT_TRUE(attrs.has_value());
  UsageFacts f;
  f.charge_period_start = *parse_timestamp("2025-02-06T10:00:00Z");
  f.charge_period_end = f.charge_period_start + 3600;
  f.effective_cost = f.billed_cost = *parse_decimal("10");
  ASSERT_TRUE((*writer)->append(*attrs, f, Lineage{*id, 1}).has_value());
  // Not committed: the reader does not see it (and the rollups take it at the commit).
  EXPECT_EQ(format_decimal((*reader)->query(by_day)->total), "3");
  BatchSummary summary;
  summary.fingerprint_hex = "second";
  ASSERT_TRUE((*writer)->commit_batch(summary).has_value());
  QueryResult after = (*reader)->query(by_day).value();
  EXPECT_EQ(format_decimal(after.total), "13");
  EXPECT_EQ(after.rows.size(), 4u);
}

TEST_F(SqliteLedgerTest, StoresPriceVersionsOnlyWhenPricesChange) {
  pricing::ModelPrice m;
  m.model = "gpt-4o-mini";
  m.effective_from = *parse_timestamp("2024-07-18");
  m.prices.input = *parse_decimal("0.15");
  m.prices.output = *parse_decimal("0.6");
  m.tiers.push_back({200000, {*parse_decimal("0.3"), {}, {}, *parse_decimal("1.2"), {}}});
  std::vector<pricing::ModelPrice> models{m};
  std::vector<pricing::GpuInstancePrice> gpus;
  EXPECT_EQ(*ledger_->store_prices(models, gpus), 1);
  int64_t v1 = models[0].version;
  EXPECT_GT(v1, 0);
  models[0].effective_from = *parse_timestamp("2025-01-01");  // same prices, later date
  EXPECT_EQ(*ledger_->store_prices(models, gpus), 0);
  EXPECT_EQ(models[0].version, v1);
  models[0].prices.input = *parse_decimal("0.1");
  EXPECT_EQ(*ledger_->store_prices(models, gpus), 1);
  pricing::Catalog catalog = *ledger_->load_catalog();
  const pricing::ModelPrice* old_price = catalog.find_model("gpt-4o-mini", *parse_timestamp("2024-12-31"));
  const pricing::ModelPrice* new_price = catalog.find_model("gpt-4o-mini", *parse_timestamp("2025-01-02"));
  ASSERT_TRUE(old_price && new_price);
  EXPECT_EQ(old_price->version, v1);
  EXPECT_EQ(format_decimal(old_price->prices.input->nanos), "0.15");
  EXPECT_EQ(format_decimal(new_price->prices.input->nanos), "0.1");
  ASSERT_EQ(old_price->tiers.size(), 1u);
  EXPECT_EQ(format_decimal(old_price->tiers[0].prices.output->nanos), "1.2");
}

TEST_F(SqliteLedgerTest, RefusesALedgerFromANewerVersion) {
  ledger_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("l.db").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "INSERT INTO schema_version VALUES(99)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto reopened = open_ledger(dir_.file("l.db"));
  ASSERT_FALSE(reopened.has_value());
  EXPECT_NE(reopened.error().message.find("upgrade aifinops"), std::string::npos);
}

TEST_F(SqliteLedgerTest, MigratesAVersion1LedgerToHiLoRollupsWithTheSameAnswers) {
  begin();
  int64_t a = attributes("Compute", "alpha"), b = attributes("Storage", "beta");
  add(a, "2025-01-01T03:00:00Z", "1.25", 10);
  add(a, "2025-01-20T03:00:00Z", "2.5", 20);
  add(b, "2025-02-01T00:00:00Z", "7.000000001", 30);
  commit();
  QueryResult by_month = query({"team", "month"}), by_day = query({"service", "day"});
  // Turn the file back into a version 1 ledger: single-column rollups, no notes.
  ledger_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("l.db").c_str(), &db), SQLITE_OK);
  std::string v1 = "DROP TABLE notes; DELETE FROM schema_version WHERE version >= 2;";
  for (const char* c : {"gpu_observed_milliseconds", "gpu_busy_milliseconds", "gpu_memory_mib_milliseconds", "energy_millijoules",
                        "co2e_micrograms", "gpu_memory_peak_mib"})
    v1 += std::string("ALTER TABLE records DROP COLUMN ") + c + ";";
  const char* facts[] = {"consumed_quantity", "pricing_quantity", "list_cost", "contracted_cost", "billed_cost",
                         "effective_cost", "input_tokens", "cached_input_tokens", "cache_write_tokens",
                         "output_tokens", "reasoning_tokens", "requests", "gpu_milliseconds", "cache_saving"};
  for (auto [table, bucket] : {std::pair{"rollup_day", "(charge_period_start / 86400) * 86400"},
                               std::pair{"rollup_month", "CAST(strftime('%s', charge_period_start, "
                                                         "'unixepoch', 'start of month') AS INTEGER)"}}) {
    std::string columns, sums;
    for (const char* c : facts) {
      columns += std::string(", ") + c + " INTEGER NOT NULL";
      sums += std::string(", sum(") + c + ")";
    }
    v1 += std::string("DROP TABLE ") + table + "; CREATE TABLE " + table +
          "(bucket INTEGER NOT NULL, attributes_id INTEGER NOT NULL, record_count INTEGER NOT NULL" + columns +
          ", PRIMARY KEY(bucket, attributes_id)) WITHOUT ROWID; INSERT INTO " + table + " SELECT " + bucket +
          ", attributes_id, count(*)" + sums + " FROM records GROUP BY 1, 2;";
  }
  char* message = nullptr;
  ASSERT_EQ(sqlite3_exec(db, v1.c_str(), nullptr, nullptr, &message), SQLITE_OK) << message;
  sqlite3_close(db);
  auto reopened = open_ledger(dir_.file("l.db"));
  ASSERT_TRUE(reopened.has_value()) << reopened.error().message;
  ledger_ = std::move(*reopened);
  QueryResult month_after = query({"team", "month"}), day_after = query({"service", "day"});
  EXPECT_EQ(month_after.source_table, "rollup_month");
  EXPECT_EQ(day_after.source_table, "rollup_day");
  ASSERT_EQ(month_after.rows.size(), by_month.rows.size());
  for (size_t i = 0; i < by_month.rows.size(); ++i) {
    EXPECT_EQ(month_after.rows[i].keys, by_month.rows[i].keys);
    EXPECT_EQ(month_after.rows[i].value, by_month.rows[i].value);
  }
  ASSERT_EQ(day_after.rows.size(), by_day.rows.size());
  EXPECT_EQ(day_after.total, by_day.total);
  EXPECT_EQ(month_after.total, parse_decimal("10.750000001")->nanos);
  EXPECT_TRUE(*ledger_->note_once("k", "v", ""));  // the notes table exists again
}

/// Telemetry facts of one GPU for one hour: `busy_percent` utilisation, `memory_mib` used
/// throughout, `watts` drawn.
UsageFacts gpu_hour(const std::string& when, int64_t busy_percent, int64_t memory_mib, int64_t watts) {
  UsageFacts f;
  f.charge_period_start = *parse_timestamp(when);
  f.charge_period_end = f.charge_period_start + 3600;
  f.gpu_observed_milliseconds = 3'600'000;
  f.gpu_busy_milliseconds = 36'000 * busy_percent;
  f.gpu_memory_mib_milliseconds = memory_mib * 3'600'000;
  f.gpu_memory_peak_mib = memory_mib;
  f.energy_millijoules = watts * 3'600'000;
  f.co2e_micrograms = watts * 400'000;  // 400 g/kWh = 0.4 g per Wh, and watts W for an hour = watts Wh
  return f;
}

TEST_F(SqliteLedgerTest, GpuUtilizationIsARatioOfSumsAndThePeakAMaximum) {
  begin();
  int64_t a = attributes("gpu", "alpha"), b = attributes("gpu", "beta");
  ASSERT_TRUE(ledger_->append(a, gpu_hour("2025-03-01T00:00:00Z", 10, 1000, 100), Lineage{batch_, 1}).has_value());
  ASSERT_TRUE(ledger_->append(a, gpu_hour("2025-03-01T01:00:00Z", 30, 3000, 300), Lineage{batch_, 2}).has_value());
  ASSERT_TRUE(ledger_->append(b, gpu_hour("2025-03-02T00:00:00Z", 80, 500, 500), Lineage{batch_, 3}).has_value());
  commit();
  // The month rollup, the day rollup and the records answer alike.
  for (auto [by, from] : {std::pair{std::vector<std::string>{"team"}, std::string("2025-03-01T00:00:00Z")},
                          std::pair{std::vector<std::string>{"month", "team"}, std::string("2025-03-01T00:00:00Z")},
                          std::pair{std::vector<std::string>{"team"}, std::string("2025-03-01T01:00:00Z")}}) {
    QueryResult u = query(by, {}, {}, {}, Metric::kGpuUtilization);
    ASSERT_EQ(u.rows.size(), 2u);
    EXPECT_EQ(u.rows[0].keys.back(), "beta");
    EXPECT_EQ(format_decimal(u.rows[0].value), "0.8");
    EXPECT_EQ(format_decimal(u.rows[1].value), "0.2");
    EXPECT_EQ(format_decimal(u.total), "0.4");  // (10 + 30 + 80) / 3 hours, not a sum of ratios
    QueryResult since = query(by, from, {}, {}, Metric::kGpuUtilization);
    EXPECT_EQ(format_decimal(since.total), from[12] == '1' ? "0.55" : "0.4");
  }
  QueryResult hourly = query({"hour"}, {}, {}, {}, Metric::kGpuUtilization);
  ASSERT_EQ(hourly.rows.size(), 3u);
  EXPECT_EQ(format_decimal(hourly.rows[1].value), "0.3");
  QueryResult peak = query({"team"}, {}, {}, {}, Metric::kGpuMemoryPeakMib);
  EXPECT_EQ(peak.source_table, "records");
  ASSERT_EQ(peak.rows.size(), 2u);
  EXPECT_EQ(peak.rows[0].value, 3000);
  EXPECT_EQ(peak.total, 3000);
  QueryResult energy = query({}, {}, {}, {}, Metric::kEnergyKwh);
  EXPECT_EQ(energy.source_table, "rollup_month");
  EXPECT_EQ(format_decimal(energy.total), "0.9");
  EXPECT_EQ(format_decimal(query({"day"}, {}, {}, {}, Metric::kCo2eKg).total), "0.36");
  EXPECT_EQ(query({}, {}, {}, {}, Metric::kGpuHours).total, 0);  // observed time is not billed time
  EXPECT_EQ(format_decimal(query({"team"}, {}, {}, {}, Metric::kGpuObservedHours).total), "3");
}

TEST(SqliteLedgerMigrationTest, OpensAVersion2FileAddingTelemetryColumnsWithTheSameAnswers) {
  testing::TempDir dir;
  std::string path = dir.file("v2.db");
  {
    std::ifstream in(std::string(AIFINOPS_SOURCE_DIR) + "/tests/fixtures/gpu/ledger_v2.sql");
    ASSERT_TRUE(in.good());
    std::stringstream dump;
    dump << in.rdbuf();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* message = nullptr;
    ASSERT_EQ(sqlite3_exec(db, dump.str().c_str(), nullptr, nullptr, &message), SQLITE_OK) << message;
    sqlite3_close(db);
  }
  auto opened = open_ledger(path);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  Ledger& l = **opened;
  QuerySpec spec;
  spec.metric = Metric::kEffectiveCost;
  EXPECT_EQ(format_decimal(l.query(spec)->total), "65.54");
  spec.metric = Metric::kGpuHours;
  EXPECT_EQ(format_decimal(l.query(spec)->total), "16");
  spec.metric = Metric::kGpuUtilization;
  EXPECT_EQ(l.query(spec)->total, 0);  // v2 records have no telemetry
  // New records carry the new facts into the migrated rollups; a removed batch takes them out.
  auto batch = l.begin_batch(BatchInfo{"dcgm.prom", "dcgm", {}, 0});
  ASSERT_TRUE(batch.has_value());
  AttributeViews v{};
  v[(size_t)Attr::kResourceId] = "gpu-node-1";
  auto id = l.intern_attributes(v, Fingerprint{7, 7});
  ASSERT_TRUE(l.append(*id, gpu_hour("2025-01-01T00:00:00Z", 25, 2048, 350), Lineage{*batch, 1}).has_value());
  BatchSummary s;
  s.id = *batch;
  ASSERT_TRUE(l.commit_batch(s).has_value());
  EXPECT_EQ(format_decimal(l.query(spec)->total), "0.25");
  spec.metric = Metric::kGpuHours;
  EXPECT_EQ(format_decimal(l.query(spec)->total), "16");  // telemetry adds no billed GPU-hours
  spec.group_by = {*parse_dimension("month")};
  spec.metric = Metric::kEnergyKwh;
  EXPECT_EQ(format_decimal(l.query(spec)->total), "0.35");
  spec.metric = Metric::kGpuMemoryPeakMib;
  EXPECT_EQ(l.query(spec)->total, 2048);
  ASSERT_TRUE(l.begin_batch(BatchInfo{"x", "focus", {}, 0}).has_value());
  ASSERT_TRUE(l.remove_batch(*batch).has_value());
  ASSERT_TRUE(l.commit_batch(BatchSummary{}).has_value());
  spec.metric = Metric::kEnergyKwh;
  EXPECT_EQ(l.query(spec)->total, 0);
}

TEST(DimensionTest, UnknownDimensionNamesTheAllowedOnes) {
  auto d = parse_dimension("colour");
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message.find("service_category"), std::string::npos);
  EXPECT_EQ(parse_dimension("service")->attribute, Attr::kServiceName);
  EXPECT_EQ(parse_dimension("tag:Owner")->tag_keys, std::vector<std::string>{"Owner"});
}

}  // namespace
}  // namespace aifinops::ledger

namespace aifinops::ledger {
namespace {

TEST(SqliteLedgerNotesTest, NoteOnceRecordsAKeyOnlyOnceAndSurvivesReopening) {
  aifinops::testing::TempDir dir;
  {
    auto ledger = open_ledger(dir.file("n.db"));
    ASSERT_TRUE(ledger.has_value()) << ledger.error().message;
    EXPECT_TRUE(*(*ledger)->note_once("budget_alert", "team=a (month)|80%|2025-10", "{}"));
    EXPECT_FALSE(*(*ledger)->note_once("budget_alert", "team=a (month)|80%|2025-10", "{}"));
    EXPECT_TRUE(*(*ledger)->note_once("budget_alert", "team=a (month)|100%|2025-10", "{}"));
    ASSERT_TRUE((*ledger)->note("anomalies_run", "last", "first").has_value());
    ASSERT_TRUE((*ledger)->note("anomalies_run", "last", "second").has_value());
  }
  auto ledger = open_ledger(dir.file("n.db"));
  ASSERT_TRUE(ledger.has_value());
  EXPECT_FALSE(*(*ledger)->note_once("budget_alert", "team=a (month)|80%|2025-10", "{}"));
  auto alerts = (*ledger)->notes("budget_alert");
  ASSERT_TRUE(alerts.has_value());
  EXPECT_EQ(alerts->size(), 2u);
  auto runs = (*ledger)->notes("anomalies_run");
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].detail, "second");
}

}  // namespace
}  // namespace aifinops::ledger
