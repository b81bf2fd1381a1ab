// Micro-benchmarks of the gateway's HTTP/1.x parser (http_io.h's RequestParser and
// ResponseParser on http_parse.h) against the parsers they replaced, built on Beast 1.81's
// http::basic_parser<isRequest> and keeping the same few fields (BeastRequestParser and
// BeastResponseParser below, the gateway's code until then): a client's chat completion
// request (request line, 8 fields, a 400-byte body) and an upstream's response head as
// OpenAI sends it (16 fields), each parsed from one buffer as the gateway parses a message
// that came in one read. Compare by CPU time, in one run:
// `http_parse_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true`.
#include <benchmark/benchmark.h>

#include <memory_resource>
#include <string>

#include "gateway/http_io.h"

namespace aifinops::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using http_io::Request;

/// The gateway's request parser before http_parse.h: Beast's tokenizer, the kept fields.
class BeastRequestParser final : public http::basic_parser<true> {
 public:
  explicit BeastRequestParser(std::pmr::memory_resource* memory) : request_(memory) {}
  Request release() { return std::move(request_); }

 private:
  void on_request_impl(http::verb method, beast::string_view method_string,
                       beast::string_view target, int version, beast::error_code&) override {
    request_.method = method;
    request_.method_string.assign(method_string.data(), method_string.size());
    request_.target.assign(target.data(), target.size());
    request_.version = static_cast<unsigned>(version);
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  void on_field_impl(http::field name, beast::string_view name_text, beast::string_view value,
                     beast::error_code&) override {
    std::pmr::string* kept = kept_field(name, name_text);
    if (kept != nullptr && kept->empty()) kept->assign(value.data(), value.size());
  }
  void on_header_impl(beast::error_code&) override { request_.keep_alive = keep_alive(); }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    if (length) request_.body.reserve(static_cast<size_t>(*length));
  }
  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  std::pmr::string* kept_field(http::field name, beast::string_view text) {
    switch (name) {
      case http::field::authorization:
        return &request_.authorization;
      case http::field::content_type:
        return &request_.content_type;
      case http::field::accept:
        return &request_.accept;
      case http::field::unknown:
        break;
      default:
        return nullptr;
    }
    if (beast::iequals(text, "x-api-key")) return &request_.x_api_key;
    if (beast::iequals(text, "api-key")) return &request_.api_key;
    if (beast::iequals(text, "anthropic-version")) return &request_.anthropic_version;
    if (beast::iequals(text, "anthropic-beta")) return &request_.anthropic_beta;
    if (beast::iequals(text, "x-aifinops-cache")) return &request_.aifinops_cache;
    return nullptr;
  }

  Request request_;
};

/// The gateway's response parser before http_parse.h: status and Content-Type kept.
class BeastResponseParser final : public http::basic_parser<false> {
 public:
  explicit BeastResponseParser(std::pmr::memory_resource* memory) : content_type_(memory) {
    body_limit(boost::none);
  }
  unsigned status() const { return status_; }

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override {
    status_ = static_cast<unsigned>(code);
  }
  void on_field_impl(http::field name, beast::string_view, beast::string_view value,
                     beast::error_code&) override {
    if (name != http::field::content_type || has_content_type_) return;
    content_type_.assign(value.data(), value.size());
    has_content_type_ = true;
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  size_t on_body_impl(beast::string_view body, beast::error_code&) override { return body.size(); }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  unsigned status_ = 0;
  std::pmr::string content_type_;
  bool has_content_type_ = false;
};

/// A chat completion request as an OpenAI client library sends it: 8 fields, 400-byte body.
std::string chat_request() {
  std::string body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful )"
      R"(assistant."},{"role":"user","content":")";
  body.append(400 - body.size() - 4, 'x');
  body += "\"}]}";
  return "POST /v1/chat/completions HTTP/1.1\r\n"
         "Host: gateway.internal:8081\r\n"
         "Authorization: Bearer sk-proj-0123456789abcdefghijklmnopqrstuvwxyz\r\n"
         "Content-Type: application/json\r\n"
         "Accept: application/json\r\n"
         "User-Agent: OpenAI/Python 1.54.4\r\n"
         "X-Stainless-Lang: python\r\n"
         "Accept-Encoding: gzip, deflate\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// An upstream's response head as OpenAI sends it.
const std::string kResponseHead =
    "HTTP/1.1 200 OK\r\n"
    "Date: Sat, 28 Nov 2026 23:55:06 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 812\r\n"
    "Connection: keep-alive\r\n"
    "access-control-expose-headers: X-Request-ID\r\n"
    "openai-organization: user-abc123\r\n"
    "openai-processing-ms: 412\r\n"
    "openai-version: 2020-10-01\r\n"
    "x-ratelimit-limit-requests: 10000\r\n"
    "x-ratelimit-limit-tokens: 200000\r\n"
    "x-ratelimit-remaining-requests: 9999\r\n"
    "x-ratelimit-remaining-tokens: 199950\r\n"
    "x-ratelimit-reset-requests: 8.64s\r\n"
    "x-request-id: req_0123456789abcdef0123456789abcdef\r\n"
    "set-cookie: __cf_bm=abcdefghijklmnop; path=/; expires=Sun, 29-Nov-26 00:25:06 GMT; "
    "domain=.api.openai.com; HttpOnly; Secure; SameSite=None\r\n"
    "cf-ray: 8e1234567890abcd-LHR\r\n\r\n";

template <class Parser>
void parse_request(benchmark::State& state) {
  const std::string text = chat_request();
  std::pmr::monotonic_buffer_resource arena;
  for (auto _ : state) {
    Parser parser(&arena);
    parser.eager(true);
    beast::error_code ec;
    parser.put(boost::asio::buffer(text), ec);
    if (ec || !parser.is_done()) state.SkipWithError("request not parsed");
    Request req = parser.release();
    benchmark::DoNotOptimize(req.body.data());
    arena.release();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

template <class Parser>
void parse_response_head(benchmark::State& state) {
  std::pmr::monotonic_buffer_resource arena;
  for (auto _ : state) {
    Parser parser(&arena);
    parser.eager(false);  // the gateway reads the head first (Until::kHeader)
    beast::error_code ec;
    parser.put(boost::asio::buffer(kResponseHead), ec);
    if (ec || !parser.is_header_done()) state.SkipWithError("head not parsed");
    benchmark::DoNotOptimize(parser.status());
    arena.release();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kResponseHead.size()));
}

void BM_HttpParse_Request_Ours(benchmark::State& state) {
  parse_request<http_io::RequestParser>(state);
}
void BM_HttpParse_Request_Beast(benchmark::State& state) {
  parse_request<BeastRequestParser>(state);
}
void BM_HttpParse_ResponseHead_Ours(benchmark::State& state) {
  parse_response_head<http_io::ResponseParser>(state);
}
void BM_HttpParse_ResponseHead_Beast(benchmark::State& state) {
  parse_response_head<BeastResponseParser>(state);
}
BENCHMARK(BM_HttpParse_Request_Ours);
BENCHMARK(BM_HttpParse_Request_Beast);
BENCHMARK(BM_HttpParse_ResponseHead_Ours);
BENCHMARK(BM_HttpParse_ResponseHead_Beast);

}  // namespace
}  // namespace aifinops::gateway

BENCHMARK_MAIN();
