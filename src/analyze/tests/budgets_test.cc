#include "analyze/budgets.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/json/src.hpp>  // header-only Boost.JSON, compiled into this test alone
#include <thread>

#include "analyze/webhook.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::analyze {
namespace {

constexpr int64_t kDay = 86400;
constexpr __int128 kNanos = 1'000'000'000;

EpochSeconds at(const char* text) { return *parse_timestamp(text); }

BudgetRule rule(std::string name, std::map<std::string, std::string> scope, BudgetPeriod period,
                int64_t amount, std::vector<AlertThreshold> alert_at = {}) {
  BudgetRule r;
  r.name = std::move(name);
  r.scope = std::move(scope);
  r.period = period;
  r.amount = Money::from_units(amount);
  r.alert_at = std::move(alert_at);
  return r;
}

ScopedBudget scoped(BudgetRule r) {
  ScopedBudget b{std::move(r), {}};
  for (const auto& [dimension, value] : b.rule.scope)
    b.filters.push_back({*ledger::parse_dimension(dimension), value});
  return b;
}

/// Steady spend from 2025-06-01 to 2025-10-31: alpha 100 a day in production, beta 10 a day
/// in staging, 5 a day with no team.
class BudgetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (EpochSeconds t = at("2025-06-01"); t < at("2025-11-01"); t += kDay) {
      const std::string day = format_timestamp(t + 3600);
      builder_.add({{Attr::kTeam, "alpha"}, {Attr::kEnvironment, "production"}}, day, "100");
      builder_.add({{Attr::kTeam, "beta"}, {Attr::kEnvironment, "staging"}}, day, "10");
      builder_.add({{Attr::kEnvironment, "production"}}, day, "5");
    }
    builder_.commit();
  }

  std::vector<BudgetStatus> status(const std::vector<ScopedBudget>& budgets, const char* as_of) {
    BudgetOptions o;
    o.as_of = at(as_of);
    auto s = budget_status(builder_.ledger(), budgets, o);
    EXPECT_TRUE(s.has_value()) << s.error().message;
    return s.has_value() ? *s : std::vector<BudgetStatus>{};
  }

  testing::LedgerBuilder builder_;
};

TEST_F(BudgetsTest, CountsThePeriodsSpendSoFarExactlyAndForecastsTheRest) {
  auto s = status({scoped(rule("alpha", {{"team", "alpha"}}, BudgetPeriod::kMonth, 5000))},
                  "2025-10-21T00:00:00Z");  // the end of 20 October
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].period_start, at("2025-10-01"));
  EXPECT_EQ(s[0].period_end, at("2025-11-01"));
  EXPECT_EQ(s[0].actual, 2000 * kNanos);
  EXPECT_EQ(s[0].amount, 5000 * kNanos);
  EXPECT_EQ(s[0].days_elapsed, 20);
  EXPECT_EQ(s[0].days_in_period, 31);
  EXPECT_NEAR(s[0].used_percent, 40.0, 1e-9);
  EXPECT_NEAR(s[0].forecast, 3100, 1);
  EXPECT_NEAR(s[0].remaining_forecast, 1100, 1);
  EXPECT_LE(s[0].forecast_lower, s[0].forecast + 1e-9);
  EXPECT_GE(s[0].forecast_upper, s[0].forecast - 1e-9);
  EXPECT_NEAR(s[0].forecast_percent, 62.0, 0.1);
  EXPECT_FALSE(s[0].exhausted_on.has_value());
  EXPECT_FALSE(s[0].projected_exhaustion.has_value());
  EXPECT_EQ(s[0].model.method, "smoothing");
  EXPECT_EQ(s[0].history_start, at("2025-10-21") - 120 * kDay);
}

TEST_F(BudgetsTest, ProjectsTheDayTheBudgetRunsOut) {
  auto s = status({scoped(rule("alpha", {{"team", "alpha"}}, BudgetPeriod::kMonth, 2500)),
                   scoped(rule("small", {{"team", "alpha"}}, BudgetPeriod::kMonth, 1500))},
                  "2025-10-21T00:00:00Z");
  ASSERT_EQ(s.size(), 2u);
  // 2,000 spent, 100 a day: 2,500 is reached with 25 October's spend.
  EXPECT_EQ(s[0].projected_exhaustion, at("2025-10-25"));
  EXPECT_FALSE(s[0].exhausted_on.has_value());
  // 1,500 was used up by the end of 15 October.
  EXPECT_EQ(s[1].exhausted_on, at("2025-10-15"));
  EXPECT_FALSE(s[1].projected_exhaustion.has_value());
}

