// RedisLimitStore and RedisResponseCache: the gateway's limits, budgets and cache shared by
// a fleet through Redis, with one Lua script per atomic step.
#include "gateway/redis_state.h"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "core/money.h"
#include "core/time.h"

namespace aifinops::gateway {
namespace {

constexpr int64_t kSecondsPerDay = 86'400;
/// Local reservation ids (redis_failure: open) carry this bit, Redis's never do (they come
/// from INCR), so settle() knows which store holds a reservation.
constexpr uint64_t kLocalReservation = uint64_t{1} << 63;
/// Reservation ids of requests admitted from a lease carry this bit (Redis's and the local
/// store's never do), so settle() finds their lease.
constexpr uint64_t kLeasedReservation = uint64_t{1} << 62;
/// A lease holds about this long of its pair's recent traffic (and a pair with fewer than
/// kLeaseMinRequests in that long takes none)...
constexpr int64_t kLeaseWindowMs = 200;
/// ...at least this many requests (fewer: no lease) and at most this many,
constexpr int64_t kLeaseMinRequests = 2;
constexpr int64_t kLeaseMaxRequests = 64;
/// ...and never more than 1/kLeaseLimitShare of any limit of the key or hard budget in
/// scope, so that one replica's lease neither bursts a rate limit nor starves the others.
constexpr int64_t kLeaseLimitShare = 20;
/// After Redis refused a pair's lease (a limit or budget near), its requests decide in
/// Redis one by one for this long before the next try.
constexpr int64_t kLeaseBackoffMs = 1000;
/// How often the settler looks for leases past their max age.
constexpr int64_t kLeaseSweepMs = 50;
/// A pair's state is dropped after this long without traffic.
constexpr int64_t kLeasePairIdleMs = 60'000;
/// Log lines about Redis failing: at most one per this many milliseconds.
constexpr int64_t kLogIntervalMs = 10'000;

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

int64_t seconds_until(EpochMillis now_ms, EpochMillis until_ms) {
  if (until_ms <= now_ms) return 1;
  return std::max<int64_t>(1, (until_ms - now_ms + 999) / 1000);
}

std::string sha1_hex(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

timeval to_timeval(int64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

int64_t integer_of(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING) return std::strtoll(r->str, nullptr, 10);
  return 0;
}

std::string string_of(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
  return std::string(r->str, r->len);
}

// --- The scripts ------------------------------------------------------------------------
//
// Lua numbers are doubles: integers are exact up to 2^53 (9e15 nano-dollars, 9 million USD
// per counter; 1.5e11 tokens per minute in a bucket's 1/60000 units). Counters are changed
// with HINCRBY on integer strings, which Redis keeps as 64-bit integers; '%.0f' writes a
// computed number back without an exponent.

/// Gives back reservations past their deadline (a replica that crashed mid-request): up to
/// 16 per call, so one call stays short. A reaped reservation is marked, not deleted, so
/// that a settlement that arrives after all still adds its spend.
constexpr const char* kReapLua = R"lua(
local function num(x) return tonumber(x) or 0 end
local function int(x) return string.format('%.0f', x) end
local function add(key, field, delta)
  if delta ~= 0 and redis.call('EXISTS', key) == 1 then redis.call('HINCRBY', key, field, int(delta)) end
end
local function reap(inflight, prefix, now)
  local ids = redis.call('ZRANGEBYSCORE', inflight, '-inf', now, 'LIMIT', 0, 16)
  for _, id in ipairs(ids) do
    local rk = prefix .. 'r:' .. id
    local r = redis.call('HMGET', rk, 'd', 'tk', 'c', 'nb', 'x')
    if r[1] and r[5] ~= '1' then
      local tk, c = num(r[2]), num(r[3])
      if r[1] ~= '' then
        add(r[1], 'tokr', -tk)
        add(r[1], 'usdr', -c)
      end
      for i = 1, num(r[4]) do
        local b = redis.call('HGET', rk, 'b' .. i)
        if b then add(b, 'r', -c) end
      end
      redis.call('HSET', rk, 'x', '1')
    end
    redis.call('ZREM', inflight, id)
  end
end
local function bucket(key, per_minute, now)
  local cap = per_minute * 60000
  local v = redis.call('HMGET', key, 'l', 't')
  local level, t = tonumber(v[1]), tonumber(v[2])
  if level == nil or t == nil then return cap, now end
  if now > t then level = math.min(cap, level + (now - t) * per_minute); t = now end
  return math.min(level, cap), t
end
-- An absent bucket is a full one: it expires once it would have refilled.
local function store_bucket(key, level, t, per_minute)
  local cap = per_minute * 60000
  redis.call('HSET', key, 'l', int(level), 't', int(t))
  redis.call('PEXPIRE', key, int(math.ceil((cap - level) / per_minute) + 1000))
end
)lua";

/// KEYS: seed marker, rpm bucket, tpm bucket, day counters, in-flight set, id sequence,
/// then one key per budget in scope.
/// ARGV: now_ms, rpm, tpm, requests_per_day, tokens_per_day, usd_per_day (-1: none),
/// tokens, cost, reservation deadline ms, day expiry (epoch s), low priority (0/1), prefix,
/// budget count, request count (1, or a lease's bundle: tokens and cost are then the
/// bundle's); then per budget: amount, hard (0/1), expiry (epoch s), index, period start.
/// Returns {1, id}; {0, limit, ...figures} for a refusal; {2} while budgets are not seeded.
constexpr const char* kAdmitLua = R"lua(
local now = num(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return {2} end
reap(KEYS[5], ARGV[12], now)
local rpm, tpm, rpd, tpd, upd = num(ARGV[2]), num(ARGV[3]), num(ARGV[4]), num(ARGV[5]), num(ARGV[6])
local tokens, cost = num(ARGV[7]), num(ARGV[8])
local count = math.max(1, num(ARGV[14]))
local function retry(level, units, per_minute)
  local deficit = units - level
  if deficit <= 0 then return 1 end
  return math.max(1, math.ceil(math.ceil(deficit / per_minute) / 1000))
end
local rl, rt, tl, tt
if rpm > 0 then
  rl, rt = bucket(KEYS[2], rpm, now)
  if rl < 60000 * count then return {0, 'rpm', retry(rl, 60000 * count, rpm)} end
end
if tpm > 0 then
  tl, tt = bucket(KEYS[3], tpm, now)
  if tl < tokens * 60000 then return {0, 'tpm', retry(tl, tokens * 60000, tpm)} end
end
-- The day's counters serve only the quotas: a key without quotas does not keep them.
local quotas = rpd > 0 or tpd > 0 or upd >= 0
if quotas then
  local d = redis.call('HMGET', KEYS[4], 'r', 'tok', 'tokr', 'usd', 'usdr')
  local dr, dtok, dtokr, dusd, dusdr = num(d[1]), num(d[2]), num(d[3]), num(d[4]), num(d[5])
  if rpd > 0 and dr + count > rpd then return {0, 'requests_per_day'} end
  if tpd > 0 and dtok + dtokr + tokens > tpd then return {0, 'tokens_per_day', dtok, dtokr} end
  if upd >= 0 and dusd + dusdr + cost > upd then return {0, 'usd_per_day', dusd, dusdr} end
end
local n = num(ARGV[13])
local nearly, spent, reserved = 0, {}, {}
for i = 1, n do
  local base = 14 + (i - 1) * 5
  local amount = num(ARGV[base + 1])
  local b = redis.call('HMGET', KEYS[6 + i], 's', 'r')
  local s, r = num(b[1]), num(b[2])
  spent[i], reserved[i] = s, r
  if ARGV[base + 2] == '1' and s + r + cost > amount then return {0, 'budget', i, s, r} end
  if nearly == 0 and (s + r) * 10 > amount * 9 then nearly = i end
end
if nearly > 0 and ARGV[11] == '1' then return {0, 'priority', nearly, spent[nearly], reserved[nearly]} end
-- Every check passed: take from every bucket, quota and budget.
if rpm > 0 then store_bucket(KEYS[2], rl - 60000 * count, rt, rpm) end
if tpm > 0 then store_bucket(KEYS[3], tl - tokens * 60000, tt, tpm) end
local day = ''
if quotas then
  day = KEYS[4]
  redis.call('HINCRBY', day, 'r', count)
  if tokens > 0 then redis.call('HINCRBY', day, 'tokr', ARGV[7]) end
  if cost > 0 then redis.call('HINCRBY', day, 'usdr', ARGV[8]) end
  redis.call('EXPIREAT', day, ARGV[10])
end
local id = redis.call('INCR', KEYS[6])
local fields = {'d', day, 'tk', ARGV[7], 'c', ARGV[8], 'tpm', ARGV[3], 'tb', KEYS[3], 'nb', n,
                'n', count, 'rpm', ARGV[2], 'rb', KEYS[2]}
for i = 1, n do
  local base = 14 + (i - 1) * 5
  if cost > 0 then redis.call('HINCRBY', KEYS[6 + i], 'r', ARGV[8]) end
  redis.call('EXPIREAT', KEYS[6 + i], ARGV[base + 3])
  local more = {'b' .. i, KEYS[6 + i], 'a' .. i, ARGV[base + 1], 'h' .. i, ARGV[base + 2],
                'i' .. i, ARGV[base + 4], 'p' .. i, ARGV[base + 5]}
  for _, v in ipairs(more) do table.insert(fields, v) end
end
local rk = ARGV[12] .. 'r:' .. id
redis.call('HSET', rk, unpack(fields))
redis.call('PEXPIREAT', rk, int(num(ARGV[9]) + 86400000))
redis.call('ZADD', KEYS[5], ARGV[9], id)
return {1, id}
)lua";

/// KEYS: the reservation, the in-flight set. ARGV: id, actual tokens, actual cost, now_ms,
/// requests admitted (a lease's: those it reserved but did not admit go back to the rpm
/// bucket and the day's request count; 1 for a single request).
/// Returns {-1} for an unknown reservation, else {1, then per soft budget that this
/// settlement took over its amount first in its period: index, spent, period start}.
constexpr const char* kSettleLua = R"lua(
local r = redis.call('HGETALL', KEYS[1])
if #r == 0 then return {-1} end
local h = {}
for i = 1, #r, 2 do h[r[i]] = r[i + 1] end
local now, tokens, cost = num(ARGV[4]), num(ARGV[2]), num(ARGV[3])
local tk, c = num(h.tk), num(h.c)
local live = h.x ~= '1'
local tpm = num(h.tpm)
if tpm > 0 and live then
  -- The bucket is continuous, so the correction applies whenever it arrives.
  local level, t = bucket(h.tb, tpm, now)
  store_bucket(h.tb, math.min(tpm * 60000, level - (tokens - tk) * 60000), t, tpm)
end
local unused = num(h.n) - num(ARGV[5])
if unused > 0 and live then
  local rpm = num(h.rpm)
  if rpm > 0 then
    local level, t = bucket(h.rb, rpm, now)
    store_bucket(h.rb, math.min(rpm * 60000, level + unused * 60000), t, rpm)
  end
  if h.d ~= '' then add(h.d, 'r', -unused) end
end
if h.d ~= '' and redis.call('EXISTS', h.d) == 1 then
  if live then add(h.d, 'tokr', -tk); add(h.d, 'usdr', -c) end
  add(h.d, 'tok', tokens)
  add(h.d, 'usd', cost)
end
local out = {1}
for i = 1, num(h.nb) do
  local b = h['b' .. i]
  if redis.call('EXISTS', b) == 1 then
    if live then add(b, 'r', -c) end
    local s
    if cost ~= 0 then s = redis.call('HINCRBY', b, 's', ARGV[3]) else s = num(redis.call('HGET', b, 's')) end
    if h['h' .. i] ~= '1' and s > num(h['a' .. i]) and redis.call('HSETNX', b, 'n', '1') == 1 then
      table.insert(out, num(h['i' .. i])); table.insert(out, s); table.insert(out, num(h['p' .. i]))
    end
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return out
)lua";

/// KEYS: a budget's period. ARGV: spend from the ledger, expiry (epoch s). Seeds once per
/// budget period and Redis data set: replicas that start together add the ledger's spend once.
constexpr const char* kSeedLua = R"lua(
if redis.call('HSETNX', KEYS[1], 'seeded', '1') == 1 then
  if ARGV[1] ~= '0' then redis.call('HINCRBY', KEYS[1], 's', ARGV[1]) end
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
  return 1
end
return 0
)lua";

