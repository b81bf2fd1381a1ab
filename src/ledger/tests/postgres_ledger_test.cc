// PostgresLedger against a real server: $AIFINOPS_TEST_PG_URL names an empty database
// (ctest runs this binary through tests/integration/pg_service.py, which starts a private
// server). Every test writes the same data to an SQLite ledger too and checks that both
// answer every query identically. Without the variable every test fails: never a silent pass.
#include "ledger/postgres/postgres_ledger.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <array>
#include <cstdlib>
#include <map>
#include <thread>

#include "ledger/location.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::ledger {
namespace {

std::string test_url() {
  const char* url = std::getenv("AIFINOPS_TEST_PG_URL");
  return url != nullptr ? url : "";
}

/// Runs SQL on the test database outside the ledger (to inspect or to tamper with it).
std::string psql(const std::string& sql) {
  PGconn* conn = PQconnectdb(test_url().c_str());
  PGresult* r = PQexec(conn, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
    out = std::string("error: ") + PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
  return out;
}

std::string describe(const QueryResult& r) {
  std::string s = r.source_table + " total=" + format_decimal(r.total) + "\n";
  for (const QueryRow& row : r.rows) {
    for (const std::string& k : row.keys) s += k + " | ";
    s += format_decimal(row.value) + "\n";
  }
  return s;
}

class PostgresLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(test_url().empty())
        << "AIFINOPS_TEST_PG_URL is not set: run through ctest (tests/integration/pg_service.py "
           "run -- postgres_ledger_test), which starts a private PostgreSQL server";
    ASSERT_TRUE(PostgresLedger::drop_ledger(test_url()).has_value());
    auto pg = open_ledger(test_url());
    ASSERT_TRUE(pg.has_value()) << pg.error().message;
    pg_ = std::move(*pg);
    auto lite = open_ledger(dir_.file("l.db"));
    ASSERT_TRUE(lite.has_value()) << lite.error().message;
    lite_ = std::move(*lite);
  }

  std::vector<Ledger*> both() { return {lite_.get(), pg_.get()}; }

  int64_t attributes(const std::string& service, const std::string& team,
                     const std::string& tags = "") {
    AttributeViews v{};
    v[(size_t)Attr::kServiceName] = service;
    v[(size_t)Attr::kTeam] = team;
    v[(size_t)Attr::kTags] = tags;
    Fingerprint f{std::hash<std::string>()(service), std::hash<std::string>()(team + "|" + tags)};
    std::array<int64_t, 2> ids{};
    for (size_t k = 0; k < 2; ++k) {
      auto got = both()[k]->intern_attributes(v, f);
      EXPECT_TRUE(got.has_value()) << got.error().message;
      ids[k] = got ? *got : 0;
    }
    // The ids may differ (a sequence does not go back after an aborted batch, a rowid
    // does): a handle to both.
    ids_.push_back(ids);
    return (int64_t)ids_.size() - 1;
  }

  void add(int64_t attrs, const std::string& when, const std::string& cost, int64_t tokens = 0) {
    UsageFacts f;
    f.charge_period_start = *parse_timestamp(when);
    f.charge_period_end = f.charge_period_start + 3600;
    f.effective_cost = f.billed_cost = *parse_decimal(cost);
    f.input_tokens = tokens;
    add_facts(attrs, f);
  }
  void add_facts(int64_t attrs, const UsageFacts& f) {
    ++line_;
    for (size_t k = 0; k < 2; ++k)
      ASSERT_TRUE(both()[k]->append(ids_[attrs][k], f, Lineage{batch_, line_}).has_value());
    billed_ += f.billed_cost.nanos;
  }

  void begin(const std::string& path = "f.csv") {
    for (Ledger* l : both()) {
      auto id = l->begin_batch(BatchInfo{path, "focus", {}, 0});
      ASSERT_TRUE(id.has_value()) << id.error().message;
      batch_ = *id;
    }
  }
  void commit(const std::string& fingerprint = "fp") {
    BatchSummary s;
    s.fingerprint_hex = fingerprint;
    s.billed_cost = billed_;
    s.rows_read = s.rows_ingested = line_;
    for (Ledger* l : both()) {
      auto r = l->commit_batch(s);
      ASSERT_TRUE(r.has_value()) << r.error().message;
    }
    billed_ = 0;
  }

