// The answer cache of ApiServer over loopback: warm answers computed in the background at
// start and after each ledger change, stale answers of background endpoints served while
// they are recomputed, and concurrent first calls sharing one computation.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/money.h"
#include "core/time.h"
#include "ledger/ledger.h"
#include "server/api_server.h"
#include "server/auth.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::server {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;

constexpr const char* kToken = "test-token";
constexpr const char* kTeamToken = "team-token";  // a viewer restricted to team alpha

struct Reply {
  int status = 0;
  std::string body;
  std::string cache;  ///< the x-aifinops-cache header
};

Reply get(int port, const std::string& target, const char* token = kToken) {
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  http::request<http::string_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, std::string("Bearer ") + token);
  http::write(socket, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  return {static_cast<int>(res.result_int()), res.body(), std::string(res["x-aifinops-cache"])};
}

/// Waits up to 10 s for `done()`, checking every 5 ms.
template <typename F>
bool eventually(F done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

/// An ApiServer on a free loopback port with one endpoint, "slow", whose answer names the
/// ledger version it was computed for; the test moves the version.
class AnswerCacheTest : public ::testing::Test {
 protected:
  void start(std::vector<std::string> warm, std::vector<std::string> background,
             int64_t handler_ms = 0) {
    ApiServerOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 4;
    o.refresh_interval_ms = 10;
    o.refresh_min_gap_ms = 0;
    const std::string db = dir_.file("l.db");
    ASSERT_TRUE(ledger::open_ledger(db).has_value());  // created before connections race to
    o.open_ledger = [db] { return ledger::open_ledger(db); };
    o.ledger_version = [this] { return std::to_string(version_.load()); };
    o.policy.api_tokens.push_back({"t", sha256_hex(kToken), config::ApiScope::kViewer, {}, 1});
    o.policy.api_tokens.push_back(
        {"team", sha256_hex(kTeamToken), config::ApiScope::kViewer, {{"team", {"alpha"}}}, 2});
    auto principals = principals_from_policy(o.policy);
    ASSERT_TRUE(principals.has_value());
    o.principals = std::move(*principals);
    o.endpoints["slow"] = [this, handler_ms](const ApiRequest& req) -> ApiResponse {
      const int64_t seen = version_.load();
      ++calls_;
      if (req.principal.restricted()) ++restricted_calls_;
      {
        std::unique_lock lock(gate_mutex_);
        gate_cv_.wait(lock, [&] { return gate_open_; });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(handler_ms));
      if (fail_) return {500, "{}"};
      return {200, "v" + std::to_string(seen)};
    };
    // The ledger's total effective cost, through the request's ledger (and its memo).
    o.endpoints["total"] = [](const ApiRequest& req) -> ApiResponse {
      auto r = req.ledger.query(ledger::QuerySpec{});
      if (!r) return {500, r.error().message};
      return {200, format_decimal(r->total)};
    };
    o.query_memo_cells = query_memo_cells_;
    o.warm = std::move(warm);
    o.background = std::move(background);
    o.warm_before_listen = warm_before_listen_;
    o.prepare = prepare_;
    server_ = std::make_unique<ApiServer>(std::move(o));
    auto started = server_->start();
    if (!expect_start_error_.empty()) {
      ASSERT_FALSE(started.has_value());
      EXPECT_NE(started.error().message.find(expect_start_error_), std::string::npos)
          << started.error().message;
      server_.reset();
      return;
    }
    ASSERT_TRUE(started.has_value()) << started.error().message;
    calls_at_start_ = calls_.load();
    runner_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    open_gate(true);
    if (server_) server_->stop();
    if (runner_.joinable()) runner_.join();
  }
  void open_gate(bool open) {
    {
      std::lock_guard lock(gate_mutex_);
      gate_open_ = open;
    }
    gate_cv_.notify_all();
  }
  int port() const { return server_->port(); }
  /// Commits one record of `cost` to the test's ledger (the version the server sees is
  /// version_, moved by the test on its own).
  void add_record(const std::string& cost) {
    auto opened = ledger::open_ledger(dir_.file("l.db"));
    ASSERT_TRUE(opened.has_value());
    ledger::Ledger& l = **opened;
    auto batch = l.begin_batch(ledger::BatchInfo{"t.csv", "focus", {}, 0});
    ASSERT_TRUE(batch.has_value());
    AttributeViews v{};
    v[(size_t)Attr::kTeam] = "alpha";
    auto attributes = l.intern_attributes(v, ledger::Fingerprint{7, (uint64_t)++records_});
    ASSERT_TRUE(attributes.has_value());
    UsageFacts f;
    f.charge_period_start = *parse_timestamp("2025-03-01T10:00:00Z");
    f.charge_period_end = f.charge_period_start + 3600;
    f.effective_cost = f.billed_cost = *parse_decimal(cost);
    ASSERT_TRUE(l.append(*attributes, f, Lineage{*batch, 1}).has_value());
    ledger::BatchSummary summary;
    summary.fingerprint_hex = "t" + std::to_string(records_);
    summary.rows_read = summary.rows_ingested = 1;
    ASSERT_TRUE(l.commit_batch(summary).has_value());
  }

  testing::TempDir dir_;
  std::atomic<int64_t> version_{1};
  std::atomic<int> calls_{0};
  std::atomic<int> restricted_calls_{0};
  std::atomic<bool> fail_{false};
  std::mutex gate_mutex_;
  std::condition_variable gate_cv_;
  bool gate_open_ = true;
  bool warm_before_listen_ = false;
  size_t query_memo_cells_ = 0;
  std::function<Result<void>(ledger::Ledger&)> prepare_;
  std::string expect_start_error_;  ///< set: start() must fail with this in its message
  int calls_at_start_ = 0;          ///< handler runs when start() returned
  int records_ = 0;
  std::unique_ptr<ApiServer> server_;
  std::thread runner_;
};

TEST_F(AnswerCacheTest, WarmAnswersAreComputedAtStartAndAgainAfterEachLedgerChange) {
  start({"slow"}, {});
  // One answer for each set of records the tokens see: everything, and team alpha's.
  ASSERT_TRUE(eventually([&] { return calls_ == 2; }));
  EXPECT_EQ(restricted_calls_, 1);
  Reply first = get(port(), "/api/v1/slow");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.cache, "hit");  // the caller never waited for it
  EXPECT_EQ(first.body, "v1");
  EXPECT_EQ(get(port(), "/api/v1/slow", kTeamToken).cache, "hit");
  version_ = 2;
  ASSERT_TRUE(eventually([&] { return calls_ == 4; }));
  ASSERT_TRUE(eventually([&] { return get(port(), "/api/v1/slow").body == "v2"; }));
  Reply second = get(port(), "/api/v1/slow");
  EXPECT_EQ(second.cache, "hit");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(calls_, 4);  // nothing changed since: no more runs
}

