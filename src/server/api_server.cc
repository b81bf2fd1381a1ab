#include "server/api_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "allocate/shared_costs.h"
#include "core/json_text.h"
#include "server/query_memo.h"
#include "server/read_only_ledger.h"

namespace aifinops::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto kAsTuple = net::experimental::as_tuple(net::use_awaitable);
using Request = http::request<http::string_body>;
constexpr std::string_view kApiPrefix = "/api/v1/";
constexpr size_t kMaxCacheEntries = 1024;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 &&
               hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Ledger connections, opened on demand and handed to one request at a time.
class LedgerPool {
 public:
  explicit LedgerPool(std::function<Result<std::unique_ptr<ledger::Ledger>>()> open)
      : open_(std::move(open)) {}

  Result<std::unique_ptr<ledger::Ledger>> acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        auto l = std::move(free_.back());
        free_.pop_back();
        return l;
      }
    }
    return open_();
  }
  void release(std::unique_ptr<ledger::Ledger> l) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(l));
  }

 private:
  std::function<Result<std::unique_ptr<ledger::Ledger>>()> open_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<ledger::Ledger>> free_;
};

/// A ledger version: changes whenever a batch is committed or replaced.
Result<std::string> ledger_version(ledger::Ledger& ledger) {
  auto batches = ledger.batches();
  if (!batches) return Unexpected{batches.error()};
  int64_t max_id = 0;
  for (const auto& b : *batches) max_id = std::max(max_id, b.id);
  return std::to_string(batches->size()) + ":" + std::to_string(max_id);
}

/// Who may share a cached answer: callers who see the same records. Answers do not depend
/// on the scope (no endpoint shows an admin more than a viewer of the same records).
const std::string& cache_identity(const Principal& principal) { return principal.restriction_key; }

/// The answer cache's key: the endpoint, who may share it, the parameters sorted by name.
std::string cache_key(const std::string& endpoint, const QueryParams& params,
                      const Principal& principal) {
  QueryParams sorted;
  for (const auto& p : params)
    if (p.first != "access_token") sorted.push_back(p);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string key = endpoint + "\n" + cache_identity(principal) + "\n";
  for (const auto& [name, value] : sorted) key += name + "=" + value + "\n";
  return key;
}

struct CachedAnswer {
  std::string version;
  int64_t expires_at = 0;
  ApiResponse response;
};

/// One computation of an answer that callers asking the same question meanwhile wait for,
/// instead of each running the analysis again.
struct Flight {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  ApiResponse response;
};

/// A question the refresher answers again: a warm target, or a stale answer that was served.
struct RefreshItem {
  std::string endpoint;
  QueryParams params;
  const Principal* principal = nullptr;
};

/// Bounds the stale answers waiting for a refresh (each is one analysis run).
constexpr size_t kMaxPendingRefreshes = 64;

}  // namespace

std::string api_error_json(std::string_view message, std::string_view parameter) {
  std::string s = "{\"error\":{\"message\":";
  append_json_string(s, message);
  s += ",\"parameter\":";
  if (parameter.empty())
    s += "null";
  else
    append_json_string(s, parameter);
  s += "}}\n";
  return s;
}

QueryParams parse_query(std::string_view query) {
  QueryParams out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string name = percent_decode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1));
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

std::string_view content_type_for(std::string_view path) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".txt", "text/plain; charset=utf-8"},
      {".csv", "text/csv; charset=utf-8"},
  };
  for (const auto& [ext, type] : kTypes)
    if (path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext) return type;
  return "application/octet-stream";
}

struct ApiServer::State {
  ApiServerOptions options;
  TokenTable tokens;
  LedgerPool pool;
  std::unordered_map<std::string, config::Policy> policies;  // by restriction_key
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  int bound_port = 0;
  std::mutex cache_mutex;  // guards cache, flights, failed and pending_refreshes
  std::unordered_map<std::string, CachedAnswer> cache;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights;
  std::unordered_map<std::string, std::string> failed;   // key -> the version it failed at
  std::map<std::string, RefreshItem> pending_refreshes;  // by cache key
  std::condition_variable refresh_cv;                    // wakes the refresher
  std::thread refresher;
  std::unique_ptr<QueryMemo> memo;  // null when options.query_memo_cells is 0

