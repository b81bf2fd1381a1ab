#include "gateway/server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "core/json_text.h"
#include "gateway/metrics.h"

namespace aifinops::gateway {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto kAsTuple = net::experimental::as_tuple(net::use_awaitable);
// NOTE: g++ 12 can destroy the temporaries of a full-expression that contains co_await
// twice. So replies are built in their own statement ("auto reply = send(...);") and only
// named objects appear in co_await expressions.

using Request = http::request<http::string_body>;

/// A client route the gateway meters; anything else is refused with 404.
struct Route {
  WireFormat format;
  std::string operation;   ///< for the ledger: chat, completion, embedding, responses, messages
  std::string suffix;      ///< path below the upstream's base URL
  std::string deployment;  ///< Azure deployment from the URL, if any
};

bool match_route(std::string_view target, Route& route) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/v1/chat/completions")
    route = {WireFormat::kOpenAiChat, "chat", "/chat/completions", ""};
  else if (path == "/v1/completions")
    route = {WireFormat::kOpenAiCompletion, "completion", "/completions", ""};
  else if (path == "/v1/embeddings")
    route = {WireFormat::kOpenAiEmbedding, "embedding", "/embeddings", ""};
  else if (path == "/v1/responses")
    route = {WireFormat::kOpenAiResponses, "responses", "/responses", ""};
  else if (path == "/v1/messages")
    route = {WireFormat::kAnthropicMessages, "messages", "/messages", ""};
  else if (path.rfind("/openai/deployments/", 0) == 0) {
    std::string_view rest = path.substr(std::string_view("/openai/deployments/").size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) return false;
    std::string_view operation = rest.substr(slash);
    if (operation == "/chat/completions")
      route = {WireFormat::kOpenAiChat, "chat", "/chat/completions", ""};
    else if (operation == "/completions")
      route = {WireFormat::kOpenAiCompletion, "completion", "/completions", ""};
    else if (operation == "/embeddings")
      route = {WireFormat::kOpenAiEmbedding, "embedding", "/embeddings", ""};
    else
      return false;
    route.deployment = std::string(rest.substr(0, slash));
  } else {
    return false;
  }
  return true;
}

std::string query_parameter(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return "";
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
        pair[name.size()] == '=')
      return std::string(pair.substr(name.size() + 1));
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return "";
}

/// The error body clients of that route understand: Anthropic's shape on /v1/messages,
/// OpenAI's everywhere else.
std::string error_body(bool anthropic, std::string_view type, std::string_view code,
                       std::string_view message) {
  if (anthropic)
    return "{\"type\":\"error\",\"error\":{\"type\":\"" + std::string(type) + "\",\"message\":\"" +
           json_escape(message) + "\"}}";
  return "{\"error\":{\"message\":\"" + json_escape(message) + "\",\"type\":\"" +
         std::string(type) + "\",\"param\":null,\"code\":\"" + std::string(code) + "\"}}";
}

/// One connection to an upstream: plain TCP, or TLS over TCP for https base URLs.
struct UpstreamConnection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  // The same operation on whichever stream this is (both yield the same awaitable type).
  template <class Message>
  auto write(Message& m) {
    return tls ? http::async_write(*tls, m, kAsTuple) : http::async_write(*plain, m, kAsTuple);
  }
  template <class Parser>
  auto read_header(beast::flat_buffer& b, Parser& p) {
    return tls ? http::async_read_header(*tls, b, p, kAsTuple)
               : http::async_read_header(*plain, b, p, kAsTuple);
  }
  template <class Parser>
  auto read(beast::flat_buffer& b, Parser& p) {
    return tls ? http::async_read(*tls, b, p, kAsTuple) : http::async_read(*plain, b, p, kAsTuple);
  }
  /// Returns as soon as some bytes are parsed: a stream is relayed as it arrives.
  template <class Parser>
  auto read_some(beast::flat_buffer& b, Parser& p) {
    return tls ? http::async_read_some(*tls, b, p, kAsTuple)
               : http::async_read_some(*plain, b, p, kAsTuple);
  }
};

struct UpstreamTarget {
  const UpstreamConfig* config = nullptr;
  bool tls = false;
  std::string host, port, base_path;
  std::string secret;
  tcp::resolver::results_type endpoints;
  std::unique_ptr<net::ssl::context> tls_context;  ///< system CA store, or ca_file
  std::mutex mutex;
  std::vector<std::unique_ptr<UpstreamConnection>> idle;  ///< keep-alive connections
};

std::string provider_name(UpstreamKind kind) {
  switch (kind) {
    case UpstreamKind::kOpenAi:
      return "OpenAI";
    case UpstreamKind::kAzureOpenAi:
      return "Azure OpenAI";
    case UpstreamKind::kAnthropic:
      return "Anthropic";
  }
  return "";
}