  /// The PostgreSQL answer, after checking that SQLite's is the same in every field.
  QueryResult query(std::vector<std::string> by, std::optional<std::string> from = {},
                    std::optional<std::string> to = {}, std::vector<Filter> filters = {},
                    Metric metric = Metric::kEffectiveCost) {
    QuerySpec spec;
    for (auto& b : by) spec.group_by.push_back(*parse_dimension(b));
    if (from) spec.from = *parse_timestamp(*from);
    if (to) spec.to = *parse_timestamp(*to);
    spec.filters = std::move(filters);
    spec.metric = metric;
    return same_answer(spec);
  }
  QueryResult same_answer(const QuerySpec& spec) {
    auto lite = lite_->query(spec);
    auto pg = pg_->query(spec);
    EXPECT_TRUE(lite.has_value()) << lite.error().message;
    EXPECT_TRUE(pg.has_value()) << pg.error().message;
    if (!lite || !pg) return {};
    EXPECT_EQ(describe(*pg), describe(*lite));
    return *pg;
  }

  /// Every metric by several groupings and ranges: both ledgers must agree on all.
  void expect_same_everywhere() {
    const std::vector<std::vector<std::string>> groupings = {{},
                                                             {"team"},
                                                             {"month"},
                                                             {"day"},
                                                             {"week"},
                                                             {"hour"},
                                                             {"team", "month"},
                                                             {"service", "day"},
                                                             {"tag:Owner"},
                                                             {"month", "tag:Owner", "team"}};
    const std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> ranges = {
        {{}, {}},
        {"2025-01-01", "2025-02-01"},
        {"2025-01-06", {}},
        {"2025-01-06T12:00:00Z", "2025-03-01"}};
    for (size_t m = 0; m < static_cast<size_t>(Metric::kCount); ++m)
      for (const auto& by : groupings)
        for (const auto& [from, to] : ranges) {
          SCOPED_TRACE(std::string(metric_name(static_cast<Metric>(m))) + " by " +
                       (by.empty() ? "-" : by[0]) + " from " + from.value_or("-"));
          query(by, from, to, {}, static_cast<Metric>(m));
        }
  }

  testing::TempDir dir_;
  std::unique_ptr<Ledger> lite_, pg_;
  std::vector<std::array<int64_t, 2>> ids_;  // attribute ids in (SQLite, PostgreSQL)
  int64_t batch_ = 0, line_ = 0;
  __int128 billed_ = 0;
};

