#include "gateway/http_io.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory_resource>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace aifinops::gateway::http_io {
namespace {

/// The head Beast writes for a response, to compare append_head with.
std::string beast_head(unsigned status, unsigned version, bool keep_alive, bool chunked,
                       size_t length, bool extra) {
  http::response<http::empty_body> res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "application/json");
  if (extra) res.set("x-aifinops-cache", "hit");
  res.keep_alive(keep_alive);
  if (chunked)
    res.chunked(true);
  else
    res.content_length(length);
  std::ostringstream out;
  out << res.base();
  return out.str();
}

TEST(HttpIoTest, WritesResponseHeadsAsBeastDoes) {
  for (unsigned version : {10u, 11u}) {
    for (bool keep_alive : {false, true}) {
      for (bool chunked : {false, true}) {
        for (unsigned status : {200u, 429u, 504u}) {
          ResponseHead head;
          head.status = status;
          head.version = version;
          head.keep_alive = keep_alive;
          head.content_type = "application/json";
          head.chunked = chunked;
          head.content_length = 1052;
          head.extra = "x-aifinops-cache: hit\r\n";
          std::string text;
          append_head(text, head);
          EXPECT_EQ(text, beast_head(status, version, keep_alive, chunked, 1052, true))
              << version << keep_alive << chunked << status;
        }
      }
    }
  }
}

TEST(HttpIoTest, WritesChunkSizeLinesInHex) {
  std::array<char, 20> space;
  EXPECT_EQ(chunk_size_line(0, space), "0\r\n");
  EXPECT_EQ(chunk_size_line(26, space), "1a\r\n");
  EXPECT_EQ(chunk_size_line(4096, space), "1000\r\n");
  EXPECT_EQ(chunk_size_line(0xffffffffffffffffull, space), "ffffffffffffffff\r\n");
}

/// A connected pair of loopback sockets on `ioc`.
struct SocketPair {
  explicit SocketPair(net::io_context& ioc) : a(ioc), b(ioc) {
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    a.connect(acceptor.local_endpoint());
    acceptor.accept(b);
    a.non_blocking(true);
    b.non_blocking(true);
  }
  tcp::socket a, b;
};

/// Runs `test` as a coroutine on `ioc` until it returns, for 10 s at most.
template <class Test>
void run(net::io_context& ioc, Test test) {
  bool done = false;
  net::co_spawn(ioc, test(), [&](std::exception_ptr error) {
    done = true;
    if (error) std::rethrow_exception(error);
  });
  auto give_up = SteadyClock::now() + std::chrono::seconds(10);
  while (!done && SteadyClock::now() < give_up) ioc.run_one_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(done);
}

TEST(HttpIoTest, ReadsPipelinedRequestsFromTheBufferAndReportsTheEnd) {
  net::io_context ioc;
  SocketPair pair(ioc);
  std::string two =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
      "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond";
  net::write(pair.a, net::buffer(two));
  pair.a.shutdown(tcp::socket::shutdown_send);
  auto deadline = std::make_shared<Deadline>(ioc.get_executor());
  run(ioc, [&]() -> net::awaitable<void> {
    beast::flat_buffer buffer;
    auto due = SteadyClock::now() + std::chrono::seconds(5);
    std::pmr::monotonic_buffer_resource arena;
    RequestParser first(&arena);
    auto read_first = read(pair.b, pair.b, buffer, first, Until::kMessage, *deadline, due);
    beast::error_code read_first_error = co_await std::move(read_first);
    EXPECT_FALSE(read_first_error);
    RequestParser second(&arena);
    auto read_second = read(pair.b, pair.b, buffer, second, Until::kMessage, *deadline, due);
    beast::error_code read_second_error = co_await std::move(read_second);
    EXPECT_FALSE(read_second_error);
    // The texts were copied out of the read buffer, which the second request reused.
    Request first_req = first.release();
    EXPECT_EQ(first_req.target, "/v1/chat/completions");
    EXPECT_EQ(first_req.body, "first");
    EXPECT_EQ(second.release().body, "second");
    RequestParser third(&arena);
    auto read_third = read(pair.b, pair.b, buffer, third, Until::kMessage, *deadline, due);
    beast::error_code read_third_error = co_await std::move(read_third);
    EXPECT_EQ(read_third_error, http::error::end_of_stream);
  });
}

