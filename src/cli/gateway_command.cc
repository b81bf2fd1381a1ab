// aifinops gateway: the metering proxy, and `gateway keys new` to mint virtual keys.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "analyze/webhook.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "config/gateway_yaml.h"
#include "core/json_text.h"
#include "core/time.h"
#include "gateway/redis_state.h"
#include "gateway/server.h"
#include "ledger/location.h"

namespace aifinops::cli {
namespace {

struct GatewayFlags {
  std::string config = "gateway.yaml";
  std::string listen;
  std::string spool_dir;
  std::string key_id;
};

/// Budgets continue from the spend the ledger already has for their period, so that a
/// restart does not hand out the budget again. Only gateway-metered spend counts (records
/// whose resource is a virtual key): budgets bound what the gateway admits, and a provider's
/// bill (FOCUS) for the same team would count those requests twice, along with spend the
/// gateway never saw.
Result<std::vector<std::pair<std::string, Money>>> budget_spend(ledger::Ledger& ledger,
                                                                const gateway::GatewayConfig& config,
                                                                EpochSeconds now) {
  std::vector<std::pair<std::string, Money>> out;
  auto resource_type = ledger::parse_dimension("resource_type");
  if (!resource_type) return Unexpected{resource_type.error()};
  for (const gateway::BudgetRule& b : config.budgets) {
    ledger::QuerySpec spec;
    spec.from = period_start(b.period, now);
    spec.filters.push_back({*resource_type, std::string(gateway::kVirtualKeyResourceType)});
    for (const auto& [dimension, value] : b.scope) {
      auto d = ledger::parse_dimension(dimension == "key" ? "resource" : dimension);
      if (!d) return make_error(ErrorCode::kInvalidArgument, "budget " + b.name + ": " + d.error().message);
      spec.filters.push_back({*d, value});
    }
    auto spent = ledger.query(spec);
    if (!spent) return Unexpected{spent.error()};
    out.emplace_back(b.name, Money{(int64_t)spent->total});
  }
  return out;
}

Result<void> seed_budgets(ledger::Ledger& ledger, const gateway::GatewayConfig& config,
                          gateway::LimitStore& limits, EpochSeconds now) {
  auto spends = budget_spend(ledger, config, now);
  if (!spends) return Unexpected{spends.error()};
  for (const auto& [name, spent] : *spends) limits.seed_budget_spend(name, spent);
  return {};
}

/// Holds an exclusive lock on `<spool_dir>/lock` for the process's life: two gateways on one
/// spool directory would hand each other's files over mid-write. Returns the descriptor.
Result<int> lock_spool_dir(const std::string& dir) {
  const std::string path = dir + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::kIo, path + ": cannot open the spool lock: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return make_error(ErrorCode::kConflict,
                      dir + ": another gateway is using this spool directory; give each replica its own "
                            "(--spool-dir or spool_dir: in the config)");
  }
  return fd;
}

/// Reports soft budget crossings: a log line at once, and a Slack-shaped message to the
/// webhook (if one is configured) from a thread of its own, so that a slow webhook never
/// holds up a request. Notices still queued at stop() are sent before it returns (each
/// post has a deadline).
class SoftBudgetNotifier {
 public:
  explicit SoftBudgetNotifier(std::optional<analyze::WebhookUrl> webhook) : webhook_(std::move(webhook)) {
    if (webhook_) thread_ = std::thread([this] { loop(); });
  }
  ~SoftBudgetNotifier() { stop(); }

  void notify(const gateway::SoftBudgetNotice& notice) {
    std::string text = "Soft budget " + notice.budget + " exceeded: " + format_decimal(notice.spent.nanos) + " of " +
                       format_decimal(notice.amount.nanos) + " USD spent in the period from " +
                       format_date(notice.period_start) + " (requests are still served).";
    std::fprintf(stderr, "aifinops gateway: %s\n", text.c_str());
    if (!webhook_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back("{\"text\":\"" + json_escape(text) + "\"}");
    wake_.notify_one();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything was sent
      std::string json = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      auto posted = analyze::post_webhook(*webhook_, json, std::chrono::seconds(10));
      if (!posted)
        std::fprintf(stderr, "aifinops gateway: soft budget notice to %s not sent: %s\n",
                     webhook_->origin().c_str(), posted.error().message.c_str());
      lock.lock();
    }
  }