TEST_F(PostgresLedgerTest, GroupsByDimensionsAndMonthsFromTheRollups) {
  begin();
  int64_t a = attributes("Compute", "alpha"), b = attributes("Compute", "beta"),
          c = attributes("Storage", "");
  add(a, "2025-01-05T10:00:00Z", "10.5");
  add(a, "2025-02-01T00:00:00Z", "1");
  add(b, "2025-01-31T23:00:00Z", "2.25");
  add(c, "2025-01-10T00:00:00Z", "0.000000001");
  commit();
  QueryResult r = query({"month", "team"});
  EXPECT_EQ(r.source_table, "rollup_month");
  ASSERT_EQ(r.rows.size(), 4u);
  EXPECT_EQ(r.rows[0].keys, (std::vector<std::string>{"2025-01", "alpha"}));
  EXPECT_EQ(r.rows[2].keys, (std::vector<std::string>{"2025-01", "(none)"}));
  EXPECT_EQ(format_decimal(r.total), "13.750000001");
  // One partition per month, made on demand.
  EXPECT_EQ(psql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'records'::regclass"), "2");
  EXPECT_EQ(psql("SELECT count(*) FROM records_2025_01"), "3");
  expect_same_everywhere();
}

TEST_F(PostgresLedgerTest, EveryTableGivesTheSameAnswerAsSqlite) {
  begin();
  int64_t a = attributes("Compute", "alpha", R"({"Owner":"ann"})");
  int64_t b = attributes("Storage", "beta", R"({"Owner":"bob","On":true})");
  add(a, "2025-01-05T10:00:00Z", "1", 100);
  add(a, "2025-01-06T10:00:00Z", "2", 200);
  add(b, "2025-01-06T23:00:00Z", "4", 5);
  add(b, "2025-02-01T00:00:00Z", "8");
  add(a, "2024-12-30T03:00:00Z", "-0.5");
  commit();
  EXPECT_EQ(query({}, "2025-01-06", "2025-02-01").source_table, "rollup_day");
  EXPECT_EQ(query({}, "2025-01-06T12:00:00Z", "2025-02-01T00:00:00Z").source_table, "records");
  EXPECT_EQ(query({"week"}).rows[0].keys[0], "2024-12-30");
  EXPECT_EQ(query({"tag:On"}).rows[0].keys[0], "1");  // a JSON true reads as SQLite reads it
  expect_same_everywhere();
}

TEST_F(PostgresLedgerTest, KeepsEveryRecordFlagBitIncludingTheGatewaysRepeatMark) {
  // Binary COPY carries flags as int8: the gateway's repeat and cache-hit bits come back.
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
    add_facts(a, f);
  }
  commit();
  std::string expected;
  for (uint32_t bits : flags) expected += (expected.empty() ? "" : ",") + std::to_string(bits);
  EXPECT_EQ(psql("SELECT string_agg(flags::text, ',' ORDER BY line) FROM records"), expected);
  EXPECT_EQ(psql("SELECT count(*) FROM records WHERE flags & " + std::to_string(kFlagRepeat) + " <> 0"), "3");
}

TEST_F(PostgresLedgerTest, FiltersMatchValuesMissingValuesAndRawTags) {
  begin();
  int64_t a = attributes("Compute", "alpha", R"({"Owner":"ann"})");
  int64_t b = attributes("Compute", "", R"({"Owner":"bob","owner-email":"b@x"})");
  int64_t c = attributes("Compute", "", R"({"owner-email":"cy@x","Owner":""})");
  add(a, "2025-01-05T10:00:00Z", "1");
  add(b, "2025-01-05T10:00:00Z", "2");
  add(c, "2025-01-05T10:00:00Z", "4");
  commit();
  EXPECT_EQ(format_decimal(query({}, {}, {}, {{*parse_dimension("team"), "alpha"}}).total), "1");
  EXPECT_EQ(format_decimal(query({}, {}, {}, {{*parse_dimension("team"), "(none)"}}).total), "6");
  EXPECT_EQ(format_decimal(query({}, {}, {}, {{*parse_dimension("tag:Owner"), "bob"}}).total), "2");
  EXPECT_EQ(format_decimal(query({}, {}, {}, {{*parse_dimension("tag:Owner"), "(none)"}}).total),
            "4");
  Dimension owner;
  owner.kind = Dimension::Kind::kTag;
  owner.tag_keys = {"Owner", "owner-email"};
  owner.label = "owner";
  QuerySpec spec;
  spec.group_by = {owner, *parse_dimension("team")};
  spec.filters = {{*parse_dimension("service"), "Compute"}};
  QueryResult r = same_answer(spec);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].keys[0], "(none)");  // "" is present: coalesce takes it, as SQLite does
}