  explicit State(ApiServerOptions o)
      : options(std::move(o)),
        tokens(options.policy, options.principals),
        pool(options.open_ledger) {
    if (options.query_memo_cells > 0)
      memo = std::make_unique<QueryMemo>(options.query_memo_cells);
    for (const Principal& p : options.principals)
      if (!policies.count(p.restriction_key))
        policies.emplace(p.restriction_key, restrict_policy(options.policy, p));
  }

  /// How a call was answered, for the x-aifinops-cache header.
  enum class CacheState { kHit, kMiss, kStale };

  void refresh_loop();
  bool refresh_round();
  const ApiHandler* handler_for(const std::string& endpoint) const;
  bool is_background(const std::string& endpoint) const;
  net::awaitable<void> accept_loop();
  net::awaitable<void> serve_connection(tcp::socket socket);
  http::response<http::string_body> handle(const Request& req);
  /// The answer from the cache or computed now. With `refresh`, recomputes only an answer
  /// that is missing, from another ledger version or past half its lifetime, and never
  /// serves stale.
  ApiResponse answer(const std::string& endpoint, const ApiHandler& handler,
                     const QueryParams& params, const Principal& principal, CacheState& state,
                     bool refresh = false);
  http::response<http::string_body> static_file(const Request& req, std::string_view path);
  const Principal* authenticate(const Request& req, const QueryParams& params) const;
  std::optional<ApiResponse> check_scope(const Principal& principal,
                                         const QueryParams& params) const;
  http::response<http::string_body> otlp_traces(const Request& req, const QueryParams& params);
};

/// OTLP/HTTP: POST only, an admin token (exporters send it as a header), JSON only. Errors
/// are google.rpc.Status objects, as OTLP clients expect.
http::response<http::string_body> ApiServer::State::otlp_traces(const Request& req,
                                                                const QueryParams& params) {
  auto reply = [&](int status, std::string body) {
    http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
    return res;
  };
  auto status = [](int code, std::string_view message) {
    std::string s = "{\"code\":" + std::to_string(code) + ",\"message\":\"";
    s += message;  // fixed texts only, nothing to escape
    return s + "\"}";
  };
  if (!options.otlp_traces) return reply(404, status(5, "no OTLP receiver here"));
  if (req.method() != http::verb::post) {
    auto res = reply(405, status(3, "POST an OTLP ExportTraceServiceRequest to /v1/traces"));
    res.set(http::field::allow, "POST");
    return res;
  }
  const Principal* principal = authenticate(req, params);
  if (principal == nullptr) {
    auto res = reply(401, status(16, "send an admin API token: Authorization: Bearer TOKEN"));
    res.set(http::field::www_authenticate, "Bearer realm=\"aifinops\"");
    return res;
  }
  if (principal->scope != config::ApiScope::kAdmin)
    return reply(403, status(7, "writing spans needs a token with scope admin"));
  std::string type(req[http::field::content_type]);
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  if (!beast::iequals(type, "application/json"))
    return reply(415, status(3,
                             "only OTLP/HTTP JSON is read (Content-Type: application/json); "
                             "set the exporter's protocol to http/json"));
  ApiResponse response = options.otlp_traces(req.body());
  auto res = reply(response.status, std::move(response.body));
  res.set(http::field::content_type, response.content_type);
  return res;
}

const Principal* ApiServer::State::authenticate(const Request& req,
                                                const QueryParams& params) const {
  auto auth = req.find(http::field::authorization);
  if (auth != req.end()) {
    std::string_view value = auth->value();
    if (value.size() > 7 && beast::iequals(value.substr(0, 7), "Bearer "))
      return tokens.find(value.substr(7));
    return nullptr;
  }
  // For links a browser follows (CSV downloads), where no header can be set.
  for (const auto& [name, value] : params)
    if (name == "access_token") return tokens.find(value);
  return nullptr;
}