/// The usage record of a request, before its outcome is known.
UsageEvent new_event(const KeyConfig& key, const std::string& model, const UpstreamConfig& upstream,
                     const Route& route, int64_t start_ms) {
  UsageEvent event;
  event.time_ms = start_ms;
  event.key_id = key.id;
  event.tags = key.tags;
  event.model = model;
  event.upstream = upstream.name;
  event.provider = provider_name(upstream.kind);
  event.operation = route.operation;
  return event;
}

int64_t steady_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string new_virtual_key() {
  static const char* kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string key = "sk-aif-";
  while (key.size() < 47) {
    unsigned char byte;
    if (RAND_bytes(&byte, 1) != 1) std::abort();  // no randomness: never hand out a weak key
    if (byte >= 248) continue;                    // 248 = 4 * 62: no modulo bias
    key += kAlphabet[byte % 62];
  }
  return key;
}

struct GatewayServer::State {
  const GatewayConfig& config;
  const pricing::Catalog& catalog;
  LimitStore& limits;
  ResponseCache* cache;
  Spool& spool;
  const Clock& clock;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::unordered_map<std::string, const KeyConfig*> keys_by_hash;
  std::unordered_map<std::string, std::unique_ptr<UpstreamTarget>> upstreams;
  std::unordered_map<std::string, pricing::ModelPrice> price_overrides;
  mutable std::mutex price_memo_mutex;
  mutable std::unordered_map<std::string, const pricing::ModelPrice*> price_memo;
  mutable int64_t price_memo_day = -1;
  GatewayMetrics metrics;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  int bound_port = 0;

  State(const GatewayConfig& c, const pricing::Catalog& cat, LimitStore& l, ResponseCache* rc,
        Spool& s, const Clock& clk)
      : config(c), catalog(cat), limits(l), cache(rc), spool(s), clock(clk) {}

  const KeyConfig* authenticate(const Request& req, const Route* route, std::string& why) const;
  const UpstreamConfig* route_model(const std::string& model) const;
  const pricing::ModelPrice* price_of(const std::string& model) const;

  net::awaitable<void> accept_loop();
  net::awaitable<void> serve_connection(tcp::socket socket);
  net::awaitable<bool> handle(beast::tcp_stream& client, Request& req);
  net::awaitable<bool> send(beast::tcp_stream& client, const Request& req, http::status status,
                            std::string body, std::string content_type = "application/json",
                            int64_t retry_after_s = 0, bool cache_hit = false);
  net::awaitable<bool> serve_cached(beast::tcp_stream& client, const Request& req,
                                    const Route& route, const KeyConfig& key,
                                    const std::string& model, const RequestInfo& info,
                                    const UpstreamConfig& upstream, CachedResponse hit,
                                    int64_t start_ms, int64_t start_micros);
  net::awaitable<bool> proxy(beast::tcp_stream& client, Request& req, const Route& route,
                             const KeyConfig& key, const RequestInfo& info,
                             const std::string& model, UpstreamTarget& upstream,
                             const pricing::ModelPrice* price, uint64_t reservation,
                             std::string cache_key, int64_t start_ms, int64_t start_micros);
};

const KeyConfig* GatewayServer::State::authenticate(const Request& req, const Route* route,
                                                    std::string& why) const {
  std::string_view presented;
  auto auth = req.find(http::field::authorization);
  if (auth != req.end() && auth->value().size() > 7 &&
      beast::iequals(auth->value().substr(0, 7), "Bearer "))
    presented = std::string_view(auth->value().data() + 7, auth->value().size() - 7);
  if (presented.empty()) {
    auto it = req.find("x-api-key");  // Anthropic clients
    if (it != req.end()) presented = std::string_view(it->value().data(), it->value().size());
  }
  if (presented.empty()) {
    auto it = req.find("api-key");  // Azure OpenAI clients
    if (it != req.end()) presented = std::string_view(it->value().data(), it->value().size());
  }
  (void)route;
  if (presented.empty()) {
    why =
        "Missing API key: send your aifinops virtual key as 'Authorization: Bearer <key>' "
        "(or x-api-key / api-key).";
    return nullptr;
  }
  std::string digest = sha256_hex(presented);
  auto it = keys_by_hash.find(digest);
  // The map finds the candidate by its digest; the final comparison is constant-time.
  if (it == keys_by_hash.end() ||
      CRYPTO_memcmp(it->second->key_sha256.data(), digest.data(), digest.size()) != 0) {
    why = "Invalid API key: this virtual key is not known to the gateway.";
    return nullptr;
  }
  return it->second;
}

const UpstreamConfig* GatewayServer::State::route_model(const std::string& model) const {
  const UpstreamConfig* fallback = nullptr;
  for (const RouteConfig& r : config.routes) {
    const UpstreamConfig* u = nullptr;
    for (const UpstreamConfig& candidate : config.upstreams)
      if (candidate.name == r.upstream) u = &candidate;
    if (r.model == model) return u;
    if (r.model == "*" && fallback == nullptr) fallback = u;
  }
  return fallback;
}

