// The differential check of the gateway's HTTP parser (RequestParser, ResponseParser on
// http_parse.h) against Beast 1.81's own request_parser / response_parser, which it
// replaced: the same message, fed in the same pieces, must be accepted or refused by both,
// with the same request line, status, keep-alive, kept fields and body. Used by
// http_parse_test.cc and by fuzz/http_parse_fuzz.cc. Where our parser differs on purpose,
// differs() says which difference is allowed and why (see also http_parse.cc).
#pragma once

#include <boost/beast/http.hpp>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http_io.h"

namespace aifinops::gateway::http_differential {

namespace beast = boost::beast;
namespace http = beast::http;

/// What a parser made of a message.
struct Outcome {
  bool done = false;  ///< parsed whole, without error
  beast::error_code error;
  std::string method, target;  ///< requests
  unsigned version = 0;
  unsigned status = 0;  ///< responses
  bool keep_alive = false;
  std::vector<std::string> kept;  ///< the kept fields' values, in kKeptRequestFields order
  std::string body;
  // Beast's side only, for the differences allowed on purpose:
  bool has_transfer_encoding = false;
  bool chunked = false;

  std::string describe() const {
    std::string text = "done=" + std::to_string(done) + " error=" + error.message() +
                       " method=" + method + " target=" + target +
                       " version=" + std::to_string(version) +
                       " status=" + std::to_string(status) +
                       " keep_alive=" + std::to_string(keep_alive) + " kept=[";
    for (const std::string& value : kept) text += value + "|";
    return text + "] body=" + body;
  }
};

/// The fields a Request keeps, in its order; a response keeps content-type only.
inline constexpr std::string_view kKeptRequestFields[] = {
    "authorization", "x-api-key",         "api-key",        "content-type",
    "accept",        "anthropic-version", "anthropic-beta", "x-aifinops-cache"};

/// Feeds `text` to `parser` as read() does: each piece appended to a buffer, put() until
/// it needs more, the buffer's rest kept; the connection closes after the last piece.
/// `on_head` runs once, when the head is parsed (Beast's parser is not eager until then, so
/// that its fields can be looked at before any trailer adds to them).
template <class Parser, class OnHead, class GiveBuffer, class TakeBody>
beast::error_code feed(Parser& parser, std::string_view text, std::span<const size_t> splits,
                       OnHead&& on_head, GiveBuffer&& give_buffer, TakeBody&& take_body) {
  std::string pending;
  size_t at = 0;
  bool head_seen = false;
  beast::error_code ec;
  parser.eager(false);
  for (size_t piece = 0; piece <= splits.size(); ++piece) {
    const size_t next = piece < splits.size() ? std::min(splits[piece], text.size()) : text.size();
    if (next < at) continue;
    pending.append(text.substr(at, next - at));
    at = next;
    while (!pending.empty() && !parser.is_done()) {
      give_buffer();
      const size_t used = parser.put(boost::asio::buffer(pending), ec);
      take_body();
      pending.erase(0, used);
      if (!head_seen && parser.is_header_done()) {
        head_seen = true;
        on_head();
        parser.eager(true);
      }
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec == http::error::need_buffer) {
        ec = {};
        continue;
      }
      if (ec) return ec;
      if (used == 0) break;
    }
  }
  if (!parser.is_done() && parser.got_some()) {
    parser.put_eof(ec);
    if (!head_seen && parser.is_header_done()) on_head();
  } else if (!parser.got_some()) {
    ec = http::error::end_of_stream;
  }
  return ec;
}

inline Outcome ours_request(std::string_view text, std::span<const size_t> splits,
                            uint64_t body_limit) {
  std::pmr::monotonic_buffer_resource arena;
  http_io::RequestParser parser(&arena);
  parser.body_limit(body_limit);
  Outcome out;
  out.error = feed(parser, text, splits, [] {}, [] {}, [] {});
  out.done = !out.error && parser.is_done();
  if (!out.done) return out;
  http_io::Request req = parser.release();
  out.method = req.method_string;
  if (req.method != http::string_to_verb(req.method_string)) out.method += "(verb differs)";
  out.target = req.target;
  out.version = req.version;
  out.keep_alive = req.keep_alive;
  for (const std::pmr::string* value :
       {&req.authorization, &req.x_api_key, &req.api_key, &req.content_type, &req.accept,
        &req.anthropic_version, &req.anthropic_beta, &req.aifinops_cache})
    out.kept.emplace_back(*value);
  out.body = req.body;
  return out;
}

