#include "gateway/server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <memory_resource>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "core/json_text.h"
#include "ingest/otlp.h"
#include "gateway/async_admission.h"
#include "gateway/http_io.h"
#include "gateway/metrics.h"
#include "gateway/repeat_tracker.h"

namespace aifinops::gateway {
namespace {

using namespace http_io;  // net, beast, http, tcp, Deadline, read, write_now, ...
// NOTE: g++ 12 can destroy the temporaries of a full-expression that contains co_await
// twice. So replies are built in their own statement ("auto reply = send(...);") and only
// named objects appear in co_await expressions.

/// Read buffers of client and upstream connections start with this capacity. Beast reads
/// at most the free capacity (and at least 512 bytes), and a message's bytes are consumed
/// as they are parsed, so a buffer that starts small stays small: a 2 KB request then took
/// four reads. 8 KiB takes a typical request or response head and a few SSE events in one.
constexpr size_t kReadBufferBytes = 8 * 1024;

/// How long a client connection may stay idle between requests, and how long writing a
/// response to a client may take.
constexpr auto kClientTimeout = std::chrono::seconds(300);

/// Per-thread pools of buffers that requests need only while they are served, kept for the
/// next request instead of freed: above what malloc keeps in its per-thread cache (1 KiB),
/// each one otherwise paid a trip into the allocator's bins and back. At most kPooled of
/// each kind per thread, so an idle gateway holds a few hundred KiB at most for them,
/// whatever the number of requests it once served at the same time. A buffer goes back to
/// the pool of the thread it is released on (with several I/O threads, a request may end on
/// another thread than it started: each pool stays bounded).
struct ThreadBuffers {
  static constexpr size_t kPooled = 16;
  /// Texts that grew beyond this (a large body or event) are freed rather than kept.
  static constexpr size_t kTextBytes = 16 * 1024;
  static constexpr size_t kRelayBytes = 8 * 1024;

  std::vector<std::unique_ptr<char[]>> relays;
  std::vector<std::string> texts;

  static ThreadBuffers& this_thread() {
    thread_local ThreadBuffers pool;
    return pool;
  }
  /// The last buffer `pool` holds, or a new one from `make` when it holds none.
  template <class Buffer, class Make>
  static Buffer take(std::vector<Buffer>& pool, Make make) {
    if (pool.empty()) return make();
    Buffer buffer = std::move(pool.back());
    pool.pop_back();
    return buffer;
  }
};

/// A text from the thread's pool: the body of a response that is not a stream, or what a
/// stream's read turns into for the client (which grew, reallocating, to a stream's size on
/// every stream). Empty when taken.
class PooledText {
 public:
  PooledText()
      : text_(ThreadBuffers::take(ThreadBuffers::this_thread().texts, [] {
          std::string text;
          text.reserve(ThreadBuffers::kRelayBytes + 256);  // what one relay read turns into
          return text;
        })) {}
  ~PooledText() {
    ThreadBuffers& pool = ThreadBuffers::this_thread();
    if (pool.texts.size() < ThreadBuffers::kPooled &&
        text_.capacity() <= ThreadBuffers::kTextBytes) {
      text_.clear();
      pool.texts.push_back(std::move(text_));
    }
  }
  PooledText(const PooledText&) = delete;
  PooledText& operator=(const PooledText&) = delete;

  std::string& text() { return text_; }

 private:
  std::string text_;
};

/// The buffers a stream needs while it is relayed: the upstream's bytes (8 KiB) and the
/// text for the client, both from the thread's pools.
class StreamBuffers {
 public:
  static constexpr size_t kRelayBytes = ThreadBuffers::kRelayBytes;

  StreamBuffers()
      : relay_(ThreadBuffers::take(ThreadBuffers::this_thread().relays, [] {
          return std::make_unique_for_overwrite<char[]>(kRelayBytes);
        })) {}
  ~StreamBuffers() {
    ThreadBuffers& pool = ThreadBuffers::this_thread();
    if (pool.relays.size() < ThreadBuffers::kPooled) pool.relays.push_back(std::move(relay_));
  }
  StreamBuffers(const StreamBuffers&) = delete;
  StreamBuffers& operator=(const StreamBuffers&) = delete;

  char* relay() { return relay_.get(); }
  std::string& out() { return out_.text(); }

 private:
  std::unique_ptr<char[]> relay_;
  PooledText out_;
};

/// Lets an unordered_map of strings be searched with a string_view.
struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

/// A client connection: its socket, read buffer and deadline, for as long as it is open.
///
/// Writes come in two steps, so that the usual case costs no coroutine frame:
///   beast::error_code ec;
///   size_t sent = 0;
///   if (!client.write_now(buffers, ec, sent)) {
///     auto rest = client.write_rest(buffers, sent);
///     ec = co_await std::move(rest);
///   }
/// `buffers` is a std::array of net::const_buffer over text that outlives the write.
struct Client {
  Client(tcp::socket s, std::shared_ptr<Deadline> d)
      : socket(std::move(s)), deadline(std::move(d)) {}

  tcp::socket socket;
  beast::flat_buffer buffer;
  std::shared_ptr<Deadline> deadline;
  /// What the gateway keeps of the request being served and of its upstream response's
  /// head (RequestParser, ResponseParser), and its upstream request's head: one arena,
  /// emptied after each request, instead of an allocation for each. 2 KiB holds those of a
  /// typical exchange; more spills to the heap until release().
  std::array<std::byte, 2048> arena_space;
  std::pmr::monotonic_buffer_resource arena{arena_space.data(), arena_space.size()};