  std::optional<analyze::WebhookUrl> webhook_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

int run_gateway(const GatewayFlags& flags) {
  auto config = config::load_gateway_config(flags.config);
  if (!config) return report_error(config.error());
  if (!flags.listen.empty()) config->listen = flags.listen;
  if (!flags.spool_dir.empty()) config->spool_dir = flags.spool_dir;
  if (config->spool_dir.empty()) {
    // Beside an SQLite file by default; a database URL names no directory to put it in.
    if (ledger::is_postgres_url(config->ledger))
      return report_error(Error{ErrorCode::kInvalidArgument,
                                flags.config + ": spool_dir: required when ledger: is a PostgreSQL URL "
                                               "(a local directory where records wait for the ledger, "
                                               "one per gateway; or pass --spool-dir)"});
    config->spool_dir = config->ledger + ".spool";
  }
  std::string redis_password;
  if (config->redis) {
    redis_password = config->redis->password;
    if (!config->redis->password_env.empty()) {
      const char* value = std::getenv(config->redis->password_env.c_str());
      if (value == nullptr || *value == '\0')
        return report_error(Error{ErrorCode::kInvalidArgument,
                                  flags.config + ": redis_password_env: $" + config->redis->password_env +
                                      " is not set (it should hold the Redis password)"});
      redis_password = value;
    }
  }
  std::optional<analyze::WebhookUrl> webhook;
  if (!config->webhook.empty()) {
    auto parsed = analyze::parse_webhook_url(config->webhook);
    if (!parsed)
      return report_error(Error{ErrorCode::kInvalidArgument, flags.config + ": webhook: " + parsed.error().message});
    webhook = *parsed;
  }

  auto opened = open_ledger_with_catalog(config->ledger);
  if (!opened) return report_error(opened.error());
  std::unique_ptr<ledger::Ledger>& ledger = opened->ledger;
  const pricing::Catalog* catalog = &opened->catalog;
  SystemClock clock;
  // Limits, budgets and the cache: in this process, or in Redis shared by every replica.
  std::unique_ptr<gateway::RedisConnections> redis;
  std::unique_ptr<gateway::LimitStore> limits;
  gateway::RedisLimitStore* redis_limits = nullptr;
  if (config->redis) {
    redis = std::make_unique<gateway::RedisConnections>(*config->redis, redis_password, clock);
    auto store = std::make_unique<gateway::RedisLimitStore>(*redis, config->budgets, clock);
    redis_limits = store.get();
    limits = std::move(store);
  } else {
    limits = std::make_unique<gateway::MemoryLimitStore>(config->budgets, clock);
  }

  auto spool = gateway::Spool::open(config->spool_dir);
  if (!spool) return report_error(spool.error());
  auto spool_lock = lock_spool_dir(config->spool_dir);
  if (!spool_lock) return report_error(spool_lock.error());
  gateway::SpoolDrainer drainer(**spool, config->ledger);
  // Records served before a crash are in the spool: into the ledger before budgets are read.
  if (auto recovered = drainer.drain_now(); !recovered) return report_error(recovered.error());
  if (auto seeded = seed_budgets(*ledger, *config, *limits, clock.now_ms() / 1000); !seeded)
    return report_error(seeded.error());
  ledger.reset();
  if (redis_limits != nullptr) {
    // Seeds Redis from the ledger when it holds no budgets yet (a new or restarted Redis);
    // the keeper does it again whenever that happens later, on a ledger connection of its own.
    const gateway::GatewayConfig& fixed = *config;
    auto seed_source = [&fixed, &clock]() -> Result<std::vector<std::pair<std::string, Money>>> {
      auto seeding = ledger::open_ledger(fixed.ledger);
      if (!seeding) return Unexpected{seeding.error()};
      return budget_spend(**seeding, fixed, clock.now_ms() / 1000);
    };
    std::fprintf(stderr, "aifinops gateway: shared state in redis %s (prefix %s, redis_failure: %s)\n",
                 redis->where().c_str(), config->redis->prefix.c_str(),
                 config->redis->failure == gateway::RedisFailure::kOpen ? "open" : "closed");
    redis_limits->set_seed_source(seed_source);
    if (!redis_limits->maintain_now())
      std::fprintf(stderr, "aifinops gateway: warning: redis %s is not ready yet; %s\n", redis->where().c_str(),
                   config->redis->failure == gateway::RedisFailure::kOpen
                       ? "requests are limited and metered by this gateway alone until it is"
                       : "requests are refused with 503 until it is");
  }

  // Signals go to one thread that asks the server to stop gracefully.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<gateway::ResponseCache> cache;
  if (config->cache.enabled && redis)
    cache = std::make_unique<gateway::RedisResponseCache>(*redis, config->cache.max_mb << 20, config->cache.ttl_s * 1000, clock);
  else if (config->cache.enabled)
    cache = std::make_unique<gateway::MemoryResponseCache>(config->cache.max_mb << 20, config->cache.ttl_s * 1000, clock);
  for (const gateway::UpstreamConfig& u : config->upstreams)
    if (!u.api_key_env.empty() && std::getenv(u.api_key_env.c_str()) == nullptr)
      std::fprintf(stderr, "aifinops gateway: warning: upstreams: %s: $%s is not set; requests go without credentials\n",
                   u.name.c_str(), u.api_key_env.c_str());
  SoftBudgetNotifier notifier(webhook);
  gateway::GatewayServer server(*config, *catalog, *limits, cache.get(), **spool, clock);
  server.on_soft_budget([&notifier](const gateway::SoftBudgetNotice& n) { notifier.notify(n); });
  // Redis settlements are sent by the store's own thread, which reports their notices here.
  if (redis_limits != nullptr)
    redis_limits->set_notice_sink([&notifier](const gateway::SoftBudgetNotice& n) { notifier.notify(n); });
  if (auto started = server.start(); !started) return report_error(started.error());
  // Threads start after the signal mask is set, so that SIGTERM reaches only sigwait below.
  if (redis_limits != nullptr) redis_limits->start();
  drainer.start();
  std::string host = config->listen.substr(0, config->listen.rfind(':'));
  std::printf("aifinops gateway listening on %s:%d (%zu keys, %zu upstreams; ledger %s)\n", host.c_str(),
              server.port(), config->keys.size(), config->upstreams.size(),
              ledger::redact_location(config->ledger).c_str());
  std::fflush(stdout);
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::fprintf(stderr, "aifinops gateway: stopping (finishing in-flight requests)\n");
    server.stop();
  });
  server.run();
  if (redis_limits != nullptr) {
    redis_limits->stop();
    redis_limits->maintain_now();  // spend settled while Redis was away, if it is back
  }
  drainer.stop();  // moves the last spooled records into the ledger
  notifier.stop();  // sends the notices still queued
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  const long long drained = drainer.drained_records();
  std::fprintf(stderr, "aifinops gateway: stopped; %lld record%s written to the ledger\n", drained,
               drained == 1 ? "" : "s");
  return kExitOk;
}