const pricing::ModelPrice* GatewayServer::State::price_of(const std::string& model) const {
  auto it = price_overrides.find(model);
  if (it != price_overrides.end()) return &it->second;
  // The catalog look-up tries several spellings of the name; remember the answer per model
  // for the day (prices change by effective date, so the memo is dropped at midnight UTC).
  int64_t day = clock.now_ms() / 86'400'000;
  std::lock_guard<std::mutex> lock(price_memo_mutex);
  if (day != price_memo_day) {
    price_memo.clear();
    price_memo_day = day;
  }
  auto memo = price_memo.find(model);
  if (memo != price_memo.end()) return memo->second;
  const pricing::ModelPrice* price = catalog.find_model(model, clock.now_ms() / 1000);
  price_memo.emplace(model, price);
  return price;
}

net::awaitable<bool> GatewayServer::State::send(beast::tcp_stream& client, const Request& req,
                                                http::status status, std::string body,
                                                std::string content_type, int64_t retry_after_s,
                                                bool cache_hit) {
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::content_type, content_type);
  if (cache_hit) res.set("x-aifinops-cache", "hit");
  if (retry_after_s > 0) res.set(http::field::retry_after, std::to_string(retry_after_s));
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  auto [ec, n] = co_await http::async_write(client, res, kAsTuple);
  co_return !ec && req.keep_alive();
}

net::awaitable<void> GatewayServer::State::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kAsTuple);
    if (ec) {
      if (stopping || ec == net::error::operation_aborted) co_return;
      continue;  // e.g. too many open files: keep serving the connections we have
    }
    socket.set_option(tcp::no_delay(true));
    net::co_spawn(acceptor.get_executor(), serve_connection(std::move(socket)), net::detached);
  }
}