inline Outcome beast_request(std::string_view text, std::span<const size_t> splits,
                             uint64_t body_limit) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  Outcome out;
  auto on_head = [&] {
    const auto& req = parser.get();
    out.method = std::string(req.method_string());
    out.target = std::string(req.target());
    out.version = req.version();
    out.keep_alive = parser.keep_alive();
    for (std::string_view name : kKeptRequestFields) {
      std::string first;  // the first non-empty value, as RequestParser keeps
      for (auto [it, end] = req.equal_range(name); it != end && first.empty(); ++it)
        first = std::string(it->value());
      out.kept.push_back(first);
    }
  };
  out.error = feed(parser, text, splits, on_head, [] {}, [] {});
  out.done = !out.error && parser.is_done();
  if (out.done) out.body = parser.get().body();
  // Also when the head was refused (body_limit): its fields are there.
  out.has_transfer_encoding = parser.get().count(http::field::transfer_encoding) > 0;
  out.chunked = parser.chunked();
  return out;
}

inline Outcome ours_response(std::string_view text, std::span<const size_t> splits) {
  std::pmr::monotonic_buffer_resource arena;
  http_io::ResponseParser parser(&arena);
  Outcome out;
  char space[7];  // small: need_buffer is exercised
  out.error = feed(
      parser, text, splits,
      [&] {
        out.status = parser.status();
        out.version = 0;
        out.kept.emplace_back(parser.content_type());
      },
      [&] { parser.body_into(space, sizeof space); },
      [&] { out.body.append(space, sizeof space - parser.body_room()); });
  out.done = !out.error && parser.is_done();
  if (out.done) out.keep_alive = parser.keep_alive();
  return out;
}

/// A buffer_body rather than a string_body: string_body reserves whatever Content-Length a
/// response claims (the fuzzer finds 10^21 soon), the gateway's parser never does.
inline Outcome beast_response(std::string_view text, std::span<const size_t> splits) {
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  Outcome out;
  char space[7];
  auto& res = parser.get();
  out.error = feed(
      parser, text, splits,
      [&] {
        out.status = res.result_int();
        out.version = 0;
        auto it = res.find(http::field::content_type);
        out.kept.emplace_back(it == res.end() ? std::string() : std::string(it->value()));
      },
      [&] {
        res.body().data = space;
        res.body().size = sizeof space;
      },
      [&] { out.body.append(space, sizeof space - res.body().size); });
  out.done = !out.error && parser.is_done();
  if (out.done) out.keep_alive = parser.keep_alive();
  return out;
}

/// Whether `text` has a line continued on the next (obs-fold): CRLF then SP or HTAB,
/// anywhere in the text, the body included (where it only widens which bad_value refusals
/// are taken for the obs-fold difference).
inline bool has_obs_fold(std::string_view text) {
  for (size_t at = text.find("\r\n"); at != std::string_view::npos && at + 2 < text.size();
       at = text.find("\r\n", at + 2)) {
    if (text[at + 2] == ' ' || text[at + 2] == '\t') return true;
  }
  return false;
}

/// Empty when `ours` and `beast` agree (or differ only as we chose to), else what differs.
inline std::string differs(const Outcome& ours, const Outcome& beast, std::string_view text,
                           bool request) {
  if (!ours.done) {
    // On purpose: Beast unfolds obs-fold; we refuse it (http_parse.cc, parse_fields).
    if (ours.error == http::error::bad_value && has_obs_fold(text)) return {};
    // On purpose: a request whose Transfer-Encoding does not end in chunked has no length
    // we could trust; Beast reads it by its Content-Length or as bodiless (http_parse.cc,
    // finish_head), or refuses it for another reason (body_limit).
    if (request && ours.error == http::error::bad_transfer_encoding &&
        beast.has_transfer_encoding && !beast.chunked)
      return {};
  }
  if (ours.done != beast.done)
    return "accepted by one only:\n ours:  " + ours.describe() + "\n beast: " + beast.describe();
  // body_limit is the one refusal server.cc answers differently (413). Beast subtracts a
  // chunk's size from the limit again each time it retries a size line whose extension is
  // not over yet (a quoted string running past the line's end, which we refuse at once), so
  // it may report body_limit for a malformed chunk within the limit.
  const bool beast_recounted = beast.error == http::error::body_limit &&
                               ours.error == http::error::bad_chunk_extension;
  if (!beast_recounted &&
      (ours.error == http::error::body_limit) != (beast.error == http::error::body_limit))
    return "body_limit by one only:\n ours:  " + ours.describe() + "\n beast: " + beast.describe();
  if (!ours.done) return {};
  if (ours.method != beast.method || ours.target != beast.target ||
      ours.version != beast.version || ours.status != beast.status ||
      ours.keep_alive != beast.keep_alive || ours.kept != beast.kept || ours.body != beast.body)
    return "different results:\n ours:  " + ours.describe() + "\n beast: " + beast.describe();
  return {};
}

/// Parses `text` with both and compares; empty when they agree.
inline std::string check(std::string_view text, bool request, std::span<const size_t> splits,
                         uint64_t body_limit = 1024 * 1024) {
  if (request)
    return differs(ours_request(text, splits, body_limit), beast_request(text, splits, body_limit),
                   text, true);
  return differs(ours_response(text, splits), beast_response(text, splits), text, false);
}

}  // namespace aifinops::gateway::http_differential