/// KEYS: the push's id (applied once: a retry after a lost answer changes nothing), then
/// the hashes to add to. ARGV per hash: field count, expiry (epoch s), then field, delta.
constexpr const char* kPushLua = R"lua(
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', 86400000) then return 0 end
local a = 1
for j = 2, #KEYS do
  local nf, exp = tonumber(ARGV[a]), ARGV[a + 1]
  a = a + 2
  for f = 1, nf do
    redis.call('HINCRBY', KEYS[j], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  if redis.call('TTL', KEYS[j]) == -1 then redis.call('EXPIREAT', KEYS[j], exp) end
end
return 1
)lua";

/// KEYS: the entry, the insertion-time index, the size of each entry, the total.
/// ARGV: cache key, value, ttl_ms, now_ms, max bytes, this entry's size, entry key prefix.
constexpr const char* kCacheInsertLua = R"lua(
local now, ttl, max, size = tonumber(ARGV[4]), tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function drop(m)
  local s = tonumber(redis.call('HGET', KEYS[3], m) or '0')
  redis.call('HDEL', KEYS[3], m)
  redis.call('ZREM', KEYS[2], m)
  redis.call('DEL', ARGV[7] .. m)
  if s > 0 then redis.call('DECRBY', KEYS[4], s) end
end
-- Entries past their TTL are gone from Redis already but still counted: uncount them.
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl, 'LIMIT', 0, 64)) do drop(m) end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then drop(ARGV[1]) end
local total = tonumber(redis.call('GET', KEYS[4]) or '0')
while total + size > max do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 then break end
  drop(oldest[1])
  total = tonumber(redis.call('GET', KEYS[4]) or '0')
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], size)
redis.call('INCRBY', KEYS[4], size)
return 1
)lua";

/// A script and its SHA-1, for EVALSHA.
struct Script {
  explicit Script(std::string text) : body(std::move(text)), sha(sha1_hex(body)) {}
  std::string body, sha;
};

const Script& admit_script() {
  static const Script s(std::string(kReapLua) + kAdmitLua);
  return s;
}
const Script& settle_script() {
  static const Script s(std::string(kReapLua) + kSettleLua);
  return s;
}
const Script& seed_script() {
  static const Script s(kSeedLua);
  return s;
}
const Script& push_script() {
  static const Script s(kPushLua);
  return s;
}
const Script& cache_insert_script() {
  static const Script s(kCacheInsertLua);
  return s;
}

}  // namespace

// --- RedisCounters --------------------------------------------------------------------

std::string RedisCounters::render() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, int64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(value) + "\n";
  };
  out +=
      "# HELP aifinops_gateway_redis_up 1 if the last command to Redis succeeded.\n"
      "# TYPE aifinops_gateway_redis_up gauge\naifinops_gateway_redis_up " +
      std::string(up.load() ? "1" : "0") + "\n";
  counter("aifinops_gateway_redis_errors_total", "Failed Redis connections and commands.",
          errors.load());
  counter("aifinops_gateway_redis_fail_open_requests_total",
          "Requests admitted by this gateway's own counters while Redis was unreachable "
          "(redis_failure: open).",
          fail_open_requests.load());
  counter("aifinops_gateway_redis_unavailable_refusals_total",
          "Requests refused with 503 while Redis was unreachable (redis_failure: closed).",
          unavailable_refusals.load());
  counter("aifinops_gateway_redis_reconciled_pushes_total",
          "Batches of spend settled without Redis, pushed into Redis once it was back.",
          reconciled_pushes.load());
  counter("aifinops_gateway_redis_reseeds_total",
          "Times this gateway seeded the budgets of an empty Redis from the ledger.",
          reseeds.load());
  counter("aifinops_gateway_redis_leases_taken_total",
          "Leases taken in Redis: reservations for a bundle of requests of one key and model.",
          leases_taken.load());
  counter("aifinops_gateway_redis_leases_refused_total",
          "Lease requests Redis refused (a limit or budget near) or could not answer.",
          leases_refused.load());
  counter("aifinops_gateway_redis_leased_admissions_total",
          "Requests admitted from a lease, without a round trip to Redis.",
          leased_admissions.load());
  counter("aifinops_gateway_redis_cache_errors_total",
          "Response cache look-ups and inserts that failed (served as misses).",
          cache_errors.load());
  return out;
}

// --- RedisConnections -----------------------------------------------------------------

RedisConnections::RedisConnections(RedisConfig config, std::string password, const Clock& clock)
    : config_(std::move(config)), password_(std::move(password)), clock_(clock) {}

RedisConnections::~RedisConnections() {
  for (redisContext* c : idle_) redisFree(c);
}

std::string RedisConnections::where() const {
  return config_.host + ":" + std::to_string(config_.port) + "/" + std::to_string(config_.db);
}

redisContext* RedisConnections::acquire(std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
  }
  redisContext* c = redisConnectWithTimeout(config_.host.c_str(), static_cast<int>(config_.port),
                                            to_timeval(config_.connect_timeout_ms));
  if (c == nullptr || c->err) {
    error = c ? std::string("cannot connect: ") + c->errstr : "cannot allocate a connection";
    if (c) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, to_timeval(config_.timeout_ms));
  auto setup = [&](const std::vector<std::string>& args, const char* step) {
    auto reply = run(c, args);
    if (!reply) {
      error = std::string(step) + ": " + reply.error().message;
      return false;
    }
    return true;
  };
  if ((!password_.empty() && !setup({"AUTH", password_}, "AUTH")) ||
      (config_.db != 0 && !setup({"SELECT", std::to_string(config_.db)}, "SELECT"))) {
    redisFree(c);
    return nullptr;
  }
  return c;
}

void RedisConnections::release(redisContext* context, bool healthy) {
  if (!healthy) {
    redisFree(context);
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(context);
}

Result<RedisReplyPtr> RedisConnections::run(redisContext* c, const std::vector<std::string>& args) {
  errno = 0;  // read by command() to tell a time-out from a dead connection
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lengths.data()));
  if (raw == nullptr)
    return make_error(ErrorCode::kIo, c->err ? std::string(c->errstr) : "no reply");
  RedisReplyPtr reply(raw, freeReplyObject);
  if (reply->type == REDIS_REPLY_ERROR)
    return make_error(ErrorCode::kInternal, std::string(reply->str, reply->len));
  return reply;
}

void RedisConnections::mark_down(const std::string& why, const char* what) {
  counters_.errors.fetch_add(1, std::memory_order_relaxed);
  counters_.up.store(false);
  const bool was_down = down_.exchange(true);
  {
    // Connections made before the failure may be dead (a restarted Redis): new ones later.
    std::lock_guard<std::mutex> lock(mutex_);
    for (redisContext* c : idle_) redisFree(c);
    idle_.clear();
  }
  const int64_t now = clock_.now_ms();
  int64_t last = last_log_ms_.load();
  if ((!was_down || now - last >= kLogIntervalMs) && last_log_ms_.compare_exchange_strong(last, now)) {
    std::fprintf(stderr,
                 "aifinops gateway: redis %s: %s failed: %s; %s until it is back (redis_failure: "
                 "%s)\n",
                 where().c_str(), what, why.c_str(),
                 config_.failure == RedisFailure::kOpen
                     ? "requests are limited and metered by this gateway alone"
                     : "requests are refused with 503",
                 config_.failure == RedisFailure::kOpen ? "open" : "closed");
  }
}

