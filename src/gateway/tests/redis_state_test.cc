// RedisLimitStore and RedisResponseCache against a real, private redis-server (started by
// the test on a free loopback port, with no persistence): the Lua scripts' semantics, step
// for step the same as MemoryLimitStore's, plus what only a shared store has (reservation
// expiry, seeding once, Redis unreachable under closed and open).
#include "gateway/redis_state.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "core/money.h"
#include "core/time.h"

namespace aifinops::gateway {
namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// A redis-server child process on 127.0.0.1:port, empty at every start.
class RedisProcess {
 public:
  RedisProcess() : port_(free_port()) {
    dir_ = std::filesystem::temp_directory_path() / ("aifinops-redis-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  ~RedisProcess() {
    stop();
    std::filesystem::remove_all(dir_);
  }

  void start() {
    stop();  // never two servers (a frozen one would keep the port)
    const std::string port = std::to_string(port_), dir = dir_.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port.c_str(), "--save", "",
               "--appendonly", "no", "--dir", dir.c_str(), "--logfile", "redis.log", nullptr);
      std::_Exit(127);
    }
    ASSERT_GT(pid_, 0);
    for (int i = 0; i < 200; ++i) {  // up to 10 s
      int status = 0;
      ASSERT_EQ(::waitpid(pid_, &status, WNOHANG), 0)
          << "redis-server exited at start (is the redis-server package installed?)";
      if (ping()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "redis-server did not answer PING on port " << port_;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  void freeze() { ::kill(pid_, SIGSTOP); }
  void thaw() { ::kill(pid_, SIGCONT); }

  bool ping() const {
    timeval tv{0, 200'000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool ok = false;
    if (c != nullptr && !c->err) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
      if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
  }

  /// One command's integer or string reply as text ("" for nil).
  std::string command(const std::vector<std::string>& args) const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    std::string out;
    if (c != nullptr && !c->err) {
      std::vector<const char*> argv;
      std::vector<size_t> lengths;
      for (const std::string& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
      }
      auto* r = static_cast<redisReply*>(
          redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lengths.data()));
      if (r != nullptr && r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
      if (r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        out = std::string(r->str, r->len);
      if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return out;
  }

  int port() const { return port_; }

 private:
  int port_;
  pid_t pid_ = -1;
  std::filesystem::path dir_;
};

Money usd(const char* text) { return *parse_decimal(text); }

BudgetRule budget(std::map<std::string, std::string> scope, const char* amount, bool hard,
                  BudgetPeriod period = BudgetPeriod::kMonth) {
  BudgetRule rule;
  rule.scope = std::move(scope);
  rule.amount = usd(amount);
  rule.hard = hard;
  rule.period = period;
  return rule;
}

class RedisStateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new RedisProcess();
    redis_->start();
  }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    if (!redis_->ping()) redis_->start();
    redis_->command({"FLUSHALL"});
  }

  RedisConfig config(RedisFailure failure = RedisFailure::kClosed, int port = 0) const {
    RedisConfig c;
    c.port = port != 0 ? port : redis_->port();
    c.failure = failure;
    c.prefix = "test:";
    c.timeout_ms = 150;
    c.connect_timeout_ms = 150;
    c.reservation_ttl_s = 60;
    c.lease = false;  // each request decides in Redis; the lease tests below turn leases on
    return c;
  }
  RedisConfig leasing_config(RedisFailure failure = RedisFailure::kClosed) const {
    RedisConfig c = config(failure);
    c.lease = true;
    // These tests count what Redis did: a command slower than 150 ms on a loaded machine
    // would mark Redis down and change the answers.
    c.timeout_ms = 2000;
    c.connect_timeout_ms = 2000;
    return c;
  }

  /// Marks the Redis data set as seeded with no spend (as a replica's keeper would).
  static RedisLimitStore::SeedSource no_spend() {
    return [] { return Result<std::vector<std::pair<std::string, Money>>>(std::vector<std::pair<std::string, Money>>{}); };
  }

  /// 03:00 UTC today: Redis expires keys by its own (real) clock, so the test's time must be
  /// near it; three hours in, the steps below stay within the day.
  static EpochMillis today_3am() {
    return (floor_day(SystemClock().now_ms() / 1000) + 3 * 3600) * 1000;
  }
  std::string month_start() const {
    return std::to_string(period_start(BudgetPeriod::kMonth, clock_.now_ms() / 1000));
  }
  std::string today() const { return std::to_string(floor_day(clock_.now_ms() / 1000)); }
  /// A request of key "k", tagged team=a, that may cost up to `worst_case` dollars.
  AdmissionRequest team_a_request(const char* worst_case) const {
    AdmissionRequest request;
    request.key_id = "k";
    request.tags = &team_a_;
    request.worst_case_cost = usd(worst_case);
    return request;
  }

  static RedisProcess* redis_;
  ManualClock clock_{today_3am()};
  const std::map<std::string, std::string> team_a_ = {{"team", "a"}};
};

RedisProcess* RedisStateTest::redis_ = nullptr;

/// One step of a script run against both stores.
struct Step {
  std::string key;
  KeyLimits limits;
  std::map<std::string, std::string> tags;
  int64_t tokens;
  const char* cost;
  int64_t advance_ms;  // before the step
  // Settlement of an earlier admission (its index), instead of an admission, when >= 0.
  int settle_of = -1;
  int64_t actual_tokens = 0;
  const char* actual_cost = "0";
};

TEST_F(RedisStateTest, EveryStepMatchesTheMemoryStore) {
  std::vector<BudgetRule> budgets = {budget({{"team", "a"}}, "1", true),
                                     budget({{"team", "b"}}, "0.5", false, BudgetPeriod::kDay),
                                     budget({{"model", "m"}}, "2", true, BudgetPeriod::kWeek)};
  MemoryLimitStore memory(budgets, clock_);
  RedisConnections connections(config(), "", clock_);
  RedisLimitStore shared(connections, budgets, clock_);
  shared.set_seed_source(no_spend());
  ASSERT_TRUE(shared.maintain_now());

  KeyLimits rpm2;
  rpm2.rpm = 2;
  KeyLimits tpm;
  tpm.tpm = 1000;
  KeyLimits quotas;
  quotas.requests_per_day = 3;
  quotas.tokens_per_day = 500;
  quotas.usd_per_day = usd("0.3");
  std::map<std::string, std::string> team_a = {{"team", "a"}};
  std::map<std::string, std::string> team_a_low = {{"team", "a"}, {"criticality", "Low"}};
  std::map<std::string, std::string> team_b = {{"team", "b"}, {"purpose", "experimentation"}};
  const std::vector<Step> steps = {
      {"k1", rpm2, team_a, 10, "0.1", 0},
      {"k1", rpm2, team_a, 10, "0.1", 10},
      {"k1", rpm2, team_a, 10, "0.1", 10},          // rpm: the bucket is empty
      {"k1", rpm2, team_a, 10, "0.1", 30'000},      // half a minute: one request back
      {"k2", tpm, team_a, 800, "0.2", 0},
      {"k2", tpm, team_a, 300, "0.2", 0},           // tpm
      {"k2", tpm, team_a, 1200, "0.2", 0},          // larger than the bucket
      {"", {}, {}, 0, "0", 0, 4, 100, "0.05"},      // k2 used less than reserved: tokens back
      {"k2", tpm, team_a, 300, "0.2", 1'000},
      {"k3", quotas, team_b, 200, "0.1", 0},
      {"k3", quotas, team_b, 200, "0.1", 0},
      {"k3", quotas, team_b, 200, "0.1", 0},        // tokens_per_day
      {"", {}, {}, 0, "0", 0, 9, 50, "0.25"},
      {"k3", quotas, team_b, 100, "0.1", 0},        // usd_per_day
      {"", {}, {}, 0, "0", 0, 10, 50, "0.3"},       // soft budget b crossed: one notice
      {"k4", {}, team_b, 10, "0.01", 0},
      {"", {}, {}, 0, "0", 0, 15, 10, "0.01"},      // crossed again: no second notice
      {"k5", {}, team_a, 10, "0.3", 0},             // budget a: 0.2 + 0.1 + ... reserved
      {"k5", {}, team_a_low, 10, "0.01", 0},        // over 90%: the low-priority key waits
      {"k5", {}, team_a, 10, "0.5", 0},             // budget a exhausted
      {"", {}, {}, 0, "0", 0, 17, 10, "0.01"},
      {"k5", {}, team_a, 10, "0.5", 0},
  };
  std::vector<uint64_t> memory_ids, shared_ids;
  std::set<std::string> refusals;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    clock_.advance_ms(s.advance_ms);
    SCOPED_TRACE("step " + std::to_string(i));
    if (s.settle_of >= 0) {
      auto m = memory.settle(memory_ids[s.settle_of], s.actual_tokens, usd(s.actual_cost));
      auto r = shared.settle(shared_ids[s.settle_of], s.actual_tokens, usd(s.actual_cost));
      ASSERT_EQ(m.size(), r.size());
      for (size_t n = 0; n < m.size(); ++n) {
        EXPECT_EQ(m[n].budget, r[n].budget);
        EXPECT_EQ(m[n].spent.nanos, r[n].spent.nanos);
        EXPECT_EQ(m[n].amount.nanos, r[n].amount.nanos);
        EXPECT_EQ(m[n].period_start, r[n].period_start);
      }
      memory_ids.push_back(0);
      shared_ids.push_back(0);
    } else {
      AdmissionRequest request;
      request.key_id = s.key;
      request.model = "m";
      request.tags = &s.tags;
      request.limits = s.limits;
      request.estimated_tokens = s.tokens;
      request.worst_case_cost = usd(s.cost);
      Admission m = memory.admit(request);
      Admission r = shared.admit(request);
      EXPECT_EQ(m.admitted, r.admitted);
      EXPECT_FALSE(r.unavailable);
      EXPECT_EQ(m.refusal.limit, r.refusal.limit);
      EXPECT_EQ(m.refusal.scope, r.refusal.scope);
      EXPECT_EQ(m.refusal.message, r.refusal.message);
      EXPECT_EQ(m.refusal.retry_after_s, r.refusal.retry_after_s);
      memory_ids.push_back(m.reservation);
      shared_ids.push_back(r.reservation);
      if (!r.admitted) refusals.insert(r.refusal.limit);
    }
    for (const BudgetRule& b : budgets)
      EXPECT_EQ(memory.budget_used(b.name.empty() ? scope_text(b.scope) + " (" + period_name(b.period) + ")" : b.name).nanos,
                shared.budget_used(b.name.empty() ? scope_text(b.scope) + " (" + period_name(b.period) + ")" : b.name).nanos);
  }
  // The script saw refusals of every kind.
  EXPECT_EQ(refusals, (std::set<std::string>{"rpm", "tpm", "tokens_per_day", "usd_per_day", "budget"}));
}

TEST_F(RedisStateTest, AReservationNeverSettledIsGivenBackAfterItsTtlAndALateSettlementStillCounts) {
  RedisConfig c = config();
  c.reservation_ttl_s = 5;
  RedisConnections connections(c, "", clock_);
  RedisLimitStore store(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  AdmissionRequest request = team_a_request("0.8");
  Admission crashed = store.admit(request);  // a replica that dies before settling
  ASSERT_TRUE(crashed.admitted);
  EXPECT_FALSE(store.admit(request).admitted);  // 0.8 + 0.8 > 1
  clock_.advance_ms(6'000);
  Admission later = store.admit(request);  // the old reservation is reaped first
  ASSERT_TRUE(later.admitted) << later.refusal.message;
  EXPECT_EQ(format_decimal(store.budget_used("team=a (month)").nanos), "0.8");
  // The first request did finish after all: its spend counts, its reservation is not taken twice.
  store.settle(crashed.reservation, 10, usd("0.1"));
  EXPECT_EQ(format_decimal(store.budget_used("team=a (month)").nanos), "0.9");
  store.settle(later.reservation, 10, usd("0.1"));
  EXPECT_EQ(format_decimal(store.budget_used("team=a (month)").nanos), "0.2");
}

TEST_F(RedisStateTest, BudgetsAreSeededOncePerRedisDataSetAndAdmissionsWaitForIt) {
  RedisConnections connections(config(), "", clock_);
  RedisLimitStore first(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  AdmissionRequest request = team_a_request("0.1");
  Admission waiting = first.admit(request);  // nobody has seeded this Redis yet
  EXPECT_FALSE(waiting.admitted);
  EXPECT_TRUE(waiting.unavailable);
  EXPECT_NE(waiting.refusal.message.find("being restored from the ledger"), std::string::npos);

  auto ledger_has = [](const char* spent) {
    return [spent]() -> Result<std::vector<std::pair<std::string, Money>>> {
      return std::vector<std::pair<std::string, Money>>{{"team=a (month)", usd(spent)}};
    };
  };
  first.set_seed_source(ledger_has("0.5"));
  ASSERT_TRUE(first.maintain_now());
  EXPECT_EQ(format_decimal(first.budget_used("team=a (month)").nanos), "0.5");
  Admission admitted = first.admit(request);
  ASSERT_TRUE(admitted.admitted);
  first.settle(admitted.reservation, 1, usd("0.1"));
  // A second replica starting now reads the same ledger (without the 0.1 not drained yet):
  // Redis is seeded already, so nothing is added twice.
  RedisLimitStore second(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  second.set_seed_source(ledger_has("0.5"));
  ASSERT_TRUE(second.maintain_now());
  EXPECT_EQ(format_decimal(second.budget_used("team=a (month)").nanos), "0.6");
  // An empty Redis (restarted without persistence) is seeded again from the ledger.
  redis_->command({"FLUSHALL"});
  second.set_seed_source(ledger_has("0.6"));
  ASSERT_TRUE(second.maintain_now());
  EXPECT_EQ(format_decimal(second.budget_used("team=a (month)").nanos), "0.6");
  EXPECT_NE(second.metrics_text().find("aifinops_gateway_redis_reseeds_total 2"), std::string::npos)
      << second.metrics_text();
}

TEST_F(RedisStateTest, ClosedRefusesWhileRedisIsUnreachable) {
  RedisConnections connections(config(RedisFailure::kClosed, free_port()), "", clock_);  // nothing listens
  RedisLimitStore store(connections, {}, clock_);
  AdmissionRequest request;
  request.key_id = "k";
  Admission a = store.admit(request);
  EXPECT_FALSE(a.admitted);
  EXPECT_TRUE(a.unavailable);
  EXPECT_EQ(a.refusal.retry_after_s, 1);
  EXPECT_NE(a.refusal.message.find("redis_failure: closed"), std::string::npos);
  EXPECT_TRUE(store.admit(request).unavailable);  // marked down: no second connection attempt
  const std::string metrics = store.metrics_text();
  EXPECT_NE(metrics.find("aifinops_gateway_redis_errors_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("aifinops_gateway_redis_unavailable_refusals_total 2\n"), std::string::npos);
  EXPECT_NE(metrics.find("aifinops_gateway_redis_up 0\n"), std::string::npos);
}

TEST_F(RedisStateTest, OpenAdmitsLocallyAndPushesTheSpendIntoRedisOnceWhenItReturns) {
  RedisConnections connections(config(RedisFailure::kOpen), "", clock_);
  RedisLimitStore store(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  AdmissionRequest request = team_a_request("0.2");
  request.limits.requests_per_day = 100;  // so that Redis keeps the key's day counters
  Admission before = store.admit(request);
  ASSERT_TRUE(before.admitted);

  redis_->freeze();  // unreachable, its data kept
  struct Thaw {
    ~Thaw() { redis_->thaw(); }  // also when an assertion below ends the test
  } thaw;
  Admission local = store.admit(request);
  ASSERT_TRUE(local.admitted) << local.refusal.message;
  store.settle(local.reservation, 10, usd("0.15"));
  store.settle(before.reservation, 10, usd("0.05"));  // Redis cannot take it either: kept
  EXPECT_EQ(format_decimal(store.pending_spend_nanos()), "0.2");
  EXPECT_NE(store.metrics_text().find("aifinops_gateway_redis_fail_open_requests_total 1\n"), std::string::npos);
  redis_->thaw();

  ASSERT_TRUE(store.maintain_now());
  EXPECT_EQ(store.pending_spend_nanos(), 0);
  // 0.05 + 0.15 settled, plus the Redis reservation of the first request (0.2) until its TTL.
  const std::string budget_key = "test:b:team=a (month):" + month_start();
  EXPECT_EQ(redis_->command({"HGET", budget_key, "s"}), "200000000");
  // Both requests are counted for the day; the admission that timed out while Redis was
  // frozen may have run there too once it woke (a reservation its TTL gives back).
  EXPECT_GE(std::stoll(redis_->command({"HGET", "test:k:k:d:" + today(), "r"})), 2);
  EXPECT_TRUE(store.maintain_now());  // nothing left: nothing pushed twice
  EXPECT_EQ(redis_->command({"HGET", budget_key, "s"}), "200000000");
}

// A settlement sent to Redis just as it stops answering: the command is in Redis's socket
// buffer and runs when Redis wakes, but the gateway's wait timed out. Its spend must then
// count once, not once by the script and again by the push of pending spend.
TEST_F(RedisStateTest, ASettlementWhoseAnswerTimedOutButRanLaterCountsOnce) {
  RedisConnections connections(config(RedisFailure::kOpen), "", clock_);
  RedisLimitStore store(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  AdmissionRequest request = team_a_request("0.2");
  request.limits.requests_per_day = 100;
  Admission settled = store.admit(request);
  ASSERT_TRUE(settled.admitted);
  store.settle(settled.reservation, 10, usd("0.01"));  // Redis has the settlement script now
  Admission in_redis = store.admit(request);
  ASSERT_TRUE(in_redis.admitted);

  redis_->freeze();
  {
    struct Thaw {
      ~Thaw() { redis_->thaw(); }
    } thaw;
    // Redis is not known to be down yet: the settlement is sent and its answer times out.
    store.settle(in_redis.reservation, 10, usd("0.05"));
    EXPECT_FALSE(connections.available());
    Admission local = store.admit(request);  // and the next admission is local
    ASSERT_TRUE(local.admitted) << local.refusal.message;
    store.settle(local.reservation, 10, usd("0.15"));
  }
  ASSERT_TRUE(connections.probe());
  ASSERT_TRUE(store.maintain_now());
  EXPECT_EQ(store.pending_spend_nanos(), 0);
  const std::string budget_key = "test:b:team=a (month):" + month_start();
  // 0.01 + 0.05 settled in Redis (the second when it woke, or when sent again) + 0.15
  // settled locally, each once; the reservations in Redis are given back by their settlements.
  EXPECT_EQ(redis_->command({"HGET", budget_key, "s"}), "210000000");
  EXPECT_EQ(redis_->command({"HGET", budget_key, "r"}), "0");
  EXPECT_EQ(redis_->command({"ZCARD", "test:inflight"}), "0");
  EXPECT_TRUE(store.maintain_now());  // nothing left: nothing counted again
  EXPECT_EQ(redis_->command({"HGET", budget_key, "s"}), "210000000");
}

TEST_F(RedisStateTest, SettlementsSentByTheSettlerLandAndReportASoftBudgetOnce) {
  RedisConnections connections(config(), "", clock_);
  RedisLimitStore store(connections, {budget({{"team", "a"}}, "0.3", false)}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  std::vector<SoftBudgetNotice> notices;
  std::mutex mutex;
  store.set_notice_sink([&](const SoftBudgetNotice& n) {
    std::lock_guard<std::mutex> lock(mutex);
    notices.push_back(n);
  });
  store.start();
  AdmissionRequest request = team_a_request("0.2");
  for (int i = 0; i < 4; ++i) {
    Admission a = store.admit(request);
    ASSERT_TRUE(a.admitted);  // a soft budget never refuses
    EXPECT_TRUE(store.settle(a.reservation, 10, usd("0.1")).empty());  // queued, not sent yet
  }
  store.flush_settlements();
  EXPECT_EQ(format_decimal(store.budget_used("team=a (month)").nanos), "0.4");
  store.stop();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].budget, "team=a (month)");
  EXPECT_EQ(format_decimal(notices[0].spent.nanos), "0.4");
  EXPECT_EQ(format_decimal(notices[0].amount.nanos), "0.3");
}

TEST_F(RedisStateTest, TheCacheIsSharedBoundedInBytesAndExpires) {
  RedisConnections connections(config(), "", clock_);
  RedisResponseCache a(connections, 4096, 60'000, clock_);
  RedisResponseCache b(connections, 4096, 60'000, clock_);
  CachedResponse response{"application/json", std::string(1000, 'x'), {12, 0, 0, 5, 0}, usd("0.0000048")};
  a.insert("team=a|/v1/chat/completions|1", response);
  auto hit = b.find("team=a|/v1/chat/completions|1");  // another replica
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->body, response.body);
  EXPECT_EQ(hit->content_type, "application/json");
  EXPECT_EQ(hit->tokens.output, 5);
  EXPECT_EQ(hit->cost.nanos, 4800);
  EXPECT_FALSE(b.find("team=b|/v1/chat/completions|1").has_value());
  for (int i = 2; i <= 10; ++i) {
    clock_.advance_ms(1);
    a.insert("team=a|/v1/chat/completions|" + std::to_string(i), response);
  }
  EXPECT_LE(std::stoll(redis_->command({"GET", "test:cb"})), 4096);
  EXPECT_FALSE(a.find("team=a|/v1/chat/completions|1").has_value());  // the oldest went first
  EXPECT_TRUE(a.find("team=a|/v1/chat/completions|10").has_value());
  a.insert("too big", CachedResponse{"application/json", std::string(5000, 'y'), {}, Money{}});
  EXPECT_FALSE(a.find("too big").has_value());

  RedisResponseCache brief(connections, 4096, 100, clock_);
  brief.insert("short", response);
  EXPECT_TRUE(brief.find("short").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Redis's own clock expires it
  EXPECT_FALSE(brief.find("short").has_value());
}

// --- admit_async(): admissions answered by the admitter thread ---------------------------

/// Collects the answers of admit_async(), from whichever thread calls back.
class Answers {
 public:
  LimitStore::AdmissionCallback callback() {
    return [this](Admission a) {
      std::lock_guard<std::mutex> lock(mutex_);
      answers_.push_back(std::move(a));
      threads_.insert(std::this_thread::get_id());
      done_.notify_all();
    };
  }
  /// Counts an admission decided at once (returned by admit_async()).
  void add_now(Admission a) {
    std::lock_guard<std::mutex> lock(mutex_);
    answers_.push_back(std::move(a));
    ++at_once_;
    done_.notify_all();
  }
  /// Waits (up to `limit`) for n answers; returns them.
  std::vector<Admission> wait_for(size_t n,
                                  std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait_for(lock, limit, [&] { return answers_.size() >= n; });
    return answers_;
  }
  size_t at_once() {
    std::lock_guard<std::mutex> lock(mutex_);
    return at_once_;
  }
  std::set<std::thread::id> threads() {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::vector<Admission> answers_;
  std::set<std::thread::id> threads_;
  size_t at_once_ = 0;
};

void admit_from(LimitStore& store, const AdmissionRequest& request, Answers& answers) {
  if (std::optional<Admission> now = store.admit_async(request, answers.callback()))
    answers.add_now(std::move(*now));
}

TEST_F(RedisStateTest, ConcurrentAsyncAdmissionsPipelinedByTheAdmittersKeepTheHardBudgetExactly) {
  RedisConnections connections(config(), "", clock_);
  RedisLimitStore store(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  store.start();
  redis_->command({"SCRIPT", "FLUSH"});  // as a restarted Redis: the first batch gets NOSCRIPT
  redis_->command({"CONFIG", "RESETSTAT"});
  std::map<std::string, std::string> tags = {{"team", "a"}};
  Answers answers;
  // 3 threads x 100 requests of at most $0.01 against a hard $1 budget: exactly 100 fit.
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t)
    senders.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        std::string key = "k" + std::to_string(t);  // a view of it lives only for this call
        AdmissionRequest request;
        request.key_id = key;
        request.tags = &tags;
        request.worst_case_cost = usd("0.01");
        admit_from(store, request, answers);
      }
    });
  for (std::thread& t : senders) t.join();
  std::vector<Admission> all = answers.wait_for(300);
  ASSERT_EQ(all.size(), 300u);
  EXPECT_EQ(answers.at_once(), 0u);  // every one went through the admitter
  EXPECT_LE(answers.threads().size(), 2u);  // the admitters answered them all
  EXPECT_EQ(answers.threads().count(std::this_thread::get_id()), 0u);
  std::set<uint64_t> reservations;
  for (const Admission& a : all) {
    if (a.admitted) reservations.insert(a.reservation);
    else EXPECT_EQ(a.refusal.limit, "budget") << a.refusal.message;
  }
  EXPECT_EQ(reservations.size(), 100u);
  EXPECT_EQ(format_decimal(store.budget_used("team=a (month)").nanos), "1");
  // Redis ran each admission's script exactly once (none lost, none repeated).
  const std::string commandstats = redis_->command({"INFO", "commandstats"});
  // (A batch sent before the script was loaded fails with NOSCRIPT: those are run again.)
  auto stat = [&](const std::string& name, const std::string& command = "evalsha") -> int64_t {
    const size_t line = commandstats.find("cmdstat_" + command + ":");
    const size_t at = commandstats.find(name + "=", line);
    if (line == std::string::npos || at == std::string::npos) return -1;
    return std::stoll(commandstats.substr(at + name.size() + 1));
  };
  EXPECT_EQ(stat("calls") - stat("failed_calls"), 300) << commandstats;
  EXPECT_GT(stat("failed_calls"), 0) << commandstats;
  // Loaded once per admitter at most, not once per admission that got NOSCRIPT.
  EXPECT_GE(stat("calls", "script|load"), 1) << commandstats;
  EXPECT_LE(stat("calls", "script|load"), 2) << commandstats;
  for (uint64_t id : reservations) store.settle(id, 0, Money{});
  store.flush_settlements();
  EXPECT_EQ(store.budget_used("team=a (month)").nanos, 0);
  EXPECT_EQ(redis_->command({"ZCARD", "test:inflight"}), "0");
  store.stop();
}

TEST_F(RedisStateTest, AsyncAdmissionTimedOutIsRefusedWith503WhenClosed) {
  RedisConnections connections(config(RedisFailure::kClosed), "", clock_);
  RedisLimitStore store(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  store.start();
  AdmissionRequest request = team_a_request("0.01");
  redis_->freeze();  // answers nothing: the command times out after 150 ms
  struct Thaw {
    ~Thaw() { redis_->thaw(); }
  } thaw;
  Answers answers;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) admit_from(store, request, answers);
  std::vector<Admission> all = answers.wait_for(5);
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(all.size(), 5u);
  for (const Admission& a : all) {
    EXPECT_FALSE(a.admitted);
    EXPECT_TRUE(a.unavailable);
  }
  EXPECT_LT(waited, std::chrono::seconds(2));  // one time-out, not one per request
  EXPECT_FALSE(connections.available());
  // Known down: decided at once on the caller's thread, no trip to the admitter.
  EXPECT_TRUE(store.admit_async(request, [](Admission) { ADD_FAILURE() << "called back"; })
                  .value_or(Admission{}).unavailable);
  const std::string metrics = store.metrics_text();
  EXPECT_NE(metrics.find("aifinops_gateway_redis_unavailable_refusals_total 6\n"), std::string::npos)
      << metrics;
  store.stop();
}

TEST_F(RedisStateTest, AsyncAdmissionTimedOutIsAdmittedLocallyWhenOpenAndSettledIntoRedisLater) {
  RedisConnections connections(config(RedisFailure::kOpen), "", clock_);
  RedisLimitStore store(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  store.start();
  AdmissionRequest request = team_a_request("0.3");
  redis_->freeze();
  struct Thaw {
    ~Thaw() { redis_->thaw(); }
  } thaw;
  Answers answers;
  for (int i = 0; i < 5; ++i) admit_from(store, request, answers);
  std::vector<Admission> all = answers.wait_for(5);
  ASSERT_EQ(all.size(), 5u);
  int admitted = 0;
  for (const Admission& a : all) {
    EXPECT_FALSE(a.unavailable);
    if (!a.admitted) continue;
    ++admitted;
    store.settle(a.reservation, 10, usd("0.1"));  // local reservations: settled locally
  }
  EXPECT_EQ(admitted, 3);  // the local store keeps the hard $1 bound too (3 x $0.3)
  EXPECT_NE(store.metrics_text().find("aifinops_gateway_redis_fail_open_requests_total 3\n"),
            std::string::npos);
  EXPECT_EQ(format_decimal(store.pending_spend_nanos()), "0.3");
  redis_->thaw();
  store.stop();  // the keeper would push it within a second; here, by hand
  ASSERT_TRUE(store.maintain_now());
  EXPECT_EQ(store.pending_spend_nanos(), 0);
}

TEST_F(RedisStateTest, RedisKilledWhileAdmissionsAreInFlightAnswersEachOnceThenRecovers) {
  RedisConnections connections(config(RedisFailure::kClosed), "", clock_);
  RedisLimitStore store(connections, {budget({{"team", "a"}}, "1", true)}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  store.start();
  AdmissionRequest request = team_a_request("0.01");
  Answers answers;
  // Redis busy in a long script (not frozen: a stopped process woken to be killed could
  // still answer), so the admissions wait on their connections...
  std::thread stall([] {
    redis_->command({"EVAL",
                     "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] "
                     "while true do local n = redis.call('TIME') "
                     "if n[1] * 1000000 + n[2] - s > 2000000 then return 1 end end",
                     "0"});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < 10; ++i) admit_from(store, request, answers);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  redis_->stop();  // ...and it dies under them
  stall.join();
  for (int i = 0; i < 10; ++i) admit_from(store, request, answers);
  std::vector<Admission> all = answers.wait_for(20);
  ASSERT_EQ(all.size(), 20u);
  for (const Admission& a : all)
    EXPECT_TRUE(a.unavailable) << a.admitted << " " << a.refusal.limit << ": " << a.refusal.message;
  // Nobody is answered twice.
  EXPECT_EQ(answers.wait_for(21, std::chrono::milliseconds(200)).size(), 20u);

  redis_->start();  // empty: the keeper reseeds it, then admissions go through Redis again
  Answers again;
  for (int i = 0; i < 200 && again.wait_for(0).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!connections.available()) continue;
    Answers probe;
    const auto asked = std::chrono::steady_clock::now();
    admit_from(store, request, probe);
    std::vector<Admission> got = probe.wait_for(1);
    EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(1));
    if (!got.empty() && got[0].admitted) again.add_now(got[0]);
  }
  ASSERT_EQ(again.wait_for(0).size(), 1u) << "Redis did not come back into use";
  store.settle(again.wait_for(0)[0].reservation, 0, Money{});
  store.stop();
  EXPECT_EQ(redis_->command({"ZCARD", "test:inflight"}), "0");
}

TEST_F(RedisStateTest, StopAnswersEveryQueuedAdmissionBeforeItReturns) {
  RedisConnections connections(config(RedisFailure::kClosed), "", clock_);
  RedisLimitStore store(connections, {}, clock_);
  store.set_seed_source(no_spend());
  ASSERT_TRUE(store.maintain_now());
  store.start();
  AdmissionRequest request;
  request.key_id = "k";
  redis_->freeze();
  struct Thaw {
    ~Thaw() { redis_->thaw(); }
  } thaw;
  Answers answers;
  for (int i = 0; i < 20; ++i) admit_from(store, request, answers);
  store.stop();
  EXPECT_EQ(answers.wait_for(0).size(), 20u);
}

// --- Leases: a bundle of requests reserved in Redis, admitted locally -------------------

/// Redis's count of a command's calls since CONFIG RESETSTAT (failed calls excluded).
int64_t calls_of(const RedisProcess& redis, const std::string& command) {
  const std::string stats = redis.command({"INFO", "commandstats"});
  const size_t line = stats.find("cmdstat_" + command + ":");
  if (line == std::string::npos) return 0;
  auto field = [&](const std::string& name) -> int64_t {
    const size_t at = stats.find(name + "=", line);
    return at == std::string::npos ? 0 : std::stoll(stats.substr(at + name.size() + 1));
  };
  return field("calls") - field("failed_calls");
}

/// Waits (up to 5 s) until `done` holds.
template <typename Predicate>
bool eventually(Predicate done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

/// Sends `n` admissions one after the other, `pause_ms` apart (time for a lease to arrive),
/// and returns their answers.
std::vector<Admission> admit_paced(LimitStore& store, const AdmissionRequest& request,
                                   Answers& answers, size_t n, int pause_ms) {
  for (size_t i = 0; i < n; ++i) {
    admit_from(store, request, answers);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
  return answers.wait_for(n);
}

/// A replica of the lease tests: its connections, and its store with a budget for team a
/// (hard unless said), seeded (with no spend) and started.
struct Replica {
  Replica(RedisConfig config, const Clock& clock, const char* team_a_budget, bool hard = true,
          std::function<void(const SoftBudgetNotice&)> notice_sink = nullptr)
      : connections(std::move(config), "", clock),
        store(connections, {budget({{"team", "a"}}, team_a_budget, hard)}, clock) {
    store.set_seed_source([] {
      return Result<std::vector<std::pair<std::string, Money>>>(std::vector<std::pair<std::string, Money>>{});
    });
    EXPECT_TRUE(store.maintain_now());
    if (notice_sink) store.set_notice_sink(std::move(notice_sink));
    store.start();
  }
  RedisConnections connections;
  RedisLimitStore store;
};

/// A request of key `key` (team a, model m) with a day quota, so that Redis keeps its day
/// counters, and an rpm limit large enough for leases of up to 60 requests.
struct LeaseRequest {
  explicit LeaseRequest(std::string key_id, const char* worst_case = "0.01") : key(std::move(key_id)) {
    request.key_id = key;
    request.model = "m";
    request.tags = &tags;
    request.limits.rpm = 1200;
    request.limits.requests_per_day = 100'000;
    request.estimated_tokens = 100;
    request.worst_case_cost = usd(worst_case);
  }
  std::string key;
  std::map<std::string, std::string> tags = {{"team", "a"}};
  AdmissionRequest request;
};

TEST_F(RedisStateTest, ALeaseIsTakenAfterTrafficAndThenAdmitsWithoutARoundTripUntilItsMaxAge) {
  Replica replica(leasing_config(), clock_, "10");
  RedisConnections& connections = replica.connections;
  RedisLimitStore& store = replica.store;
  LeaseRequest r("k");
  RedisCounters& counters = connections.counters();
  // One request takes no lease; a second within the window asks for one (each of them is
  // decided in Redis meanwhile).
  Answers first, second;
  ASSERT_EQ(admit_paced(store, r.request, first, 1, 50).size(), 1u);
  EXPECT_EQ(counters.leases_taken + counters.leases_refused, 0);
  ASSERT_EQ(admit_paced(store, r.request, second, 1, 0).size(), 1u);
  EXPECT_EQ(first.at_once() + second.at_once(), 0u);
  ASSERT_TRUE(eventually([&] { return counters.leases_taken.load() == 1; }));

  redis_->command({"CONFIG", "RESETSTAT"});
  const int64_t leases_before = counters.leases_taken + counters.leases_refused;
  Answers answers;
  std::vector<Admission> all = admit_paced(store, r.request, answers, 20, 10);
  ASSERT_EQ(all.size(), 20u);
  for (const Admission& a : all) EXPECT_TRUE(a.admitted) << a.refusal.message;
  // Most were admitted at once from a lease; Redis ran one script per lease asked for and
  // per request that found no lease, none for a request admitted from a lease.
  EXPECT_GE(answers.at_once(), 15u);
  EXPECT_EQ(static_cast<size_t>(counters.leased_admissions.load()), answers.at_once());
  const int64_t per_request = static_cast<int64_t>(20 - answers.at_once());
  EXPECT_TRUE(eventually([&] {  // (a lease asked for last may still be on its way)
    return calls_of(*redis_, "evalsha") ==
           counters.leases_taken + counters.leases_refused - leases_before + per_request;
  })) << calls_of(*redis_, "evalsha") << " scripts for " << per_request << " requests and "
      << counters.leases_taken + counters.leases_refused - leases_before << " leases";
  const std::string metrics = store.metrics_text();
  EXPECT_NE(metrics.find("aifinops_gateway_redis_leased_admissions_total " +
                         std::to_string(answers.at_once()) + "\n"),
            std::string::npos)
      << metrics;

  // Past its max age a lease admits nothing: the next request decides in Redis.
  clock_.advance_ms(connections.config().lease_max_age_ms);
  Answers late;
  admit_from(store, r.request, late);
  ASSERT_EQ(late.wait_for(1).size(), 1u);
  EXPECT_EQ(late.at_once(), 0u);
  EXPECT_TRUE(late.wait_for(1)[0].admitted);
  for (const Admission& a : all) store.settle(a.reservation, 0, Money{});
  store.settle(first.wait_for(1)[0].reservation, 0, Money{});
  store.settle(second.wait_for(1)[0].reservation, 0, Money{});
  store.settle(late.wait_for(1)[0].reservation, 0, Money{});
  store.stop();
  EXPECT_EQ(store.budget_used("team=a (month)").nanos, 0);  // every lease given back
  EXPECT_EQ(redis_->command({"ZCARD", "test:inflight"}), "0");
}

TEST_F(RedisStateTest, ASettledLeaseCountsItsRequestsActualsAndGivesTheRestBack) {
  Replica replica(leasing_config(), clock_, "10");
  RedisLimitStore& store = replica.store;
  LeaseRequest r("k");
  r.request.limits.tpm = 1'000'000;
  r.request.limits.tokens_per_day = 10'000'000;
  Answers answers;
  std::vector<Admission> all = admit_paced(store, r.request, answers, 40, 5);
  ASSERT_EQ(all.size(), 40u);
  EXPECT_GE(answers.at_once(), 20u);
  for (const Admission& a : all) {
    ASSERT_TRUE(a.admitted) << a.refusal.message;
    store.settle(a.reservation, 30, usd("0.001"));  // used less than the 100 tokens and $0.01 reserved
  }
  EXPECT_GE(replica.connections.counters().leases_taken.load(), 1);
  store.stop();  // closes the leases: each one settles once its requests are
  // Exactly the actuals, and nothing still reserved: what the leases did not admit went back.
  const std::string budget_key = "test:b:team=a (month):" + month_start();
  EXPECT_EQ(redis_->command({"HGET", budget_key, "s"}), "40000000");
  EXPECT_EQ(redis_->command({"HGET", budget_key, "r"}), "0");
  const std::string day = "test:k:k:d:" + today();
  EXPECT_EQ(redis_->command({"HGET", day, "r"}), "40");  // requests reserved but not admitted: back
  EXPECT_EQ(redis_->command({"HGET", day, "tok"}), "1200");
  EXPECT_EQ(redis_->command({"HGET", day, "tokr"}), "0");
  EXPECT_EQ(redis_->command({"HGET", day, "usd"}), "40000000");
  EXPECT_EQ(redis_->command({"HGET", day, "usdr"}), "0");
  // The clock stood still: the buckets hold exactly what the 40 requests took (in 1/60000).
  EXPECT_EQ(redis_->command({"HGET", "test:k:k:rpm", "l"}), std::to_string((1200 - 40) * 60000LL));
  EXPECT_EQ(redis_->command({"HGET", "test:k:k:tpm", "l"}), std::to_string((1'000'000 - 1200) * 60000LL));
  EXPECT_EQ(redis_->command({"ZCARD", "test:inflight"}), "0");
}

TEST_F(RedisStateTest, NearAHardBudgetALeaseIsRefusedAndEachRequestGetsTheExactRefusal) {
  const std::vector<BudgetRule> budgets = {budget({{"team", "a"}}, "1", true)};
  RedisConnections connections(leasing_config(), "", clock_);
  RedisLimitStore store(connections, budgets, clock_);
  store.set_seed_source([] {
    return Result<std::vector<std::pair<std::string, Money>>>(
        std::vector<std::pair<std::string, Money>>{{"team=a (month)", usd("0.99")}});
  });
  ASSERT_TRUE(store.maintain_now());
  store.start();
  MemoryLimitStore memory(budgets, clock_);
  memory.seed_budget_spend("team=a (month)", usd("0.99"));
  LeaseRequest r("k");
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    Answers answers;
    admit_from(store, r.request, answers);
    ASSERT_EQ(answers.wait_for(1).size(), 1u);
    EXPECT_EQ(answers.at_once(), 0u);  // no lease: $0.01 is left at most, a lease of two needs $0.02
    const Admission shared = answers.wait_for(1)[0];
    const Admission local = memory.admit(r.request);
    EXPECT_EQ(shared.admitted, local.admitted);
    EXPECT_EQ(shared.refusal.limit, local.refusal.limit);
    EXPECT_EQ(shared.refusal.message, local.refusal.message);
    EXPECT_EQ(shared.refusal.retry_after_s, local.refusal.retry_after_s);
    if (i == 0) {
      EXPECT_TRUE(shared.admitted);
    } else {
      EXPECT_EQ(shared.refusal.limit, "budget");
      // The second request asked for a lease (two in a row), which Redis refused.
      ASSERT_TRUE(eventually([&] { return connections.counters().leases_refused.load() == 1; }));
    }
  }
  EXPECT_EQ(connections.counters().leases_taken.load(), 0);
  EXPECT_EQ(connections.counters().leases_refused.load(), 1);  // then it backs off
  store.stop();
}

TEST_F(RedisStateTest, TwoReplicasLeasingFromOneRedisKeepTheHardBudgetBound) {
  Replica replica_a(leasing_config(), clock_, "1"), replica_b(leasing_config(), clock_, "1");
  RedisLimitStore &a = replica_a.store, &b = replica_b.store;
  // 2 replicas x 2 threads x 150 requests of at most $0.01 against a hard $1 budget.
  Answers answers_a, answers_b;
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t)
    senders.emplace_back([&, t] {
      LimitStore& store = t < 2 ? static_cast<LimitStore&>(a) : b;
      LeaseRequest r("k" + std::to_string(t % 2));
      for (int i = 0; i < 150; ++i) {
        admit_from(store, r.request, t < 2 ? answers_a : answers_b);
        // Paced, so that leases arrive before the per-request admissions queued meanwhile
        // have taken the whole budget.
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  for (std::thread& t : senders) t.join();
  std::vector<Admission> all_a = answers_a.wait_for(300), all_b = answers_b.wait_for(300);
  ASSERT_EQ(all_a.size(), 300u);
  ASSERT_EQ(all_b.size(), 300u);
  EXPECT_GT(answers_a.at_once() + answers_b.at_once(), 0u);  // some from leases
  int64_t admitted = 0;
  for (const std::vector<Admission>* all : {&all_a, &all_b})
    for (const Admission& admission : *all) {
      if (admission.admitted) ++admitted;
      else EXPECT_EQ(admission.refusal.limit, "budget") << admission.refusal.message;
    }
  EXPECT_LE(admitted, 100);  // the bound: $1 / $0.01
  EXPECT_GT(admitted, 0);
  a.stop();
  b.stop();
  const std::string budget_key = "test:b:team=a (month):" + month_start();
  // Nothing settled yet: the reservations (the leases' and the requests' own) hold at least
  // the admitted requests' worst case, and never more than the budget.
  const int64_t reserved = std::stoll(redis_->command({"HGET", budget_key, "r"}));
  EXPECT_GE(reserved, admitted * 10'000'000LL);
  EXPECT_LE(reserved, 1'000'000'000LL);
  // Each admission settled by the replica that made it, at $0.005: Redis has exactly the sum.
  for (const Admission& admission : all_a)
    if (admission.admitted) a.settle(admission.reservation, 10, usd("0.005"));
  for (const Admission& admission : all_b)
    if (admission.admitted) b.settle(admission.reservation, 10, usd("0.005"));
  EXPECT_EQ(redis_->command({"HGET", budget_key, "s"}), std::to_string(admitted * 5'000'000LL));
  EXPECT_EQ(redis_->command({"HGET", budget_key, "r"}), "0");
  EXPECT_EQ(redis_->command({"ZCARD", "test:inflight"}), "0");
}

TEST_F(RedisStateTest, AnAbandonedLeaseIsGivenBackAfterTheReservationTtl) {
  RedisConfig c = leasing_config();
  c.reservation_ttl_s = 5;
  const std::vector<BudgetRule> budgets = {budget({{"team", "a"}}, "1", true)};
  LeaseRequest r("k", "0.02");
  {
    RedisConnections connections(c, "", clock_);
    RedisLimitStore crashed(connections, budgets, clock_);  // a replica that dies mid-request
    crashed.set_seed_source(no_spend());
    ASSERT_TRUE(crashed.maintain_now());
    crashed.start();
    Answers first;
    for (const Admission& a : admit_paced(crashed, r.request, first, 2, 0))
      crashed.settle(a.reservation, 0, Money{});
    ASSERT_TRUE(eventually([&] { return connections.counters().leases_taken.load() == 1; }));
    std::optional<Admission> leased = crashed.admit_async(r.request, [](Admission) {});
    ASSERT_TRUE(leased && leased->admitted);  // never settled: its lease stays in Redis
    crashed.flush_settlements();
  }
  RedisConnections connections(c, "", clock_);
  RedisLimitStore store(connections, budgets, clock_);
  const Money held = store.budget_used("team=a (month)");
  EXPECT_GE(held.nanos, usd("0.04").nanos);  // a lease of at least two requests
  clock_.advance_ms(6'000);
  Admission after = store.admit(r.request);  // reaps the abandoned lease first
  ASSERT_TRUE(after.admitted);
  EXPECT_EQ(format_decimal(store.budget_used("team=a (month)").nanos), "0.02");
  store.settle(after.reservation, 0, Money{});
}

TEST_F(RedisStateTest, ASoftBudgetCrossedByLeasedRequestsIsReportedOnceByTheirLeasesSettlement) {
  std::vector<SoftBudgetNotice> notices;  // from the settler (or the keeper), read after stop()
  std::mutex notices_mutex;
  Replica replica(leasing_config(), clock_, "0.1", false, [&](const SoftBudgetNotice& n) {
    std::lock_guard<std::mutex> lock(notices_mutex);
    notices.push_back(n);
  });
  RedisLimitStore& store = replica.store;
  LeaseRequest r("k");
  Answers answers;
  std::vector<Admission> all = admit_paced(store, r.request, answers, 30, 5);
  ASSERT_EQ(all.size(), 30u);
  EXPECT_GE(answers.at_once(), 10u);
  for (const Admission& a : all) {
    ASSERT_TRUE(a.admitted);  // a soft budget never refuses
    EXPECT_TRUE(store.settle(a.reservation, 10, usd("0.01")).empty());  // to the sink, later
  }
  store.stop();  // the last leases settle
  EXPECT_EQ(format_decimal(store.budget_used("team=a (month)").nanos), "0.3");
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].budget, "team=a (month)");
  EXPECT_GT(notices[0].spent, usd("0.1"));
  EXPECT_EQ(format_decimal(notices[0].amount.nanos), "0.1");
}

TEST_F(RedisStateTest, ALowPriorityKeyNeverLeasesSoItsThrottlingIsDecidedPerRequest) {
  Replica replica(leasing_config(), clock_, "10");
  LeaseRequest r("k");
  r.tags["criticality"] = "low";
  Answers answers;
  std::vector<Admission> all = admit_paced(replica.store, r.request, answers, 10, 5);
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(answers.at_once(), 0u);
  EXPECT_EQ(replica.connections.counters().leases_taken + replica.connections.counters().leases_refused, 0);
  for (const Admission& a : all) replica.store.settle(a.reservation, 0, Money{});
  replica.store.stop();
}

TEST_F(RedisStateTest, WithLeasesOffEveryRequestDecidesInRedis) {
  Replica replica(config(), clock_, "10");
  RedisLimitStore& store = replica.store;
  redis_->command({"CONFIG", "RESETSTAT"});
  LeaseRequest r("k");
  Answers answers;
  std::vector<Admission> all = admit_paced(store, r.request, answers, 20, 5);
  ASSERT_EQ(all.size(), 20u);
  EXPECT_EQ(answers.at_once(), 0u);
  EXPECT_EQ(calls_of(*redis_, "evalsha"), 20);
  EXPECT_EQ(replica.connections.counters().leases_taken.load(), 0);
  for (const Admission& a : all) store.settle(a.reservation, 0, Money{});
  store.stop();
}

}  // namespace
}  // namespace aifinops::gateway
