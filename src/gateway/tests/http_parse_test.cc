// The gateway's HTTP/1.x parser (http_parse.h under http_io.h's RequestParser and
// ResponseParser) against Beast 1.81's request_parser / response_parser, the oracle: a
// corpus of good and bad messages, each one fed whole, cut at every point and in random
// pieces; random mutations of them; and the differences we chose, one test each.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gateway/tests/http_differential.h"

namespace aifinops::gateway {
namespace {

using namespace std::string_literals;
using http_differential::check;

struct Case {
  std::string text;
  bool accepted;  ///< by us
};

const std::vector<Case>& request_corpus() {
  static const std::vector<Case> corpus = {
      // Good.
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAUTHORIZATION: Bearer sk-1\r\n"
       "content-type:application/json \t\r\nX-Api-Key: \r\nx-api-key:\tk2\r\n"
       "Api-Key: az\r\nAccept: */*\r\nAnthropic-Version: 2023-06-01\r\n"
       "anthropic-beta: a,b\r\nX-AIFINOPS-CACHE: no\r\nContent-Length: 5\r\n\r\nhello",
       true},
      {"GET http://example.com/x?y=1#f HTTP/1.1\r\n\r\n", true},
      {"OPTIONS * HTTP/1.1\r\n\r\n", true},
      {"GET /health HTTP/1.0\r\n\r\n", true},
      {"GET /health HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: ,, keep-alive ,\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nX: obs-text \x80\xff\r\nY:\r\n\r\n", true},
      {"M-SEARCH /~a!$&'()*+,;=:@ HTTP/1.1\r\n\r\n", true},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;a=b;c=\"q\\\"x\" ; d\r\nhello\r\nA\r\n0123456789\r\n0;z\r\nX-T: 1\r\n\r\n",
       true},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n3\r\nabc\r\n000\r\n\r\n", true},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
      {"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc", true},
      {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", true},
      {"POST / HTTP/1.1\r\nContent-Length: 000002\r\n\r\nabGET / HTTP/1.1\r\n\r\n", true},
      {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nx", false},  // body_limit
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc", false},  // cut short
      // Framing: request smuggling.
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
       false},
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", false},
      {"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello!", false},
      {"POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\nhello", false},
      {"POST / HTTP/1.1\r\nContent-Length: ,5\r\n\r\nhello", false},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", false},
      {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", false},
      {"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\nhello", false},
      {"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello", false},
      {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", false},
      {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false},   // on purpose
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false},  // on purpose
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\ng\r\n\r\n", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
       "Content-Length: 3\r\n\r\n",
       false},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"x\r\nabc\r\n0\r\n\r\n", false},
      // Syntax.
      {"GET / HTTP/1.1\nHost: a\n\n", false},
      {"GET / HTTP/1.1\r\nHost: a\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\n continued\r\n\r\n", false},  // obs-fold, on purpose
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", false},
      {"GET / HTTP/1.1\r\n: a\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s, false},
      {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nX\r\n\r\n", false},
      {"GET  / HTTP/1.1\r\n\r\n", false},
      {"GET /\x7f HTTP/1.1\r\n\r\n", false},
      {"GET / HTTP/1.2\r\n\r\n", false},
      {"GET / HTTP/2.0\r\n\r\n", false},
      {"GET / http/1.1\r\n\r\n", false},
      {"GET / HTTP/1.1 \r\n\r\n", false},
      {"G(T / HTTP/1.1\r\n\r\n", false},
      {" GET / HTTP/1.1\r\n\r\n", false},
      {"\r\nGET / HTTP/1.1\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nConnection: close;x\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nConnection: close keep-alive\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", false},
  };
  return corpus;
}

const std::vector<Case>& response_corpus() {
  static const std::vector<Case> corpus = {
      {"HTTP/1.1 200 OK\r\ndate: Sat, 28 Nov 2026 23:55:06 GMT\r\n"
       "content-type: application/json\r\ncontent-length: 11\r\nconnection: keep-alive\r\n"
       "openai-organization: org-x\r\nopenai-processing-ms: 412\r\nopenai-version: 2020-10-01\r\n"
       "x-ratelimit-limit-requests: 10000\r\nx-ratelimit-remaining-tokens: 199000\r\n"
       "x-request-id: req_1\r\nset-cookie: __cf_bm=x; path=/; HttpOnly; Secure\r\n"
       "cf-ray: 8f-LHR\r\n\r\n{\"ok\":true}",
       true},
      {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
       "b\r\ndata: {}\n\n\n\r\n0\r\n\r\n",
       true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nConnection: close\r\n"
       "\r\n",
       true},
      {"HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nto the end", true},
      {"HTTP/1.1 200 OK\r\n\r\nto the end", true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nto the end", true},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nab", true},
      {"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", true},
      {"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", true},
      {"HTTP/1.1 100 Continue\r\n\r\n", true},
      {"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 429 Too\tMany \x80\r\nContent-Type:\r\nContent-Type: b\r\nContent-Length: 0\r\n"
       "\r\n",
       true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", true},
      {"HTTP/1.1 200\r\n\r\n", false},
      {"HTTP/1.1 2000 OK\r\n\r\n", false},
      {"HTTP/1.1 20 OK\r\n\r\n", false},
      {"HTTP/1.1 200 O\0K\r\n\r\n"s, false},
      {"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/2 200 OK\r\n\r\n", false},
      {"HTTP/1.1  200 OK\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", false},
      {"HTTP/1.1 200 OK\r\nX-Folded: a\r\n\tb\r\nContent-Length: 0\r\n\r\n", false},  // on purpose
  };
  return corpus;
}

/// Every cut of `text` in two, and a few random cuts in up to five pieces.
std::vector<std::vector<size_t>> splits_of(const std::string& text, std::mt19937& random) {
  std::vector<std::vector<size_t>> splits = {{}};
  for (size_t at = 1; at < text.size(); ++at) splits.push_back({at});
  for (int i = 0; i < 20; ++i) {
    std::vector<size_t> cuts(1 + random() % 4);
    for (size_t& cut : cuts) cut = random() % (text.size() + 1);
    std::sort(cuts.begin(), cuts.end());
    splits.push_back(cuts);
  }
  return splits;
}

void check_corpus(const std::vector<Case>& corpus, bool request) {
  std::mt19937 random(7);
  for (const Case& c : corpus) {
    for (const auto& splits : splits_of(c.text, random)) {
      std::string difference = check(c.text, request, splits);
      ASSERT_EQ(difference, "") << "message: " << testing::PrintToString(c.text)
                                << " split at " << testing::PrintToString(splits);
    }
    const http_differential::Outcome ours =
        request ? http_differential::ours_request(c.text, {}, 1024 * 1024)
                : http_differential::ours_response(c.text, {});
    EXPECT_EQ(ours.done, c.accepted) << testing::PrintToString(c.text) << ": "
                                     << ours.describe();
  }
}

TEST(HttpParseTest, RequestsAreReadAsBeastReadsThemInAnyPieces) {
  check_corpus(request_corpus(), true);
}

TEST(HttpParseTest, ResponsesAreReadAsBeastReadsThemInAnyPieces) {
  check_corpus(response_corpus(), false);
}

/// One random change to `text`: a byte replaced, inserted or removed (bytes that matter to
/// the grammar, mostly), a line repeated, a letter's case changed.
void mutate(std::string& text, std::mt19937& random) {
  static const std::string kBytes = "\r\n \t:;,\"\\=-0119aAfFzZ\x00\x7f\x80\xff"s;
  if (text.empty()) {
    text.push_back(kBytes[random() % kBytes.size()]);
    return;
  }
  const size_t at = random() % text.size();
  switch (random() % 5) {
    case 0:
      text[at] = kBytes[random() % kBytes.size()];
      break;
    case 1:
      text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), kBytes[random() % kBytes.size()]);
      break;
    case 2:
      text.erase(at, 1);
      break;
    case 3: {
      const size_t begin = text.rfind('\n', at);
      const size_t end = text.find('\n', at);
      if (begin != std::string::npos && end != std::string::npos)
        text.insert(end + 1, text.substr(begin + 1, end - begin));
      break;
    }
    default:
      if (std::isalpha(static_cast<unsigned char>(text[at]))) text[at] ^= 0x20;
  }
}

TEST(HttpParseTest, MutatedMessagesAreAcceptedAndRefusedAsBeastDoes) {
  std::mt19937 random(2026);
  const uint64_t limits[] = {1024 * 1024, 0, 4, 64};
  for (int round = 0; round < 200000; ++round) {
    const bool request = random() % 2 == 0;
    const auto& corpus = request ? request_corpus() : response_corpus();
    std::string text = corpus[random() % corpus.size()].text;
    for (int changes = 1 + static_cast<int>(random() % 3); changes > 0; --changes)
      mutate(text, random);
    std::vector<size_t> cuts(random() % 4);
    for (size_t& cut : cuts) cut = random() % (text.size() + 1);
    std::sort(cuts.begin(), cuts.end());
    const uint64_t limit = limits[random() % 4];
    const std::string difference = check(text, request, cuts, limit);
    ASSERT_EQ(difference, "") << "round " << round << ": " << testing::PrintToString(text)
                              << " limit " << limit
                              << " split at " << testing::PrintToString(cuts);
  }
}

TEST(HttpParseTest, AHeadUpToTheLimitIsReadAndOneByteMoreIsRefusedAsByBeast) {
  // Beast's 8 KiB header_limit holds for the start line and for the fields apart, when the
  // head comes in one read (in pieces, Beast's limit moves with what it already used; ours
  // does not).
  for (size_t fill : {8100u, 8150u, 8160u, 8170u, 8171u, 8172u, 8173u, 8180u, 8200u}) {
    std::string text = "GET / HTTP/1.1\r\nX: " + std::string(fill, 'a') + "\r\nY: b\r\n\r\n";
    EXPECT_EQ(check(text, true, {}), "") << fill;
    std::string line = "GET /" + std::string(fill, 'a') + " HTTP/1.1\r\n\r\n";
    EXPECT_EQ(check(line, true, {}), "") << fill;
  }
  // The fields, from "X" to the blank line's CRLF, are 8192 bytes.
  std::string at_limit = "GET / HTTP/1.1\r\nX: " + std::string(8192 - 7, 'a') + "\r\n\r\n";
  EXPECT_TRUE(http_differential::ours_request(at_limit, {}, 0).done);
  at_limit.insert(20, "a");
  EXPECT_EQ(http_differential::ours_request(at_limit, {}, 0).error,
            boost::beast::http::error::header_limit);
}

TEST(HttpParseTest, RefusesAFoldedFieldThatBeastWouldUnfold) {
  // RFC 7230 3.2.4 lets a server refuse obs-fold; a proxy that joined the lines would read
  // a value that a peer which does not join them reads differently.
  const std::string text = "GET / HTTP/1.1\r\nAuthorization: Bearer\r\n sk-1\r\n\r\n";
  EXPECT_TRUE(http_differential::beast_request(text, {}, 0).done);
  http_differential::Outcome ours = http_differential::ours_request(text, {}, 0);
  EXPECT_FALSE(ours.done);
  EXPECT_EQ(ours.error, boost::beast::http::error::bad_value);
}

TEST(HttpParseTest, RefusesARequestWhoseTransferEncodingDoesNotEndInChunked) {
  // Beast reads it as a request without a body and the bytes after the head as the next
  // request: what request smuggling is made of (RFC 7230 3.3.3 says 400).
  for (std::string te : {"gzip", "chunked, gzip", "chunked, chunked", ""}) {
    const std::string text = "POST / HTTP/1.1\r\nTransfer-Encoding: " + te +
                             "\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n";
    EXPECT_TRUE(http_differential::beast_request(text, {}, 100).done) << te;
    http_differential::Outcome ours = http_differential::ours_request(text, {}, 100);
    EXPECT_EQ(ours.error, boost::beast::http::error::bad_transfer_encoding) << te;
  }
  // A response without a length runs to the end of the connection, as for Beast.
  EXPECT_EQ(check("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", false, {}), "");
}

TEST(HttpParseTest, BoundsAChunkSizeLineAndATrailerThatBeastWouldBufferWithoutEnd) {
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string long_extension = head + "1;" + std::string(9000, 'x') + "\r\na\r\n0\r\n\r\n";
  EXPECT_EQ(http_differential::ours_request(long_extension, {}, 100).error,
            boost::beast::http::error::header_limit);
  const std::string long_trailer =
      head + "1\r\na\r\n0\r\nX: " + std::string(9000, 'x') + "\r\n\r\n";
  EXPECT_EQ(http_differential::ours_request(long_trailer, {}, 100).error,
            boost::beast::http::error::header_limit);
  EXPECT_TRUE(http_differential::beast_request(long_trailer, {}, 100).done);
}

TEST(HttpParseTest, ATrailerDoesNotSetTheFieldsTheGatewayReads) {
  // Beast's request_parser adds a trailer's fields to the head's; an Authorization there
  // would authenticate a request whose head had none. The head's fields only count.
  const std::string text =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
      "Authorization: Bearer sk-late\r\n\r\n";
  http_differential::Outcome ours = http_differential::ours_request(text, {}, 100);
  ASSERT_TRUE(ours.done);
  EXPECT_EQ(ours.kept[0], "");
  EXPECT_EQ(ours.body, "a");
}

}  // namespace
}  // namespace aifinops::gateway