  /// True when the write is over: all of `buffers` went out, or `ec` says why not.
  template <class ConstBuffers>
  bool write_now(const ConstBuffers& buffers, beast::error_code& ec, size_t& sent) {
    sent = http_io::write_now(socket, buffers, ec);
    return ec || sent == net::buffer_size(buffers);
  }
  template <class ConstBuffers>
  net::awaitable<beast::error_code> write_rest(ConstBuffers buffers, size_t sent) {
    return http_io::write_rest(socket, buffers, sent, *deadline,
                               SteadyClock::now() + kClientTimeout);
  }
};

/// The head of a response to `req`, in its HTTP version and keep-alive, with a body of
/// `length` bytes (for a stream, set `chunked` instead).
ResponseHead head_for(const Request& req, http::status status, std::string_view content_type,
                      size_t length = 0, std::string_view extra = {}) {
  ResponseHead head;
  head.status = static_cast<unsigned>(status);
  head.version = req.version;
  head.keep_alive = req.keep_alive;
  head.content_type = content_type;
  head.content_length = length;
  head.extra = extra;
  return head;
}

/// The text of head_for()'s head.
std::string response_head(const Request& req, http::status status, std::string_view content_type,
                          size_t length, std::string_view extra = {}) {
  std::string text;
  text.reserve(112 + extra.size() + content_type.size());
  append_head(text, head_for(req, status, content_type, length, extra));
  return text;
}

/// Writes all of `buffers` to the client, for paths where a coroutine frame does not matter.
template <class ConstBuffers>
net::awaitable<beast::error_code> write_fully(Client& client, ConstBuffers buffers) {
  beast::error_code ec;
  size_t sent = 0;
  if (!client.write_now(buffers, ec, sent)) {
    auto rest = client.write_rest(buffers, sent);
    ec = co_await std::move(rest);
  }
  co_return ec;
}

/// A client route the gateway meters; anything else is refused with 404.
struct Route {
  WireFormat format;
  std::string_view operation;  ///< for the ledger: chat, completion, embedding, responses, messages
  std::string_view suffix;     ///< path below the upstream's base URL
  std::string deployment;      ///< Azure deployment from the URL, if any
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

/// One connection to an upstream: plain TCP, or TLS over TCP for https base URLs, with its
/// read buffer (kept with the connection, so its capacity serves every response it carries).
struct UpstreamConnection {
  std::optional<tcp::socket> plain;
  std::optional<beast::ssl_stream<tcp::socket>> tls;
  beast::flat_buffer buffer;

  tcp::socket& socket() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  /// Writes in two steps, as Client does. Over TLS everything goes through write_rest.
  template <class ConstBuffers>
  bool write_now(const ConstBuffers& buffers, beast::error_code& ec, size_t& sent) {
    ec = {};
    sent = 0;
    if (tls) return false;
    sent = http_io::write_now(*plain, buffers, ec);
    return ec || sent == net::buffer_size(buffers);
  }
  template <class ConstBuffers>
  net::awaitable<beast::error_code> write_rest(ConstBuffers buffers, size_t sent,
                                               Deadline& deadline, SteadyClock::time_point due) {
    if (!tls) return http_io::write_rest(*plain, buffers, sent, deadline, due);
    return write_tls(buffers, deadline, due);
  }
  template <class ConstBuffers>
  net::awaitable<beast::error_code> write_tls(ConstBuffers buffers, Deadline& deadline,
                                              SteadyClock::time_point due) {
    deadline.arm(socket(), due);
    auto [ec, n] = co_await net::async_write(*tls, buffers, kAsTuple);
    deadline.disarm();
    if (ec == net::error::operation_aborted && deadline.expired()) ec = beast::error::timeout;
    co_return ec;
  }