TEST_F(PostgresLedgerTest, AnEmptyTagGroupsWithAMissingOneOnEveryTable) {
  begin();
  int64_t empty = attributes("Compute", "alpha", R"({"Owner":""})");
  int64_t missing = attributes("Compute", "beta", R"({"On":true})");
  add(empty, "2025-01-05T10:00:00Z", "1");
  add(missing, "2025-01-05T11:00:00Z", "2");
  commit();
  // Month rollup (in memory in SQLite), day rollup, and records (an hour range).
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"2025-01-01", "2025-02-01"}, {"2025-01-05", "2025-01-06"},
           {"2025-01-05T10:00:00Z", "2025-01-05T12:00:00Z"}}) {
    QueryResult r = query({"tag:Owner"}, from, to);
    ASSERT_EQ(r.rows.size(), 1u) << from;
    EXPECT_EQ(r.rows[0].keys[0], "(none)");
    EXPECT_EQ(format_decimal(r.rows[0].value), "3");
  }
  EXPECT_EQ(query({"tag:Owner", "hour"}).rows.size(), 2u);  // records: one row per hour
  expect_same_everywhere();
}

TEST_F(PostgresLedgerTest, SumsPassInt64Exactly) {
  begin();
  int64_t a = attributes("Compute", "alpha");
  UsageFacts f;
  f.charge_period_start = *parse_timestamp("2025-01-05T10:00:00Z");
  f.effective_cost = f.billed_cost = Decimal{INT64_MAX - 7};
  f.consumed_quantity = Decimal{INT64_MAX};
  for (int i = 0; i < 3; ++i) add_facts(a, f);
  commit();
  QueryResult r = query({"team"});
  EXPECT_EQ(r.total, (__int128)(INT64_MAX - 7) * 3);
  EXPECT_EQ(query({"hour"}, {}, {}, {}, Metric::kQuantity).total, (__int128)INT64_MAX * 3);
  expect_same_everywhere();
}

