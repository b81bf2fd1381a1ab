// The gateway's HTTP/1.1 plumbing on Asio sockets, apart from what the gateway does with the
// messages: deadlines checked by one watchdog timer instead of a timer per operation, reads
// that parse what is already buffered before asking the socket for more, writes that try
// the socket at once before waiting, and message heads written as text. Every one of these
// saves system calls or trips through the event loop on each request (docs/gateway.md,
// "Performance"). Included by server.cc only: Beast and Asio stay out of the public headers.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http_parse.h"

namespace aifinops::gateway::http_io {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
inline constexpr auto kAsTuple = net::experimental::as_tuple(net::use_awaitable);

/// A buffer over text that outlives the write it is part of.
inline net::const_buffer cbuf(std::string_view text) {
  return net::const_buffer(text.data(), text.size());
}

/// When the operation a connection is waiting on must have finished, and on which socket it
/// waits. The connection's coroutine arms it before each read or write that may wait and
/// disarms it after; the Watchdog cancels the operation once the time has passed, on the
/// connection's executor (so never at the same time as the coroutine runs). Owned by a
/// shared_ptr: a cancellation already posted may run after the connection has ended.
class Deadline {
 public:
  explicit Deadline(net::any_io_executor executor) : executor_(std::move(executor)) {}

  /// The next operation, on `socket`, must finish by `due`.
  void arm(tcp::socket& socket, SteadyClock::time_point due) {
    socket_ = &socket;
    expired_ = false;
    at_.store(due.time_since_epoch().count(), std::memory_order_relaxed);
  }
  /// The operation finished; the socket may go away.
  void disarm() { at_.store(kNever, std::memory_order_relaxed); }
  /// Whether the operation that just ended was cancelled for being late.
  bool expired() const { return expired_; }

 private:
  friend class Watchdog;
  static constexpr SteadyClock::rep kNever = std::numeric_limits<SteadyClock::rep>::max();

  bool due(SteadyClock::rep now) const { return at_.load(std::memory_order_relaxed) <= now; }
  /// On the connection's executor. The operation may have finished (and the deadline been
  /// disarmed or armed again) since the watchdog saw it late: then there is nothing to do.
  void fire() {
    if (!due(SteadyClock::now().time_since_epoch().count())) return;
    at_.store(kNever, std::memory_order_relaxed);
    expired_ = true;
    beast::error_code ignored;
    socket_->cancel(ignored);
  }

  net::any_io_executor executor_;
  std::atomic<SteadyClock::rep> at_{kNever};
  tcp::socket* socket_ = nullptr;
  bool expired_ = false;
};

/// Looks at every connection's deadline four times a second and cancels the operations that
/// are late, so that timeouts hold to within a quarter of a second. beast::tcp_stream arms
/// and cancels a timer around every read and write instead: a timerfd_settime call and one
/// more completion handler per operation. Thread-safe.
class Watchdog {
 public:
  static constexpr auto kTick = std::chrono::milliseconds(250);

  void watch(const std::shared_ptr<Deadline>& deadline) {
    std::lock_guard<std::mutex> lock(mutex_);
    deadlines_.push_back(deadline);
  }

  /// Ticks until the io_context stops.
  net::awaitable<void> run() {
    auto executor = co_await net::this_coro::executor;  // named: see the g++ 12 note in server.cc
    net::steady_timer timer(executor);
    for (;;) {
      timer.expires_after(kTick);
      auto [ec] = co_await timer.async_wait(kAsTuple);
      if (ec) co_return;
      check();
    }
  }

 private:
  void check() {
    const SteadyClock::rep now = SteadyClock::now().time_since_epoch().count();
    std::lock_guard<std::mutex> lock(mutex_);
    // Connections that have ended are dropped here rather than on their way out.
    std::erase_if(deadlines_, [&](const std::weak_ptr<Deadline>& weak) {
      std::shared_ptr<Deadline> deadline = weak.lock();
      if (!deadline) return true;
      if (deadline->due(now)) net::post(deadline->executor_, [deadline] { deadline->fire(); });
      return false;
    });
  }