Result<RedisReplyPtr> RedisConnections::command(const std::vector<std::string>& args,
                                                const char* what) {
  if (down_.load(std::memory_order_relaxed))
    return make_error(ErrorCode::kIo, "redis " + where() + " is unreachable");
  std::string error;
  redisContext* c = acquire(error);
  if (c == nullptr) {
    mark_down(error, what);
    return make_error(ErrorCode::kIo, "redis " + where() + ": " + error);
  }
  auto reply = run(c, args);
  const bool timed_out = errno == EAGAIN || errno == EWOULDBLOCK;
  if (!reply && c->err && !timed_out) {
    // A pooled connection may have died while idle (Redis restarted): one fresh attempt.
    // Never after a time-out: the command may still run, and a script must not run twice.
    redisFree(c);
    c = acquire(error);
    if (c == nullptr) {
      mark_down(error, what);
      return make_error(ErrorCode::kIo, "redis " + where() + ": " + error);
    }
    reply = run(c, args);
  }
  if (!reply) {
    const bool broken = c->err != 0;
    release(c, !broken);
    if (broken) {
      mark_down(reply.error().message, what);
    } else if (reply.error().message.rfind("NOSCRIPT", 0) != 0) {
      counters_.errors.fetch_add(1, std::memory_order_relaxed);  // an error reply: Redis is up
    }
    return Unexpected{reply.error()};
  }
  release(c, true);
  counters_.up.store(true, std::memory_order_relaxed);
  return reply;
}

Result<RedisReplyPtr> RedisConnections::eval(const std::string& script, const std::string& sha,
                                             const std::vector<std::string>& keys,
                                             const std::vector<std::string>& args,
                                             const char* what) {
  std::vector<std::string> command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(sha);
  command.push_back(std::to_string(keys.size()));
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  auto reply = this->command(command, what);
  if (!reply && reply.error().message.rfind("NOSCRIPT", 0) == 0) {
    // A new or restarted Redis has not seen the script yet: load it and run it again.
    if (auto loaded = this->command({"SCRIPT", "LOAD", script}, "SCRIPT LOAD"); !loaded)
      return Unexpected{loaded.error()};
    reply = this->command(command, what);
  }
  return reply;
}

Result<std::vector<Result<RedisReplyPtr>>> RedisConnections::pipeline(
    const std::vector<std::vector<std::string>>& commands, const char* what) {
  if (down_.load(std::memory_order_relaxed))
    return make_error(ErrorCode::kIo, "redis " + where() + " is unreachable");
  std::string error;
  redisContext* c = acquire(error);
  if (c == nullptr) {
    mark_down(error, what);
    return make_error(ErrorCode::kIo, "redis " + where() + ": " + error);
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& args : commands) {
    argv.clear();
    lengths.clear();
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lengths.data());
  }
  std::vector<Result<RedisReplyPtr>> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
      const std::string why = c->err ? std::string(c->errstr) : "no reply";
      release(c, false);
      mark_down(why, what);
      return make_error(ErrorCode::kIo, "redis " + where() + ": " + why);
    }
    RedisReplyPtr reply(static_cast<redisReply*>(raw), freeReplyObject);
    if (reply->type == REDIS_REPLY_ERROR) {
      std::string message(reply->str, reply->len);
      if (message.rfind("NOSCRIPT", 0) != 0) counters_.errors.fetch_add(1, std::memory_order_relaxed);
      replies.push_back(make_error(ErrorCode::kInternal, std::move(message)));
    } else {
      replies.push_back(std::move(reply));
    }
  }
  release(c, true);
  counters_.up.store(true, std::memory_order_relaxed);
  return replies;
}

bool RedisConnections::probe() {
  std::string error;
  redisContext* c = nullptr;
  {
    // Not from the pool: a fresh connection is what tells that Redis is back.
    std::lock_guard<std::mutex> lock(mutex_);
    for (redisContext* old : idle_) redisFree(old);
    idle_.clear();
  }
  c = acquire(error);
  if (c == nullptr) return false;
  auto reply = run(c, {"PING"});
  if (!reply) {
    release(c, false);
    return false;
  }
  release(c, true);
  if (down_.exchange(false))
    std::fprintf(stderr, "aifinops gateway: redis %s is reachable again\n", where().c_str());
  counters_.up.store(true);
  return true;
}

// --- RedisLimitStore ------------------------------------------------------------------

namespace {

/// A counter hash and what to add to its fields, for a push of local spend.
struct PendingHash {
  EpochSeconds expire_at = 0;
  std::map<std::string, int64_t> fields;
};

/// What settle() needs to know about an admission beyond Redis: where its spend goes if
/// Redis cannot take it at that moment.
struct ReservationScope {
  bool local = false;
  std::string day_key;
  EpochSeconds day_expire = 0;
  std::vector<std::pair<std::string, EpochSeconds>> budget_keys;  // key, expiry
};

}  // namespace

struct RedisLimitStore::Impl {
  Impl(RedisConnections& r, std::vector<BudgetRule> b, const Clock& c)
      : redis(r), clock(c), local(b, c), prefix(r.config().prefix) {
    for (BudgetRule& rule : b)
      if (rule.name.empty()) rule.name = scope_text(rule.scope) + " (" + period_name(rule.period) + ")";
    budgets = std::move(b);
    unsigned char bytes[8];
    if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no randomness: ids could collide
    for (unsigned char byte : bytes) replica_id += "0123456789abcdef"[byte & 15];
  }

  RedisConnections& redis;
  const Clock& clock;
  MemoryLimitStore local;  ///< redis_failure: open
  std::string prefix;
  std::vector<BudgetRule> budgets;
  std::string replica_id;  ///< tells this process's pushes from another's

  std::mutex scopes_mutex;
  std::unordered_map<uint64_t, ReservationScope> scopes;

  mutable std::mutex pending_mutex;
  std::map<std::string, PendingHash> pending;       ///< spend not yet in Redis
  std::optional<std::pair<std::string, std::map<std::string, PendingHash>>> pushing;
  uint64_t push_sequence = 0;
  std::set<std::string> locally_seeded;

  /// A settlement waiting for the settler.
  struct QueuedSettlement {
    uint64_t id;
    int64_t tokens;
    Money cost;
    std::optional<ReservationScope> scope;
    int64_t requests = 1;  ///< a lease's: the requests it admitted
  };
  /// Settlements of Redis reservations that Redis did not confirm, to be sent again (the
  /// same script, by reservation id) once it is back. Not turned into pending spend: a
  /// command whose answer timed out may still run when Redis wakes, and the settlement
  /// script is idempotent (it deletes the reservation; a second run finds none and adds
  /// nothing), while a push of the same spend would count it twice. Under pending_mutex.
  std::vector<QueuedSettlement> unsent;
  std::mutex settle_mutex;
  std::condition_variable settle_wake, settle_done;
  std::vector<QueuedSettlement> settle_queue;
  bool settler_running = false;
  bool settler_stopping = false;
  bool settler_busy = false;
  std::thread settler;
  std::function<void(const SoftBudgetNotice&)> notice_sink;

  /// An admission on its way to Redis: the script's keys and arguments and what reading
  /// its answer needs, owned (the request's views end when admit_async() returns).
  struct Prepared {
    std::string key_id, model;
    std::optional<std::map<std::string, std::string>> tags;
    KeyLimits limits;
    int64_t tokens = 0;
    Money cost;
    EpochMillis now_ms = 0;
    const char* low = nullptr;  ///< low_priority_reason(): a string literal
    ReservationScope scope;
    std::vector<size_t> in;  ///< the budgets in scope, by index
    std::vector<std::string> keys, args;
    AdmissionCallback done;
    /// A lease's request: its pair and the bundle's size (tokens and cost are the bundle's);
    /// 0 for a request's own admission.
    std::string lease_pair;
    int64_t lease_requests = 0;

    /// The request again, as views of these copies (for the local store's fallback).
    AdmissionRequest request() const {
      AdmissionRequest r;
      r.key_id = key_id;
      r.model = model;
      r.tags = tags ? &*tags : nullptr;
      r.limits = limits;
      r.estimated_tokens = tokens;
      r.worst_case_cost = cost;
      return r;
    }
  };
  /// Admissions waiting for an admitter (see admit_async()). Two admitters, each with a
  /// connection of its own: while one waits for its batch's answers, the other sends what
  /// arrived meanwhile at once, instead of letting it wait for the first round trip to end.
  static constexpr int kAdmitters = 2;
  std::mutex admit_mutex;
  std::condition_variable admit_wake;
  std::vector<Prepared> admit_queue;
  bool admitter_running = false;
  bool admitter_stopping = false;
  std::vector<std::thread> admitters;

  /// A reservation in Redis for a bundle of requests of one (key, model) pair, admitted
  /// locally one by one. Under lease_mutex.
  struct Lease {
    uint64_t id = 0;  ///< the reservation in Redis
    int64_t requests = 0, tokens = 0;
    Money cost;  ///< what it reserved
    int64_t admitted = 0, tokens_taken = 0;
    Money cost_taken;        ///< the estimates of the requests it admitted
    int64_t unsettled = 0;   ///< admitted, not settled yet
    int64_t actual_tokens = 0;
    Money actual_cost;       ///< what its settled requests really used
    EpochMillis taken_ms = 0;
    bool closed = false;     ///< admits nothing more; settled in Redis once unsettled is 0
    ReservationScope scope;