net::awaitable<void> GatewayServer::State::serve_connection(tcp::socket socket) {
  beast::tcp_stream client(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(config.max_body_bytes);
    client.expires_after(std::chrono::seconds(300));  // idle keep-alive connections
    auto [ec, n] = co_await http::async_read(client, buffer, parser, kAsTuple);
    if (ec == http::error::body_limit) {
      Request req = parser.release();
      metrics.record_unauthenticated(413);
      auto reply =
          send(client, req, http::status::payload_too_large,
               error_body(false, "invalid_request_error", "request_too_large",
                          "Request body is larger than the gateway's limit of " +
                              std::to_string(config.max_body_bytes) + " bytes (max_body_bytes)."));
      co_await std::move(reply);
      break;
    }
    if (ec) break;  // closed, timed out or not HTTP: nothing to answer
    client.expires_never();
    Request req = parser.release();
    ++in_flight;
    bool keep_alive = co_await handle(client, req);
    --in_flight;
    if (!keep_alive || stopping) break;
  }
  beast::error_code ignored;
  client.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

net::awaitable<bool> GatewayServer::State::handle(beast::tcp_stream& client, Request& req) {
  int64_t start_micros = steady_micros();
  int64_t start_ms = clock.now_ms();
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  if (req.method() == http::verb::get && path == "/health") {
    auto reply = send(client, req, http::status::ok, "{\"status\":\"ok\"}");
    co_return co_await std::move(reply);
  }
  if (req.method() == http::verb::get && path == "/metrics") {
    auto reply = send(client, req, http::status::ok, metrics.render(), "text/plain; version=0.0.4");
    co_return co_await std::move(reply);
  }

  Route route{};
  bool known_route = match_route(target, route);
  bool anthropic = known_route && route.format == WireFormat::kAnthropicMessages;
  if (req.method() == http::verb::get && path == "/v1/models") {
    std::string why;
    const KeyConfig* key = authenticate(req, nullptr, why);
    if (key == nullptr) {
      metrics.record_unauthenticated(401);
      {
        auto reply = send(client, req, http::status::unauthorized,
                          error_body(false, "invalid_request_error", "invalid_api_key", why));
        co_return co_await std::move(reply);
      }
    }
    std::vector<std::string> models;
    bool any = std::find(key->models.begin(), key->models.end(), "*") != key->models.end();
    if (!any)
      models = key->models;
    else
      for (const RouteConfig& r : config.routes)
        if (r.model != "*") models.push_back(r.model);
    std::string body = "{\"object\":\"list\",\"data\":[";
    for (size_t i = 0; i < models.size(); ++i)
      body += std::string(i ? "," : "") + "{\"id\":\"" + json_escape(models[i]) +
              "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"aifinops\"}";
    body += "]}";
    {
      auto reply = send(client, req, http::status::ok, body);
      co_return co_await std::move(reply);
    }
  }
  if (!known_route || req.method() != http::verb::post) {
    metrics.record_unauthenticated(404);
    {
      auto reply = send(
          client, req, http::status::not_found,
          error_body(false, "invalid_request_error", "unknown_url",
                     "Unknown route " + std::string(req.method_string()) + " " + std::string(path) +
                         ": the gateway meters POST /v1/chat/completions, "
                         "/v1/completions, /v1/embeddings, /v1/responses, "
                         "/v1/messages and Azure deployment routes."));
      co_return co_await std::move(reply);
    }
  }
  std::string why;
  const KeyConfig* key = authenticate(req, &route, why);
  if (key == nullptr) {
    metrics.record_unauthenticated(401);
    {
      auto reply =
          send(client, req, http::status::unauthorized,
               error_body(anthropic, anthropic ? "authentication_error" : "invalid_request_error",
                          "invalid_api_key", why));
      co_return co_await std::move(reply);
    }
  }
  std::string team = key->tags.count("team") ? key->tags.at("team") : "";
  auto parsed = parse_request(route.format, req.body(), route.deployment.empty());
  if (!parsed) metrics.record_request(key->id, team, "", 400, {}, Money{}, false);
  if (!parsed) {
    auto reply = send(
        client, req, http::status::bad_request,
        error_body(anthropic, "invalid_request_error", "invalid_request", parsed.error().message));
    co_return co_await std::move(reply);
  }
  RequestInfo info = *parsed;
  std::string model = info.model.empty() ? route.deployment : info.model;
  bool allowed = std::any_of(key->models.begin(), key->models.end(),
                             [&](const std::string& m) { return m == "*" || m == model; });
  if (!allowed) metrics.record_request(key->id, team, model, 403, {}, Money{}, false);
  if (!allowed) {
    auto reply = send(client, req, http::status::forbidden,
                      error_body(anthropic, "permission_error", "model_not_allowed",
                                 "Key " + key->id + " may not use model " + model + "."));
    co_return co_await std::move(reply);
  }
  const UpstreamConfig* upstream_config = route_model(model);
  bool speaks = upstream_config != nullptr && ((route.format == WireFormat::kAnthropicMessages) ==
                                               (upstream_config->kind == UpstreamKind::kAnthropic));
  if (!speaks) {
    auto reply = send(client, req, http::status::bad_request,
                      error_body(anthropic, "invalid_request_error", "no_route",
                                 "No upstream serves model " + model + " on " + std::string(path) +
                                     " (check routes: in gateway.yaml)."));
    co_return co_await std::move(reply);
  }
  UpstreamTarget& upstream = *upstreams.at(upstream_config->name);

  // The exact-match cache: deterministic requests (temperature 0), or any with the header
  // "x-aifinops-cache: true". Never shared across teams unless configured.
  std::string cache_key;
  if (cache != nullptr) {
    auto opt_in = req.find("x-aifinops-cache");
    bool wanted =
        info.deterministic || (opt_in != req.end() && beast::iequals(opt_in->value(), "true"));
    if (wanted) {
      auto team = key->tags.find("team");
      std::string scope = config.cache.share_across_teams ? "shared"
                          : team != key->tags.end()       ? "team=" + team->second
                                                          : "key=" + key->id;
      cache_key = response_cache_key(scope, path, info.stream, req.body());
    }
    if (!cache_key.empty()) {
      if (std::optional<CachedResponse> hit = cache->find(cache_key)) {
        auto reply = serve_cached(client, req, route, *key, model, info, *upstream_config,
                                  std::move(*hit), start_ms, start_micros);
        co_return co_await std::move(reply);
      }
    }
  }

  // Reserve the worst case: the estimated input plus the most output the request allows.
  const pricing::ModelPrice* price = price_of(model);
  int64_t max_output = info.max_output_tokens > 0 ? info.max_output_tokens
                       : (price != nullptr && price->max_output_tokens > 0)
                           ? price->max_output_tokens
                           : 4096;
  if (route.format == WireFormat::kOpenAiEmbedding) max_output = 0;
  AdmissionRequest admission;
  admission.key_id = key->id;
  admission.model = model;
  admission.tags = key->tags;
  admission.limits = key->limits;
  admission.estimated_tokens = info.estimated_input_tokens + max_output;
  if (price != nullptr) {
    pricing::TokenUsage worst{info.estimated_input_tokens, 0, 0, max_output, 0, false};
    admission.worst_case_cost = pricing::token_cost(*price, worst);
  }
  Admission admitted = limits.admit(admission);
  if (!admitted.admitted) {
    metrics.record_rejection(key->id, admitted.refusal.limit);
    metrics.record_request(key->id, team, model, 429, {}, Money{}, false);
    {
      auto reply = send(
          client, req, http::status::too_many_requests,
          error_body(anthropic, "rate_limit_error",
                     admitted.refusal.limit == "budget" ? "budget_exceeded" : "rate_limit_exceeded",
                     admitted.refusal.message),
          "application/json", admitted.refusal.retry_after_s);
      co_return co_await std::move(reply);
    }
  }
  auto forwarded = proxy(client, req, route, *key, info, model, upstream, price,
                         admitted.reservation, std::move(cache_key), start_ms, start_micros);
  co_return co_await std::move(forwarded);
}

net::awaitable<bool> GatewayServer::State::serve_cached(
    beast::tcp_stream& client, const Request& req, const Route& route, const KeyConfig& key,
    const std::string& model, const RequestInfo& info, const UpstreamConfig& upstream,
    CachedResponse hit, int64_t start_ms, int64_t start_micros) {
  // A hit costs nothing; the record keeps what the upstream call would have cost.
  UsageEvent event = new_event(key, model, upstream, route, start_ms);
  event.status = 200;
  event.cache_hit = true;
  event.cache_saving = hit.cost;
  event.latency_ms = (steady_micros() - start_micros) / 1000;
  if (auto spooled = spool.append(event); !spooled)
    std::fprintf(stderr, "aifinops gateway: %s\n", spooled.error().message.c_str());
  metrics.record_request(key.id, key.tags.count("team") ? key.tags.at("team") : "", model, 200, {},
                         Money{}, true);
  if (!info.stream) {
    auto reply =
        send(client, req, http::status::ok, std::move(hit.body), hit.content_type, 0, true);
    co_return co_await std::move(reply);
  }
  // A cached stream is replayed as a stream.
  http::response<http::empty_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, hit.content_type);
  res.set(http::field::cache_control, "no-cache");
  res.set("x-aifinops-cache", "hit");
  res.keep_alive(req.keep_alive());
  res.chunked(true);
  http::response_serializer<http::empty_body> serializer{res};
  auto [hec, hn] = co_await http::async_write_header(client, serializer, kAsTuple);
  if (hec) co_return false;
  auto chunk_out = http::make_chunk(net::buffer(hit.body));
  auto [wec, wn] = co_await net::async_write(client, chunk_out, kAsTuple);
  if (wec) co_return false;
  auto last_chunk = http::make_chunk_last();
  auto [lec, ln] = co_await net::async_write(client, last_chunk, kAsTuple);
  co_return !lec && req.keep_alive();
}