TEST_F(PostgresLedgerTest, AnAbortedBatchLeavesNothingNotEvenItsPartition) {
  begin();
  // 60,000 rows pass the COPY buffer: some of the batch has reached the server already.
  int64_t a = attributes("Compute", "alpha");
  for (int i = 0; i < 30'000; ++i) add(a, "2030-06-05T10:00:00Z", "1");
  for (Ledger* l : both()) l->abort_batch();
  EXPECT_EQ(query({}).total, 0);
  EXPECT_TRUE(pg_->batches()->empty());
  EXPECT_EQ(psql("SELECT to_regclass('records_2030_06') IS NULL"), "t");
  // The connection takes the next batch, and interns the aborted attributes again.
  begin();
  add(attributes("Compute", "alpha"), "2030-06-05T10:00:00Z", "2");
  commit();
  EXPECT_EQ(format_decimal(query({"team"}).total), "2");
}

TEST_F(PostgresLedgerTest, RemovingABatchSubtractsItFromEveryRollup) {
  begin("a.csv");
  int64_t a = attributes("Compute", "alpha");
  add(a, "2025-01-05T10:00:00Z", "1");
  add(a, "2025-03-05T10:00:00Z", "3");
  commit("first");
  int64_t first = batch_;
  begin("a.csv");
  add(a, "2025-01-05T11:00:00Z", "5");
  for (Ledger* l : both()) ASSERT_TRUE(l->remove_batch(first).has_value());
  commit("second");
  EXPECT_EQ(format_decimal(query({}).total), "5");
  EXPECT_EQ(format_decimal(query({"day"}).total), "5");
  EXPECT_EQ(format_decimal(query({"hour"}).total), "5");
  EXPECT_EQ(psql("SELECT count(*) FROM rollup_month"), "1");  // emptied groups are gone
  auto batches = pg_->batches();
  ASSERT_EQ(batches->size(), 1u);
  EXPECT_EQ((*batches)[0].fingerprint_hex, "second");
  EXPECT_EQ((*batches)[0].id, 2);
  EXPECT_EQ(pg_->find_batches_by_path("a.csv")->size(), 1u);
  EXPECT_FALSE(pg_->find_batch_by_fingerprint(Fingerprint{})->has_value());
  expect_same_everywhere();
}

TEST_F(PostgresLedgerTest, ManyRowsStreamInSeveralCopiesAcrossMonths) {
  begin();
  std::vector<int64_t> attrs;
  for (int i = 0; i < 50; ++i)
    attrs.push_back(attributes("svc" + std::to_string(i % 7), "team" + std::to_string(i)));
  // 60,000 rows of 350 bytes: three COPY streams of 8 MB, over 14 months.
  const EpochSeconds start = *parse_timestamp("2024-11-01T00:00:00Z");
  for (int i = 0; i < 60'000; ++i) {
    UsageFacts f;
    f.charge_period_start = start + (int64_t)i * 613;
    f.effective_cost = f.billed_cost = Decimal{1'000'000'007LL * (i % 13)};
    f.input_tokens = i;
    f.requests = 1;
    add_facts(attrs[i % attrs.size()], f);
  }
  commit();
  EXPECT_EQ(psql("SELECT count(*) FROM records"), "60000");
  EXPECT_EQ(query({}, {}, {}, {}, Metric::kRequests).total, 60'000);
  query({"team", "month"});
  query({"service", "week"}, "2025-01-01", "2025-06-01");
  query({"service"}, "2025-01-01T05:00:00Z", "2025-06-01");
  query({"day"}, {}, {}, {}, Metric::kInputTokens);
}

TEST_F(PostgresLedgerTest, ABatchWithMoreGroupsThanTheRollupTableHoldsFlushesItMidway) {
  // 1,100 attribute sets × 130 days = 143,000 day groups: past the in-memory table's half
  // (131,072), so the batch writes rollups midway and again at commit.
  begin();
  std::vector<int64_t> attrs;
  for (int i = 0; i < 1100; ++i) attrs.push_back(attributes("svc" + std::to_string(i % 9), "t" + std::to_string(i)));
  const EpochSeconds start = *parse_timestamp("2025-01-01T06:00:00Z");
  for (int day = 0; day < 130; ++day)
    for (size_t a = 0; a < attrs.size(); ++a) {
      UsageFacts f;
      f.charge_period_start = start + day * 86400;
      f.effective_cost = f.billed_cost = Decimal{(int64_t)(a + 1) * 1'000'003};
      f.requests = 1;
      add_facts(attrs[a], f);
    }
  commit();
  EXPECT_EQ(psql("SELECT count(*) FROM rollup_day"), "143000");
  EXPECT_EQ(query({}, {}, {}, {}, Metric::kRequests).total, 143'000);
  query({"service", "month"});
  query({"service", "week"}, "2025-02-01", "2025-04-01");
  query({"service"}, "2025-02-01T05:00:00Z", "2025-04-01");
}

TEST_F(PostgresLedgerTest, QuarantineKeepsRowsInOrderAndBadTextReadably) {
  begin();
  add(attributes("Compute", "alpha"), "2025-01-05T10:00:00Z", "1");
  const std::string cut = std::string("caf\xC3", 4);  // a character cut at the end
  for (Ledger* l : both()) {
    ASSERT_TRUE(l->quarantine(batch_, {7, "BilledCost", "\"x\" is not a decimal number", "a,x"})
                    .has_value());
    ASSERT_TRUE(l->quarantine(batch_, {9, "", "too many columns", cut + std::string("\0z", 2)})
                    .has_value());
  }
  commit();
  auto rows = pg_->quarantined_rows(batch_);
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].line, 7);
  EXPECT_EQ((*rows)[0].column, "BilledCost");
  EXPECT_EQ((*rows)[1].column, "");
  EXPECT_EQ((*rows)[1].raw, "caf\xEF\xBF\xBDz");
  // Replacing the batch takes its quarantine rows too.
  int64_t first = batch_;
  begin();
  for (Ledger* l : both()) ASSERT_TRUE(l->remove_batch(first).has_value());
  commit("again");
  EXPECT_TRUE(pg_->quarantined_rows(first)->empty());
}

TEST_F(PostgresLedgerTest, StoresPriceVersionsOnlyWhenPricesChange) {
  pricing::ModelPrice m;
  m.model = "gpt-4o-mini";
  m.effective_from = *parse_timestamp("2024-07-18");
  m.prices.input = *parse_decimal("0.15");
  m.prices.output = *parse_decimal("0.6");
  m.tiers.push_back({200000, {*parse_decimal("0.3"), {}, {}, *parse_decimal("1.2"), {}}});
  pricing::GpuInstancePrice g;
  g.sku = "p5.48xlarge";
  g.gpus = 8;
  g.effective_from = *parse_timestamp("2024-01-01");
  g.currency = "USD";
  g.on_demand = *parse_decimal("98.32");
  std::vector<pricing::ModelPrice> models{m};
  std::vector<pricing::GpuInstancePrice> gpus{g};
  EXPECT_EQ(*pg_->store_prices(models, gpus), 2);
  EXPECT_EQ(models[0].version, 1);
  EXPECT_EQ(gpus[0].version, 1);
  models[0].effective_from = *parse_timestamp("2025-01-01");  // same prices, later date
  EXPECT_EQ(*pg_->store_prices(models, gpus), 0);
  models[0].prices.input = *parse_decimal("0.1");
  EXPECT_EQ(*pg_->store_prices(models, gpus), 1);
  EXPECT_EQ(models[0].version, 2);
  pricing::Catalog catalog = *pg_->load_catalog();
  const pricing::ModelPrice* old_price =
      catalog.find_model("gpt-4o-mini", *parse_timestamp("2024-12-31"));
  ASSERT_TRUE(old_price != nullptr);
  EXPECT_EQ(format_decimal(old_price->prices.input->nanos), "0.15");
  ASSERT_EQ(old_price->tiers.size(), 1u);
  EXPECT_EQ(format_decimal(old_price->tiers[0].prices.output->nanos), "1.2");
  EXPECT_FALSE(old_price->prices.cached_input.has_value());
  const pricing::GpuInstancePrice* gpu =
      catalog.find_gpu_instance("p5.48xlarge", *parse_timestamp("2025-01-01"));
  ASSERT_TRUE(gpu != nullptr);
  EXPECT_EQ(format_decimal(gpu->on_demand->nanos), "98.32");
  EXPECT_FALSE(gpu->spot.has_value());
}

TEST_F(PostgresLedgerTest, NotesOnceAndLastInByteOrderAndEveryWriteMovesTheChangeCount) {
  auto& pg = static_cast<PostgresLedger&>(*pg_);
  int64_t before = *pg.change_count();
  EXPECT_TRUE(*pg_->note_once("budget_alert", "team=b|80%", "{}"));
  EXPECT_FALSE(*pg_->note_once("budget_alert", "team=b|80%", "{}"));
  EXPECT_TRUE(*pg_->note_once("budget_alert", "Team=a|80%", "{}"));
  int64_t after_notes = *pg.change_count();
  EXPECT_EQ(after_notes, before + 2);  // the refused duplicate changed nothing
  ASSERT_TRUE(pg_->note("anomalies_run", "last", "first").has_value());
  ASSERT_TRUE(pg_->note("anomalies_run", "last", "second").has_value());
  auto runs = pg_->notes("anomalies_run");
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].detail, "second");
  auto alerts = pg_->notes("budget_alert");
  ASSERT_EQ(alerts->size(), 2u);
  if ((*alerts)[0].recorded_at == (*alerts)[1].recorded_at) {
    EXPECT_EQ((*alerts)[0].key, "Team=a|80%");
  }
  begin();
  add(attributes("Compute", "alpha"), "2025-01-05T10:00:00Z", "1");
  commit();
  EXPECT_EQ(*pg.change_count(), after_notes + 3);
  // The serve cache's probe reads the same counter.
  auto probe = make_change_probe(test_url());
  std::string v1 = probe->version();
  EXPECT_EQ(v1, probe->version());
  ASSERT_TRUE(pg_->note("anomalies_run", "last", "third").has_value());
  EXPECT_NE(v1, probe->version());
}