    bool covers(int64_t t, Money c) const {
      return !closed && admitted < requests && tokens_taken + t <= tokens && cost_taken + c <= cost;
    }
  };
  /// The leases of one (key, model) pair and what sizes the next. Under lease_mutex.
  struct LeasePair {
    std::vector<std::shared_ptr<Lease>> open;  ///< oldest first; two while one runs low
    bool asking = false;                       ///< a lease request is with the admitters
    EpochMillis retry_ms = 0;                  ///< no lease request before (after a refusal)
    EpochMillis window_start_ms = 0, last_seen_ms = 0;
    int64_t window_count = 0, last_window_count = 0;  ///< requests in this and the last window
  };
  std::mutex lease_mutex;
  bool leasing = false;  ///< between start() and stop(), unless redis_lease: false
  std::unordered_map<std::string, LeasePair> lease_pairs;
  std::unordered_map<uint64_t, std::shared_ptr<Lease>> leased;  ///< local reservation -> lease
  uint64_t leased_sequence = 0;

  std::mutex keeper_mutex;
  std::condition_variable keeper_wake;
  bool keeper_stopping = false;
  bool keeper_nudged = false;
  std::thread keeper;
  SeedSource seed;

  std::string budget_key(const BudgetRule& rule, EpochSeconds start) const {
    return prefix + "b:" + rule.name + ":" + std::to_string(start);
  }
  /// Budget counters live a week past their period, for late settlements and inspection.
  static EpochSeconds budget_expiry(const BudgetRule& rule, EpochSeconds start) {
    return period_end(rule.period, start) + 7 * kSecondsPerDay;
  }
  std::string day_key(std::string_view key_id, EpochSeconds day) const {
    return prefix + "k:" + std::string(key_id) + ":d:" + std::to_string(day);
  }

  void add_pending(const ReservationScope& scope, bool count_request, int64_t tokens, Money cost) {
    std::lock_guard<std::mutex> lock(pending_mutex);
    PendingHash& day = pending[scope.day_key];
    day.expire_at = scope.day_expire;
    if (count_request) day.fields["r"] += 1;
    day.fields["tok"] += tokens;
    day.fields["usd"] += cost.nanos;
    for (const auto& [key, expiry] : scope.budget_keys) {
      PendingHash& budget = pending[key];
      budget.expire_at = expiry;
      budget.fields["s"] += cost.nanos;
    }
  }

  void nudge_keeper() {
    {
      std::lock_guard<std::mutex> lock(keeper_mutex);
      keeper_nudged = true;
    }
    keeper_wake.notify_one();
  }

  Admission unavailable(const AdmissionRequest& request, const ReservationScope& scope,
                        bool unseeded) {
    if (redis.config().failure == RedisFailure::kOpen) {
      Admission admission = local.admit(request);
      if (admission.admitted) {
        redis.counters().fail_open_requests.fetch_add(1, std::memory_order_relaxed);
        admission.reservation |= kLocalReservation;
        ReservationScope kept = scope;
        kept.local = true;
        std::lock_guard<std::mutex> lock(scopes_mutex);
        scopes.emplace(admission.reservation, std::move(kept));
      }
      return admission;
    }
    redis.counters().unavailable_refusals.fetch_add(1, std::memory_order_relaxed);
    Admission admission;
    admission.unavailable = true;
    admission.refusal.limit = "shared_state";
    admission.refusal.scope = "redis " + redis.where();
    admission.refusal.retry_after_s = 1;
    admission.refusal.message =
        unseeded
            ? "The gateway's shared budget state in Redis is being restored from the ledger; "
              "retry in a second."
            : "The gateway cannot reach its shared limit and budget state (Redis) and refuses "
              "requests until it is back (redis_failure: closed). Retry shortly.";
    return admission;
  }

  Admission refusal(const std::string& limit, std::string message, int64_t retry,
                    std::string scope) {
    Admission admission;
    admission.refusal = Refusal{limit, std::move(scope), std::move(message), retry};
    return admission;
  }

  /// Builds the admission script's keys and arguments into `p`, copying what the reply's
  /// reading needs. Returns the admission when it is decided before Redis is asked (a request
  /// larger than its TPM, or Redis known to be unreachable).
  /// `count` > 1: a lease's bundle of that many requests, whose estimate and worst case
  /// `request` holds in total; never decided by the local store.
  std::optional<Admission> prepare(const AdmissionRequest& request, Prepared& p, int64_t count = 1) {
    p.tokens = std::max<int64_t>(0, request.estimated_tokens);
    p.cost = Money{std::max<int64_t>(0, request.worst_case_cost.nanos)};
    p.limits = request.limits;
    p.key_id = std::string(request.key_id);
    p.model = std::string(request.model);
    if (request.tags != nullptr) p.tags = *request.tags;
    const int64_t tokens = p.tokens;
    const Money cost = p.cost;
    const KeyLimits& limits = p.limits;
    const std::string& key_id = p.key_id;
    if (limits.tpm > 0 && tokens > limits.tpm) {
      return refusal("tpm",
                     "Request too large for key " + key_id + ": an estimated " +
                         std::to_string(tokens) +
                         " tokens (input + max_tokens) exceed the limit of " +
                         std::to_string(limits.tpm) +
                         " tokens per minute (tpm). Lower max_tokens or shorten the input.",
                     60, "key " + key_id);
    }
    p.now_ms = clock.now_ms();
    const EpochMillis now_ms = p.now_ms;
    const EpochSeconds now_s = floor_div(now_ms, 1000);
    const EpochSeconds today = floor_day(now_s);

    ReservationScope& scope = p.scope;
    scope.day_key = day_key(request.key_id, today);
    scope.day_expire = today + 2 * kSecondsPerDay;
    std::vector<size_t>& in = p.in;
    for (size_t i = 0; i < budgets.size(); ++i) {
      if (!budget_in_scope(budgets[i], request)) continue;
      in.push_back(i);
      const EpochSeconds start = period_start(budgets[i].period, now_s);
      scope.budget_keys.emplace_back(budget_key(budgets[i], start),
                                     budget_expiry(budgets[i], start));
    }
    if (!redis.available()) {
      if (count > 1) return refusal("shared_state", "", 1, "");
      return unavailable(request, scope, false);
    }

    const char* low = low_priority_reason(request.tags);
    p.low = low;
    const std::string key_base = prefix + "k:" + key_id;
    std::vector<std::string>& keys = p.keys;
    std::vector<std::string>& args = p.args;
    keys = {prefix + "seeded", key_base + ":rpm", key_base + ":tpm",
                                     scope.day_key, prefix + "inflight", prefix + "seq"};
    args = {
        std::to_string(now_ms),
        std::to_string(limits.rpm),
        std::to_string(limits.tpm),
        std::to_string(limits.requests_per_day),
        std::to_string(limits.tokens_per_day),
        limits.usd_per_day ? std::to_string(std::max<int64_t>(0, limits.usd_per_day->nanos)) : "-1",
        std::to_string(tokens),
        std::to_string(cost.nanos),
        std::to_string(now_ms + redis.config().reservation_ttl_s * 1000),
        std::to_string(scope.day_expire),
        low ? "1" : "0",
        prefix,
        std::to_string(in.size()),
        std::to_string(count)};
    for (size_t j = 0; j < in.size(); ++j) {
      const BudgetRule& rule = budgets[in[j]];
      keys.push_back(scope.budget_keys[j].first);
      args.push_back(std::to_string(rule.amount.nanos));
      args.push_back(rule.hard ? "1" : "0");
      args.push_back(std::to_string(scope.budget_keys[j].second));
      args.push_back(std::to_string(in[j]));
      args.push_back(std::to_string(period_start(rule.period, now_s)));
    }
    return std::nullopt;
  }

