// The gateway's shared state in Redis, for a fleet of gateway replicas: rate limits, daily
// quotas, budget reservations (RedisLimitStore) and the response cache (RedisResponseCache).
// Admission and settlement are each one atomic Lua script, so that the hard-budget bound of
// a single gateway holds across any number of replicas. Money is integer nano-units in Redis.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "gateway/gateway_config.h"
#include "gateway/limits.h"
#include "gateway/response_cache.h"

struct redisContext;
struct redisReply;

namespace aifinops::gateway {

/// Counters of the shared state's health, rendered into /metrics. Thread-safe (atomics).
struct RedisCounters {
  std::atomic<int64_t> errors{0};                 ///< failed commands and connections
  std::atomic<int64_t> fail_open_requests{0};     ///< admitted by the local store (redis_failure: open)
  std::atomic<int64_t> unavailable_refusals{0};   ///< refused with 503 (redis_failure: closed)
  std::atomic<int64_t> reconciled_pushes{0};      ///< batches of locally metered spend pushed into Redis
  std::atomic<int64_t> reseeds{0};                ///< budgets seeded from the ledger into an empty Redis
  std::atomic<int64_t> cache_errors{0};           ///< cache look-ups and inserts that failed (served as misses)
  std::atomic<int64_t> leases_taken{0};           ///< leases Redis granted
  std::atomic<int64_t> leases_refused{0};         ///< lease requests refused or unanswered
  std::atomic<int64_t> leased_admissions{0};      ///< requests admitted from a lease
  std::atomic<bool> up{false};                    ///< the last command succeeded

  /// Prometheus text for these counters.
  std::string render() const;
};

/// A reply from Redis, freed with the object.
using RedisReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

/// Connections to one Redis server, shared by the limit store, the cache and the keeper.
///
/// A small pool: a caller takes a connection for one command (or one pipeline) and gives it
/// back, so each I/O thread works on a connection of its own without holding a lock while
/// it waits for Redis. Connects and commands have short timeouts (redis_connect_timeout_ms,
/// redis_timeout_ms). After a failure the server is marked down: callers get nothing at once
/// (no connection attempt on the request path) until the keeper's probe, retried with
/// backoff, finds it back. Thread-safe.
class RedisConnections {
 public:
  RedisConnections(RedisConfig config, std::string password, const Clock& clock);
  ~RedisConnections();
  RedisConnections(const RedisConnections&) = delete;
  RedisConnections& operator=(const RedisConnections&) = delete;

  /// Runs one command; an error (connection, timeout, or an error reply) marks the server
  /// down and is counted. `what` names the command in the rate-limited log line.
  Result<RedisReplyPtr> command(const std::vector<std::string>& args, const char* what);
  /// Several commands in one round trip. The outer error is the connection's (the server
  /// is then marked down); each command's own error reply is its entry's error.
  Result<std::vector<Result<RedisReplyPtr>>> pipeline(
      const std::vector<std::vector<std::string>>& commands, const char* what);
  /// EVALSHA of a script (loaded on NOSCRIPT) with its keys and arguments.
  Result<RedisReplyPtr> eval(const std::string& script, const std::string& sha,
                             const std::vector<std::string>& keys,
                             const std::vector<std::string>& args, const char* what);
  /// True unless a failure marked the server down and no probe has found it back yet.
  bool available() const { return !down_.load(std::memory_order_relaxed); }
  /// One PING on a fresh connection; on success the server is marked up. For the keeper.
  bool probe();
  const RedisConfig& config() const { return config_; }
  RedisCounters& counters() { return counters_; }
  /// "127.0.0.1:6379/0": where, never the password.
  std::string where() const;

 private:
  redisContext* acquire(std::string& error);
  void release(redisContext* context, bool healthy);
  void mark_down(const std::string& why, const char* what);
  Result<RedisReplyPtr> run(redisContext* context, const std::vector<std::string>& args);

  RedisConfig config_;
  std::string password_;
  const Clock& clock_;
  std::mutex mutex_;
  std::vector<redisContext*> idle_;
  std::atomic<bool> down_{false};
  std::atomic<int64_t> last_log_ms_{0};
  RedisCounters counters_;
};

/// LimitStore in Redis: the semantics of MemoryLimitStore (token buckets, daily quotas,
/// budgets with worst-case reservations, priority throttling above 90%, soft-budget notices
/// once per budget and period), shared by every gateway that uses the same Redis and prefix.
///
/// Budget counters are keyed by their period's start, so a new period starts at zero. A
/// reservation expires after redis_reservation_ttl_s (a replica that crashed mid-request
/// gives its reservations back); a settlement that arrives later still adds its spend.
/// Budgets are seeded from the ledger once per Redis data set (set-if-absent per budget and
/// period, then a marker key): admissions wait for the marker, so after a Redis restart no
/// budget starts from zero. When Redis is unreachable, redis_failure: closed refuses
/// (Admission::unavailable, a 503), open admits against a local MemoryLimitStore and pushes
/// the spend settled meanwhile into Redis when it returns. A settlement of a reservation
/// held in Redis that Redis did not confirm is sent again (not pushed as spend): it may have
/// run after all, and the settlement script counts a reservation's spend once.
///
/// Leases (RedisConfig::lease, after start()): a (key, model) pair with traffic holds a lease,
/// one reservation in Redis for a bundle of requests taken by the admission script (every
/// limit and the budget bound decided there, for the bundle), asked for by the admitters in
/// the background. admit_async() admits a request the lease covers at once, on the caller's
/// thread; its settle() adds to the lease, and the settler settles the lease in Redis (giving
/// back what it did not use) once it is used up or lease_max_age_ms old and its requests are
/// settled. Thread-safe.
class RedisLimitStore final : public LimitStore {
 public:
  /// Reads the ledger's gateway spend per budget name for the current periods (for seeding).
  using SeedSource = std::function<Result<std::vector<std::pair<std::string, Money>>>()>;