/// What a ResponseParser made of a response.
struct Received {
  unsigned status = 0;
  std::string content_type;
  bool keep_alive = false;
  std::string body;
};

/// Sends `response` on a loopback connection, in pieces of `piece` bytes with a pause after
/// each (so that each one is a read), and reads it as the gateway relays a stream: its
/// head, then its body through a buffer of 4 KiB.
Received receive(const std::string& response, size_t piece) {
  net::io_context ioc;
  SocketPair pair(ioc);
  auto deadline = std::make_shared<Deadline>(ioc.get_executor());
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        net::steady_timer pause(ioc);
        for (size_t at = 0; at < response.size(); at += piece) {
          net::write(pair.a,
                     net::buffer(response.data() + at, std::min(piece, response.size() - at)));
          pause.expires_after(std::chrono::milliseconds(2));
          co_await pause.async_wait(net::use_awaitable);
        }
      },
      net::detached);
  Received received;
  run(ioc, [&]() -> net::awaitable<void> {
    beast::flat_buffer buffer;
    auto due = SteadyClock::now() + std::chrono::seconds(5);
    ResponseParser parser;
    auto read_head = read(pair.b, pair.b, buffer, parser, Until::kHeader, *deadline, due);
    beast::error_code ec = co_await std::move(read_head);
    EXPECT_FALSE(ec) << ec.message();
    if (ec) co_return;
    received.status = parser.status();
    received.content_type = parser.content_type();
    received.keep_alive = parser.keep_alive();
    std::array<char, 4096> space;
    while (!parser.is_done()) {
      parser.body_into(space.data(), space.size());
      auto read_some = read(pair.b, pair.b, buffer, parser, Until::kSome, *deadline, due);
      ec = co_await std::move(read_some);
      received.body.append(space.data(), space.size() - parser.body_room());
      if (ec && ec != http::error::need_buffer) {
        ADD_FAILURE() << ec.message();
        co_return;
      }
    }
  });
  return received;
}

TEST(HttpIoTest, ResponseParserKeepsStatusAndContentTypeAndReadsALengthBody) {
  Received received = receive(
      "HTTP/1.1 429 Too Many Requests\r\nDate: Sat, 28 Nov 2026 21:00:00 GMT\r\n"
      "content-type: application/json; charset=utf-8\r\nContent-Type: text/plain\r\n"
      "x-request-id: req_123\r\nContent-Length: 16\r\n\r\n{\"error\":\"slow\"}",
      SIZE_MAX);
  EXPECT_EQ(received.body, "{\"error\":\"slow\"}");
  EXPECT_EQ(received.status, 429u);
  EXPECT_EQ(received.content_type, "application/json; charset=utf-8");  // the first, as Beast
  EXPECT_TRUE(received.keep_alive);
}

TEST(HttpIoTest, ResponseParserDecodesAChunkedBodyThatCameWithItsHead) {
  Received received = receive(
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n6\r\ndata: \r\n4\r\nok\n\n\r\n0\r\n\r\n",
      SIZE_MAX);
  EXPECT_EQ(received.body, "data: ok\n\n");
  EXPECT_EQ(received.status, 200u);
  EXPECT_EQ(received.content_type, "text/event-stream");
  EXPECT_FALSE(received.keep_alive);
}

TEST(HttpIoTest, ResponseParserReadsAHeadSplitOverSeveralReads) {
  Received received = receive(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}",
      5);
  EXPECT_EQ(received.body, "{}");
  EXPECT_EQ(received.status, 503u);
  EXPECT_EQ(received.content_type, "application/json");
}