  std::mutex mutex_;
  std::vector<std::weak_ptr<Deadline>> deadlines_;
};

/// Writes as much of `buffers` as the socket takes at once; the socket must be in
/// non-blocking mode. A request or response of a few KB on a socket with room in its send
/// buffer almost always goes out whole, with no trip through the event loop and no
/// coroutine frame (an async_write posts its completion even when the data went out at
/// once). Returns the bytes written; `ec` is set on an error other than a full buffer.
template <class ConstBuffers>
size_t write_now(tcp::socket& socket, const ConstBuffers& buffers, beast::error_code& ec) {
  ec = {};
  if (net::buffer_size(buffers) == 0) return 0;
  size_t sent = socket.write_some(buffers, ec);
  if (ec == net::error::would_block || ec == net::error::try_again) {
    ec = {};
    sent = 0;
  }
  return sent;
}

/// Writes the rest of `buffers` after write_now took the first `sent` bytes, waiting for
/// room by `due`. `buffers` is taken by value: the coroutine starts only when awaited.
template <class ConstBuffers>
net::awaitable<beast::error_code> write_rest(tcp::socket& socket, ConstBuffers buffers,
                                             size_t sent, Deadline& deadline,
                                             SteadyClock::time_point due) {
  beast::buffers_suffix<ConstBuffers> rest(buffers);
  rest.consume(sent);
  deadline.arm(socket, due);
  auto [ec, n] = co_await net::async_write(socket, rest, kAsTuple);
  deadline.disarm();
  if (ec == net::error::operation_aborted && deadline.expired()) ec = beast::error::timeout;
  co_return ec;
}

/// What read() waits for.
enum class Until {
  kHeader,   ///< the message's header is parsed
  kMessage,  ///< the whole message is parsed (a buffer_body may stop it early: need_buffer)
  kSome,     ///< some progress: a stream's body is relayed as it arrives
};

/// Reads from `stream` into `buffer` and parses into `parser` until `until`. What is already
/// buffered is parsed first and the socket is read only when the parser needs more, so a
/// body that came with its header costs no read and no trip through the event loop (Beast's
/// async_read posts its completion even then). Same results as Beast's reads: need_buffer
/// when a buffer_body is full, end_of_stream for a connection closed before any byte,
/// partial_message when it is closed mid-message, beast::error::timeout when `due` passed
/// first. `socket` is the stream's lowest layer (for the deadline).
///
/// NOTE: a read that finds no data yet costs a failed recv (EAGAIN) before it waits. Waiting
/// for readability first (async_wait) costs an epoll_ctl instead, Asio's guard against a
/// readiness reported while nobody waited: no system call saved, so reads start by reading.
template <class Stream, class Parser>
net::awaitable<beast::error_code> read(Stream& stream, tcp::socket& socket,
                                       beast::flat_buffer& buffer, Parser& parser, Until until,
                                       Deadline& deadline, SteadyClock::time_point due) {
  parser.eager(until != Until::kHeader);
  for (;;) {
    if (buffer.size() > 0) {
      beast::error_code ec;
      const size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec && ec != http::error::need_more) co_return ec;
      const bool satisfied = until == Until::kHeader    ? parser.is_header_done()
                             : until == Until::kMessage ? parser.is_done()
                                                        : used > 0 || parser.is_done();
      if (satisfied) co_return beast::error_code{};
      if (!ec && used > 0 && buffer.size() > 0) continue;  // stopped at an element's end
    }
    const size_t size = beast::read_size(buffer, 65536);
    if (size == 0) co_return http::error::buffer_overflow;
    auto space = buffer.prepare(size);
    deadline.arm(socket, due);
    auto [ec, n] = co_await stream.async_read_some(space, kAsTuple);
    deadline.disarm();
    buffer.commit(n);
    if (ec == net::error::eof) {
      if (!parser.got_some()) co_return http::error::end_of_stream;
      beast::error_code eof;
      parser.put_eof(eof);  // a body that runs to the end of the connection ends here
      co_return eof;
    }
    if (ec == net::error::operation_aborted && deadline.expired()) co_return beast::error::timeout;
    if (ec) co_return ec;
  }
}