net::awaitable<bool> GatewayServer::State::proxy(beast::tcp_stream& client, Request& req,
                                                 const Route& route, const KeyConfig& key,
                                                 const RequestInfo& info, const std::string& model,
                                                 UpstreamTarget& upstream,
                                                 const pricing::ModelPrice* price,
                                                 uint64_t reservation, std::string cache_key,
                                                 int64_t start_ms, int64_t start_micros) {
  bool anthropic = route.format == WireFormat::kAnthropicMessages;
  const UpstreamConfig& uc = *upstream.config;
  // Ask for usage on streams whose client did not, and hide that extra chunk again.
  bool inject_usage =
      info.stream && !info.client_asked_usage &&
      (route.format == WireFormat::kOpenAiChat || route.format == WireFormat::kOpenAiCompletion);

  http::request<http::string_body> up{http::verb::post, "", 11};
  std::string target = upstream.base_path;
  if (uc.kind == UpstreamKind::kAzureOpenAi) {
    std::string deployment = route.deployment.empty() ? model : route.deployment;
    std::string version =
        query_parameter(std::string_view(req.target().data(), req.target().size()), "api-version");
    if (version.empty()) version = uc.api_version.empty() ? "2024-10-21" : uc.api_version;
    target += "/openai/deployments/" + deployment + route.suffix + "?api-version=" + version;
  } else {
    target += route.suffix;
  }
  up.target(target);
  up.set(http::field::host, upstream.host + ":" + upstream.port);
  up.set(http::field::content_type, "application/json");
  up.set(http::field::user_agent, "aifinops-gateway");
  if (auto accept = req.find(http::field::accept); accept != req.end())
    up.set(http::field::accept, accept->value());
  switch (uc.kind) {
    case UpstreamKind::kOpenAi:
      if (!upstream.secret.empty()) up.set(http::field::authorization, "Bearer " + upstream.secret);
      break;
    case UpstreamKind::kAzureOpenAi:
      if (!upstream.secret.empty()) up.set("api-key", upstream.secret);
      break;
    case UpstreamKind::kAnthropic: {
      if (!upstream.secret.empty()) up.set("x-api-key", upstream.secret);
      auto version = req.find("anthropic-version");
      up.set("anthropic-version",
             version != req.end() ? std::string(version->value()) : "2023-06-01");
      if (auto beta = req.find("anthropic-beta"); beta != req.end())
        up.set("anthropic-beta", beta->value());
      break;
    }
  }
  up.keep_alive(true);
  up.body() = inject_usage ? with_include_usage(req.body()) : std::move(req.body());
  up.prepare_payload();

  UsageEvent event = new_event(key, model, uc, route, start_ms);
  event.price_version = price != nullptr ? price->version : 0;
  std::string team = key.tags.count("team") ? key.tags.at("team") : "";

  // Finish: price, spool (before the last byte), settle, count.
  auto finish = [&](int status, const TokenCounts& tokens, bool estimated, bool partial) {
    event.status = status;
    event.tokens = tokens;
    event.estimated = estimated;
    event.partial = partial;
    if (price != nullptr) {
      pricing::TokenUsage usage{tokens.input,  tokens.cached_input, tokens.cache_write,
                                tokens.output, tokens.reasoning,    false};
      event.cost = pricing::token_cost(*price, usage);
    } else {
      event.estimated = true;  // no price known: recorded at 0, flagged, never silently free
    }
    event.latency_ms = (steady_micros() - start_micros) / 1000;
    if (auto spooled = spool.append(event); !spooled)
      std::fprintf(stderr, "aifinops gateway: %s\n", spooled.error().message.c_str());
    limits.settle(reservation, tokens.input + tokens.output, event.cost);
    metrics.record_request(key.id, team, model, status, tokens, event.cost, false);
  };
  auto fail_upstream = [&](http::status status, std::string message) -> net::awaitable<bool> {
    limits.settle(reservation, 0, Money{});
    metrics.record_request(key.id, team, model, (int)status, {}, Money{}, false);
    {
      auto reply = send(client, req, status,
                        error_body(anthropic, "api_error",
                                   status == http::status::gateway_timeout ? "upstream_timeout"
                                                                           : "upstream_error",
                                   message));
      co_return co_await std::move(reply);
    }
  };

  // A pooled connection may have been closed by the upstream while idle: one retry on a
  // fresh connection, as long as nothing of the response has been read.
  std::unique_ptr<UpstreamConnection> conn;
  beast::flat_buffer ubuf;
  std::optional<http::response_parser<http::buffer_body>> parser;  // not reassignable: re-emplaced
  int64_t sent_micros = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool pooled = false;
    {
      std::lock_guard<std::mutex> lock(upstream.mutex);
      if (!upstream.idle.empty()) {
        conn = std::move(upstream.idle.back());
        upstream.idle.pop_back();
        pooled = true;
      }
    }
    if (!conn) {
      conn = std::make_unique<UpstreamConnection>();
      if (upstream.tls)
        conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(client.get_executor(),
                                                                           *upstream.tls_context);
      else
        conn->plain = std::make_unique<beast::tcp_stream>(client.get_executor());
      conn->tcp().expires_after(std::chrono::seconds(uc.timeout_s));
      auto [ec, ep] = co_await conn->tcp().async_connect(upstream.endpoints, kAsTuple);
      if (!ec) conn->tcp().socket().set_option(tcp::no_delay(true));
      if (!ec && upstream.tls) {
        // SNI and certificate checks against the upstream's host name.
        SSL_set_tlsext_host_name(conn->tls->native_handle(), upstream.host.c_str());
        conn->tls->set_verify_callback(net::ssl::host_name_verification(upstream.host));
        auto [hec] = co_await conn->tls->async_handshake(net::ssl::stream_base::client, kAsTuple);
        if (hec) {
          std::string message =
              "TLS handshake with upstream " + uc.name + " failed: " + hec.message() + ".";
          auto reply = fail_upstream(http::status::bad_gateway, message);
          co_return co_await std::move(reply);
        }
      }
      if (ec) {
        std::string message = "Upstream " + uc.name + " is unreachable: " + ec.message() + ".";
        auto reply = fail_upstream(
            ec == beast::error::timeout ? http::status::gateway_timeout : http::status::bad_gateway,
            message);
        co_return co_await std::move(reply);
      }
    }
    conn->tcp().expires_after(std::chrono::seconds(uc.timeout_s));
    sent_micros = steady_micros();
    auto [wec, wn] = co_await conn->write(up);
    beast::error_code rec;
    if (!wec) {
      ubuf.clear();
      parser.emplace();
      parser->body_limit(boost::none);
      auto [ec2, n2] = co_await conn->read_header(ubuf, *parser);
      rec = ec2;
    }
    if (!wec && !rec) break;
    conn.reset();
    beast::error_code ec = wec ? wec : rec;
    if (pooled && attempt == 0 && ec != beast::error::timeout) continue;
    {
      auto reply = fail_upstream(
          ec == beast::error::timeout ? http::status::gateway_timeout : http::status::bad_gateway,
          ec == beast::error::timeout ? "Upstream " + uc.name + " did not answer within " +
                                            std::to_string(uc.timeout_s) + " s."
                                      : "Upstream " + uc.name + " failed: " + ec.message() + ".");
      co_return co_await std::move(reply);
    }
  }

  auto& head = *parser;
  auto& upstream_res = head.get();
  int status = (int)upstream_res.result_int();
  std::string content_type(upstream_res[http::field::content_type]);
  bool event_stream = content_type.find("text/event-stream") != std::string::npos;
  char chunk[8 * 1024];  // per in-flight request: bounds memory with many open streams
  bool upstream_reusable = true;

  if (!event_stream) {
    // Whole body, then usage, then the spool record, then the response.
    std::string body;
    while (!head.is_done()) {
      upstream_res.body().data = chunk;
      upstream_res.body().size = sizeof chunk;
      auto [ec, n] = co_await conn->read(ubuf, head);
      body.append(chunk, sizeof chunk - upstream_res.body().size);
      if (ec == http::error::need_buffer) continue;
      if (ec) {
        conn.reset();
        {
          auto reply = fail_upstream(
              ec == beast::error::timeout ? http::status::gateway_timeout
                                          : http::status::bad_gateway,
              "Upstream " + uc.name + " response was cut short: " + ec.message() + ".");
          co_return co_await std::move(reply);
        }
      }
    }
    metrics.record_upstream_latency(uc.name, steady_micros() - sent_micros);
    upstream_reusable = head.keep_alive();
    bool found = false;
    TokenCounts tokens = status < 400 ? usage_from_body(route.format, body, found) : TokenCounts{};
    bool estimated = false;
    if (status < 400 && !found) {
      tokens.input = info.estimated_input_tokens;
      tokens.output = (int64_t)(body.size() + 3) / 4;
      estimated = true;
    }
    event.ttft_ms = (steady_micros() - start_micros) / 1000;
    finish(status, tokens, estimated, false);
    if (!cache_key.empty() && status == 200 && !estimated)
      cache->insert(cache_key, CachedResponse{content_type, body, tokens, event.cost});
    if (upstream_reusable) {
      std::lock_guard<std::mutex> lock(upstream.mutex);
      upstream.idle.push_back(std::move(conn));
    }
    {
      auto reply = send(client, req, (http::status)status, std::move(body),
                        content_type.empty() ? "application/json" : content_type);
      co_return co_await std::move(reply);
    }
  }

  // Streaming: forward events as they come, re-chunked for the client.
  http::response<http::empty_body> res{(http::status)status, req.version()};
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-cache");
  res.keep_alive(req.keep_alive());
  res.chunked(true);
  http::response_serializer<http::empty_body> serializer{res};
  auto [hec, hn] = co_await http::async_write_header(client, serializer, kAsTuple);
  bool client_gone = static_cast<bool>(hec);
  SseUsageReader reader(route.format, inject_usage);
  std::string out;
  std::string captured;  // what the client received, for the cache
  bool first = true;
  bool upstream_failed = false;
  while (!head.is_done() && !client_gone) {
    upstream_res.body().data = chunk;
    upstream_res.body().size = sizeof chunk;
    // timeout_s is the longest silence between events, not a limit on the whole stream.
    conn->tcp().expires_after(std::chrono::seconds(uc.timeout_s));
    auto [ec, n] = co_await conn->read_some(ubuf, head);
    size_t got = sizeof chunk - upstream_res.body().size;
    // Bytes that came with an error are still the client's: relay them first.
    upstream_failed = ec && ec != http::error::need_buffer;
    if (got == 0) {
      if (upstream_failed) break;
      continue;
    }
    if (first) {
      event.ttft_ms = (steady_micros() - start_micros) / 1000;
      first = false;
    }
    out.clear();
    reader.feed(std::string_view(chunk, got), out);
    if (out.empty()) {
      if (upstream_failed) break;
      continue;
    }
    if (!cache_key.empty()) captured += out;
    auto chunk_out = http::make_chunk(net::buffer(out));
    auto [wec, wn] = co_await net::async_write(client, chunk_out, kAsTuple);
    if (wec) client_gone = true;
    if (upstream_failed) break;
  }
  metrics.record_upstream_latency(uc.name, steady_micros() - sent_micros);
  out.clear();
  reader.finish(out);
  bool partial = client_gone || upstream_failed || !reader.complete();
  TokenCounts tokens = reader.usage();
  bool estimated = !reader.found_usage();
  if (estimated) {
    tokens = TokenCounts{};
    tokens.input = info.estimated_input_tokens;
    tokens.output = (reader.output_text_bytes() + 3) / 4;
  }
  finish(status, tokens, estimated, partial);  // spooled before the last chunk goes out
  if (client_gone || upstream_failed || !head.is_done()) {
    conn.reset();  // cancels the upstream request
    co_return false;
  }
  if (head.keep_alive()) {
    std::lock_guard<std::mutex> lock(upstream.mutex);
    upstream.idle.push_back(std::move(conn));
  }
  if (!cache_key.empty() && status == 200 && !estimated)
    cache->insert(cache_key, CachedResponse{content_type, captured + out, tokens, event.cost});
  if (!out.empty()) {
    auto chunk_out = http::make_chunk(net::buffer(out));
    auto [wec, wn] = co_await net::async_write(client, chunk_out, kAsTuple);
    if (wec) co_return false;
  }
  auto last_chunk = http::make_chunk_last();
  auto [lec, ln] = co_await net::async_write(client, last_chunk, kAsTuple);
  co_return !lec && req.keep_alive();
}