  /// Reads the admission script's answer (or the failure to get one) for the request in `p`.
  Admission finish(Prepared& p, const Result<RedisReplyPtr>& reply) {
    const AdmissionRequest request = p.request();
    const int64_t tokens = p.tokens;
    const Money cost = p.cost;
    const KeyLimits& limits = p.limits;
    const std::string& key_id = p.key_id;
    const EpochMillis now_ms = p.now_ms;
    const EpochSeconds now_s = floor_div(now_ms, 1000);
    const EpochMillis day_end_ms = (floor_day(now_s) + kSecondsPerDay) * 1000;
    ReservationScope& scope = p.scope;
    const std::vector<size_t>& in = p.in;
    const char* low = p.low;
    if (!reply) return unavailable(request, scope, false);
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) return unavailable(request, scope, false);
    const int64_t status = integer_of(r->element[0]);
    if (status == 2) {
      nudge_keeper();
      return unavailable(request, scope, true);
    }
    if (status == 1 && r->elements >= 2) {
      Admission admission;
      admission.admitted = true;
      admission.reservation = static_cast<uint64_t>(integer_of(r->element[1]));
      std::lock_guard<std::mutex> lock(scopes_mutex);
      scopes.emplace(admission.reservation, std::move(scope));
      return admission;
    }
    // A refusal: the message is built here, from the figures the script returns.
    const std::string limit = r->elements >= 2 ? string_of(r->element[1]) : "";
    auto figure = [&](size_t i) { return i < r->elements ? integer_of(r->element[i]) : 0; };
    const std::string key_scope = "key " + key_id;
    if (limit == "rpm") {
      const int64_t retry = std::max<int64_t>(1, figure(2));
      return refusal("rpm",
                     "Rate limit reached for key " + key_id + ": " + std::to_string(limits.rpm) +
                         " requests per minute (rpm). Retry after " + std::to_string(retry) + " s.",
                     retry, key_scope);
    }
    if (limit == "tpm") {
      const int64_t retry = std::max<int64_t>(1, figure(2));
      return refusal("tpm",
                     "Rate limit reached for key " + key_id + ": " + std::to_string(limits.tpm) +
                         " tokens per minute (tpm), this request needs " + std::to_string(tokens) +
                         ". Retry after " + std::to_string(retry) + " s.",
                     retry, key_scope);
    }
    if (limit == "requests_per_day") {
      const int64_t retry = seconds_until(now_ms, day_end_ms);
      return refusal("requests_per_day",
                     "Quota reached for key " + key_id + ": " +
                         std::to_string(limits.requests_per_day) +
                         " requests per day (requests_per_day). Retry after " +
                         std::to_string(retry) + " s.",
                     retry, key_scope);
    }
    if (limit == "tokens_per_day") {
      const int64_t used = figure(2), reserved = figure(3);
      const int64_t retry =
          used + tokens <= limits.tokens_per_day ? 1 : seconds_until(now_ms, day_end_ms);
      return refusal("tokens_per_day",
                     "Quota reached for key " + key_id + ": " +
                         std::to_string(limits.tokens_per_day) +
                         " tokens per day (tokens_per_day), " + std::to_string(used + reserved) +
                         " used or reserved, this request needs up to " + std::to_string(tokens) +
                         ". Retry after " + std::to_string(retry) + " s.",
                     retry, key_scope);
    }
    if (limit == "usd_per_day" && limits.usd_per_day) {
      const Money used{figure(2)}, reserved{figure(3)};
      const int64_t retry =
          used + cost <= *limits.usd_per_day ? 1 : seconds_until(now_ms, day_end_ms);
      return refusal("usd_per_day",
                     "Quota reached for key " + key_id + ": " + format_usd(*limits.usd_per_day) +
                         " USD per day (usd_per_day), " + format_usd(used + reserved) +
                         " used or reserved, this request may cost up to " + format_usd(cost) +
                         ". Retry after " + std::to_string(retry) + " s.",
                     retry, key_scope);
    }
    if ((limit == "budget" || limit == "priority") && figure(2) >= 1 &&
        static_cast<size_t>(figure(2)) <= in.size()) {
      const BudgetRule& rule = budgets[in[static_cast<size_t>(figure(2)) - 1]];
      const Money spent{figure(3)}, reserved{figure(4)};
      const Money used = spent + reserved;
      const EpochSeconds start = period_start(rule.period, now_s);
      const EpochMillis period_end_ms = period_end(rule.period, start) * 1000;
      const std::string scope_name = scope_text(rule.scope);
      const std::string refusal_scope = scope_name + " (" + period_name(rule.period) + ")";
      const std::string usage = scope_name + ", " + period_name(rule.period) + ": " + format_usd(used) +
                                " of " + format_usd(rule.amount) + " USD used";
      if (limit == "budget") {
        const int64_t retry =
            spent + cost <= rule.amount ? 1 : seconds_until(now_ms, period_end_ms);
        std::string message = "Budget exhausted: " + usage;
        if (used < rule.amount) message += "; this request may cost up to " + format_usd(cost) + " USD";
        message += ".";
        return refusal("budget", std::move(message), retry, refusal_scope);
      }
      const bool settled_over =
          static_cast<__int128>(spent.nanos) * 10 > static_cast<__int128>(rule.amount.nanos) * 9;
      const int64_t retry = settled_over ? seconds_until(now_ms, period_end_ms) : 1;
      return refusal("budget",
                     "Budget over 90% used: " + usage + "; requests with " +
                         std::string(low ? low : "low priority") + " are throttled by priority.",
                     retry, refusal_scope);
    }
    return unavailable(request, scope, false);  // a reply this code does not know
  }


  Admission admit(const AdmissionRequest& request) {
    Prepared p;
    if (std::optional<Admission> decided = prepare(request, p)) return std::move(*decided);
    const Script& script = admit_script();
    return finish(p, redis.eval(script.body, script.sha, p.keys, p.args, "admission"));
  }

  std::optional<Admission> admit_async(const AdmissionRequest& request, AdmissionCallback done) {
    if (redis.config().lease)
      if (std::optional<Admission> leased_now = admit_from_lease(request)) return leased_now;
    Prepared p;
    if (std::optional<Admission> decided = prepare(request, p)) return decided;
    p.done = std::move(done);
    {
      std::lock_guard<std::mutex> lock(admit_mutex);
      if (admitter_running && !admitter_stopping) {
        admit_queue.push_back(std::move(p));
        admit_wake.notify_one();
        return std::nullopt;
      }
    }
    // No admitters (before start() or after stop()): the caller's thread asks Redis.
    const Script& script = admit_script();
    return finish(p, redis.eval(script.body, script.sha, p.keys, p.args, "admission"));
  }


  // --- Leases ---------------------------------------------------------------------------
  //
  // The common case admits without Redis: a pair with traffic holds a lease, one reservation
  // in Redis for a bundle of requests taken through the admission script (so every limit,
  // the throttling and the budget bound are decided there, for the bundle), and its requests
  // are admitted against what is left of it on the caller's thread. Leases are asked for by
  // the admitters and settled by the settler, never on the request path.

  /// The pair's traffic in windows of kLeaseWindowMs; returns the requests of the busier of
  /// the current and the last window (the next lease's size before its caps).
  static int64_t count_traffic(LeasePair& pair, EpochMillis now) {
    if (now - pair.window_start_ms >= kLeaseWindowMs) {
      pair.last_window_count = now - pair.window_start_ms < 2 * kLeaseWindowMs ? pair.window_count : 0;
      pair.window_start_ms = now;
      pair.window_count = 0;
    }
    ++pair.window_count;
    pair.last_seen_ms = now;
    return std::max(pair.window_count, pair.last_window_count);
  }

  /// How many requests like `request` a lease may bundle: `recent` (at least
  /// kLeaseMinRequests) up to kLeaseMaxRequests, and at most 1/kLeaseLimitShare of every limit
  /// of the key and every hard budget in scope. 0: no lease (a limit too small to share).
  int64_t lease_size(const AdmissionRequest& request, int64_t recent, int64_t tokens, Money cost) const {
    int64_t n = std::min(recent, kLeaseMaxRequests);
    auto cap = [&](int64_t limit, int64_t per_request) {
      if (limit > 0 && per_request > 0) n = std::min(n, limit / kLeaseLimitShare / per_request);
    };
    const KeyLimits& limits = request.limits;
    cap(limits.rpm, 1);
    cap(limits.requests_per_day, 1);
    cap(limits.tpm, tokens);
    cap(limits.tokens_per_day, tokens);
    if (limits.usd_per_day) cap(limits.usd_per_day->nanos, cost.nanos);
    for (const BudgetRule& rule : budgets)
      if (rule.hard && budget_in_scope(rule, request)) cap(rule.amount.nanos, cost.nanos);
    return n >= kLeaseMinRequests ? n : 0;
  }

  /// True when the pair should ask for its next lease: it has none, or its only one is half
  /// used, half its max age old, or short of two more requests like this one.
  bool runs_low(const LeasePair& pair, EpochMillis now, int64_t tokens, Money cost) const {
    if (pair.open.empty()) return true;
    if (pair.open.size() > 1) return false;
    const Lease& lease = *pair.open.front();
    return (lease.requests - lease.admitted) * 2 <= lease.requests ||
           (now - lease.taken_ms) * 2 >= redis.config().lease_max_age_ms ||
           lease.tokens - lease.tokens_taken < 2 * tokens ||
           (lease.cost - lease.cost_taken).nanos < 2 * cost.nanos;
  }

  /// Closes a lease (under lease_mutex): it admits nothing more. Returns its settlement if
  /// all its requests are settled already; otherwise the last of them settles it.
  static std::optional<QueuedSettlement> close_lease(Lease& lease) {
    lease.closed = true;
    if (lease.unsettled > 0) return std::nullopt;
    return QueuedSettlement{lease.id, lease.actual_tokens, lease.actual_cost, lease.scope,
                            lease.admitted};
  }

  /// Admits the request from a live lease of its (key, model) pair, on the caller's thread,
  /// and asks the admitters for the pair's next lease when it has none or its lease runs
  /// low. Nothing when no lease covers the request: it takes the per-request path. Keys of
  /// low priority never lease, so that the throttling above 90% is decided per request.
  std::optional<Admission> admit_from_lease(const AdmissionRequest& request) {
    if (low_priority_reason(request.tags) != nullptr) return std::nullopt;
    const int64_t tokens = std::max<int64_t>(0, request.estimated_tokens);
    const Money cost{std::max<int64_t>(0, request.worst_case_cost.nanos)};
    if (request.limits.tpm > 0 && tokens > request.limits.tpm) return std::nullopt;  // refused per request
    const EpochMillis now = clock.now_ms();
    std::string pair_key;
    pair_key.reserve(request.key_id.size() + 1 + request.model.size());
    pair_key.append(request.key_id).append(1, '\n').append(request.model);
    std::optional<Admission> admitted;
    std::vector<QueuedSettlement> closed;
    int64_t ask = 0;
    {
      std::lock_guard<std::mutex> lock(lease_mutex);
      if (!leasing) return std::nullopt;
      LeasePair& pair = lease_pairs[pair_key];
      const int64_t recent = count_traffic(pair, now);
      for (auto it = pair.open.begin(); it != pair.open.end();) {
        Lease& lease = **it;
        if (now - lease.taken_ms >= redis.config().lease_max_age_ms || lease.admitted >= lease.requests) {
          if (auto settlement = close_lease(lease)) closed.push_back(std::move(*settlement));
          it = pair.open.erase(it);
          continue;
        }
        if (!lease.covers(tokens, cost)) {  // a larger request than its bundle's: it may fit the next
          ++it;
          continue;
        }
        ++lease.admitted;
        ++lease.unsettled;
        lease.tokens_taken += tokens;
        lease.cost_taken += cost;
        Admission admission;
        admission.admitted = true;
        admission.reservation = kLeasedReservation | ++leased_sequence;
        leased.emplace(admission.reservation, *it);
        admitted = std::move(admission);
        break;
      }
      // A pair with a request now and then does not lease: a lease would cost it two scripts
      // (take, settle) for one request, and hold the rest of the bundle for nothing.
      if (recent >= kLeaseMinRequests && !pair.asking && now >= pair.retry_ms &&
          runs_low(pair, now, tokens, cost)) {
        ask = lease_size(request, recent, tokens, cost);
        if (ask > 0) pair.asking = true;
        else pair.retry_ms = now + kLeaseBackoffMs;  // limits too small to share: none for a while
      }
    }
    for (QueuedSettlement& settlement : closed) send_settlement(std::move(settlement));
    if (ask > 0) ask_for_lease(request, std::move(pair_key), ask, tokens, cost);
    if (admitted) redis.counters().leased_admissions.fetch_add(1, std::memory_order_relaxed);
    return admitted;
  }

  /// Queues a lease request for `count` requests like `request` with the admitters.
  void ask_for_lease(const AdmissionRequest& request, std::string pair_key, int64_t count,
                     int64_t tokens, Money cost) {
    AdmissionRequest bundle = request;
    bundle.estimated_tokens = tokens * count;
    bundle.worst_case_cost = Money{cost.nanos * count};
    Prepared p;
    p.lease_pair = std::move(pair_key);
    p.lease_requests = count;
    if (!prepare(bundle, p, count)) {
      std::lock_guard<std::mutex> lock(admit_mutex);
      if (admitter_running && !admitter_stopping) {
        admit_queue.push_back(std::move(p));
        admit_wake.notify_one();
        return;
      }
    }
    lease_answered(p, 0);  // Redis known down, or the admitters stopping: no lease
  }

  /// The admission script's answer to a lease request: the lease, or a back-off for its pair.
  void lease_answer(Prepared& p, const Result<RedisReplyPtr>& reply) {
    uint64_t id = 0;
    if (reply && (*reply)->type == REDIS_REPLY_ARRAY && (*reply)->elements >= 2 &&
        integer_of((*reply)->element[0]) == 1)
      id = static_cast<uint64_t>(integer_of((*reply)->element[1]));
    else if (reply && (*reply)->type == REDIS_REPLY_ARRAY && (*reply)->elements >= 1 &&
             integer_of((*reply)->element[0]) == 2)
      nudge_keeper();  // not seeded yet
    lease_answered(p, id);
  }

  /// Installs the lease `id` (0: refused) for the pair of `p`.
  void lease_answered(Prepared& p, uint64_t id) {
    std::optional<QueuedSettlement> unused;
    {
      std::lock_guard<std::mutex> lock(lease_mutex);
      LeasePair& pair = lease_pairs[p.lease_pair];
      pair.asking = false;
      if (id == 0) {
        pair.retry_ms = clock.now_ms() + kLeaseBackoffMs;
      } else {
        auto lease = std::make_shared<Lease>();
        lease->id = id;
        lease->requests = p.lease_requests;
        lease->tokens = p.tokens;
        lease->cost = p.cost;
        lease->taken_ms = p.now_ms;  // its age counts from before Redis took it
        lease->scope = std::move(p.scope);
        if (leasing) pair.open.push_back(std::move(lease));
        else unused = close_lease(*lease);  // stopping: given back at once
      }
    }
    (id != 0 ? redis.counters().leases_taken : redis.counters().leases_refused)
        .fetch_add(1, std::memory_order_relaxed);
    if (unused) send_settlement(std::move(*unused));
  }

  /// A request admitted from a lease is settled: its actuals join the lease's, and the last
  /// request of a closed lease settles the lease in Redis.
  std::vector<SoftBudgetNotice> settle_leased(uint64_t id, int64_t tokens, Money cost) {
    std::optional<QueuedSettlement> settlement;
    {
      std::lock_guard<std::mutex> lock(lease_mutex);
      auto it = leased.find(id);
      if (it == leased.end()) return {};
      Lease& lease = *it->second;
      lease.actual_tokens += tokens;
      lease.actual_cost += cost;
      --lease.unsettled;
      if (lease.closed && lease.unsettled == 0) settlement = close_lease(lease);
      leased.erase(it);
    }
    if (!settlement) return {};
    return send_settlement(std::move(*settlement));
  }

  /// Closes the leases past their max age (`all`: every lease) and settles those whose
  /// requests are all settled; forgets pairs idle for long. The settler's periodic step.
  void close_leases(bool all) {
    const EpochMillis now = clock.now_ms();
    std::vector<QueuedSettlement> closed;
    {
      std::lock_guard<std::mutex> lock(lease_mutex);
      for (auto it = lease_pairs.begin(); it != lease_pairs.end();) {
        LeasePair& pair = it->second;
        for (auto l = pair.open.begin(); l != pair.open.end();) {
          if (!all && now - (*l)->taken_ms < redis.config().lease_max_age_ms) {
            ++l;
            continue;
          }
          if (auto settlement = close_lease(**l)) closed.push_back(std::move(*settlement));
          l = pair.open.erase(l);
        }
        if (pair.open.empty() && !pair.asking && now - pair.last_seen_ms >= kLeasePairIdleMs)
          it = lease_pairs.erase(it);
        else
          ++it;
      }
    }
    for (QueuedSettlement& settlement : closed) send_settlement(std::move(settlement));
  }

  // Why threads with blocking pipelines, not hiredis's asynchronous API on the gateway's
  // reactor: the gateway runs one io_context on several threads (a strand per connection),
  // so no I/O thread owns a reactor that a per-thread async connection could live on, and a
  // shared one would need a strand and a hand-off anyway. The admitters reuse
  // RedisConnections as it is (pooled connections, redis_timeout_ms, marking Redis down,
  // NOSCRIPT, the counters), so failures behave exactly as the blocking path's, which the
  // tests pin down. The cost is one wake-up of an admitter per batch and one post back to
  // the request's strand per admission.
  /// An admitter: every admission queued while the admitters were busy goes to
  /// Redis in one pipeline on one connection, and each answer to its caller's callback.
  void admitter_loop() {
    const Script& script = admit_script();
    for (;;) {
      std::vector<Prepared> batch;
      {
        std::unique_lock<std::mutex> lock(admit_mutex);
        admit_wake.wait(lock, [&] { return admitter_stopping || !admit_queue.empty(); });
        if (admit_queue.empty()) return;  // stopping, and nothing left
        batch.swap(admit_queue);
      }
      std::vector<std::vector<std::string>> commands;
      commands.reserve(batch.size());
      for (const Prepared& p : batch) {
        std::vector<std::string> command = {"EVALSHA", script.sha, std::to_string(p.keys.size())};
        command.insert(command.end(), p.keys.begin(), p.keys.end());
        command.insert(command.end(), p.args.begin(), p.args.end());
        commands.push_back(std::move(command));
      }
      // Redis marked down while these waited: each is decided as admit() would decide it.
      auto replies = redis.available() ? redis.pipeline(commands, "admission")
                                       : Result<std::vector<Result<RedisReplyPtr>>>(
                                             make_error(ErrorCode::kIo, "unreachable"));
      if (replies) rerun_unknown_script(script, commands, *replies);
      for (size_t i = 0; i < batch.size(); ++i) {
        Prepared& p = batch[i];
        if (p.lease_requests > 0) {
          lease_answer(p, replies ? std::move((*replies)[i]) : Result<RedisReplyPtr>(Unexpected{replies.error()}));
          continue;
        }
        Admission admission =
            replies ? finish(p, (*replies)[i]) : finish(p, Unexpected{replies.error()});
        AdmissionCallback done = std::move(p.done);
        done(std::move(admission));
      }
    }
  }

  /// A Redis that has not seen the script yet (new or restarted) answers NOSCRIPT to a whole
  /// batch: the script is loaded once and those commands sent again in one pipeline.
  void rerun_unknown_script(const Script& script,
                            const std::vector<std::vector<std::string>>& commands,
                            std::vector<Result<RedisReplyPtr>>& replies) {
    std::vector<size_t> again;
    for (size_t i = 0; i < replies.size(); ++i)
      if (!replies[i] && replies[i].error().message.rfind("NOSCRIPT", 0) == 0) again.push_back(i);
    if (again.empty()) return;
    auto loaded = redis.command({"SCRIPT", "LOAD", script.body}, "SCRIPT LOAD");
    std::vector<std::vector<std::string>> resend;
    for (size_t i : again) resend.push_back(commands[i]);
    auto rerun = loaded ? redis.pipeline(resend, "admission")
                        : Result<std::vector<Result<RedisReplyPtr>>>(Unexpected{loaded.error()});
    for (size_t j = 0; j < again.size(); ++j)
      replies[again[j]] =
          rerun ? std::move((*rerun)[j]) : Result<RedisReplyPtr>(Unexpected{rerun.error()});
  }

  std::vector<SoftBudgetNotice> settle(uint64_t id, int64_t actual_tokens, Money actual_cost) {
    const int64_t tokens = std::max<int64_t>(0, actual_tokens);
    const Money cost{std::max<int64_t>(0, actual_cost.nanos)};
    if (id & kLeasedReservation) return settle_leased(id, tokens, cost);
    std::optional<ReservationScope> scope;
    {
      std::lock_guard<std::mutex> lock(scopes_mutex);
      auto it = scopes.find(id);
      if (it != scopes.end()) {
        scope = std::move(it->second);
        scopes.erase(it);
      }
    }
    if (id & kLocalReservation) {
      auto notices = local.settle(id & ~kLocalReservation, tokens, cost);
      if (scope) {
        add_pending(*scope, true, tokens, cost);
        nudge_keeper();
      }
      return notices;
    }
    return send_settlement(QueuedSettlement{id, tokens, cost, std::move(scope)});
  }

  /// Queues a settlement of a reservation in Redis for the settler, or, while there is none
  /// (before start(), after stop()), sends it on the caller's thread and returns its notices.
  std::vector<SoftBudgetNotice> send_settlement(QueuedSettlement settlement) {
    {
      std::lock_guard<std::mutex> lock(settle_mutex);
      if (settler_running) {
        settle_queue.push_back(std::move(settlement));
        settle_wake.notify_one();
        return {};
      }
    }
    const Script& script = settle_script();
    auto reply = redis.eval(script.body, script.sha, settle_keys(settlement.id),
                            settle_args(settlement), "settlement");
    if (!reply) {
      settlement_failed(std::move(settlement));
      return {};
    }
    return notices_of(reply->get());
  }

  std::vector<std::string> settle_keys(uint64_t id) const {
    return {prefix + "r:" + std::to_string(id), prefix + "inflight"};
  }
  std::vector<std::string> settle_args(const QueuedSettlement& s) const {
    return {std::to_string(s.id), std::to_string(s.tokens), std::to_string(s.cost.nanos),
            std::to_string(clock.now_ms()), std::to_string(s.requests)};
  }

  /// The spend must not be lost, nor counted twice: the keeper sends the settlement again
  /// when Redis is back (see `unsent`). If the first attempt ran after all (its answer was
  /// lost, or Redis woke and read it after the time-out), the second finds no reservation and
  /// adds nothing; otherwise it adds the spend and gives the reservation back. Exact while
  /// the reservation's record lives in Redis (its deadline plus a day); a Redis restarted
  /// empty meanwhile is seeded from the ledger, which has the spend.
  void settlement_failed(QueuedSettlement settlement) {
    {
      std::lock_guard<std::mutex> lock(pending_mutex);
      unsent.push_back(std::move(settlement));
    }
    nudge_keeper();
  }

  std::vector<SoftBudgetNotice> notices_of(const redisReply* r) const {
    std::vector<SoftBudgetNotice> notices;
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return notices;
    for (size_t i = 1; i + 2 < r->elements; i += 3) {
      const int64_t index = integer_of(r->element[i]);
      if (index < 0 || static_cast<size_t>(index) >= budgets.size()) continue;
      const BudgetRule& rule = budgets[static_cast<size_t>(index)];
      notices.push_back(SoftBudgetNotice{rule.name, Money{integer_of(r->element[i + 1])},
                                         rule.amount, integer_of(r->element[i + 2])});
    }
    return notices;
  }

  /// Sends settlements in one pipeline (a Redis that lost the script gets it loaded and the
  /// settlement sent again); adds the soft-budget notices of those Redis confirmed and
  /// returns those it did not. `reachable` false: Redis is known to be down, nothing is sent.
  std::vector<QueuedSettlement> send_settlements(std::vector<QueuedSettlement> batch,
                                                 std::vector<SoftBudgetNotice>& notices,
                                                 bool reachable) {
    const Script& script = settle_script();
    std::vector<std::vector<std::string>> commands;
    commands.reserve(batch.size());
    for (const QueuedSettlement& s : batch) {
      std::vector<std::string> command = {"EVALSHA", script.sha, "2"};
      for (std::string& k : settle_keys(s.id)) command.push_back(std::move(k));
      for (std::string& a : settle_args(s)) command.push_back(std::move(a));
      commands.push_back(std::move(command));
    }
    auto replies = reachable ? redis.pipeline(commands, "settlement")
                             : Result<std::vector<Result<RedisReplyPtr>>>(
                                   make_error(ErrorCode::kIo, "unreachable"));
    std::vector<QueuedSettlement> failed;
    for (size_t i = 0; i < batch.size(); ++i) {
      QueuedSettlement& s = batch[i];
      if (replies && (*replies)[i]) {
        for (SoftBudgetNotice& n : notices_of((*replies)[i]->get())) notices.push_back(std::move(n));
        continue;
      }
      if (replies && (*replies)[i].error().message.rfind("NOSCRIPT", 0) == 0) {
        // A Redis that has not seen the script yet: eval() loads it.
        auto reply = redis.eval(script.body, script.sha, settle_keys(s.id),
                                settle_args(s), "settlement");
        if (reply) {
          for (SoftBudgetNotice& n : notices_of(reply->get())) notices.push_back(std::move(n));
          continue;
        }
      }
      failed.push_back(std::move(s));
    }
    return failed;
  }

  /// The settler: everything queued goes to Redis in one pipeline.
  void settler_loop() {
    for (;;) {
      std::vector<QueuedSettlement> batch;
      {
        std::unique_lock<std::mutex> lock(settle_mutex);
        auto ready = [&] { return settler_stopping || !settle_queue.empty(); };
        if (redis.config().lease)
          settle_wake.wait_for(lock, std::chrono::milliseconds(kLeaseSweepMs), ready);
        else
          settle_wake.wait(lock, ready);
        if (settle_queue.empty()) {
          if (settler_stopping) return;  // nothing left
          lock.unlock();
          close_leases(false);  // queues the settlements of leases past their max age
          continue;
        }
        batch.swap(settle_queue);
        settler_busy = true;
      }
      std::vector<SoftBudgetNotice> notices;
      for (QueuedSettlement& failed :
           send_settlements(std::move(batch), notices, redis.available()))
        settlement_failed(std::move(failed));
      if (notice_sink)
        for (const SoftBudgetNotice& n : notices) notice_sink(n);
      {
        std::lock_guard<std::mutex> lock(settle_mutex);
        settler_busy = false;
      }
      settle_done.notify_all();
    }
  }

  /// Seeds every budget from the ledger if this Redis has no seed marker. False on failure.
  bool seed_if_needed() {
    const std::string marker = prefix + "seeded";
    auto exists = redis.command({"EXISTS", marker}, "seed check");
    if (!exists) return false;
    if (integer_of(exists->get()) == 1) return true;
    if (!seed) return false;
    // Spend settled without Redis before this point is in the ledger by now (the spool
    // drains every second), so the seed counts it: pushing it too would count it twice.
    // Settlements not confirmed by Redis are in the ledger too; their reservations are gone
    // with the old data set anyway.
    {
      std::lock_guard<std::mutex> lock(pending_mutex);
      pending.clear();
      pushing.reset();
      unsent.clear();
    }
    auto spends = seed();
    if (!spends) {
      std::fprintf(stderr, "aifinops gateway: redis: cannot seed budgets from the ledger: %s\n",
                   spends.error().message.c_str());
      return false;
    }
    const EpochSeconds now_s = floor_div(clock.now_ms(), 1000);
    // Replicas that find the marker absent together all get here; the script's HSETNX lets
    // one of them seed each budget, and only what this one seeded is counted and logged.
    size_t seeded_here = 0;
    for (const auto& [name, spent] : *spends) {
      auto rule = std::find_if(budgets.begin(), budgets.end(),
                               [&](const BudgetRule& b) { return b.name == name; });
      if (rule == budgets.end()) continue;
      const EpochSeconds start = period_start(rule->period, now_s);
      const Script& script = seed_script();
      auto seeded = redis.eval(script.body, script.sha, {budget_key(*rule, start)},
                               {std::to_string(std::max<int64_t>(0, spent.nanos)),
                                std::to_string(budget_expiry(*rule, start))},
                               "budget seed");
      if (!seeded) return false;
      if (integer_of(seeded->get()) == 1) ++seeded_here;
    }
    if (!redis.command({"SET", marker, std::to_string(clock.now_ms())}, "seed marker")) return false;
    if (seeded_here > 0) {
      redis.counters().reseeds.fetch_add(1, std::memory_order_relaxed);
      std::fprintf(stderr, "aifinops gateway: redis %s: %zu budgets seeded from the ledger\n",
                   redis.where().c_str(), seeded_here);
    }
    return true;
  }

  /// Sends the settlements Redis did not confirm again, in one pipeline (see `unsent`);
  /// those it does not confirm this time are kept for the next try. False on failure.
  bool resend_settlements() {
    std::vector<QueuedSettlement> batch;
    {
      std::lock_guard<std::mutex> lock(pending_mutex);
      batch.swap(unsent);
    }
    if (batch.empty()) return true;
    std::vector<SoftBudgetNotice> notices;
    std::vector<QueuedSettlement> failed = send_settlements(std::move(batch), notices, true);
    if (notice_sink)
      for (const SoftBudgetNotice& n : notices) notice_sink(n);
    if (failed.empty()) return true;
    std::lock_guard<std::mutex> lock(pending_mutex);
    for (QueuedSettlement& s : failed) unsent.push_back(std::move(s));
    return false;
  }

  /// Pushes spend settled without Redis, exactly once per push (by its id). False on failure.
  bool push_pending() {
    std::pair<std::string, std::map<std::string, PendingHash>> batch;
    {
      std::lock_guard<std::mutex> lock(pending_mutex);
      if (!pushing) {
        if (pending.empty()) return true;
        pushing.emplace(prefix + "push:" + replica_id + ":" + std::to_string(++push_sequence),
                        std::move(pending));
        pending.clear();
      }
      batch = *pushing;
    }
    std::vector<std::string> keys = {batch.first};
    std::vector<std::string> args;
    for (const auto& [key, hash] : batch.second) {
      keys.push_back(key);
      args.push_back(std::to_string(hash.fields.size()));
      args.push_back(std::to_string(hash.expire_at));
      for (const auto& [field, delta] : hash.fields) {
        args.push_back(field);
        args.push_back(std::to_string(delta));
      }
    }
    const Script& script = push_script();
    auto pushed = redis.eval(script.body, script.sha, keys, args, "reconciliation");
    if (!pushed) return false;
    {
      std::lock_guard<std::mutex> lock(pending_mutex);
      // Still the same push unless a reseed dropped it meanwhile.
      if (pushing && pushing->first == batch.first) pushing.reset();
    }
    redis.counters().reconciled_pushes.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void keeper_loop() {
    int64_t backoff_ms = 50;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(keeper_mutex);
        const int64_t wait_ms = redis.available() ? 1000 : backoff_ms;
        keeper_wake.wait_for(lock, std::chrono::milliseconds(wait_ms),
                             [&] { return keeper_stopping || keeper_nudged; });
        if (keeper_stopping) return;
        keeper_nudged = false;
      }
      if (!redis.available()) {
        if (!redis.probe()) {
          backoff_ms = std::min<int64_t>(backoff_ms * 2, 2000);
          continue;
        }
      }
      backoff_ms = 50;
      if (seed_if_needed() && resend_settlements()) push_pending();
    }
  }
};