/// A request as the gateway reads it: the request line, the body and the few header fields
/// it uses (RequestParser). The texts of the head live in the memory resource the parser
/// was given; the body is a std::string of its own, handed on to the upstream request.
struct Request {
  explicit Request(std::pmr::memory_resource* memory)
      : method_string(memory),
        target(memory),
        authorization(memory),
        x_api_key(memory),
        api_key(memory),
        content_type(memory),
        accept(memory),
        anthropic_version(memory),
        anthropic_beta(memory),
        aifinops_cache(memory) {}

  http::verb method = http::verb::unknown;
  std::pmr::string method_string;  ///< as sent
  std::pmr::string target;
  unsigned version = 11;
  bool keep_alive = false;  ///< false for a head that was refused (body_limit)
  std::string body;
  // The header fields the gateway reads: the first non-empty value of each, empty when the
  // request has none.
  std::pmr::string authorization;
  std::pmr::string x_api_key;  ///< Anthropic clients' key
  std::pmr::string api_key;    ///< Azure OpenAI clients' key
  std::pmr::string content_type;
  std::pmr::string accept;
  std::pmr::string anthropic_version;
  std::pmr::string anthropic_beta;
  std::pmr::string aifinops_cache;  ///< x-aifinops-cache
};

/// The Beast error of the same meaning as `error` (server.cc and read() test Beast's codes).
inline beast::error_code to_error_code(http_parse::ParseError error) {
  using http_parse::ParseError;
  switch (error) {
    case ParseError::kNone: return {};
    case ParseError::kNeedMore: return http::error::need_more;
    case ParseError::kNeedBuffer: return http::error::need_buffer;
    case ParseError::kBodyLimit: return http::error::body_limit;
    case ParseError::kHeaderLimit: return http::error::header_limit;
    case ParseError::kPartialMessage: return http::error::partial_message;
    case ParseError::kBadMethod: return http::error::bad_method;
    case ParseError::kBadTarget: return http::error::bad_target;
    case ParseError::kBadVersion: return http::error::bad_version;
    case ParseError::kBadStatus: return http::error::bad_status;
    case ParseError::kBadReason: return http::error::bad_reason;
    case ParseError::kBadField: return http::error::bad_field;
    case ParseError::kBadValue:
    case ParseError::kObsFold: return http::error::bad_value;
    case ParseError::kBadLineEnding: return http::error::bad_line_ending;
    case ParseError::kBadContentLength: return http::error::bad_content_length;
    case ParseError::kMultipleContentLength: return http::error::multiple_content_length;
    case ParseError::kBadTransferEncoding: return http::error::bad_transfer_encoding;
    case ParseError::kBadChunk: return http::error::bad_chunk;
    case ParseError::kBadChunkExtension: return http::error::bad_chunk_extension;
  }
  return http::error::bad_value;
}