  template <class Parser>
  net::awaitable<beast::error_code> read(Parser& parser, Until until, Deadline& deadline,
                                         SteadyClock::time_point due) {
    return tls ? http_io::read(*tls, socket(), buffer, parser, until, deadline, due)
               : http_io::read(*plain, socket(), buffer, parser, until, deadline, due);
  }
};

struct UpstreamTarget {
  const UpstreamConfig* config = nullptr;
  bool tls = false;
  std::string host, port, base_path;
  std::string secret;
  /// The request header lines that are the same on every request to this upstream (Host,
  /// Content-Type, User-Agent and the provider's secret), written once at start.
  std::string fixed_headers;
  tcp::resolver::results_type endpoints;
  std::unique_ptr<net::ssl::context> tls_context;  ///< system CA store, or ca_file
  std::mutex mutex;
  std::vector<std::unique_ptr<UpstreamConnection>> idle;  ///< keep-alive connections
};

std::string_view provider_name(UpstreamKind kind) {
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

/// The catalog's name of a provider an upstream kind serves.
std::string_view catalog_provider(UpstreamKind kind) {
  switch (kind) {
    case UpstreamKind::kOpenAi:
      return "openai";
    case UpstreamKind::kAzureOpenAi:
      return "azure";
    case UpstreamKind::kAnthropic:
      return "anthropic";
  }
  return "";
}

/// Every model the routes can serve: the models routes name, and for a "*" route the
/// catalog's models of its upstream's provider that a metered route serves (chat,
/// completion, embedding, responses), by the name a caller sends ("azure/gpt-4o" is listed
/// as "gpt-4o"). Sorted, without repeats.
std::vector<std::string> servable_models(const GatewayConfig& config,
                                         const pricing::Catalog& catalog, EpochSeconds now) {
  std::set<std::string> models;
  std::set<std::string_view> providers;
  for (const RouteConfig& r : config.routes) {
    if (r.model != "*") {
      models.insert(r.model);
      continue;
    }
    for (const UpstreamConfig& u : config.upstreams)
      if (u.name == r.upstream) providers.insert(catalog_provider(u.kind));
  }
  if (!providers.empty()) {
    for (const pricing::ModelPrice* p : catalog.model_prices()) {
      if (p->effective_from > now || !providers.contains(p->provider)) continue;
      if (p->mode != "chat" && p->mode != "completion" && p->mode != "embedding" &&
          p->mode != "responses")
        continue;
      std::string_view name = p->model;
      if (name.size() > p->provider.size() && name.starts_with(p->provider) &&
          name[p->provider.size()] == '/')
        name.remove_prefix(p->provider.size() + 1);
      models.emplace(name);
    }
  }
  return {models.begin(), models.end()};
}

/// An OpenAI-shaped model list.
std::string models_body(const std::vector<std::string>& models) {
  std::string body = "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < models.size(); ++i)
    body += std::string(i ? "," : "") + "{\"id\":\"" + json_escape(models[i]) +
            "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"aifinops\"}";
  body += "]}";
  return body;
}

int64_t steady_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

namespace {

/// SHA-256 of `text` as 64 lower-case hex digits in `hex`. The digest is fetched once and
/// each thread keeps its context: EVP_Digest looks the algorithm up and allocates a context
/// on every call, which cost more than hashing a key.
void sha256_hex(std::string_view text, char (&hex)[64]) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (kSha256 == nullptr || context.ctx == nullptr ||
      EVP_DigestInit_ex2(context.ctx, kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.ctx, text.data(), text.size()) != 1 ||
      EVP_DigestFinal_ex(context.ctx, digest, &length) != 1 || length != 32)
    std::abort();  // the crypto library is broken: never guess about keys
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < 32; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 15];
  }
}

}  // namespace

std::string sha256_hex(std::string_view text) {
  char hex[64];
  sha256_hex(text, hex);
  return std::string(hex, sizeof hex);
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

/// What the repeat count learnt of a request on arrival, for its record once answered.
struct RepeatCheck {
  RepeatMark mark = RepeatMark::kUntracked;
  uint64_t fingerprint = 0;
};

struct GatewayServer::State {
  const GatewayConfig& config;
  const pricing::Catalog& catalog;
  LimitStore& limits;
  ResponseCache* cache;
  Spool& spool;
  const Clock& clock;
  /// Counts duplicate requests, cache on or off; null when cache.repeat_window_s is 0.
  std::unique_ptr<RepeatTracker> repeats =
      config.cache.repeat_window_s > 0
          ? std::make_unique<RepeatTracker>(config.cache.repeat_window_s * 1000,
                                            config.cache.repeat_max_entries, clock)
          : nullptr;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  Watchdog watchdog;
  std::unordered_map<std::string, const KeyConfig*, TextHash, std::equal_to<>> keys_by_hash;
  /// Each key's team tag (nullptr without one), by its place in config.keys: looked up on
  /// every request, found once at start.
  std::vector<const std::string*> key_teams;
  const std::string* team_tag(const KeyConfig& key) const {
    return key_teams[static_cast<size_t>(&key - config.keys.data())];
  }
  /// The key's team tag, or "".
  std::string_view team_of(const KeyConfig& key) const {
    const std::string* team = team_tag(key);
    return team != nullptr ? std::string_view(*team) : std::string_view();
  }
  std::unordered_map<std::string, std::unique_ptr<UpstreamTarget>> upstreams;
  std::unordered_map<std::string, pricing::ModelPrice> price_overrides;
  mutable std::mutex price_memo_mutex;
  mutable std::unordered_map<std::string, const pricing::ModelPrice*> price_memo;
  mutable int64_t price_memo_day = -1;
  GatewayMetrics metrics;
  std::function<void(const SoftBudgetNotice&)> soft_budget_sink;
  /// The body of GET /v1/models for a key allowed every model ("*"): built once at start.
  std::string all_models_body;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  int bound_port = 0;
  /// Tells this server's per-thread caches from another's at the same address.
  const uint64_t serial = next_serial();
  /// POST /v1/traces writes spans on this one thread, never on the I/O threads that proxy
  /// (a ledger write can wait on SQLite's lock); the connection is opened and used there only.
  /// Declared after the ledger so that the thread is joined before the ledger closes.
  std::unique_ptr<ledger::Ledger> otlp_ledger;
  net::thread_pool otlp_pool{1};

  static uint64_t next_serial() {
    static std::atomic<uint64_t> last{0};
    return ++last;
  }

  State(const GatewayConfig& c, const pricing::Catalog& cat, LimitStore& l, ResponseCache* rc,
        Spool& s, const Clock& clk)
      : config(c), catalog(cat), limits(l), cache(rc), spool(s), clock(clk) {}

  const KeyConfig* authenticate(const Request& req, const Route* route, std::string& why) const;
  const UpstreamConfig* route_model(const std::string& model) const;
  const pricing::ModelPrice* price_of(const std::string& model) const;
  void spool_usage(const UsageFigures& figures, const KeyConfig& key, std::string_view model,
                   const UpstreamConfig& upstream, const Route& route);

  net::awaitable<void> accept_loop();
  net::awaitable<void> serve_connection(tcp::socket socket);
  net::awaitable<bool> handle(Client& client, Request& req);
  net::awaitable<bool> receive_traces(Client& client, Request& req);
  /// Runs on otlp_pool: one export into the ledger.
  net::awaitable<ingest::OtlpResponse> ingest_traces(std::string body);
  net::awaitable<bool> send(Client& client, const Request& req, http::status status,
                            std::string body, std::string_view content_type = "application/json",
                            int64_t retry_after_s = 0, bool cache_hit = false);
  net::awaitable<bool> serve_cached(Client& client, const Request& req, const Route& route,
                                    const KeyConfig& key, const std::string& model,
                                    const RequestInfo& info, const UpstreamConfig& upstream,
                                    CachedResponse hit, int64_t start_ms, int64_t start_micros);
  net::awaitable<bool> proxy(Client& client, Request& req, const Route& route,
                             const KeyConfig& key, const RequestInfo& info,
                             const std::string& model, UpstreamTarget& upstream,
                             const pricing::ModelPrice* price, uint64_t reservation,
                             std::string cache_key, RepeatCheck repeat, int64_t start_ms,
                             int64_t start_micros);
};

const KeyConfig* GatewayServer::State::authenticate(const Request& req, const Route* route,
                                                    std::string& why) const {
  std::string_view presented;
  std::string_view auth = req.authorization;
  if (auth.size() > 7 && beast::iequals(auth.substr(0, 7), "Bearer ")) presented = auth.substr(7);
  if (presented.empty()) presented = req.x_api_key;  // Anthropic clients
  if (presented.empty()) presented = req.api_key;    // Azure OpenAI clients
  (void)route;
  if (presented.empty()) {
    why =
        "Missing API key: send your aifinops virtual key as 'Authorization: Bearer <key>' "
        "(or x-api-key / api-key).";
    return nullptr;
  }
  // Each thread remembers the last key it authenticated, for this server: a connection
  // sends the same key request after request, and hashing it cost more than the rest of
  // authenticating. The comparison is constant-time, as the digest's below. The key stays
  // in the thread's memory until another replaces it, as it stayed in the request's buffers.
  struct LastKey {
    uint64_t server = 0;
    std::string presented;
    const KeyConfig* key = nullptr;
  };
  thread_local LastKey last;
  if (last.server == serial && last.presented.size() == presented.size() &&
      CRYPTO_memcmp(last.presented.data(), presented.data(), presented.size()) == 0)
    return last.key;
  char hex[64];
  sha256_hex(presented, hex);
  std::string_view digest(hex, sizeof hex);
  auto it = keys_by_hash.find(digest);
  // The map finds the candidate by its digest; the final comparison is constant-time.
  if (it == keys_by_hash.end() ||
      CRYPTO_memcmp(it->second->key_sha256.data(), digest.data(), digest.size()) != 0) {
    why = "Invalid API key: this virtual key is not known to the gateway.";
    return nullptr;
  }
  last.server = serial;
  last.presented.assign(presented);
  last.key = it->second;
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

void GatewayServer::State::spool_usage(const UsageFigures& figures, const KeyConfig& key,
                                       std::string_view model, const UpstreamConfig& upstream,
                                       const Route& route) {
  // The description (key, tags, model, upstream, operation) is the same request after
  // request from one caller: each thread keeps the last one it rendered, for this server
  // (the configuration it points into belongs to one server).
  struct LastDescription {
    uint64_t server = 0;
    const KeyConfig* key = nullptr;
    const UpstreamConfig* upstream = nullptr;
    std::string_view operation;  // one of match_route's literals
    std::string model;
    std::string text;
  };
  thread_local LastDescription last;
  if (last.server != serial || last.key != &key || last.upstream != &upstream ||
      last.operation != route.operation || last.model != model) {
    last.server = serial;
    last.key = &key;
    last.upstream = &upstream;
    last.operation = route.operation;
    last.model.assign(model);
    last.text.clear();
    append_usage_description(last.text, key.id, key.tags, model, upstream.name,
                             provider_name(upstream.kind), route.operation);
  }
  if (auto spooled = spool.append(figures, last.text); !spooled)
    std::fprintf(stderr, "aifinops gateway: %s\n", spooled.error().message.c_str());
}

/// `content_type` must outlive the returned awaitable.
net::awaitable<bool> GatewayServer::State::send(Client& client, const Request& req,
                                                http::status status, std::string body,
                                                std::string_view content_type,
                                                int64_t retry_after_s, bool cache_hit) {
  std::string extra;
  if (cache_hit) extra += "x-aifinops-cache: hit\r\n";
  if (retry_after_s > 0) extra += "Retry-After: " + std::to_string(retry_after_s) + "\r\n";
  std::string head = response_head(req, status, content_type, body.size(), extra);
  auto buffers = std::array{cbuf(head), cbuf(body)};
  beast::error_code ec;
  size_t sent = 0;
  if (!client.write_now(buffers, ec, sent)) {
    auto rest = client.write_rest(buffers, sent);
    ec = co_await std::move(rest);
  }
  co_return !ec && req.keep_alive;
}

/// An OTLP error body: a google.rpc.Status.
std::string otlp_status(int code, std::string_view message) {
  std::string s = "{\"code\":" + std::to_string(code) + ",\"message\":";
  append_json_string(s, message);
  return s + "}";
}

net::awaitable<ingest::OtlpResponse> GatewayServer::State::ingest_traces(std::string body) {
  if (!otlp_ledger) {
    auto opened = ledger::open_ledger(config.ledger);
    if (!opened) {
      // UNAVAILABLE: exporters retry later.
      co_return ingest::OtlpResponse{503, "application/json",
                                     otlp_status(14, opened.error().message)};
    }
    otlp_ledger = std::move(*opened);
  }
  static const allocate::TagPolicy kTags = allocate::TagPolicy::defaults();
  ingest::IngestContext context{*otlp_ledger, catalog, kTags};
  ingest::IngestOptions options;
  options.format = "otlp";
  co_return ingest::otlp_response(
      ingest::ingest_otlp_json(context, body, "otlp:gateway", options));
}

/// OTLP/HTTP JSON traces from an application that holds a virtual key: the spans go into
/// the gateway's ledger as their own batches, beside the calls the gateway metered.
net::awaitable<bool> GatewayServer::State::receive_traces(Client& client, Request& req) {
  if (req.method != http::verb::post) {
    auto reply = send(client, req, http::status::method_not_allowed,
                      otlp_status(3, "POST an OTLP ExportTraceServiceRequest to /v1/traces"));
    co_return co_await std::move(reply);
  }
  std::string why;
  if (authenticate(req, nullptr, why) == nullptr) {
    metrics.record_unauthenticated(401);
    auto reply = send(client, req, http::status::unauthorized, otlp_status(16, why));
    co_return co_await std::move(reply);
  }
  std::string_view type = req.content_type;
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (!beast::iequals(type, "application/json")) {
    auto reply = send(client, req, http::status::unsupported_media_type,
                      otlp_status(3, "only OTLP/HTTP JSON is read (Content-Type: "
                                     "application/json); set the exporter's protocol to "
                                     "http/json"));
    co_return co_await std::move(reply);
  }
  ingest::OtlpResponse response = co_await net::co_spawn(
      otlp_pool.get_executor(), ingest_traces(std::move(req.body)), net::use_awaitable);
  auto reply = send(client, req, static_cast<http::status>(response.status),
                    std::move(response.body), response.content_type);
  co_return co_await std::move(reply);
}

net::awaitable<void> GatewayServer::State::accept_loop() {
  for (;;) {
    // With several I/O threads, each connection runs on its own strand, so that its
    // coroutine and the watchdog's cancellations never run at the same time.
    net::any_io_executor executor = config.threads > 1
                                        ? net::any_io_executor(net::make_strand(ioc))
                                        : net::any_io_executor(ioc.get_executor());
    auto [ec, socket] = co_await acceptor.async_accept(executor, kAsTuple);
    if (ec) {
      if (stopping || ec == net::error::operation_aborted) co_return;
      continue;  // e.g. too many open files: keep serving the connections we have
    }
    net::co_spawn(executor, serve_connection(std::move(socket)), net::detached);
  }
}

net::awaitable<void> GatewayServer::State::serve_connection(tcp::socket socket) {
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.non_blocking(true, ignored);  // writes are tried at once (write_now)
  auto deadline = std::make_shared<Deadline>(socket.get_executor());
  Client client(std::move(socket), deadline);
  client.buffer.reserve(kReadBufferBytes);
  watchdog.watch(deadline);
  for (;;) {
    // The previous request's fields are gone (they lived in this loop's body).
    client.arena.release();
    RequestParser parser(&client.arena);
    parser.body_limit(config.max_body_bytes);
    // An idle keep-alive connection closes after kClientTimeout.
    auto read_request = read(client.socket, client.socket, client.buffer, parser, Until::kMessage,
                             *deadline, SteadyClock::now() + kClientTimeout);
    beast::error_code ec = co_await std::move(read_request);
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
    Request req = parser.release();
    ++in_flight;
    auto handled = handle(client, req);
    bool keep_alive = co_await std::move(handled);
    --in_flight;
    if (!keep_alive || stopping) break;
  }
  client.socket.shutdown(tcp::socket::shutdown_send, ignored);
}

net::awaitable<bool> GatewayServer::State::handle(Client& client, Request& req) {
  int64_t start_micros = steady_micros();
  int64_t start_ms = clock.now_ms();
  std::string_view target = req.target;
  std::string_view path = target.substr(0, target.find('?'));
  if (req.method == http::verb::get && path == "/health") {
    auto reply = send(client, req, http::status::ok, "{\"status\":\"ok\"}");
    co_return co_await std::move(reply);
  }
  if (req.method == http::verb::get && path == "/metrics") {
    auto reply = send(client, req, http::status::ok, metrics.render() + limits.metrics_text(),
                      "text/plain; version=0.0.4");
    co_return co_await std::move(reply);
  }
  if (path == "/v1/traces") {
    auto received = receive_traces(client, req);
    co_return co_await std::move(received);
  }

  Route route{};
  bool known_route = match_route(target, route);
  bool anthropic = known_route && route.format == WireFormat::kAnthropicMessages;
  if (req.method == http::verb::get && path == "/v1/models") {
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
    bool any = std::find(key->models.begin(), key->models.end(), "*") != key->models.end();
    std::string body = any ? all_models_body : models_body(key->models);
    {
      auto reply = send(client, req, http::status::ok, body);
      co_return co_await std::move(reply);
    }
  }
  if (!known_route || req.method != http::verb::post) {
    metrics.record_unauthenticated(404);
    {
      auto reply = send(
          client, req, http::status::not_found,
          error_body(false, "invalid_request_error", "unknown_url",
                     "Unknown route " + std::string(req.method_string) + " " + std::string(path) +
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
  const std::string_view team = team_of(*key);
  // The cache and the repeat count hash the body's canonical form, taken from this parse.
  // One buffer per thread, read before this coroutine next suspends.
  thread_local std::string canonical;
  const bool wants_digest = cache != nullptr || repeats != nullptr;
  auto parsed = parse_request(route.format, req.body, route.deployment.empty(),
                              wants_digest ? &canonical : nullptr);
  if (!parsed) metrics.record_request(key->id, team, "", 400, {}, Money{}, false);
  if (!parsed) {
    auto reply = send(
        client, req, http::status::bad_request,
        error_body(anthropic, "invalid_request_error", "invalid_request", parsed.error().message));
    co_return co_await std::move(reply);
  }
  RequestInfo info = std::move(*parsed);
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
  // "x-aifinops-cache: true". Never shared across teams unless configured. The repeat count
  // looks at every request, in the cache's scope, from the same digest of the body.
  std::string cache_key;
  RepeatCheck repeat;
  bool cache_wanted = false;
  if (cache != nullptr) {
    cache_wanted = info.deterministic || beast::iequals(req.aifinops_cache, "true");
  }
  if (cache_wanted || repeats != nullptr) {
    const std::string* team_tag_text = team_tag(*key);
    std::string scope = config.cache.share_across_teams ? "shared"
                        : team_tag_text != nullptr      ? "team=" + *team_tag_text
                                                        : "key=" + key->id;
    const RequestDigest digest = digest_of_canonical(canonical);
    if (cache_wanted) cache_key = response_cache_key(scope, path, info.stream, digest);
    if (repeats != nullptr) {
      repeat.fingerprint = repeat_fingerprint(scope, path, info.stream, digest);
      repeat.mark = repeats->seen(repeat.fingerprint) ? RepeatMark::kRepeat : RepeatMark::kFirst;
    }
  }
  if (!cache_key.empty()) {
    if (std::optional<CachedResponse> hit = cache->find(cache_key)) {
      if (repeat.mark != RepeatMark::kUntracked) repeats->remember(repeat.fingerprint);
      auto reply = serve_cached(client, req, route, *key, model, info, *upstream_config,
                                std::move(*hit), start_ms, start_micros);
      co_return co_await std::move(reply);
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
  admission.tags = &key->tags;
  admission.limits = key->limits;
  admission.estimated_tokens = info.estimated_input_tokens + max_output;
  if (price != nullptr) {
    pricing::TokenUsage worst{info.estimated_input_tokens, 0, 0, max_output, 0, false};
    admission.worst_case_cost = pricing::token_cost(*price, worst);
  }
  // Never blocks this I/O thread: a shared store (Redis) answers on its own thread, and
  // only this request's coroutine waits (async_admission.h). A store in memory answers at
  // once, with no rendezvous to allocate.
  std::optional<Admission> decided;
  if (limits.admits_at_once()) {
    decided = limits.admit(admission);
  } else {
    auto rendezvous = std::make_shared<AdmissionRendezvous>(limits);
    decided = limits.admit_async(admission, rendezvous->callback());
    if (!decided) decided = co_await rendezvous->wait(net::use_awaitable);
  }
  Admission admitted = std::move(*decided);
  if (!admitted.admitted && admitted.unavailable) {
    // The shared state (Redis) is unreachable and redis_failure is closed: not a limit.
    metrics.record_request(key->id, team, model, 503, {}, Money{}, false);
    auto reply = send(client, req, http::status::service_unavailable,
                      error_body(anthropic, "api_error", "limits_unavailable",
                                 admitted.refusal.message),
                      "application/json", admitted.refusal.retry_after_s);
    co_return co_await std::move(reply);
  }
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
                         admitted.reservation, std::move(cache_key), repeat, start_ms,
                         start_micros);
  co_return co_await std::move(forwarded);
}

net::awaitable<bool> GatewayServer::State::serve_cached(
    Client& client, const Request& req, const Route& route, const KeyConfig& key,
    const std::string& model, const RequestInfo& info, const UpstreamConfig& upstream,
    CachedResponse hit, int64_t start_ms, int64_t start_micros) {
  // A hit costs nothing; the record keeps what the upstream call would have cost.
  UsageFigures event;
  event.time_ms = start_ms;
  event.status = 200;
  event.cache_hit = true;
  event.cache_saving = hit.cost;
  // A hit answers a request seen before: a repeat, whatever the count's window.
  event.repeat = repeats != nullptr ? RepeatMark::kRepeat : RepeatMark::kUntracked;
  event.latency_ms = (steady_micros() - start_micros) / 1000;
  spool_usage(event, key, model, upstream, route);
  metrics.record_request(key.id, team_of(key), model, 200, {}, Money{}, true);
  if (!info.stream) {
    auto reply =
        send(client, req, http::status::ok, std::move(hit.body), hit.content_type, 0, true);
    co_return co_await std::move(reply);
  }
  // A cached stream is replayed as a stream: head, one chunk and the last chunk, in one write.
  ResponseHead head = head_for(req, http::status::ok, hit.content_type, 0,
                               "Cache-Control: no-cache\r\nx-aifinops-cache: hit\r\n");
  head.chunked = true;
  std::string text;
  append_head(text, head);
  std::array<char, 20> size_space;
  std::string_view size_line = chunk_size_line(hit.body.size(), size_space);
  auto buffers =
      std::array{cbuf(text), cbuf(size_line), cbuf(hit.body), cbuf(kCrlf), cbuf(kLastChunk)};
  beast::error_code ec;
  size_t sent = 0;
  if (!client.write_now(buffers, ec, sent)) {
    auto rest = client.write_rest(buffers, sent);
    ec = co_await std::move(rest);
  }
  co_return !ec && req.keep_alive;
}

net::awaitable<bool> GatewayServer::State::proxy(Client& client, Request& req, const Route& route,
                                                 const KeyConfig& key, const RequestInfo& info,
                                                 const std::string& model,
                                                 UpstreamTarget& upstream,
                                                 const pricing::ModelPrice* price,
                                                 uint64_t reservation, std::string cache_key,
                                                 RepeatCheck repeat, int64_t start_ms,
                                                 int64_t start_micros) {
  bool anthropic = route.format == WireFormat::kAnthropicMessages;
  const UpstreamConfig& uc = *upstream.config;
  Deadline& deadline = *client.deadline;
  // Ask for usage on streams whose client did not, and hide that extra chunk again.
  bool inject_usage =
      info.stream && !info.client_asked_usage &&
      (route.format == WireFormat::kOpenAiChat || route.format == WireFormat::kOpenAiCompletion);

  // The request head, written as text: Beast's message and serializer would build a field
  // map and walk a chain of buffer views for the same bytes.
  // The head is kept in the connection's arena with the header fields (emptied after the
  // request), and once sent it takes the response head: no allocation for either.
  std::string body = inject_usage ? with_include_usage(req.body) : std::move(req.body);
  std::pmr::string head(&client.arena);
  head.reserve(512);
  head += "POST ";
  head += upstream.base_path;
  if (uc.kind == UpstreamKind::kAzureOpenAi) {
    std::string_view deployment = route.deployment.empty() ? model : route.deployment;
    std::string version = query_parameter(req.target, "api-version");
    if (version.empty()) version = uc.api_version.empty() ? "2024-10-21" : uc.api_version;
    head += "/openai/deployments/";
    head += deployment;
    head += route.suffix;
    head += "?api-version=";
    head += version;
  } else {
    head += route.suffix;
  }
  head += " HTTP/1.1\r\n";
  head += upstream.fixed_headers;
  // Header values from the client were checked by the gateway's parser (http_parse.h: no
  // control bytes, so no line breaks).
  auto copy_header = [&](std::string_view name, std::string_view value) {
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  };
  if (!req.accept.empty()) copy_header("Accept", req.accept);
  if (uc.kind == UpstreamKind::kAnthropic) {
    copy_header("anthropic-version",
                req.anthropic_version.empty() ? "2023-06-01" : req.anthropic_version);
    if (!req.anthropic_beta.empty()) copy_header("anthropic-beta", req.anthropic_beta);
  }
  head += "Content-Length: ";
  append_number(head, body.size());
  head += "\r\n\r\n";

  UsageFigures event;
  event.time_ms = start_ms;
  event.price_version = price != nullptr ? price->version : 0;
  std::string_view team = team_of(key);

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
    event.repeat = repeat.mark;
    // Remembered once answered in full, as the cache stores: an identical request still in
    // flight, or one the upstream refused, is not one a cache could have answered.
    if (repeat.mark != RepeatMark::kUntracked && status == 200 && !partial)
      repeats->remember(repeat.fingerprint);
    spool_usage(event, key, model, uc, route);
    for (const SoftBudgetNotice& notice :
         limits.settle(reservation, tokens.input + tokens.output, event.cost))
      if (soft_budget_sink) soft_budget_sink(notice);
    metrics.record_request(key.id, team, model, status, tokens, event.cost, false);
  };
  auto fail_upstream = [&](http::status status, std::string message) -> net::awaitable<bool> {
    for (const SoftBudgetNotice& notice : limits.settle(reservation, 0, Money{}))
      if (soft_budget_sink) soft_budget_sink(notice);
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
  const auto timeout = std::chrono::seconds(uc.timeout_s);
  std::unique_ptr<UpstreamConnection> conn;
  std::optional<ResponseParser> parser;  // not reassignable: re-emplaced
  int64_t sent_micros = 0;
  SteadyClock::time_point due;
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool pooled = false;
    // The retry never takes another pooled connection: when the upstream closed one idle
    // connection, it has usually closed the others that waited as long.
    if (attempt == 0) {
      std::lock_guard<std::mutex> lock(upstream.mutex);
      if (!upstream.idle.empty()) {
        conn = std::move(upstream.idle.back());
        upstream.idle.pop_back();
        pooled = true;
      }
    }
    // timeout_s bounds connecting, sending and receiving the response's header (and, for a
    // response that is not a stream, its body).
    due = SteadyClock::now() + timeout;
    if (!conn) {
      conn = std::make_unique<UpstreamConnection>();
      conn->buffer.reserve(kReadBufferBytes);
      if (upstream.tls)
        conn->tls.emplace(client.socket.get_executor(), *upstream.tls_context);
      else
        conn->plain.emplace(client.socket.get_executor());
      deadline.arm(conn->socket(), due);
      auto [ec, ep] = co_await net::async_connect(conn->socket(), upstream.endpoints, kAsTuple);
      deadline.disarm();
      if (ec == net::error::operation_aborted && deadline.expired()) ec = beast::error::timeout;
      if (!ec) {
        beast::error_code ignored;
        conn->socket().set_option(tcp::no_delay(true), ignored);
        if (!upstream.tls) conn->socket().non_blocking(true, ignored);  // see write_now
      }
      if (!ec && upstream.tls) {
        // SNI and certificate checks against the upstream's host name.
        SSL_set_tlsext_host_name(conn->tls->native_handle(), upstream.host.c_str());
        conn->tls->set_verify_callback(net::ssl::host_name_verification(upstream.host));
        deadline.arm(conn->socket(), due);
        auto [hec] = co_await conn->tls->async_handshake(net::ssl::stream_base::client, kAsTuple);
        deadline.disarm();
        if (hec) {
          std::string message =
              "TLS handshake with upstream " + uc.name + " failed: " +
              (hec == net::error::operation_aborted && deadline.expired() ? "timed out"
                                                                          : hec.message()) +
              ".";
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
    sent_micros = steady_micros();
    auto request = std::array{cbuf(head), cbuf(body)};
    beast::error_code ec;
    size_t sent = 0;
    if (!conn->write_now(request, ec, sent)) {
      auto rest = conn->write_rest(request, sent, deadline, due);
      ec = co_await std::move(rest);
    }
    if (!ec) {
      conn->buffer.clear();
      parser.emplace(&client.arena);
      auto read_head = conn->read(*parser, Until::kHeader, deadline, due);
      ec = co_await std::move(read_head);
    }
    if (!ec) break;
    conn.reset();
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

  auto& response = *parser;
  int status = static_cast<int>(response.status());
  std::string_view content_type = response.content_type();  // in `response`
  bool event_stream = content_type.find("text/event-stream") != std::string_view::npos;

  if (!event_stream) {
    // Whole body, then usage, then the spool record, then the response. The parser writes
    // the body straight into the string that is sent on.
    PooledText pooled_body;
    std::string& response_body = pooled_body.text();
    while (!response.is_done()) {
      size_t have = response_body.size();
      size_t room = 16 * 1024;  // a chunked body: grow as it comes
      if (auto length = response.content_length_remaining())
        room = std::clamp<uint64_t>(*length, 1, 1 << 20);  // a claimed length is not trusted
      response_body.resize(have + room);
      response.body_into(response_body.data() + have, room);
      auto read_body = conn->read(response, Until::kMessage, deadline, due);
      beast::error_code ec = co_await std::move(read_body);
      response_body.resize(have + room - response.body_room());
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
    const int64_t received_micros = steady_micros();
    metrics.record_upstream_latency(uc.name, received_micros - sent_micros);
    bool found = false;
    TokenCounts tokens =
        status < 400 ? usage_from_body(route.format, response_body, found) : TokenCounts{};
    bool estimated = false;
    if (status < 400 && !found) {
      tokens.input = info.estimated_input_tokens;
      tokens.output = (int64_t)(response_body.size() + 3) / 4;
      estimated = true;
    }
    event.ttft_ms = (received_micros - start_micros) / 1000;
    finish(status, tokens, estimated, false);
    if (!cache_key.empty() && status == 200 && !estimated && is_json_document(response_body))
      cache->insert(cache_key,
                    CachedResponse{std::string(content_type), response_body, tokens, event.cost});
    if (response.keep_alive()) {
      std::lock_guard<std::mutex> lock(upstream.mutex);
      upstream.idle.push_back(std::move(conn));
    }
    // The upstream request's head is sent: its room takes the client's response head.
    head.clear();
    append_head(head, head_for(req, static_cast<http::status>(status),
                               content_type.empty() ? std::string_view("application/json")
                                                    : content_type,
                               response_body.size()));
    auto buffers = std::array{cbuf(head), cbuf(response_body)};
    beast::error_code ec;
    size_t sent = 0;
    if (!client.write_now(buffers, ec, sent)) {
      auto rest = client.write_rest(buffers, sent);
      ec = co_await std::move(rest);
    }
    co_return !ec && req.keep_alive;
  }

  // Streaming: forward events as they come, re-chunked for the client. The response head
  // goes out with the first events when they came with the upstream's head (one write
  // instead of two), else at once.
  ResponseHead client_head = head_for(req, static_cast<http::status>(status), content_type, 0,
                                      "Cache-Control: no-cache\r\n");
  client_head.chunked = true;
  // As for a whole body, the sent upstream request head's room takes the client's head.
  std::pmr::string& head_text = head;
  head_text.clear();
  append_head(head_text, client_head);
  bool client_gone = false;
  if (conn->buffer.size() == 0) {
    auto write = write_fully(client, std::array{cbuf(head_text)});
    client_gone = static_cast<bool>(co_await std::move(write));
    head_text.clear();
  }
  SseUsageReader reader(route.format, inject_usage);
  // Per stream, outside this coroutine's frame, which every request allocates: the bound
  // on the memory each open stream holds. Taken from the thread's pool (StreamBuffers).
  constexpr size_t kRelayBytes = StreamBuffers::kRelayBytes;
  StreamBuffers stream_buffers;
  char* chunk = stream_buffers.relay();
  std::string& out = stream_buffers.out();
  std::string captured;  // what the client received, for the cache
  std::array<char, 20> size_space;
  bool first = true;
  bool upstream_failed = false;
  while (!response.is_done() && !client_gone) {
    response.body_into(chunk, kRelayBytes);
    // timeout_s is the longest silence between events, not a limit on the whole stream.
    auto read_some = conn->read(response, Until::kSome, deadline, SteadyClock::now() + timeout);
    beast::error_code ec = co_await std::move(read_some);
    size_t got = kRelayBytes - response.body_room();
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
    // The events that end the stream are sent with the last chunk, after the spool record.
    if (out.empty() || response.is_done()) {
      if (upstream_failed) break;
      continue;
    }
    if (!cache_key.empty()) captured += out;
    auto buffers = std::array{cbuf(head_text), cbuf(chunk_size_line(out.size(), size_space)),
                              cbuf(out), cbuf(kCrlf)};
    beast::error_code wec;
    size_t sent = 0;
    if (!client.write_now(buffers, wec, sent)) {
      auto rest = client.write_rest(buffers, sent);
      wec = co_await std::move(rest);
    }
    if (wec) client_gone = true;
    head_text.clear();
    out.clear();
    if (upstream_failed) break;
  }
  metrics.record_upstream_latency(uc.name, steady_micros() - sent_micros);
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
  if (client_gone || upstream_failed || !response.is_done()) {
    conn.reset();  // cancels the upstream request
    if (!client_gone && !out.empty()) {
      // What came before the upstream failed is relayed; the stream then ends without its
      // last chunk, which tells the client it was cut short.
      auto write = write_fully(client, std::array{cbuf(head_text),
                                                  cbuf(chunk_size_line(out.size(), size_space)),
                                                  cbuf(out), cbuf(kCrlf)});
      co_await std::move(write);
    } else if (!client_gone && !head_text.empty()) {
      auto write = write_fully(client, std::array{cbuf(head_text)});
      co_await std::move(write);
    }
    co_return false;
  }
  if (response.keep_alive()) {
    std::lock_guard<std::mutex> lock(upstream.mutex);
    upstream.idle.push_back(std::move(conn));
  }
  if (!cache_key.empty() && status == 200 && !estimated)
    cache->insert(cache_key,
                  CachedResponse{std::string(content_type), captured + out, tokens, event.cost});
  // The rest of the stream and its end in one write.
  std::string_view size_line =
      out.empty() ? std::string_view() : chunk_size_line(out.size(), size_space);
  std::string_view crlf = out.empty() ? std::string_view() : kCrlf;
  auto buffers =
      std::array{cbuf(head_text), cbuf(size_line), cbuf(out), cbuf(crlf), cbuf(kLastChunk)};
  beast::error_code ec;
  size_t sent = 0;
  if (!client.write_now(buffers, ec, sent)) {
    auto rest = client.write_rest(buffers, sent);
    ec = co_await std::move(rest);
  }
  co_return !ec && req.keep_alive;
}

GatewayServer::GatewayServer(const GatewayConfig& config, const pricing::Catalog& catalog,
                             LimitStore& limits, ResponseCache* cache, Spool& spool,
                             const Clock& clock)
    : state_(std::make_unique<State>(config, catalog, limits, cache, spool, clock)) {}

GatewayServer::~GatewayServer() = default;

void GatewayServer::on_soft_budget(std::function<void(const SoftBudgetNotice&)> sink) {
  state_->soft_budget_sink = std::move(sink);
}

Result<void> GatewayServer::start() {
  State& s = *state_;
  for (const KeyConfig& k : s.config.keys) {
    s.keys_by_hash[k.key_sha256] = &k;
    auto team = k.tags.find("team");
    s.key_teams.push_back(team == k.tags.end() ? nullptr : &team->second);
  }
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
    std::string& fixed = target->fixed_headers;
    fixed = "Host: " + target->host + ":" + target->port +
            "\r\nContent-Type: application/json\r\nUser-Agent: aifinops-gateway\r\n";
    if (!target->secret.empty()) {
      switch (u.kind) {
        case UpstreamKind::kOpenAi:
          fixed += "Authorization: Bearer " + target->secret + "\r\n";
          break;
        case UpstreamKind::kAzureOpenAi:
          fixed += "api-key: " + target->secret + "\r\n";
          break;
        case UpstreamKind::kAnthropic:
          fixed += "x-api-key: " + target->secret + "\r\n";
          break;
      }
    }
    s.upstreams[u.name] = std::move(target);
  }
  s.all_models_body = models_body(servable_models(s.config, s.catalog, s.clock.now_ms() / 1000));
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
  net::co_spawn(s.ioc, s.watchdog.run(), net::detached);
  return {};
}

int GatewayServer::port() const { return state_->bound_port; }

void GatewayServer::run() {
  State& s = *state_;
  std::vector<std::thread> threads;
  for (int64_t i = 1; i < s.config.threads; ++i)
    threads.emplace_back([&s] {
      ask_for_short_time_slices();
      s.ioc.run();
    });
  ask_for_short_time_slices();  // see spool.h: the background threads share these CPUs
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