TEST_F(AnswerCacheTest, ABackgroundEndpointServesItsLastAnswerWhileANewOneIsComputed) {
  start({}, {"slow"});
  Reply first = get(port(), "/api/v1/slow");
  EXPECT_EQ(first.cache, "miss");  // nothing cached yet: the first call computes
  EXPECT_EQ(first.body, "v1");
  open_gate(false);  // the refresh will block until the gate opens
  version_ = 2;
  Reply stale = get(port(), "/api/v1/slow");
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.cache, "stale");
  EXPECT_EQ(stale.body, "v1");
  ASSERT_TRUE(eventually([&] { return calls_ == 2; }));   // the refresher started
  EXPECT_EQ(get(port(), "/api/v1/slow").cache, "stale");  // still computing: no wait
  open_gate(true);
  ASSERT_TRUE(eventually([&] {
    Reply r = get(port(), "/api/v1/slow");
    return r.cache == "hit" && r.body == "v2";
  }));
  EXPECT_EQ(calls_, 2);
}

TEST_F(AnswerCacheTest, ARestrictedViewersBackgroundAnswerIsKeptWarmOnceTheyHaveAsked) {
  start({"slow"}, {"slow"});
  ASSERT_TRUE(eventually([&] { return calls_ == 1; }));  // the unrestricted answer only
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(restricted_calls_, 0);
  Reply mine = get(port(), "/api/v1/slow", kTeamToken);
  EXPECT_EQ(mine.cache, "miss");
  EXPECT_EQ(restricted_calls_, 1);
  version_ = 2;  // from now on the team's answer is refreshed with the others
  ASSERT_TRUE(eventually([&] { return restricted_calls_ == 2 && calls_ == 4; }));
  Reply again = get(port(), "/api/v1/slow", kTeamToken);
  EXPECT_EQ(again.cache, "hit");
  EXPECT_EQ(again.body, "v2");
}