GatewayServer::GatewayServer(const GatewayConfig& config, const pricing::Catalog& catalog,
                             LimitStore& limits, ResponseCache* cache, Spool& spool,
                             const Clock& clock)
    : state_(std::make_unique<State>(config, catalog, limits, cache, spool, clock)) {}

GatewayServer::~GatewayServer() = default;

Result<void> GatewayServer::start() {
  State& s = *state_;
  for (const KeyConfig& k : s.config.keys) s.keys_by_hash[k.key_sha256] = &k;
  for (const auto& [model, o] : s.config.prices) {
    pricing::ModelPrice p;
    p.model = model;
    p.source = "gateway.yaml prices";
    const pricing::ModelPrice* base = s.catalog.find_model(model, s.clock.now_ms() / 1000);
    if (base != nullptr) p = *base;
    p.version = 0;  // an override is not a catalog version
    if (o.input) p.prices.input = o.input;
    if (o.cached_input) p.prices.cached_input = o.cached_input;
    if (o.cache_write) p.prices.cache_write = o.cache_write;
    if (o.output) p.prices.output = o.output;
    if (o.reasoning) p.prices.reasoning = o.reasoning;
    s.price_overrides[model] = p;
  }
  tcp::resolver resolver(s.ioc);
  for (const UpstreamConfig& u : s.config.upstreams) {
    auto target = std::make_unique<UpstreamTarget>();
    target->config = &u;
    std::string_view url = u.base_url;
    target->tls = url.rfind("https://", 0) == 0;
    url.remove_prefix(target->tls ? 8 : 7);
    if (target->tls) {
      target->tls_context = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
      beast::error_code tls_ec;
      if (u.ca_file.empty())
        target->tls_context->set_default_verify_paths(tls_ec);
      else
        target->tls_context->load_verify_file(u.ca_file, tls_ec);
      if (tls_ec)
        return make_error(ErrorCode::kInvalidArgument,
                          "upstreams: " + u.name + ": cannot load CA certificates" +
                              (u.ca_file.empty() ? "" : " from " + u.ca_file) + ": " +
                              tls_ec.message());
      target->tls_context->set_verify_mode(net::ssl::verify_peer);
    }
    size_t slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    target->base_path = slash == std::string_view::npos ? "" : std::string(url.substr(slash));
    size_t colon = authority.rfind(':');
    target->host = std::string(authority.substr(0, colon));
    target->port = colon == std::string_view::npos ? (target->tls ? "443" : "80")
                                                   : std::string(authority.substr(colon + 1));
    beast::error_code ec;
    target->endpoints = resolver.resolve(target->host, target->port, ec);
    if (ec)
      return make_error(ErrorCode::kInvalidArgument, "upstreams: " + u.name + ": cannot resolve " +
                                                         target->host + ": " + ec.message());
    if (!u.api_key_env.empty()) {
      const char* value = std::getenv(u.api_key_env.c_str());
      if (value != nullptr) target->secret = value;
    } else if (!u.api_key_file.empty()) {
      std::ifstream in(u.api_key_file);
      if (!in)
        return make_error(ErrorCode::kIo,
                          "upstreams: " + u.name + ": cannot read api_key_file " + u.api_key_file);
      std::getline(in, target->secret);
    }
    s.upstreams[u.name] = std::move(target);
  }
  std::string_view listen = s.config.listen;
  size_t colon = listen.rfind(':');
  std::string host(listen.substr(0, colon)), port(listen.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec)
    return make_error(ErrorCode::kInvalidArgument, "listen: \"" + host + "\" is not an IP address");
  tcp::endpoint endpoint(address, (unsigned short)std::stoi(port));
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return make_error(ErrorCode::kIo, "listen " + s.config.listen + ": " + ec.message());
  s.bound_port = s.acceptor.local_endpoint().port();
  net::co_spawn(s.ioc, s.accept_loop(), net::detached);
  return {};
}

int GatewayServer::port() const { return state_->bound_port; }

void GatewayServer::run() {
  State& s = *state_;
  std::vector<std::thread> threads;
  for (int64_t i = 1; i < s.config.threads; ++i) threads.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (std::thread& t : threads) t.join();
}

void GatewayServer::stop(int64_t grace_ms) {
  State& s = *state_;
  net::post(s.ioc, [&s] {
    s.stopping = true;
    beast::error_code ignored;
    s.acceptor.close(ignored);
  });
  // Let in-flight requests finish, then stop the loop (idle keep-alive connections close).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (s.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  s.ioc.stop();
}

}  // namespace aifinops::gateway
