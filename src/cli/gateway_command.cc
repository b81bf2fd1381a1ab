// aifinops gateway: the metering proxy, and `gateway keys new` to mint virtual keys.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/gateway_yaml.h"
#include "gateway/server.h"

namespace aifinops::cli {
namespace {

struct GatewayFlags {
  std::string config = "gateway.yaml";
  std::string listen;
  std::string key_id;
};

/// Budgets continue from the spend the ledger already has for their period, so that a
/// restart does not hand out the budget again.
Result<void> seed_budgets(ledger::Ledger& ledger, const gateway::GatewayConfig& config,
                          gateway::LimitStore& limits, EpochSeconds now) {
  for (const gateway::BudgetRule& b : config.budgets) {
    ledger::QuerySpec spec;
    spec.from = period_start(b.period, now);
    for (const auto& [dimension, value] : b.scope) {
      auto d = ledger::parse_dimension(dimension == "key" ? "resource" : dimension);
      if (!d) return make_error(ErrorCode::kInvalidArgument, "budget " + b.name + ": " + d.error().message);
      spec.filters.push_back({*d, value});
    }
    auto spent = ledger.query(spec);
    if (!spent) return Unexpected{spent.error()};
    limits.seed_budget_spend(b.name, Money{(int64_t)spent->total});
  }
  return {};
}

int run_gateway(const GatewayFlags& flags) {
  auto config = config::load_gateway_config(flags.config);
  if (!config) return report_error(config.error());
  if (!flags.listen.empty()) config->listen = flags.listen;
  if (config->spool_dir.empty()) config->spool_dir = config->ledger + ".spool";

  auto opened = open_ledger_with_catalog(config->ledger);
  if (!opened) return report_error(opened.error());
  std::unique_ptr<ledger::Ledger>& ledger = opened->ledger;
  const pricing::Catalog* catalog = &opened->catalog;
  SystemClock clock;
  gateway::MemoryLimitStore limits(config->budgets, clock);

  auto spool = gateway::Spool::open(config->spool_dir);
  if (!spool) return report_error(spool.error());
  gateway::SpoolDrainer drainer(**spool, config->ledger);
  // Records served before a crash are in the spool: into the ledger before budgets are read.
  if (auto recovered = drainer.drain_now(); !recovered) return report_error(recovered.error());
  if (auto seeded = seed_budgets(*ledger, *config, limits, clock.now_ms() / 1000); !seeded)
    return report_error(seeded.error());
  ledger.reset();

  // Signals go to one thread that asks the server to stop gracefully.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<gateway::MemoryResponseCache> cache;
  if (config->cache.enabled)
    cache = std::make_unique<gateway::MemoryResponseCache>(config->cache.max_mb << 20, config->cache.ttl_s * 1000, clock);
  for (const gateway::UpstreamConfig& u : config->upstreams)
    if (!u.api_key_env.empty() && std::getenv(u.api_key_env.c_str()) == nullptr)
      std::fprintf(stderr, "aifinops gateway: warning: upstreams: %s: $%s is not set; requests go without credentials\n",
                   u.name.c_str(), u.api_key_env.c_str());
  gateway::GatewayServer server(*config, *catalog, limits, cache.get(), **spool, clock);
  if (auto started = server.start(); !started) return report_error(started.error());
  drainer.start();
  std::string host = config->listen.substr(0, config->listen.rfind(':'));
  std::printf("aifinops gateway listening on %s:%d (%zu keys, %zu upstreams; ledger %s)\n", host.c_str(),
              server.port(), config->keys.size(), config->upstreams.size(), config->ledger.c_str());
  std::fflush(stdout);
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::fprintf(stderr, "aifinops gateway: stopping (finishing in-flight requests)\n");
    server.stop();
  });
  server.run();
  drainer.stop();  // moves the last spooled records into the ledger
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  std::fprintf(stderr, "aifinops gateway: stopped; %lld records written to the ledger\n",
               (long long)drainer.drained_records());
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
  cmd->footer(
      "Stops gracefully on SIGTERM or Ctrl-C: in-flight requests finish and the spool is written\n"
      "to the ledger. Exit codes: 0 stopped cleanly, 1 bad config or start-up error, 2 bad flags.");
  cmd->callback([flags, &exit_code, cmd] {
    if (cmd->get_subcommands().empty()) exit_code = run_gateway(*flags);
  });

  CLI::App* keys = cmd->add_subcommand("keys", "Manage virtual keys");
  keys->require_subcommand(1);
  CLI::App* make = keys->add_subcommand("new", "Print a new random virtual key once, and its key_sha256 line");
  make->add_option("--id", flags->key_id, "The key's id in gateway.yaml (e.g. team-a-chatbot)")->required();
  make->callback([flags, &exit_code] { exit_code = run_keys_new(*flags); });
}

}  // namespace aifinops::cli