TEST(HttpIoTest, ResponseParserAsksForABufferWhenTheBodyDoesNotFit) {
  std::string body;
  for (int i = 0; i < 1000; ++i) body += static_cast<char>('a' + i % 26);
  for (bool chunked : {false, true}) {
    std::string response = "HTTP/1.1 200 OK\r\n";
    if (chunked) {
      response += "Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + body + "\r\n0\r\n\r\n";
    } else {
      response += "Content-Length: 1000\r\n\r\n" + body;
    }
    ResponseParser parser;
    parser.eager(true);
    beast::error_code ec;
    size_t used = parser.put(net::buffer(response), ec);  // no buffer given yet
    EXPECT_EQ(ec, http::error::need_buffer) << chunked;
    EXPECT_TRUE(parser.is_header_done());
    EXPECT_EQ(parser.content_type(), "");
    std::string received;
    char space[7];
    int rounds = 0;
    while (!parser.is_done() && rounds++ < 1000) {
      parser.body_into(space, sizeof space);
      used += parser.put(net::buffer(response.data() + used, response.size() - used), ec);
      received.append(space, sizeof space - parser.body_room());
      // Full before the body's end: need_buffer, as with http::buffer_body.
      if (!parser.is_done()) {
        EXPECT_EQ(ec, http::error::need_buffer) << chunked;
      }
    }
    EXPECT_FALSE(ec) << chunked;
    EXPECT_EQ(received, body) << chunked;
    EXPECT_EQ(used, response.size()) << chunked;
  }
}

TEST(HttpIoTest, ResponseParserReportsAMalformedHead) {
  const std::pair<std::string, http::error> cases[] = {
      {"HTTP/1.1 2x0 OK\r\n\r\n", http::error::bad_status},
      {"HTTX/1.1 200 OK\r\n\r\n", http::error::bad_version},
      {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", http::error::bad_version},  // a request
      {"HTTP/1.1 200 OK\r\nContent Type: text/plain\r\n\r\n", http::error::bad_field},
      {"HTTP/1.1 200 OK\r\nContent-Type: a\x01b\r\n\r\n", http::error::bad_value},
      {"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", http::error::bad_content_length},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       http::error::multiple_content_length},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http::error::bad_chunk},
  };
  for (const auto& [text, expected] : cases) {
    ResponseParser parser;
    parser.eager(true);
    char space[64];
    parser.body_into(space, sizeof space);
    beast::error_code ec;
    parser.put(net::buffer(text), ec);
    EXPECT_EQ(ec, expected) << text;
  }
  // A head that never ends stops at the header limit instead of growing without bound.
  ResponseParser parser;
  std::string endless = "HTTP/1.1 200 OK\r\n";
  while (endless.size() < 20000) endless += "x-filler: 0123456789\r\n";
  beast::error_code ec;
  parser.put(net::buffer(endless), ec);
  EXPECT_EQ(ec, http::error::header_limit);
}

/// Parses `text` with a ResponseParser and with Beast's response_parser, the first read
/// ending at `split`, the body taken 5 bytes at a time, and says what each made of it.
std::pair<std::string, std::string> parse_both(const std::string& text, size_t split) {
  auto describe = [&](auto& parser, auto&& status, auto&& content_type, auto&& give_buffer,
                      auto&& room) {
    parser.eager(true);
    std::string body;
    char space[5];
    size_t used = 0;
    size_t end = split;  // the first put sees the text up to `split`, the next ones all of it
    beast::error_code ec;
    for (int rounds = 0; rounds < 10000 && !parser.is_done(); ++rounds) {
      if (used == text.size()) {
        parser.put_eof(ec);  // the connection closes
        break;
      }
      give_buffer(space, sizeof space);
      used += parser.put(net::buffer(text.data() + used, end - used), ec);
      body.append(space, sizeof space - room());
      end = text.size();
      if (ec && ec != http::error::need_buffer && ec != http::error::need_more) break;
    }
    return std::to_string(status()) + "|" + std::string(content_type()) + "|" +
           std::to_string(parser.is_done()) + std::to_string(parser.keep_alive()) + "|" +
           ec.message() + "|" + body;
  };
  ResponseParser ours;
  std::string mine = describe(
      ours, [&] { return ours.status(); }, [&] { return ours.content_type(); },
      [&](char* data, size_t size) { ours.body_into(data, size); },
      [&] { return ours.body_room(); });
  http::response_parser<http::buffer_body> beast_parser;
  beast_parser.body_limit(boost::none);
  auto& res = beast_parser.get();
  std::string theirs = describe(
      beast_parser, [&] { return beast_parser.is_header_done() ? res.result_int() : 0u; },
      [&] { return std::string_view(res[http::field::content_type]); },
      [&](char* data, size_t size) {
        res.body().data = data;
        res.body().size = size;
      },
      [&] { return res.body().size; });
  return {mine, theirs};
}