std::optional<ApiResponse> ApiServer::State::check_scope(const Principal& principal,
                                                         const QueryParams& params) const {
  if (!principal.restricted()) return std::nullopt;
  // A filter that asks for values outside the restriction is refused, not silently emptied.
  for (const auto& [name, value] : params) {
    if (name != "filter") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view one = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      size_t eq = one.find('=');
      if (eq == std::string_view::npos) continue;  // the command reports the syntax error
      auto d = allocate::resolve_dimension(options.policy.tags, one.substr(0, eq));
      if (!d) continue;
      std::string wanted(one.substr(eq + 1));
      for (const auto& [dimension, allowed] : principal.restrict) {
        if (dimension.kind != d->kind || dimension.attribute != d->attribute ||
            dimension.tag_keys != d->tag_keys)
          continue;
        if (std::find(allowed.begin(), allowed.end(), wanted) == allowed.end()) {
          std::string list;
          for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
          return ApiResponse{
              403, api_error_json("token " + principal.id + " may see " + dimension.label + " " +
                                      list + " only, not " + wanted,
                                  "filter")};
        }
      }
    }
  }
  return std::nullopt;
}

ApiResponse ApiServer::State::answer(const std::string& endpoint, const ApiHandler& handler,
                                     const QueryParams& params, const Principal& principal,
                                     CacheState& state, bool refresh) {
  state = CacheState::kMiss;
  auto connection = pool.acquire();
  if (!connection) return {500, api_error_json(connection.error().message)};
  std::unique_ptr<ledger::Ledger> ledger = std::move(*connection);
  struct Release {
    LedgerPool& pool;
    std::unique_ptr<ledger::Ledger>& ledger;
    ~Release() { pool.release(std::move(ledger)); }
  } release{pool, ledger};

  Result<std::string> version = options.ledger_version
                                    ? Result<std::string>(options.ledger_version())
                                    : ledger_version(*ledger);
  if (!version) return {500, api_error_json(version.error().message)};
  const std::string key = cache_key(endpoint, params, principal);
  const int64_t now = now_seconds();
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock lock(cache_mutex);
    auto it = cache.find(key);
    if (it != cache.end()) {
      const CachedAnswer& cached = it->second;
      const bool current = cached.version == *version && cached.expires_at > now;
      // A refresh starts once half the lifetime has passed, so that warm answers are
      // replaced before a caller could find them expired.
      const bool young =
          current && cached.expires_at - now > std::max<int64_t>(1, options.cache_ttl_s / 2);
      if (refresh ? young : current) {
        state = CacheState::kHit;
        return cached.response;
      }
      if (!refresh && is_background(endpoint)) {
        state = CacheState::kStale;
        if (pending_refreshes.size() < kMaxPendingRefreshes)
          pending_refreshes.try_emplace(key, RefreshItem{endpoint, params, &principal});
        refresh_cv.notify_all();
        return cached.response;
      }
    }
    // A question that failed for this ledger version is asked again by callers only: the
    // refresher would otherwise run a failing analysis every second.
    if (refresh)
      if (auto f = failed.find(key); f != failed.end() && f->second == *version) return {};
    if (auto f = flights.find(key); f != flights.end()) {
      if (refresh) return {};  // being computed for a caller already
      flight = f->second;
      lock.unlock();
      std::unique_lock wait(flight->mutex);
      flight->done_cv.wait(wait, [&] { return flight->done; });
      return flight->response;
    }
    flight = std::make_shared<Flight>();
    flights.emplace(key, flight);
  }
  // The restriction's filters go into the memo's keys: callers who see different records
  // never share an answer.
  std::optional<MemoLedger> memo_view;
  if (memo) memo_view.emplace(*ledger, *memo, *version);
  ReadOnlyLedger view(memo_view ? static_cast<ledger::Ledger&>(*memo_view) : *ledger,
                      principal.restrict);
  ApiRequest request{endpoint, params, principal, view, policies.at(principal.restriction_key)};
  ApiResponse response = handler(request);
  {
    std::lock_guard lock(cache_mutex);
    if (response.status == 200) {
      if (cache.size() >= kMaxCacheEntries) {
        std::erase_if(cache, [&](const auto& e) { return e.second.expires_at <= now; });
        if (cache.size() >= kMaxCacheEntries) cache.clear();  // crude, bounded, rare
      }
      cache[key] = CachedAnswer{*version, now + options.cache_ttl_s, response};
      failed.erase(key);
    } else if (failed.size() < kMaxCacheEntries) {
      failed[key] = *version;
    }
    flights.erase(key);
  }
  {
    std::lock_guard done(flight->mutex);
    flight->response = response;
    flight->done = true;
  }
  flight->done_cv.notify_all();
  return response;
}