TEST_F(AnswerCacheTest, AWarmAnswerThatFailsIsNotRetriedUntilTheLedgerChanges) {
  fail_ = true;
  start({"slow"}, {});
  ASSERT_TRUE(eventually([&] { return calls_ == 2; }));         // each restriction once
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // twenty refresh ticks
  EXPECT_EQ(calls_, 2);
  fail_ = false;
  version_ = 2;
  ASSERT_TRUE(eventually([&] { return calls_ == 4; }));
  EXPECT_EQ(get(port(), "/api/v1/slow").cache, "hit");
}

TEST_F(AnswerCacheTest, ConcurrentFirstCallsShareOneComputation) {
  start({}, {}, /*handler_ms=*/200);
  std::vector<std::thread> callers;
  std::vector<Reply> replies(3);
  for (size_t i = 0; i < replies.size(); ++i)
    callers.emplace_back([&, i] { replies[i] = get(port(), "/api/v1/slow"); });
  for (std::thread& t : callers) t.join();
  for (const Reply& r : replies) {
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "v1");
  }
  EXPECT_EQ(calls_, 1);
}

TEST_F(AnswerCacheTest, WarmAnswersAreReadyBeforeThePortOpensWhenAskedTo) {
  warm_before_listen_ = true;
  start({"slow"}, {});
  // Both restrictions' answers were computed inside start(), before anyone could connect.
  EXPECT_EQ(calls_at_start_, 2);
  Reply first = get(port(), "/api/v1/slow");
  EXPECT_EQ(first.cache, "hit");
  EXPECT_EQ(first.body, "v1");
  EXPECT_EQ(get(port(), "/api/v1/slow", kTeamToken).cache, "hit");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // ten refresher ticks
  EXPECT_EQ(calls_, 2);  // the refresher found them young: not computed twice
}

TEST_F(AnswerCacheTest, PrepareRunsOnceOnALedgerConnectionBeforeThePortOpens) {
  std::atomic<int> prepared{0};
  prepare_ = [&](ledger::Ledger& connection) -> Result<void> {
    auto batches = connection.batches();  // a working connection, from the pool
    if (!batches) return Unexpected{batches.error()};
    ++prepared;
    return {};
  };
  start({}, {});
  EXPECT_EQ(prepared, 1);
  EXPECT_EQ(get(port(), "/api/v1/slow").body, "v1");
  EXPECT_EQ(prepared, 1);
}

TEST_F(AnswerCacheTest, APrepareErrorStopsTheStart) {
  prepare_ = [](ledger::Ledger&) -> Result<void> {
    return make_error(ErrorCode::kIo, "l.db: cannot read the rollups");
  };
  expect_start_error_ = "cannot read the rollups";
  start({"slow"}, {});
  EXPECT_EQ(calls_, 0);  // nothing warmed, nothing listening
}

TEST_F(AnswerCacheTest, QueriesAreSharedBetweenCallsUntilTheLedgerVersionMoves) {
  query_memo_cells_ = 1000;
  add_record("10");
  start({}, {});
  EXPECT_EQ(get(port(), "/api/v1/total?call=1").body, "10");
  // Written behind the version's back: another call (another answer) gets the kept query
  // answer, so the ledger was not asked again.
  add_record("5");
  EXPECT_EQ(get(port(), "/api/v1/total?call=2").body, "10");
  version_ = 2;  // what a real change does: the next call asks the ledger
  EXPECT_EQ(get(port(), "/api/v1/total?call=3").body, "15");
}

TEST_F(AnswerCacheTest, WithoutTheMemoEveryCallAsksTheLedger) {
  add_record("10");
  start({}, {});
  EXPECT_EQ(get(port(), "/api/v1/total?call=1").body, "10");
  add_record("5");
  EXPECT_EQ(get(port(), "/api/v1/total?call=2").body, "15");
}

}  // namespace
}  // namespace aifinops::server