TEST(HttpIoTest, ResponseParserMakesOfAResponseWhatBeastsParserMakes) {
  const std::string responses[] = {
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
      "{\"ok\":true}",
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
      "\r\n7;ext=1\r\ndata: 1\r\nc\r\n\n\ndata: [DONE]\r\n0\r\nx-trailer: y\r\n\r\n",
      "HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nto the end",
      "HTTP/1.1 204 No Content\r\nContent-Type: application/json\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\ncut short",
      "HTTP/1.1 200 OK\r\nContent-Type: \r\nContent-Length: 1\r\n\r\nx",
  };
  for (const std::string& text : responses) {
    for (size_t split = 0; split <= text.size(); ++split) {
      auto [mine, theirs] = parse_both(text, split);
      EXPECT_EQ(mine, theirs) << "split at " << split << " of " << text;
    }
  }
}

TEST(HttpIoTest, RequestParserKeepsTheRequestLineTheBodyAndTheFieldsTheGatewayReads) {
  std::pmr::monotonic_buffer_resource arena;
  std::string text =
      "POST /openai/deployments/gpt/chat/completions?api-version=1 HTTP/1.1\r\n"
      "Host: gateway\r\nAuthorization: Bearer sk-1\r\nX-API-Key: ak-2\r\napi-key: az-3\r\n"
      "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
      "Anthropic-Version: 2023-06-01\r\nanthropic-beta: tools\r\nX-Aifinops-Cache: true\r\n"
      "accept: application/json\r\nUser-Agent: test\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
  RequestParser parser(&arena);
  parser.eager(true);
  beast::error_code ec;
  EXPECT_EQ(parser.put(net::buffer(text), ec), text.size());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
  Request req = parser.release();
  EXPECT_EQ(req.method, http::verb::post);
  EXPECT_EQ(req.method_string, "POST");
  EXPECT_EQ(req.target, "/openai/deployments/gpt/chat/completions?api-version=1");
  EXPECT_EQ(req.version, 11u);
  EXPECT_TRUE(req.keep_alive);
  EXPECT_EQ(req.body, "{\"a\":1}");
  EXPECT_EQ(req.authorization, "Bearer sk-1");
  EXPECT_EQ(req.x_api_key, "ak-2");
  EXPECT_EQ(req.api_key, "az-3");
  EXPECT_EQ(req.content_type, "application/json");
  EXPECT_EQ(req.accept, "text/event-stream");  // the first, as Beast's find
  EXPECT_EQ(req.anthropic_version, "2023-06-01");
  EXPECT_EQ(req.anthropic_beta, "tools");
  EXPECT_EQ(req.aifinops_cache, "true");
}