TEST_F(BudgetsTest, TodaysSpendCountsAndIsNotForecastTwice) {
  auto s = status({scoped(rule("alpha", {{"team", "alpha"}}, BudgetPeriod::kMonth, 5000))},
                  "2025-10-20T12:00:00Z");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].actual, 2000 * kNanos);  // 20 October's spend is in the ledger already
  EXPECT_EQ(s[0].days_elapsed, 20);
  EXPECT_NEAR(s[0].forecast, 3100, 1);
}

TEST_F(BudgetsTest, WeekAndDayPeriodsAndAFinishedPeriod) {
  std::vector<ScopedBudget> budgets = {
      scoped(rule("week", {{"team", "alpha"}}, BudgetPeriod::kWeek, 1000)),
      scoped(rule("day", {{"team", "alpha"}}, BudgetPeriod::kDay, 80)),
      scoped(rule("month", {{"team", "alpha"}}, BudgetPeriod::kMonth, 5000))};
  // Wednesday 22 October at midnight: the week of Monday 20 October has two days behind it.
  auto s = status(budgets, "2025-10-22T00:00:00Z");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].period_start, at("2025-10-20"));
  EXPECT_EQ(s[0].actual, 200 * kNanos);
  EXPECT_EQ(s[0].days_in_period, 7);
  EXPECT_NEAR(s[0].forecast, 700, 1);
  EXPECT_EQ(s[1].period_start, at("2025-10-21"));
  EXPECT_EQ(s[1].actual, 100 * kNanos);
  EXPECT_NEAR(s[1].forecast, 100, 1e-9);
  EXPECT_EQ(s[1].exhausted_on, at("2025-10-21"));
  // As of the end of October, October is over: the forecast is what was spent.
  s = status(budgets, "2025-11-01T00:00:00Z");
  EXPECT_EQ(s[2].period_start, at("2025-10-01"));
  EXPECT_EQ(s[2].actual, 3100 * kNanos);
  EXPECT_EQ(s[2].days_elapsed, 31);
  EXPECT_DOUBLE_EQ(s[2].forecast, 3100);
}

TEST_F(BudgetsTest, EachBudgetSeesOnlyItsScope) {
  auto s = status(
      {scoped(rule("alpha", {{"team", "alpha"}}, BudgetPeriod::kMonth, 5000)),
       scoped(rule("beta", {{"team", "beta"}}, BudgetPeriod::kMonth, 5000)),
       scoped(rule("untagged", {{"team", "(none)"}}, BudgetPeriod::kMonth, 5000)),
       scoped(rule("prod alpha", {{"team", "alpha"}, {"environment", "production"}},
                   BudgetPeriod::kMonth, 5000)),
       scoped(rule("staging alpha", {{"team", "alpha"}, {"environment", "staging"}},
                   BudgetPeriod::kMonth, 5000)),
       scoped(rule("production", {{"environment", "production"}}, BudgetPeriod::kMonth, 5000))},
      "2025-10-21T00:00:00Z");
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(s[0].actual, 2000 * kNanos);
  EXPECT_EQ(s[1].actual, 200 * kNanos);
  EXPECT_EQ(s[2].actual, 100 * kNanos);
  EXPECT_EQ(s[3].actual, 2000 * kNanos);
  EXPECT_EQ(s[4].actual, 0);
  EXPECT_EQ(s[5].actual, 2100 * kNanos);
  EXPECT_EQ(s[4].forecast, 0);
}

TEST_F(BudgetsTest, ManyBudgetsOnOneDimensionShareAQueryWithTheSameResults) {
  std::vector<ScopedBudget> budgets;
  for (const char* team : {"alpha", "beta", "(none)", "gamma", "alpha"})
    budgets.push_back(scoped(rule(team, {{"team", team}}, BudgetPeriod::kMonth, 5000)));
  budgets.push_back(scoped(rule("week", {{"team", "alpha"}}, BudgetPeriod::kWeek, 1000)));
  auto s = status(budgets, "2025-10-21T00:00:00Z");
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(s[0].actual, 2000 * kNanos);
  EXPECT_EQ(s[1].actual, 200 * kNanos);
  EXPECT_EQ(s[2].actual, 100 * kNanos);
  EXPECT_EQ(s[3].actual, 0);
  EXPECT_EQ(s[4].actual, 2000 * kNanos);
  EXPECT_EQ(s[5].actual, 100 * kNanos);  // Monday 20 October
  EXPECT_NEAR(s[1].forecast, 310, 1);
}