TEST_F(PostgresLedgerTest, GpuUtilizationIsARatioOfSumsAndThePeakAMaximum) {
  begin();
  int64_t a = attributes("gpu", "alpha"), b = attributes("gpu", "beta");
  auto hour = [](const std::string& when, int64_t busy_percent, int64_t memory_mib, int64_t watts) {
    UsageFacts f;
    f.charge_period_start = *parse_timestamp(when);
    f.charge_period_end = f.charge_period_start + 3600;
    f.gpu_observed_milliseconds = 3'600'000;
    f.gpu_busy_milliseconds = 36'000 * busy_percent;
    f.gpu_memory_mib_milliseconds = memory_mib * 3'600'000;
    f.gpu_memory_peak_mib = memory_mib;
    f.energy_millijoules = watts * 3'600'000;
    f.co2e_micrograms = watts * 400'000;
    return f;
  };
  add_facts(a, hour("2025-03-01T00:00:00Z", 10, 1000, 100));
  add_facts(a, hour("2025-03-01T01:00:00Z", 30, 3000, 300));
  add_facts(b, hour("2025-03-02T00:00:00Z", 80, 500, 500));
  commit();
  QueryResult u = query({"team"}, {}, {}, {}, Metric::kGpuUtilization);
  EXPECT_EQ(format_decimal(u.total), "0.4");
  EXPECT_EQ(query({"team"}, {}, {}, {}, Metric::kGpuMemoryPeakMib).total, 3000);
  EXPECT_EQ(format_decimal(query({}, {}, {}, {}, Metric::kEnergyKwh).total), "0.9");
  expect_same_everywhere();
}