TEST(HttpIoTest, RequestParserReadsAChunkedBodyAndAnHttp10Request) {
  std::pmr::monotonic_buffer_resource arena;
  std::string chunked =
      "POST /v1/embeddings HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  RequestParser parser(&arena);
  parser.eager(true);
  beast::error_code ec;
  parser.put(net::buffer(chunked), ec);
  EXPECT_FALSE(ec) << ec.message();
  Request req = parser.release();
  EXPECT_EQ(req.body, "abcde");
  EXPECT_FALSE(req.keep_alive);
  EXPECT_TRUE(req.accept.empty());

  std::string old = "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  RequestParser old_parser(&arena);
  old_parser.put(net::buffer(old), ec);
  EXPECT_FALSE(ec) << ec.message();
  Request old_req = old_parser.release();
  EXPECT_EQ(old_req.method, http::verb::get);
  EXPECT_EQ(old_req.version, 10u);
  EXPECT_TRUE(old_req.keep_alive);
  EXPECT_TRUE(old_req.body.empty());
}

TEST(HttpIoTest, RequestParserRefusesABodyBeyondItsLimit) {
  std::pmr::monotonic_buffer_resource arena;
  for (std::string text :
       {std::string("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 11\r\n\r\n"),
        std::string("POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n")}) {
    RequestParser parser(&arena);
    parser.body_limit(10);
    parser.eager(true);
    beast::error_code ec;
    parser.put(net::buffer(text), ec);
    EXPECT_EQ(ec, http::error::body_limit) << text;
    Request req = parser.release();
    EXPECT_EQ(req.target, "/v1/chat/completions");  // for the 413's message
  }
}

TEST(HttpIoTest, TheWatchdogCancelsAReadThatIsLate) {
  net::io_context ioc;
  SocketPair pair(ioc);  // nothing is ever sent on it
  Watchdog watchdog;
  auto deadline = std::make_shared<Deadline>(ioc.get_executor());
  watchdog.watch(deadline);
  net::co_spawn(ioc, watchdog.run(), net::detached);
  run(ioc, [&]() -> net::awaitable<void> {
    beast::flat_buffer buffer;
    std::pmr::monotonic_buffer_resource arena;
    RequestParser parser(&arena);
    auto start = SteadyClock::now();
    auto late = read(pair.b, pair.b, buffer, parser, Until::kMessage, *deadline,
                     start + std::chrono::milliseconds(300));
    beast::error_code late_error = co_await std::move(late);
    EXPECT_EQ(late_error, beast::error::timeout);
    auto waited = SteadyClock::now() - start;
    EXPECT_GE(waited, std::chrono::milliseconds(300));
    EXPECT_LT(waited, std::chrono::milliseconds(300) + 4 * Watchdog::kTick);
  });
}

TEST(HttpIoTest, WritesAtOnceWhatFitsAndTheRestWhenThePeerReads) {
  net::io_context ioc;
  SocketPair pair(ioc);
  std::string big(8 << 20, 'x');  // more than a socket's send and receive buffers hold
  auto deadline = std::make_shared<Deadline>(ioc.get_executor());
  std::string received;
  run(ioc, [&]() -> net::awaitable<void> {
    auto buffers = std::array{cbuf("head:"), cbuf(big)};
    beast::error_code ec;
    size_t sent = write_now(pair.a, buffers, ec);
    EXPECT_FALSE(ec);
    EXPECT_GT(sent, 0u);
    EXPECT_LT(sent, big.size());
    // The peer reads everything while the rest is written.
    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
          char data[65536];
          for (;;) {
            auto [rec, n] = co_await pair.b.async_read_some(net::buffer(data), kAsTuple);
            received.append(data, n);
            if (rec) co_return;
          }
        },
        net::detached);
    auto rest = write_rest(pair.a, buffers, sent, *deadline,
                           SteadyClock::now() + std::chrono::seconds(5));
    beast::error_code rest_error = co_await std::move(rest);
    EXPECT_FALSE(rest_error);
    pair.a.shutdown(tcp::socket::shutdown_send);
  });
  ioc.run_for(std::chrono::seconds(5));  // the peer reads to the end
  EXPECT_EQ(received.size(), 5 + big.size());
  EXPECT_EQ(received.substr(0, 6), "head:x");
}

}  // namespace
}  // namespace aifinops::gateway::http_io