  RedisLimitStore(RedisConnections& redis, std::vector<BudgetRule> budgets, const Clock& clock);
  ~RedisLimitStore() override;

  Admission admit(const AdmissionRequest& request) override;
  /// After start(), an admission that needs Redis is queued for two admitter threads: a free
  /// one sends everything queued in one pipeline on its own connection and calls `done` with
  /// each answer (on that thread); while it waits, the other sends what arrives meanwhile.
  /// So the I/O threads never wait for Redis, and no lock is held across a round trip. The
  /// answers are those admit() gives, failures included: a time-out or a lost connection
  /// marks Redis down, and redis_failure decides (closed: 503; open: the local store).
  /// Decided at once, without a thread hop, when a lease of the request's key and model
  /// covers it, or when Redis is already known to be down. Before
  /// start() and after stop(), the caller's thread asks Redis (as admit()).
  std::optional<Admission> admit_async(const AdmissionRequest& request,
                                       AdmissionCallback done) override;
  bool admits_at_once() const override { return false; }
  std::vector<SoftBudgetNotice> settle(uint64_t reservation, int64_t actual_tokens,
                                       Money actual_cost) override;
  /// Seeds a budget's current period in Redis if it was not seeded yet in this Redis data
  /// set (never twice: replicas that start together seed once), and the local fallback
  /// store once per process.
  void seed_budget_spend(const std::string& budget_name, Money spent) override;
  // (Redis itself is seeded by the keeper, from the SeedSource given to start().)
  Money budget_used(const std::string& budget_name) override;
  /// The health counters of the Redis connections (RedisCounters::render).
  std::string metrics_text() const override;

  /// Where soft-budget notices of settlements made on the settler thread go (see start()).
  /// Set before start(); called on that thread.
  void set_notice_sink(std::function<void(const SoftBudgetNotice&)> sink);
  /// Waits until every settlement queued so far has been sent to Redis (or kept for later).
  void flush_settlements();
  /// Closes every lease now: it admits nothing more, and is settled in Redis as soon as its
  /// requests are (stop() does this; for tests, with flush_settlements()).
  void close_leases();

  /// Where budgets are seeded from when Redis has no seed marker (a new or restarted Redis).
  /// Set before maintain_now() and start(); without one, admissions wait for another replica
  /// to seed.
  void set_seed_source(SeedSource seed);
  /// Starts the keeper thread: probes Redis while it is down (backoff 50 ms to 2 s), seeds
  /// budgets when Redis has no seed marker, and pushes spend settled locally or without
  /// Redis. Also starts the settler: from then on settle() queues the settlement and returns
  /// at once (no notices: they go to the notice sink), and the settler sends what is queued
  /// in one pipelined round trip, so a request waits for Redis once (admission), not twice.
  /// A reservation stays in Redis until its settlement lands, which keeps the budget bound.
  /// Also starts the admitters (see admit_async()). stop() (or the destructor) answers the
  /// admissions queued, sends the settlements queued and joins the threads.
  void start();
  void stop();
  /// What the keeper does, once, on the calling thread (start-up and tests): seeds if the
  /// marker is missing, sends unconfirmed settlements again, then pushes pending spend.
  /// False if Redis could not be reached.
  bool maintain_now();
  /// Spend settled while Redis was unreachable, not yet pushed or sent again into Redis, per
  /// budget it counts against (for tests).
  int64_t pending_spend_nanos() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// ResponseCache in Redis, shared by the fleet: one string per entry under the prefix,
/// expiring after the TTL (PX). The byte bound is kept by a script: each insert counts the
/// entry's key and value bytes plus a fixed 96-byte allowance for Redis's own bookkeeping,
/// and evicts the oldest entries (by insertion, not by last use) until the total fits
/// max_mb. Redis's real memory per entry is somewhat higher than that count. A failure is a
/// miss (counted), never an error for the request. Thread-safe.
class RedisResponseCache final : public ResponseCache {
 public:
  RedisResponseCache(RedisConnections& redis, int64_t max_bytes, int64_t ttl_ms,
                     const Clock& clock);
  std::optional<CachedResponse> find(const std::string& key) override;
  void insert(const std::string& key, CachedResponse response) override;

 private:
  RedisConnections& redis_;
  int64_t max_bytes_, ttl_ms_;
  const Clock& clock_;
};

}  // namespace aifinops::gateway