const ApiHandler* ApiServer::State::handler_for(const std::string& endpoint) const {
  if (endpoint == "metrics") return options.metrics ? &options.metrics : nullptr;
  auto it = options.endpoints.find(endpoint);
  return it != options.endpoints.end() && it->second ? &it->second : nullptr;
}

bool ApiServer::State::is_background(const std::string& endpoint) const {
  return std::find(options.background.begin(), options.background.end(), endpoint) !=
         options.background.end();
}

http::response<http::string_body> ApiServer::State::static_file(const Request& req,
                                                                std::string_view path) {
  http::response<http::string_body> res{http::status::ok, req.version()};
  namespace fs = std::filesystem;
  std::string relative(path.substr(1));
  bool safe = relative.find("..") == std::string::npos && relative.find('\0') == std::string::npos;
  fs::path root(options.web_root);
  fs::path file = root / relative;
  std::error_code ec;
  if (!safe || relative.empty() || !fs::is_regular_file(file, ec)) {
    file = root / "index.html";  // the dashboard routes its own pages
    if (!fs::is_regular_file(file, ec)) {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = "The dashboard is not built (no index.html in " + options.web_root +
                   "); the API answers under /api/v1/ (docs/api.md).\n";
      return res;
    }
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream body;
  body << in.rdbuf();
  res.set(http::field::content_type, content_type_for(file.string()));
  // Hashed asset names can be cached; index.html must be re-read to pick up a new build.
  res.set(http::field::cache_control,
          file.filename() == "index.html" ? "no-cache" : "max-age=3600");
  res.body() = body.str();
  return res;
}

http::response<http::string_body> ApiServer::State::handle(const Request& req) {
  std::string_view target = req.target();
  size_t question = target.find('?');
  std::string path = percent_decode(target.substr(0, question));
  QueryParams params =
      question == std::string_view::npos ? QueryParams() : parse_query(target.substr(question + 1));
  auto reply = [&](int status, std::string body, std::string_view type = "application/json") {
    http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
    res.set(http::field::content_type, type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
  };
  if (path == "/v1/traces") return otlp_traces(req, params);
  bool api = path.rfind(kApiPrefix, 0) == 0 || path == "/api/v1" || path == "/metrics";
  if (!api) {
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return reply(405, api_error_json("only GET is served here"));
    return static_file(req, path);
  }
  if (req.method() != http::verb::get)
    return reply(405, api_error_json("the API answers GET only"));
  std::string endpoint = path.size() > kApiPrefix.size() ? path.substr(kApiPrefix.size()) : "";
  if (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  if (endpoint == "openapi.json") return reply(200, options.openapi_json);

  const Principal* principal = authenticate(req, params);
  if (principal == nullptr) {
    auto res =
        reply(401, api_error_json("send an API token: Authorization: Bearer TOKEN (or "
                                  "?access_token=TOKEN); tokens are listed under api_tokens in the "
                                  "policy file (docs/api.md)"));
    res.set(http::field::www_authenticate, "Bearer realm=\"aifinops\"");
    return res;
  }
  const ApiHandler* handler = nullptr;
  if (path == "/metrics") {
    handler = &options.metrics;
    endpoint = "metrics";
  } else if (auto it = options.endpoints.find(endpoint); it != options.endpoints.end()) {
    handler = &it->second;
  }
  if (handler == nullptr || !*handler) {
    std::string list;
    for (const auto& [name, h] : options.endpoints) list += (list.empty() ? "" : ", ") + name;
    return reply(404, api_error_json("no endpoint /api/v1/" + endpoint + "; the endpoints are " +
                                     list + ", openapi.json"));
  }
  if (auto refused = check_scope(*principal, params)) return reply(refused->status, refused->body);
  CacheState state = CacheState::kMiss;
  ApiResponse response = answer(endpoint, *handler, params, *principal, state);
  auto res = reply(response.status, std::move(response.body), response.content_type);
  res.set("x-aifinops-cache", state == CacheState::kHit     ? "hit"
                              : state == CacheState::kStale ? "stale"
                                                            : "miss");
  return res;
}

/// One pass over the warm targets (for one principal of each restriction) and the stale
/// answers served since the last pass. Returns whether it stopped early.
bool ApiServer::State::refresh_round() {
  std::vector<const Principal*> representatives;  // one per cache identity
  for (const Principal& p : options.principals)
    if (std::none_of(representatives.begin(), representatives.end(),
                     [&](const Principal* r) { return cache_identity(*r) == cache_identity(p); }))
      representatives.push_back(&p);
  std::vector<RefreshItem> items;
  for (const Principal* principal : representatives) {
    for (const std::string& target : options.warm) {
      size_t question = target.find('?');
      items.push_back(
          {target.substr(0, question),
           question == std::string::npos ? QueryParams() : parse_query(target.substr(question + 1)),
           principal});
    }
  }
  {
    std::lock_guard lock(cache_mutex);
    // A background endpoint (recommendations: seconds on a large ledger) is kept warm for a
    // restricted viewer's records only once one of them has asked: the unrestricted answer
    // cannot be cut down to a team's (its totals span teams), and computing every team's at
    // every ledger change would keep the cores busy for nobody.
    std::erase_if(items, [&](const RefreshItem& item) {
      return item.principal->restricted() && is_background(item.endpoint) &&
             !cache.count(cache_key(item.endpoint, item.params, *item.principal));
    });
    for (auto& [key, item] : pending_refreshes) items.push_back(std::move(item));
    pending_refreshes.clear();
  }
  for (const RefreshItem& item : items) {
    if (stopping) return true;
    const ApiHandler* handler = handler_for(item.endpoint);
    if (handler == nullptr) continue;
    CacheState state = CacheState::kMiss;
    answer(item.endpoint, *handler, item.params, *item.principal, state, /*refresh=*/true);
  }
  return false;
}

void ApiServer::State::refresh_loop() {
  using Clock = std::chrono::steady_clock;
  std::optional<std::string> last_version;
  Clock::time_point last_change_round{};
  for (;;) {
    std::string version;
    if (options.ledger_version) {
      version = options.ledger_version();
    } else if (auto connection = pool.acquire(); connection) {
      auto v = ledger_version(**connection);
      pool.release(std::move(*connection));
      version = v ? *v : "";
    }
    const auto now = Clock::now();
    const bool changed = !last_version || version != *last_version;
    // A change right after the last round waits for the gap (the first round never does).
    if (!changed || !last_version ||
        now - last_change_round >= std::chrono::milliseconds(options.refresh_min_gap_ms)) {
      if (changed) last_change_round = now;
      last_version = version;
      if (refresh_round()) return;
    }
    std::unique_lock lock(cache_mutex);
    refresh_cv.wait_for(
        lock, std::chrono::milliseconds(std::max<int64_t>(10, options.refresh_interval_ms)),
        [&] { return stopping.load() || !pending_refreshes.empty(); });
    if (stopping) return;
  }
}

net::awaitable<void> ApiServer::State::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kAsTuple);
    if (ec) {
      if (stopping || ec == net::error::operation_aborted) co_return;
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    // Each connection on a strand of its own: its handler may block a thread while an
    // analysis runs; the other threads keep serving.
    net::co_spawn(net::make_strand(ioc), serve_connection(std::move(socket)), net::detached);
  }
}

net::awaitable<void> ApiServer::State::serve_connection(tcp::socket socket) {
  beast::tcp_stream client(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);  // the API takes no bodies; OTLP exports do
    client.expires_after(std::chrono::seconds(120));
    auto [hec, hn] = co_await http::async_read_header(client, buffer, parser, kAsTuple);
    if (hec) break;
    std::string_view target = parser.get().target();
    if (options.otlp_traces && target.substr(0, target.find('?')) == "/v1/traces")
      parser.body_limit(options.otlp_body_limit);
    auto [ec, n] = co_await http::async_read(client, buffer, parser, kAsTuple);
    if (ec) break;
    client.expires_never();
    Request req = parser.release();
    ++in_flight;
    auto res = handle(req);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();
    auto [wec, wn] = co_await http::async_write(client, res, kAsTuple);
    --in_flight;
    if (wec || !req.keep_alive() || stopping) break;
  }
  beast::error_code ignored;
  client.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

ApiServer::ApiServer(ApiServerOptions options)
    : state_(std::make_unique<State>(std::move(options))) {}

ApiServer::~ApiServer() = default;

Result<void> ApiServer::start() {
  State& s = *state_;
  std::string_view listen = s.options.listen;
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos)
    return make_error(ErrorCode::kInvalidArgument,
                      "--listen " + s.options.listen + ": expected HOST:PORT (127.0.0.1:8080)");
  std::string host(listen.substr(0, colon)), port(listen.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec)
    return make_error(ErrorCode::kInvalidArgument,
                      "--listen: \"" + host + "\" is not an IP address");
  int port_number = -1;
  try {
    port_number = std::stoi(port);
  } catch (const std::exception&) {
  }
  if (port_number < 0 || port_number > 65535)
    return make_error(ErrorCode::kInvalidArgument,
                      "--listen: \"" + port + "\" is not a port number (0 to 65535)");
  // The connections the threads will use, and the once-per-process work, before the port
  // opens: a call never pays them (docs/api.md, "Start-up").
  std::vector<std::unique_ptr<ledger::Ledger>> opened;
  for (int i = 0; i < std::max(1, s.options.threads) && s.options.open_ledger; ++i) {
    auto connection = s.pool.acquire();
    if (!connection) return Unexpected{connection.error()};
    opened.push_back(std::move(*connection));
  }
  if (s.options.prepare && !opened.empty())
    if (auto prepared = s.options.prepare(*opened.front()); !prepared)
      return Unexpected{prepared.error()};
  // The prepared connection last, so that the first call gets it (the pool hands out the
  // most recently released): its SQLite page cache holds what `prepare` read.
  for (auto it = opened.rbegin(); it != opened.rend(); ++it) s.pool.release(std::move(*it));
  if (s.options.warm_before_listen && !s.options.warm.empty()) s.refresh_round();
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port_number));
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return make_error(ErrorCode::kIo, "listen " + s.options.listen + ": " + ec.message());
  s.bound_port = s.acceptor.local_endpoint().port();
  net::co_spawn(s.ioc, s.accept_loop(), net::detached);
  return {};
}

int ApiServer::port() const { return state_->bound_port; }

void ApiServer::run() {
  State& s = *state_;
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, s.options.threads); ++i)
    threads.emplace_back([&s] { s.ioc.run(); });
  if (!s.options.warm.empty() || !s.options.background.empty())
    s.refresher = std::thread([&s] { s.refresh_loop(); });
  s.ioc.run();
  for (std::thread& t : threads) t.join();
  if (s.refresher.joinable()) {
    {
      std::lock_guard lock(s.cache_mutex);  // the refresher waits on it
      s.stopping = true;
    }
    s.refresh_cv.notify_all();
    s.refresher.join();  // it checks `stopping` between answers
  }
}

void ApiServer::stop(int64_t grace_ms) {
  State& s = *state_;
  {
    std::lock_guard lock(s.cache_mutex);
    s.stopping = true;
  }
  s.refresh_cv.notify_all();
  net::post(s.ioc, [&s] {
    beast::error_code ignored;
    s.acceptor.close(ignored);
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (s.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  s.ioc.stop();
}

}  // namespace aifinops::server