TEST_F(BudgetsTest, ThresholdsOnActualAndForecastSpend) {
  auto s = status({scoped(rule("alpha", {{"team", "alpha"}}, BudgetPeriod::kMonth, 2500,
                               {{50, false}, {80, false}, {100, false}, {100, true}})),
                   scoped(rule("defaults", {{"team", "alpha"}}, BudgetPeriod::kMonth, 3000))},
                  "2025-10-21T00:00:00Z");
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(s[0].thresholds.size(), 4u);
  // 2,000 of 2,500 spent (80%); 3,100 forecast (124%).
  EXPECT_TRUE(s[0].thresholds[0].crossed);
  EXPECT_TRUE(s[0].thresholds[1].crossed);
  EXPECT_FALSE(s[0].thresholds[2].crossed);
  EXPECT_TRUE(s[0].thresholds[3].crossed);
  EXPECT_EQ(s[0].thresholds[1].at, 2000 * kNanos);
  EXPECT_EQ(s[0].thresholds[3].key, "alpha|forecast 100%|2025-10-01");
  // No alert_at: 50%, 80%, 100% of actual spend.
  ASSERT_EQ(s[1].thresholds.size(), 3u);
  EXPECT_EQ(s[1].thresholds[2].threshold.label(), "100%");
  EXPECT_TRUE(s[1].thresholds[0].crossed);   // 2,000 >= 1,500
  EXPECT_FALSE(s[1].thresholds[1].crossed);  // 2,000 < 2,400
}

/// Records what would have gone to the webhook.
struct RecordingPoster {
  std::vector<std::string> posts;
  bool fail = false;
  AlertPoster poster() {
    return [this](const std::string& json) -> Result<void> {
      if (fail) return make_error(ErrorCode::kIo, "webhook http://127.0.0.1:9: cannot connect");
      posts.push_back(json);
      return {};
    };
  }
};

TEST_F(BudgetsTest, AlertsOncePerBudgetThresholdAndPeriod) {
  std::vector<ScopedBudget> budgets = {
      scoped(rule("alpha", {{"team", "alpha"}}, BudgetPeriod::kMonth, 2500,
                  {{50, false}, {80, false}, {100, true}})),
      scoped(rule("beta", {{"team", "beta"}}, BudgetPeriod::kMonth, 5000))};
  RecordingPoster webhook;
  auto s = status(budgets, "2025-10-21T00:00:00Z");
  auto run = send_budget_alerts(builder_.ledger(), s, webhook.poster(), false);
  ASSERT_TRUE(run.has_value()) << run.error().message;
  // One message for alpha with its three crossings; beta (4%) crosses nothing.
  ASSERT_EQ(webhook.posts.size(), 1u);
  ASSERT_EQ(run->outcomes.size(), 3u);
  for (const AlertOutcome& o : run->outcomes) {
    EXPECT_EQ(o.state, AlertOutcome::State::kSent);
    EXPECT_EQ(o.budget, "alpha");
    EXPECT_EQ(o.message, 0);
  }
  auto notes = builder_.ledger().notes("budget_alert");
  ASSERT_TRUE(notes.has_value());
  ASSERT_EQ(notes->size(), 3u);

  // The same day again, and a day later with more spend: nothing new to say.
  for (const char* as_of : {"2025-10-21T00:00:00Z", "2025-10-22T00:00:00Z"}) {
    s = status(budgets, as_of);
    run = send_budget_alerts(builder_.ledger(), s, webhook.poster(), false);
    ASSERT_TRUE(run.has_value());
    EXPECT_EQ(webhook.posts.size(), 1u) << as_of;
    ASSERT_EQ(run->outcomes.size(), 3u);
    for (const AlertOutcome& o : run->outcomes)
      EXPECT_EQ(o.state, AlertOutcome::State::kAlreadySent);
    EXPECT_TRUE(run->messages.empty());
  }
}