RedisLimitStore::RedisLimitStore(RedisConnections& redis, std::vector<BudgetRule> budgets,
                                 const Clock& clock)
    : impl_(std::make_unique<Impl>(redis, std::move(budgets), clock)) {}

RedisLimitStore::~RedisLimitStore() { stop(); }

Admission RedisLimitStore::admit(const AdmissionRequest& request) { return impl_->admit(request); }

std::optional<Admission> RedisLimitStore::admit_async(const AdmissionRequest& request,
                                                      AdmissionCallback done) {
  return impl_->admit_async(request, std::move(done));
}

std::vector<SoftBudgetNotice> RedisLimitStore::settle(uint64_t reservation, int64_t actual_tokens,
                                                      Money actual_cost) {
  return impl_->settle(reservation, actual_tokens, actual_cost);
}

void RedisLimitStore::seed_budget_spend(const std::string& budget_name, Money spent) {
  // Redis is seeded by the keeper (once per Redis data set, see seed_if_needed); the local
  // fallback once per process, here.
  {
    std::lock_guard<std::mutex> lock(impl_->pending_mutex);
    if (!impl_->locally_seeded.insert(budget_name).second) return;
  }
  impl_->local.seed_budget_spend(budget_name, spent);
}

Money RedisLimitStore::budget_used(const std::string& budget_name) {
  auto rule = std::find_if(impl_->budgets.begin(), impl_->budgets.end(),
                           [&](const BudgetRule& b) { return b.name == budget_name; });
  if (rule == impl_->budgets.end()) return Money{};
  const EpochSeconds start = period_start(rule->period, floor_div(impl_->clock.now_ms(), 1000));
  if (impl_->redis.available()) {
    auto reply = impl_->redis.command({"HMGET", impl_->budget_key(*rule, start), "s", "r"},
                                      "budget read");
    if (reply && (*reply)->type == REDIS_REPLY_ARRAY && (*reply)->elements == 2)
      return Money{integer_of((*reply)->element[0]) + integer_of((*reply)->element[1])};
  }
  return impl_->local.budget_used(budget_name);
}