TEST_F(PostgresLedgerTest, RefusesALedgerFromANewerVersion) {
  pg_.reset();
  ASSERT_EQ(psql("INSERT INTO schema_version VALUES(99)"), "");
  auto reopened = open_ledger(test_url());
  ASSERT_FALSE(reopened.has_value());
  EXPECT_NE(reopened.error().message.find("upgrade aifinops"), std::string::npos);
}

TEST_F(PostgresLedgerTest, OpeningTwiceKeepsTheSchemaAndTheData) {
  begin();
  add(attributes("Compute", "alpha"), "2025-01-05T10:00:00Z", "1");
  commit();
  auto again = open_ledger(test_url());
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(format_decimal((*again)->query(QuerySpec{})->total), "1");
  EXPECT_EQ(psql("SELECT max(version) FROM schema_version"), "3");
  auto foreign = PostgresLedger::foreign_tables(test_url());
  ASSERT_TRUE(foreign.has_value());
  EXPECT_TRUE(foreign->empty());
  ASSERT_EQ(psql("CREATE TABLE invoices(id int)"), "");
  EXPECT_EQ(*PostgresLedger::foreign_tables(test_url()), std::vector<std::string>{"invoices"});
  ASSERT_EQ(psql("DROP TABLE invoices"), "");
}