TEST_F(BudgetsTest, ANewPeriodAlertsAgain) {
  std::vector<ScopedBudget> budgets = {
      scoped(rule("day", {{"team", "alpha"}}, BudgetPeriod::kDay, 150))};
  RecordingPoster webhook;
  for (const char* as_of :
       {"2025-10-20T00:00:00Z", "2025-10-20T00:00:00Z", "2025-10-21T00:00:00Z"}) {
    auto s = status(budgets, as_of);
    ASSERT_TRUE(send_budget_alerts(builder_.ledger(), s, webhook.poster(), false).has_value());
  }
  // 100 of 150 a day crosses 50% every day: once for 19 October, once for 20 October.
  ASSERT_EQ(webhook.posts.size(), 2u);
  EXPECT_NE(webhook.posts[0].find("2025-10-19"), std::string::npos);
  EXPECT_NE(webhook.posts[1].find("2025-10-20"), std::string::npos);
}

TEST_F(BudgetsTest, DryRunNeitherPostsNorRemembers) {
  std::vector<ScopedBudget> budgets = {
      scoped(rule("alpha", {{"team", "alpha"}}, BudgetPeriod::kMonth, 2500))};
  RecordingPoster webhook;
  auto s = status(budgets, "2025-10-21T00:00:00Z");
  auto run = send_budget_alerts(builder_.ledger(), s, webhook.poster(), true);
  ASSERT_TRUE(run.has_value());
  EXPECT_TRUE(webhook.posts.empty());
  ASSERT_EQ(run->messages.size(), 1u);
  ASSERT_EQ(run->outcomes.size(), 2u);  // 50% and 80%
  EXPECT_EQ(run->outcomes[0].state, AlertOutcome::State::kWouldSend);
  EXPECT_TRUE(builder_.ledger().notes("budget_alert")->empty());
  // The real run afterwards still sends.
  run = send_budget_alerts(builder_.ledger(), s, webhook.poster(), false);
  EXPECT_EQ(webhook.posts.size(), 1u);
  EXPECT_EQ(webhook.posts[0], run->messages[0]);
}

TEST_F(BudgetsTest, AFailedPostIsTriedAgainNextRun) {
  std::vector<ScopedBudget> budgets = {
      scoped(rule("alpha", {{"team", "alpha"}}, BudgetPeriod::kMonth, 2500))};
  RecordingPoster webhook;
  webhook.fail = true;
  auto s = status(budgets, "2025-10-21T00:00:00Z");
  auto run = send_budget_alerts(builder_.ledger(), s, webhook.poster(), false);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->failed, 1);
  EXPECT_EQ(run->outcomes[0].state, AlertOutcome::State::kFailed);
  EXPECT_NE(run->outcomes[0].error.find("cannot connect"), std::string::npos);
  EXPECT_TRUE(builder_.ledger().notes("budget_alert")->empty());
  webhook.fail = false;
  run = send_budget_alerts(builder_.ledger(), s, webhook.poster(), false);
  EXPECT_EQ(run->failed, 0);
  EXPECT_EQ(webhook.posts.size(), 1u);
}

TEST_F(BudgetsTest, TheMessageIsSlackShaped) {
  auto s = status({scoped(rule("alpha \"prod\"", {{"team", "alpha"}}, BudgetPeriod::kMonth, 2500,
                               {{80, false}, {100, true}}))},
                  "2025-10-21T00:00:00Z");
  ASSERT_EQ(s.size(), 1u);
  std::vector<ThresholdStatus> crossed(s[0].thresholds.begin(), s[0].thresholds.end());
  const std::string json = budget_alert_message(s[0], crossed);
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  ASSERT_FALSE(ec) << json;
  const std::string text(v.at("text").as_string());
  EXPECT_NE(text.find("alpha \"prod\""), std::string::npos) << text;
  EXPECT_NE(text.find("80%, forecast 100%"), std::string::npos) << text;
  EXPECT_NE(text.find("$2,500.00"), std::string::npos) << text;
  EXPECT_NE(text.find("$2,000.00 (80.0%)"), std::string::npos) << text;
  EXPECT_NE(text.find("2025-10"), std::string::npos) << text;
  const auto& blocks = v.at("blocks").as_array();
  ASSERT_GE(blocks.size(), 3u);
  EXPECT_EQ(blocks[0].at("type").as_string(), "header");
  EXPECT_EQ(blocks[0].at("text").at("type").as_string(), "plain_text");
  for (const auto& block : blocks) EXPECT_TRUE(block.as_object().contains("type"));
}