void RedisLimitStore::set_seed_source(SeedSource seed) { impl_->seed = std::move(seed); }

void RedisLimitStore::start() {
  {
    std::lock_guard<std::mutex> lock(impl_->admit_mutex);
    impl_->admitter_running = true;
    impl_->admitter_stopping = false;
  }
  for (int i = 0; i < Impl::kAdmitters; ++i)
    impl_->admitters.emplace_back([this] { impl_->admitter_loop(); });
  {
    std::lock_guard<std::mutex> lock(impl_->settle_mutex);
    impl_->settler_running = true;
  }
  {
    std::lock_guard<std::mutex> lock(impl_->lease_mutex);
    impl_->leasing = impl_->redis.config().lease;
  }
  impl_->settler = std::thread([this] { impl_->settler_loop(); });
  impl_->keeper = std::thread([this] { impl_->keeper_loop(); });
}

void RedisLimitStore::stop() {
  // The admitters first: they answer every admission queued so far (each within
  // redis_timeout_ms), and the reservations it grants are settled through the settler.
  {
    std::lock_guard<std::mutex> lock(impl_->admit_mutex);
    impl_->admitter_stopping = true;
  }
  impl_->admit_wake.notify_all();
  for (std::thread& admitter : impl_->admitters) admitter.join();
  impl_->admitters.clear();
  {
    std::lock_guard<std::mutex> lock(impl_->admit_mutex);
    impl_->admitter_running = false;  // admit_async() asks Redis on the caller's thread again
  }
  // Then the leases: no more admissions from them; the settler sends those whose requests
  // are all settled, and each other one is settled by its last request's settle().
  {
    std::lock_guard<std::mutex> lock(impl_->lease_mutex);
    impl_->leasing = false;
  }
  impl_->close_leases(true);
  {
    std::lock_guard<std::mutex> lock(impl_->settle_mutex);
    impl_->settler_stopping = true;
  }
  impl_->settle_wake.notify_all();
  if (impl_->settler.joinable()) impl_->settler.join();  // after it sent what was queued
  {
    std::lock_guard<std::mutex> lock(impl_->settle_mutex);
    impl_->settler_running = false;  // settle() is synchronous again
  }
  {
    std::lock_guard<std::mutex> lock(impl_->keeper_mutex);
    impl_->keeper_stopping = true;
  }
  impl_->keeper_wake.notify_all();
  if (impl_->keeper.joinable()) impl_->keeper.join();
}