int run_keys_new(const GatewayFlags& flags) {
  std::string key = gateway::new_virtual_key();
  std::printf("New virtual key for %s (shown once; give it to the caller, keep only the hash):\n\n  %s\n\n",
              flags.key_id.c_str(), key.c_str());
  std::printf("Add to gateway.yaml under keys:\n\n  - id: %s\n    key_sha256: \"%s\"\n", flags.key_id.c_str(),
              gateway::sha256_hex(key).c_str());
  return kExitOk;
}

}  // namespace

void add_gateway_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<GatewayFlags>();
  CLI::App* cmd = app.add_subcommand(
      "gateway",
      "Run the metering gateway: an OpenAI/Azure OpenAI/Anthropic-compatible proxy that\n"
      "attributes each request to a virtual key, enforces limits and budgets, and writes one\n"
      "ledger record per request.");
  cmd->add_option("--config", flags->config, "Gateway config (see config/gateway.example.yaml)")
      ->capture_default_str();
  cmd->add_option("--listen", flags->listen, "HOST:PORT to listen on (overrides listen: in the config)");
  cmd->add_option("--spool-dir", flags->spool_dir,
                  "This replica's spool directory (overrides spool_dir: in the config; each replica of a\n"
                  "fleet needs its own)");
  cmd->footer(
      "Stops gracefully on SIGTERM or Ctrl-C: in-flight requests finish and the spool is written\n"
      "to the ledger. Exit codes: 0 stopped cleanly, 1 bad config or start-up error, 2 bad flags.\n"
      "A fleet: run any number of replicas with the same config (redis: in it shares limits,\n"
      "budgets and the cache) and a spool directory each. Examples:\n"
      "  aifinops gateway --config gateway.yaml\n"
      "  aifinops gateway --config gateway.yaml --listen 0.0.0.0:4001 --spool-dir /var/lib/aifinops/spool-1\n"
      "See docs/gateway.md and docs/deploy.md.");
  cmd->callback([flags, &exit_code, cmd] {
    if (cmd->get_subcommands().empty()) exit_code = run_gateway(*flags);
  });

  // CLI11 gives a subcommand its parent's footer: each one below sets its own.
  CLI::App* keys = cmd->add_subcommand("keys", "Manage virtual keys");
  keys->require_subcommand(1);
  keys->footer("Example:\n  aifinops gateway keys new --id team-a-chatbot");
  CLI::App* make = keys->add_subcommand("new", "Print a new random virtual key once, and its key_sha256 line");
  make->add_option("--id", flags->key_id, "The key's id in gateway.yaml (e.g. team-a-chatbot)")->required();
  make->footer(
      "The key is printed once and not stored: give it to the caller and put only the\n"
      "key_sha256 line under keys: in gateway.yaml (then restart the gateway).\n"
      "Example:\n  aifinops gateway keys new --id team-a-chatbot");
  make->callback([flags, &exit_code] { exit_code = run_keys_new(*flags); });
}

}  // namespace aifinops::cli