/// What RequestParser and ResponseParser share: the calls read() makes, on the gateway's
/// own parser (http_parse.h), with Beast's error codes. `Derived::on_head()` is called once
/// the head is parsed, or refused for its body's length (the request line and the kept
/// fields are there then, for the answer).
template <class Derived>
class MessageReader {
 public:
  /// Parses what it can of `buffer` and returns the bytes used; the rest is offered again.
  size_t put(net::const_buffer buffer, beast::error_code& ec) {
    http_parse::ParseError error;
    const bool had_head = parser_.is_header_done();
    const size_t used = parser_.put(static_cast<const char*>(buffer.data()), buffer.size(), error);
    if (!had_head && (parser_.is_header_done() || error == http_parse::ParseError::kBodyLimit))
      static_cast<Derived*>(this)->on_head();
    ec = to_error_code(error);
    return used;
  }
  void put_eof(beast::error_code& ec) { ec = to_error_code(parser_.put_eof()); }
  void eager(bool on) { parser_.eager(on); }
  bool got_some() const { return parser_.got_some(); }
  bool is_header_done() const { return parser_.is_header_done(); }
  bool is_done() const { return parser_.is_done(); }
  /// Once the head is parsed.
  bool keep_alive() const { return parser_.keep_alive(); }
  /// The body bytes still to come by Content-Length; none without one.
  std::optional<std::uint64_t> content_length_remaining() const {
    if (!parser_.has_content_length()) return std::nullopt;
    return parser_.content_length_remaining();
  }

 protected:
  MessageReader(http_parse::MessageParser::Kind kind, const http_parse::FieldTable& table,
                std::span<std::pmr::string* const> kept, std::pmr::string* method = nullptr,
                std::pmr::string* target = nullptr)
      : parser_(kind, table, kept, method, target) {}

  http_parse::MessageParser parser_;
};

/// Where a RequestParser's results go: a base constructed before the parser that keeps their
/// addresses.
struct RequestParts {
  explicit RequestParts(std::pmr::memory_resource* memory) : request_(memory) {}
  Request request_;
  std::array<std::pmr::string*, 8> kept_{
      &request_.authorization, &request_.x_api_key,      &request_.api_key,
      &request_.content_type,  &request_.accept,         &request_.anthropic_version,
      &request_.anthropic_beta, &request_.aifinops_cache};
};

/// Parses an HTTP/1.x request into a Request, keeping of its head only what Request holds
/// (Beast's request_parser stores every field in a basic_fields, an allocation and a
/// red-black tree insertion each, for fields the gateway mostly never reads). The body is
/// read into a string, up to body_limit() (http::error::body_limit beyond it; 1 MiB unless
/// set, as Beast's). One parser per request. Not thread-safe.
class RequestParser final : private RequestParts, public MessageReader<RequestParser> {
 public:
  /// `memory` holds the head's texts: on the gateway's path, the arena its client
  /// connection empties after each request.
  explicit RequestParser(std::pmr::memory_resource* memory)
      : RequestParts(memory),
        MessageReader(http_parse::MessageParser::Kind::kRequest, fields(), kept_,
                      &request_.method_string, &request_.target) {
    parser_.body_to(&request_.body);
    parser_.body_limit(1024 * 1024);
  }

  void body_limit(std::uint64_t limit) { parser_.body_limit(limit); }

  /// The request parsed so far, taken out of the parser.
  Request release() { return std::move(request_); }

 private:
  /// In the order of kept_.
  static const http_parse::FieldTable& fields() {
    static const http_parse::FieldTable table(
        {"authorization", "x-api-key", "api-key", "content-type", "accept", "anthropic-version",
         "anthropic-beta", "x-aifinops-cache"},
        /*keep_empty=*/false);
    return table;
  }

  friend class MessageReader<RequestParser>;
  void on_head() {
    request_.method = http::string_to_verb(request_.method_string);
    request_.version = parser_.version();
    // false for a head refused for its body's length: the connection closes after the 413.
    request_.keep_alive = parser_.is_header_done() && parser_.keep_alive();
    if (parser_.is_header_done() && parser_.has_content_length())
      request_.body.reserve(static_cast<size_t>(parser_.content_length()));
  }
};

/// Where a ResponseParser's Content-Type goes (see RequestParts).
struct ResponseParts {
  explicit ResponseParts(std::pmr::memory_resource* memory) : content_type_(memory) {}
  std::pmr::string content_type_;
  std::array<std::pmr::string*, 1> kept_{&content_type_};
};