void RedisLimitStore::set_notice_sink(std::function<void(const SoftBudgetNotice&)> sink) {
  impl_->notice_sink = std::move(sink);
}

void RedisLimitStore::close_leases() { impl_->close_leases(true); }

void RedisLimitStore::flush_settlements() {
  std::unique_lock<std::mutex> lock(impl_->settle_mutex);
  impl_->settle_done.wait(lock, [&] {
    return !impl_->settler_running || (impl_->settle_queue.empty() && !impl_->settler_busy);
  });
}

bool RedisLimitStore::maintain_now() {
  if (!impl_->redis.available() && !impl_->redis.probe()) return false;
  return impl_->seed_if_needed() && impl_->resend_settlements() && impl_->push_pending();
}

int64_t RedisLimitStore::pending_spend_nanos() const {
  std::lock_guard<std::mutex> lock(impl_->pending_mutex);
  int64_t total = 0;
  auto sum = [&](const std::map<std::string, PendingHash>& hashes) {
    for (const auto& [key, hash] : hashes)
      if (key.rfind(impl_->prefix + "b:", 0) == 0) {  // a budget's period
        auto it = hash.fields.find("s");
        if (it != hash.fields.end()) total += it->second;
      }
  };
  sum(impl_->pending);
  if (impl_->pushing) sum(impl_->pushing->second);
  for (const Impl::QueuedSettlement& s : impl_->unsent)
    if (s.scope) total += s.cost.nanos * static_cast<int64_t>(s.scope->budget_keys.size());
  return total;
}

std::string RedisLimitStore::metrics_text() const { return impl_->redis.counters().render(); }

// --- RedisResponseCache ---------------------------------------------------------------

namespace {

/// An entry's value: six integers (tokens and cost), the content type's length, then the
/// content type and the body.
std::string encode(const CachedResponse& r) {
  std::string out;
  const int64_t numbers[7] = {r.tokens.input,  r.tokens.cached_input, r.tokens.cache_write,
                              r.tokens.output, r.tokens.reasoning,    r.cost.nanos,
                              static_cast<int64_t>(r.content_type.size())};
  out.append(reinterpret_cast<const char*>(numbers), sizeof numbers);
  out += r.content_type;
  out += r.body;
  return out;
}

std::optional<CachedResponse> decode(std::string_view v) {
  int64_t numbers[7];
  if (v.size() < sizeof numbers) return std::nullopt;
  std::memcpy(numbers, v.data(), sizeof numbers);
  v.remove_prefix(sizeof numbers);
  if (numbers[6] < 0 || static_cast<uint64_t>(numbers[6]) > v.size()) return std::nullopt;
  CachedResponse r;
  r.tokens = {numbers[0], numbers[1], numbers[2], numbers[3], numbers[4]};
  r.cost = Money{numbers[5]};
  r.content_type = std::string(v.substr(0, static_cast<size_t>(numbers[6])));
  r.body = std::string(v.substr(static_cast<size_t>(numbers[6])));
  return r;
}

constexpr int64_t kEntryOverheadBytes = 96;

}  // namespace

RedisResponseCache::RedisResponseCache(RedisConnections& redis, int64_t max_bytes, int64_t ttl_ms,
                                       const Clock& clock)
    : redis_(redis), max_bytes_(max_bytes), ttl_ms_(std::max<int64_t>(1, ttl_ms)), clock_(clock) {}

std::optional<CachedResponse> RedisResponseCache::find(const std::string& key) {
  if (!redis_.available()) return std::nullopt;
  auto reply = redis_.command({"GET", redis_.config().prefix + "c:" + key}, "cache look-up");
  if (!reply) {
    redis_.counters().cache_errors.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  if ((*reply)->type != REDIS_REPLY_STRING) return std::nullopt;
  return decode(std::string_view((*reply)->str, (*reply)->len));
}

void RedisResponseCache::insert(const std::string& key, CachedResponse response) {
  const std::string value = encode(response);
  const std::string& prefix = redis_.config().prefix;
  const int64_t size =
      static_cast<int64_t>(prefix.size() + 2 + key.size() + value.size()) + kEntryOverheadBytes;
  if (size > max_bytes_ || !redis_.available()) return;
  const Script& script = cache_insert_script();
  auto reply = redis_.eval(script.body, script.sha,
                           {prefix + "c:" + key, prefix + "cz", prefix + "cs", prefix + "cb"},
                           {key, value, std::to_string(ttl_ms_), std::to_string(clock_.now_ms()),
                            std::to_string(max_bytes_), std::to_string(size), prefix + "c:"},
                           "cache insert");
  if (!reply) redis_.counters().cache_errors.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace aifinops::gateway