TEST(WebhookUrlTest, ReadsSchemeHostPortAndPath) {
  auto u = parse_webhook_url("https://hooks.slack.com/services/T0/B0/secret");
  ASSERT_TRUE(u.has_value());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.slack.com");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->target, "/services/T0/B0/secret");
  EXPECT_EQ(u->origin(), "https://hooks.slack.com:443");  // no secret path in messages
  u = parse_webhook_url("http://127.0.0.1:8080");
  ASSERT_TRUE(u.has_value());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->target, "/");
  u = parse_webhook_url("http://[::1]:9000/hook?x=1");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->target, "/hook?x=1");
  EXPECT_FALSE(parse_webhook_url("hooks.slack.com/x").has_value());
  EXPECT_FALSE(parse_webhook_url("http://host:99999/").has_value());
  EXPECT_FALSE(parse_webhook_url("http://:80/").has_value());
}

/// A one-connection HTTP server on 127.0.0.1 that answers with `response` (or, when it is
/// empty, accepts and never answers).
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hook/T0/secret";
  }
  const std::string& request() const { return request_; }

 private:
  void serve() {
    const int client = ::accept(fd_, nullptr, nullptr);
    if (client < 0) return;
    char buffer[4096];
    size_t body_at = std::string::npos, length = 0;
    while (body_at == std::string::npos || request_.size() < body_at + length) {
      const ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      request_.append(buffer, (size_t)n);
      if (body_at == std::string::npos &&
          (body_at = request_.find("\r\n\r\n")) != std::string::npos) {
        body_at += 4;
        const size_t at = request_.find("Content-Length: ");
        if (at != std::string::npos) length = std::stoul(request_.substr(at + 16));
      }
    }
    if (response_.empty()) {
      ::recv(client, buffer, sizeof buffer, 0);  // until the client gives up
    } else {
      ::send(client, response_.data(), response_.size(), 0);
    }
    ::close(client);
  }
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

TEST(WebhookTest, PostsJsonAndAcceptsA2xxAnswer) {
  std::string request;
  {
    OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    auto url = parse_webhook_url(server.url());
    ASSERT_TRUE(url.has_value());
    auto posted = post_webhook(*url, "{\"text\":\"hi\"}", std::chrono::milliseconds(5000));
    EXPECT_TRUE(posted.has_value()) << posted.error().message;
    request = server.request();
  }
  EXPECT_EQ(request.rfind("POST /hook/T0/secret HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(request.find("\r\n\r\n{\"text\":\"hi\"}"), std::string::npos);
}

TEST(WebhookTest, AnErrorAnswerIsAnErrorWithItsStatus) {
  OneShotServer server(
      "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nno_service");
  auto posted =
      post_webhook(*parse_webhook_url(server.url()), "{}", std::chrono::milliseconds(5000));
  ASSERT_FALSE(posted.has_value());
  const std::string& m = posted.error().message;
  EXPECT_NE(m.find("404 Not Found: no_service"), std::string::npos) << m;
  EXPECT_EQ(m.find("secret"), std::string::npos) << m;  // the path stays out of messages
}

TEST(WebhookTest, GivesUpAfterTheTimeout) {
  OneShotServer server("");
  const auto start = std::chrono::steady_clock::now();
  auto posted =
      post_webhook(*parse_webhook_url(server.url()), "{}", std::chrono::milliseconds(300));
  ASSERT_FALSE(posted.has_value());
  EXPECT_NE(posted.error().message.find("no answer within 0.3 s"), std::string::npos)
      << posted.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(WebhookTest, NobodyListeningIsAClearError) {
  // A port bound but not listening refuses connections, and stays ours meanwhile.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto posted = post_webhook(
      *parse_webhook_url("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x"), "{}",
      std::chrono::milliseconds(2000));
  ::close(fd);
  ASSERT_FALSE(posted.has_value());
  EXPECT_NE(posted.error().message.find("cannot connect"), std::string::npos)
      << posted.error().message;
}

}  // namespace
}  // namespace aifinops::analyze