/// Parses an HTTP/1.x response and keeps of its head only the status code and the first
/// Content-Type: all the gateway uses of an upstream's response head (the parser itself
/// follows Content-Length, Transfer-Encoding and Connection for the framing and
/// keep_alive()). Beast's response_parser stores every field in a basic_fields, for fields
/// nobody reads (docs/gateway.md, "Performance").
///
/// The body is delivered as into an http::buffer_body: into the buffer last given to
/// body_into(), chunked bodies decoded, the error need_buffer when the buffer is full (or
/// was never given) and body bytes remain; no body limit. One parser per response. Not
/// thread-safe.
class ResponseParser final : private ResponseParts, public MessageReader<ResponseParser> {
 public:
  /// `memory` holds the Content-Type's text: on the gateway's path, the arena its client
  /// connection empties after each request.
  explicit ResponseParser(std::pmr::memory_resource* memory = std::pmr::get_default_resource())
      : ResponseParts(memory),
        MessageReader(http_parse::MessageParser::Kind::kResponse, fields(), kept_) {}

  /// The status code (0 until the status line is parsed).
  unsigned status() const { return parser_.status(); }
  /// The first Content-Type field's value; empty when the response has none.
  std::string_view content_type() const { return content_type_; }

  /// The body's next bytes go to [data, data + size).
  void body_into(char* data, size_t size) { parser_.body_into(data, size); }
  /// What is left free of the buffer last given to body_into().
  size_t body_room() const { return parser_.body_room(); }

 private:
  static const http_parse::FieldTable& fields() {
    // The first Content-Type even when empty, as Beast's response[field::content_type].
    static const http_parse::FieldTable table({"content-type"}, /*keep_empty=*/true);
    return table;
  }
  friend class MessageReader<ResponseParser>;
  void on_head() {}
};

/// The head of a response the gateway writes itself: status line and headers, as Beast
/// would write them for http::response with keep_alive() and prepare_payload() or
/// chunked(true).
struct ResponseHead {
  unsigned status = 200;
  unsigned version = 11;
  bool keep_alive = true;
  std::string_view content_type;
  bool chunked = false;
  size_t content_length = 0;  ///< when not chunked
  std::string_view extra;     ///< further header lines, each ending in "\r\n"
};

/// `Text` is std::string, or std::pmr::string where the text lives in a connection's arena.
template <class Text>
void append_number(Text& out, size_t n) {
  char digits[24];
  char* end = digits + sizeof digits;
  char* p = end;
  do {
    *--p = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  out.append(p, end);
}

template <class Text>
void append_head(Text& out, const ResponseHead& head) {
  out.append(head.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, head.status);
  out.push_back(' ');
  beast::string_view reason = http::obsolete_reason(static_cast<http::status>(head.status));
  out.append(reason.data(), reason.size());
  out.append("\r\nContent-Type: ");
  out.append(head.content_type);
  out.append("\r\n");
  out.append(head.extra);
  if (head.version == 10 && head.keep_alive) out.append("Connection: keep-alive\r\n");
  if (head.version != 10 && !head.keep_alive) out.append("Connection: close\r\n");
  if (head.chunked) {
    out.append("Transfer-Encoding: chunked\r\n\r\n");
  } else {
    out.append("Content-Length: ");
    append_number(out, head.content_length);
    out.append("\r\n\r\n");
  }
}

/// The size line of one chunk of a chunked body ("1a2b\r\n").
inline std::string_view chunk_size_line(size_t size, std::array<char, 20>& space) {
  static constexpr char kHex[] = "0123456789abcdef";
  char* end = space.data() + space.size();
  char* p = end;
  *--p = '\n';
  *--p = '\r';
  do {
    *--p = kHex[size & 15];
    size >>= 4;
  } while (size != 0);
  return std::string_view(p, static_cast<size_t>(end - p));
}

inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace aifinops::gateway::http_io
