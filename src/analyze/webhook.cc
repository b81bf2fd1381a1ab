#include "analyze/webhook.h"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <cstdio>
#include <memory>
#include <optional>

namespace aifinops::analyze {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto kAsTuple = net::experimental::as_tuple(net::use_awaitable);
/// A webhook's answer is a word or two ("ok"); more is read only to quote its start.
constexpr size_t kMaxAnswerBytes = 64 * 1024;

/// What one post is doing, shared between the caller and the coroutine.
struct Exchange {
  const WebhookUrl& url;
  const std::string& json;
  std::chrono::steady_clock::time_point deadline;
  std::string step = "resolving the host name";
  std::optional<Error> error;
  bool done = false;
  bool timed_out = false;

  void fail(const std::string& what) {
    error = Error{ErrorCode::kIo, "webhook " + url.origin() + ": " + what};
  }
  void fail(const std::string& what, const beast::error_code& ec) {
    if (ec == beast::error::timeout) timed_out = true;
    fail(what + ": " + ec.message());
  }
};

std::string quote_start(const std::string& body) {
  std::string s = body.substr(0, 200);
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() < body.size() ? s + "..." : s;
}

template <typename Stream>
net::awaitable<void> send_and_read(Stream& stream, beast::tcp_stream& tcp_layer, Exchange& x) {
  http::request<http::string_body> request{http::verb::post, x.url.target, 11};
  request.set(http::field::host, x.url.host);
  request.set(http::field::user_agent, "aifinops");
  request.set(http::field::content_type, "application/json");
  request.body() = x.json;
  request.prepare_payload();
  x.step = "sending the message";
  tcp_layer.expires_at(x.deadline);
  auto [write_error, written] = co_await http::async_write(stream, request, kAsTuple);
  if (write_error) {
    x.fail("sending failed", write_error);
    co_return;
  }
  x.step = "waiting for the answer";
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  auto [read_error, read] = co_await http::async_read(stream, buffer, parser, kAsTuple);
  if (read_error && read_error != http::error::body_limit) {
    x.fail("reading the answer failed", read_error);
    co_return;
  }
  const auto& response = parser.get();
  const unsigned status = response.result_int();
  if (status < 200 || status > 299) {
    x.fail("answered " + std::to_string(status) + " " + std::string(response.reason()) +
           (response.body().empty() ? "" : ": " + quote_start(response.body())));
  }
}

net::awaitable<void> post(Exchange& x, net::ssl::context* tls) {
  auto executor = co_await net::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [resolve_error, endpoints] =
      co_await resolver.async_resolve(x.url.host, x.url.port, kAsTuple);
  if (resolve_error) {
    x.fail("cannot resolve " + x.url.host, resolve_error);
    co_return;
  }
  x.step = "connecting";
  if (tls == nullptr) {
    beast::tcp_stream stream(executor);
    stream.expires_at(x.deadline);
    auto [connect_error, endpoint] = co_await stream.async_connect(endpoints, kAsTuple);
    if (connect_error) {
      x.fail("cannot connect", connect_error);
      co_return;
    }
    co_await send_and_read(stream, stream, x);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(executor, *tls);
  beast::get_lowest_layer(stream).expires_at(x.deadline);
  auto [connect_error, endpoint] =
      co_await beast::get_lowest_layer(stream).async_connect(endpoints, kAsTuple);
  if (connect_error) {
    x.fail("cannot connect", connect_error);
    co_return;
  }
  // SNI and certificate checks against the webhook's host name.
  SSL_set_tlsext_host_name(stream.native_handle(), x.url.host.c_str());
  stream.set_verify_callback(net::ssl::host_name_verification(x.url.host));
  x.step = "TLS handshake";
  auto [handshake_error] = co_await stream.async_handshake(net::ssl::stream_base::client, kAsTuple);
  if (handshake_error) {
    x.fail("TLS handshake failed", handshake_error);
    co_return;
  }
  co_await send_and_read(stream, beast::get_lowest_layer(stream), x);
}

}  // namespace

std::string WebhookUrl::origin() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + port;
}

Result<WebhookUrl> parse_webhook_url(std::string_view url) {
  WebhookUrl out;
  std::string_view rest = url;
  if (rest.rfind("https://", 0) == 0) {
    out.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return make_error(ErrorCode::kInvalidArgument,
                      "webhook URL must start with https:// or http:// (e.g. "
                      "https://hooks.slack.com/services/...)");
  }
  const size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (out.target[0] == '?') out.target = "/" + out.target;
  if (authority.find('@') != std::string_view::npos)
    return make_error(ErrorCode::kInvalidArgument,
                      "webhook URL: user names in the address are not supported");
  size_t colon = authority.rfind(':');
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8080
    const size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return make_error(ErrorCode::kInvalidArgument, "webhook URL: unclosed [ in the host");
    out.host = std::string(authority.substr(1, close - 1));
    colon = close + 1 < authority.size() && authority[close + 1] == ':' ? close + 1
                                                                        : std::string_view::npos;
  } else {
    out.host = std::string(authority.substr(0, colon));
  }
  if (out.host.empty()) return make_error(ErrorCode::kInvalidArgument, "webhook URL has no host");
  out.port = out.tls ? "443" : "80";
  if (colon != std::string_view::npos) {
    std::string_view port = authority.substr(colon + 1);
    int value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 ||
        value > 65535)
      return make_error(ErrorCode::kInvalidArgument, "webhook URL: port \"" + std::string(port) +
                                                         "\" is not a number from 1 to 65535");
    out.port = std::string(port);
  }
  return out;
}

Result<void> post_webhook(const WebhookUrl& url, const std::string& json,
                          std::chrono::milliseconds timeout) {
  Exchange x{url,
             json,
             std::chrono::steady_clock::now() + timeout,
             "resolving the host name",
             std::nullopt,
             false,
             false};
  std::unique_ptr<net::ssl::context> tls;
  if (url.tls) {
    tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
    beast::error_code ec;
    tls->set_default_verify_paths(ec);
    if (ec)
      return make_error(ErrorCode::kIo,
                        "webhook: cannot load the system's CA certificates: " + ec.message());
    tls->set_verify_mode(net::ssl::verify_peer);
  }
  {
    // Declared after everything the coroutine refers to, so that it is destroyed first.
    net::io_context ioc;
    net::co_spawn(ioc, post(x, tls.get()), [&x](std::exception_ptr e) {
      if (e) x.fail("unexpected failure while " + x.step);
      x.done = true;
    });
    // The streams stop at the deadline themselves; this also bounds name resolution.
    ioc.run_for(timeout + std::chrono::milliseconds(50));
    if (!x.done) ioc.stop();
  }
  if (!x.done || x.timed_out) {
    const double seconds = (double)timeout.count() / 1000;
    char text[32];
    std::snprintf(text, sizeof text, "%g", seconds);
    return make_error(ErrorCode::kIo, "webhook " + url.origin() + ": no answer within " + text +
                                          " s (" + x.step + ")");
  }
  if (x.error) return Unexpected{*x.error};
  return {};
}

}  // namespace aifinops::analyze
