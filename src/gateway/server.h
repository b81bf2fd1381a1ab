// GatewayServer: the metering proxy. Per request: authenticate the virtual key, check the
// model is allowed, parse what the request asks for, reserve its worst-case cost against
// every limit and budget in scope, forward it upstream over a keep-alive pool, stream the
// response back (reading usage on the way), spool the usage record before the last byte,
// and settle the reservation. Boost.Beast stays inside server.cc: this header is light.
#pragma once

#include <functional>
#include <memory>

#include "core/clock.h"
#include "core/result.h"
#include "gateway/gateway_config.h"
#include "gateway/limits.h"
#include "gateway/response_cache.h"
#include "gateway/spool.h"
#include "pricing/catalog.h"

namespace aifinops::gateway {

/// Owns the listener, the I/O threads and the upstream pools. Config, catalog, limit store,
/// cache (nullptr when caching is off), spool and clock must outlive it. start() then run(); stop() from any thread (or a
/// signal) drains in-flight requests and returns from run().
class GatewayServer {
 public:
  GatewayServer(const GatewayConfig& config, const pricing::Catalog& catalog, LimitStore& limits,
                ResponseCache* cache, Spool& spool, const Clock& clock);
  ~GatewayServer();
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  /// Called on an I/O thread when a soft budget's spend crosses its amount (once per budget
  /// and period, see LimitStore::settle). It must return quickly: hand slow work (a webhook)
  /// to another thread. Set before start().
  void on_soft_budget(std::function<void(const SoftBudgetNotice&)> sink);
  /// Binds the listener (config.listen); the port is known after this (0 picks one).
  Result<void> start();
  int port() const;
  /// Serves until stop(); runs the I/O threads (config.threads) and joins them.
  void run();
  /// Stops accepting, lets in-flight requests finish (up to `grace_ms`), then returns run().
  void stop(int64_t grace_ms = 10'000);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// SHA-256 of a virtual key as lower-case hex (what gateway.yaml stores).
std::string sha256_hex(std::string_view text);

/// A new random virtual key ("sk-aif-" + 40 base62 characters) from the system's CSPRNG.
std::string new_virtual_key();

}  // namespace aifinops::gateway
