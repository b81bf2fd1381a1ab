#include "gateway/http_io.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

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
    http::request_parser<http::string_body> first;
    auto read_first = read(pair.b, pair.b, buffer, first, Until::kMessage, *deadline, due);
    beast::error_code read_first_error = co_await std::move(read_first);
    EXPECT_FALSE(read_first_error);
    EXPECT_EQ(first.get().target(), "/v1/chat/completions");
    EXPECT_EQ(first.get().body(), "first");
    http::request_parser<http::string_body> second;
    auto read_second = read(pair.b, pair.b, buffer, second, Until::kMessage, *deadline, due);
    beast::error_code read_second_error = co_await std::move(read_second);
    EXPECT_FALSE(read_second_error);
    EXPECT_EQ(second.get().body(), "second");
    http::request_parser<http::string_body> third;
    auto read_third = read(pair.b, pair.b, buffer, third, Until::kMessage, *deadline, due);
    beast::error_code read_third_error = co_await std::move(read_third);
    EXPECT_EQ(read_third_error, http::error::end_of_stream);
  });
}

TEST(HttpIoTest, ReadsAHeadThenItsBodyIntoABufferBody) {
  net::io_context ioc;
  SocketPair pair(ioc);
  std::string response =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\ndata: \r\n4\r\nok\n\n\r\n0\r\n\r\n";
  net::write(pair.a, net::buffer(response));
  auto deadline = std::make_shared<Deadline>(ioc.get_executor());
  run(ioc, [&]() -> net::awaitable<void> {
    beast::flat_buffer buffer;
    auto due = SteadyClock::now() + std::chrono::seconds(5);
    http::response_parser<http::buffer_body> parser;
    auto read_head = read(pair.b, pair.b, buffer, parser, Until::kHeader, *deadline, due);
    beast::error_code read_head_error = co_await std::move(read_head);
    EXPECT_FALSE(read_head_error);
    EXPECT_TRUE(parser.is_header_done());
    EXPECT_GT(buffer.size(), 0u);  // the body came with the head and waits in the buffer
    std::string body;
    char chunk[4];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      auto read_some = read(pair.b, pair.b, buffer, parser, Until::kSome, *deadline, due);
      beast::error_code ec = co_await std::move(read_some);
      if (ec && ec != http::error::need_buffer) ADD_FAILURE() << ec.message();
      if (ec && ec != http::error::need_buffer) break;
      body.append(chunk, sizeof chunk - parser.get().body().size);
    }
    EXPECT_EQ(body, "data: ok\n\n");
  });
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
    http::request_parser<http::string_body> parser;
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