TEST_F(PostgresLedgerTest, WritersInSeveralProcessesTakeTurnsAndShareAttributeSets) {
  // Two connections stand for two gateway replicas draining their spools at once: same
  // attribute sets, same months. Every batch lands whole, each set is stored once, and the
  // rollups agree with the records.
  constexpr int kBatches = 12, kRows = 500;
  auto writer = [](int who, std::string* error) {
    auto opened = open_ledger(test_url());
    if (!opened) return void(*error = opened.error().message);
    Ledger& l = **opened;
    for (int b = 0; b < kBatches; ++b) {
      auto batch = l.begin_batch(
          BatchInfo{"spool-" + std::to_string(who) + "-" + std::to_string(b), "gateway", {}, 0});
      if (!batch) return void(*error = batch.error().message);
      for (int i = 0; i < kRows; ++i) {
        AttributeViews v{};
        std::string team = "team" + std::to_string(i % 17);
        v[(size_t)Attr::kTeam] = team;
        auto id = l.intern_attributes(v, Fingerprint{17, (uint64_t)(i % 17)});
        if (!id) return void(*error = id.error().message);
        UsageFacts f;
        f.charge_period_start =
            *parse_timestamp("2025-01-30T00:00:00Z") + (int64_t)(b * kRows + i) * 97;
        f.effective_cost = Decimal{1'000'000'000};
        f.requests = 1;
        if (auto r = l.append(*id, f, Lineage{*batch, i + 1}); !r)
          return void(*error = r.error().message);
      }
      BatchSummary s;
      s.fingerprint_hex = std::to_string(who) + "-" + std::to_string(b);
      s.rows_read = s.rows_ingested = kRows;
      if (auto r = l.commit_batch(s); !r) return void(*error = r.error().message);
    }
  };
  std::string error_a, error_b;
  std::thread a(writer, 1, &error_a), b(writer, 2, &error_b);
  a.join();
  b.join();
  ASSERT_EQ(error_a, "");
  ASSERT_EQ(error_b, "");
  EXPECT_EQ(psql("SELECT count(*) FROM attributes"), "17");
  EXPECT_EQ(pg_->batches()->size(), (size_t)(2 * kBatches));
  QuerySpec spec;
  spec.metric = Metric::kRequests;
  EXPECT_EQ(pg_->query(spec)->total, 2 * kBatches * kRows);
  spec.group_by = {*parse_dimension("team"), *parse_dimension("day")};  // the day rollup
  QueryResult by_day = *pg_->query(spec);
  spec.group_by = {*parse_dimension("team"), *parse_dimension("hour")};  // the records
  QueryResult by_hour = *pg_->query(spec);
  EXPECT_EQ(by_day.source_table, "rollup_day");
  EXPECT_EQ(by_hour.source_table, "records");
  EXPECT_EQ(by_day.total, by_hour.total);
  std::map<std::string, __int128> day_sums, hour_sums;
  for (const QueryRow& r : by_day.rows) day_sums[r.keys[0] + r.keys[1]] += r.value;
  for (const QueryRow& r : by_hour.rows) hour_sums[r.keys[0] + r.keys[1].substr(0, 10)] += r.value;
  EXPECT_EQ(day_sums, hour_sums);
}

TEST_F(PostgresLedgerTest, AConnectionCutByTheServerIsMadeAgainBetweenBatches) {
  begin();
  add(attributes("Compute", "alpha"), "2025-01-05T10:00:00Z", "1");
  commit();
  // What a server restart does to a long-lived reader (serve) or writer (a gateway).
  ASSERT_NE(psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                 "application_name = 'aifinops'"),
            "0");
  QueryResult r = query({"team"});
  EXPECT_EQ(format_decimal(r.total), "1");
  begin();  // the batch's temporary table is made again on the new connection
  add(attributes("Compute", "alpha"), "2025-01-06T10:00:00Z", "2");
  commit("second");
  EXPECT_EQ(format_decimal(query({"team", "day"}).total), "3");
}

TEST(PostgresLedgerConnectTest, AnUnreachableServerNamesTheUrlWithoutItsPasswordAndTheFix) {
  auto opened = open_ledger("postgresql://ann:s3cret@127.0.0.1:1/ledger?connect_timeout=2");
  ASSERT_FALSE(opened.has_value());
  const std::string& m = opened.error().message;
  EXPECT_EQ(m.find("s3cret"), std::string::npos) << m;
  EXPECT_NE(m.find("postgresql://ann:***@127.0.0.1:1/ledger"), std::string::npos) << m;
  EXPECT_NE(m.find("pg_isready"), std::string::npos) << m;
}

TEST(PostgresLedgerConnectTest, AMissingDatabaseSaysHowToCreateIt) {
  ASSERT_FALSE(test_url().empty()) << "AIFINOPS_TEST_PG_URL is not set";
  std::string url = test_url();
  url = url.substr(0, url.rfind('/')) + "/no_such_database_here";
  auto opened = open_ledger(url);
  ASSERT_FALSE(opened.has_value());
  EXPECT_NE(opened.error().message.find("createdb"), std::string::npos) << opened.error().message;
}

}  // namespace
}  // namespace aifinops::ledger
