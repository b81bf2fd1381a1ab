// The providers' wire formats (see wire.h). JSON is read with simdjson, once per request body,
// response body or SSE event: requests and events with its DOM parser, response bodies with its
// On-Demand API, which reads only the usage (see usage_from_body). with_include_usage does not
// parse: a small scanner finds the few byte positions it must change and copies everything
// else as sent.
#include "gateway/wire.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

namespace aifinops::gateway {
namespace {

namespace dom = simdjson::dom;
namespace ondemand = simdjson::ondemand;

/// Token counts are capped here: no real request comes near it, and the cap keeps sums and
/// the pricing arithmetic (tokens x nano-dollars per token) far from overflow.
constexpr int64_t kMaxTokens = 1'000'000'000'000;

/// An SSE event longer than this is passed through unread rather than buffered further:
/// it bounds the memory one stream can hold. Responses with large images can carry events
/// of a few MiB, so the bound is generous.
constexpr size_t kMaxEventBytes = size_t{64} << 20;

/// Parsers and a padded copy buffer, reused by every parse on one thread. simdjson needs
/// SIMDJSON_PADDING readable bytes after the JSON, which a caller's string_view does not
/// promise, and a parser per call would cost more than the parse. What parse() and iterate()
/// return points into the parsers and the buffer and is valid until the next call on the same
/// thread: callers read what they need and never keep a value across calls (nor across a
/// coroutine suspension).
/// NOTE: the buffer and the parsers keep the size of the largest document seen on the thread.
class JsonScratch {
 public:
  /// A DOM parse of a copy of `text`.
  simdjson::simdjson_result<dom::element> parse(std::string_view text) {
    copy(text);
    return dom_.parse(buffer_.get(), text.size(), /*realloc_if_needed=*/false);
  }

  /// The document of the last parse().
  const dom::document& document() const { return dom_.doc; }

  /// An On-Demand document over a copy of `text`: only what the caller reads is parsed.
  simdjson::simdjson_result<ondemand::document> iterate(std::string_view text) {
    copy(text);
    return on_demand_.iterate(buffer_.get(), text.size(), capacity_);
  }

 private:
  void copy(std::string_view text) {
    size_t need = text.size() + simdjson::SIMDJSON_PADDING;
    if (need > capacity_) {
      capacity_ = std::max(need, capacity_ * 2);
      buffer_.reset(new char[capacity_]);
    }
    if (!text.empty()) std::memcpy(buffer_.get(), text.data(), text.size());
    std::memset(buffer_.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);
  }

  dom::parser dom_;
  ondemand::parser on_demand_;
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
};

JsonScratch& scratch() {
  thread_local JsonScratch instance;
  return instance;
}

Unexpected bad_request(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

const char* type_name(dom::element_type type) {
  switch (type) {
    case dom::element_type::ARRAY:
      return "an array";
    case dom::element_type::OBJECT:
      return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return "a number";
    case dom::element_type::STRING:
      return "a string";
    case dom::element_type::BOOL:
      return "a boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "something else";
}

// ---- Reading numbers and usage objects ----
//
// The usage rules (openai_usage, update_anthropic_usage) are written once, over two ways of
// reading an object: simdjson's DOM (requests, SSE events) and its On-Demand API (response
// bodies, see usage_from_body). What differs between the two is only how a member is found
// and how a number is read: find_count and find_object below.

/// A count from JSON: a non-negative integer (a number with a fraction is truncated), capped
/// at kMaxTokens. Anything else (negative, a string, null) counts as 0.
int64_t count_from(int64_t v) { return std::clamp<int64_t>(v, 0, kMaxTokens); }
int64_t count_from(double d) {
  if (!(d > 0)) return 0;  // also NaN
  if (d >= static_cast<double>(kMaxTokens)) return kMaxTokens;
  return static_cast<int64_t>(d);
}

int64_t count_of(dom::element e) {
  switch (e.type()) {
    case dom::element_type::INT64:
      return count_from(e.get_int64().value_unsafe());
    case dom::element_type::UINT64:
      return kMaxTokens;  // above INT64_MAX
    case dom::element_type::DOUBLE:
      return count_from(e.get_double().value_unsafe());
    default:
      return 0;
  }
}

/// A usage object read with On-Demand, for the usage rules. On-Demand parses a value only
/// when it is read, so a key or count that is not valid JSON shows here: it sets `*broken`
/// (and usage_from_body reports no usage) instead of counting 0. Once broken, nothing more is
/// read: simdjson's iterator may not be used after it has reported an error.
struct OnDemandObject {
  ondemand::object object;
  bool* broken = nullptr;
};

/// count_of for On-Demand, checking the value as a DOM parse would. An object or an array
/// counts 0, as in DOM, without a look inside.
int64_t count_of(ondemand::value v, bool& broken) {
  ondemand::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS) {
    broken = true;
    return 0;
  }
  ondemand::number number;
  std::string_view text;
  bool flag = false;
  switch (type) {
    case ondemand::json_type::number:
      if (v.get_number().get(number) != simdjson::SUCCESS) break;
      switch (number.get_number_type()) {
        case ondemand::number_type::signed_integer:
          return count_from(number.get_int64());
        case ondemand::number_type::unsigned_integer:
          return kMaxTokens;  // above INT64_MAX
        case ondemand::number_type::floating_point_number:
          return count_from(number.get_double());
      }
      return 0;
    case ondemand::json_type::string:
      if (v.get_string().get(text) == simdjson::SUCCESS) return 0;
      break;
    case ondemand::json_type::boolean:
      if (v.get_bool().get(flag) == simdjson::SUCCESS) return 0;
      break;
    case ondemand::json_type::null:
      if (v.is_null().get(flag) == simdjson::SUCCESS && flag) return 0;
      break;
    case ondemand::json_type::object:
    case ondemand::json_type::array:
      return 0;
  }
  broken = true;
  return 0;
}

/// The count at `key` of `o`, if the key is there. DOM takes the first member of that name.
bool find_count(dom::object o, std::string_view key, int64_t& count) {
  dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS) return false;
  count = count_of(e);
  return true;
}

/// The value at `key` of `o`, if the key is there: the first member of that name, as in DOM,
/// found by a search from the start of the object. (find_field_unordered, which searches on
/// from the last match, assumes that the part it wraps around to is valid JSON, which a
/// malformed body breaks.) Unlike DOM, keys are compared as written, escapes and all: no
/// provider escapes the letters of a key, and a key not matched reads as absent.
bool find_value(OnDemandObject& o, std::string_view key, ondemand::value& value) {
  if (*o.broken) return false;  // after an error the document must not be read further
  bool not_empty = false;
  auto error = o.object.reset().get(not_empty);
  if (error == simdjson::SUCCESS) error = o.object.find_field(key).get(value);
  if (error != simdjson::SUCCESS && error != simdjson::NO_SUCH_FIELD) *o.broken = true;
  return error == simdjson::SUCCESS;
}

bool find_count(OnDemandObject& o, std::string_view key, int64_t& count) {
  ondemand::value v;
  if (!find_value(o, key, v)) return false;
  count = count_of(v, *o.broken);
  return true;
}

bool find_object(dom::object o, std::string_view key, dom::object& inner) {
  return o.at_key(key).get_object().get(inner) == simdjson::SUCCESS;
}

bool find_object(OnDemandObject& o, std::string_view key, OnDemandObject& inner) {
  ondemand::value v;
  inner.broken = o.broken;
  return find_value(o, key, v) && v.get_object().get(inner.object) == simdjson::SUCCESS;
}

/// The count at `key`, and whether the key is there.
template <typename Object>
int64_t count_at(Object& o, std::string_view key, bool* present = nullptr) {
  int64_t count = 0;
  bool found = find_count(o, key, count);
  if (present) *present = found;
  return count;
}

/// Keeps the parts within their wholes (cached and written tokens are parts of input,
/// reasoning of output), whatever a provider reports, so that "input minus its parts" is
/// never negative when priced.
void keep_parts_within(TokenCounts& t) {
  t.cached_input = std::min(t.cached_input, t.input);
  t.cache_write = std::min(t.cache_write, t.input - t.cached_input);
  t.reasoning = std::min(t.reasoning, t.output);
}

/// OpenAI's usage object: chat, completions and embeddings say prompt/completion; the
/// Responses API says input/output.
template <typename Object>
TokenCounts openai_usage(WireFormat format, Object& u) {
  const bool responses = format == WireFormat::kOpenAiResponses;
  TokenCounts t;
  t.input = count_at(u, responses ? "input_tokens" : "prompt_tokens");
  t.output = count_at(u, responses ? "output_tokens" : "completion_tokens");
  Object details;
  if (find_object(u, responses ? "input_tokens_details" : "prompt_tokens_details", details)) {
    t.cached_input = count_at(details, "cached_tokens");
    t.cache_write = count_at(details, "cache_write_tokens");
  }
  if (find_object(u, responses ? "output_tokens_details" : "completion_tokens_details", details)) {
    t.reasoning = count_at(details, "reasoning_tokens");
  }
  keep_parts_within(t);
  return t;
}

/// Updates `t` from an Anthropic usage object, normalising on the way: Anthropic's
/// input_tokens excludes cache reads and writes, ours includes them. Only the fields present
/// change (message_delta may repeat the input counts or not). Returns whether output_tokens
/// was there.
template <typename Object>
bool update_anthropic_usage(Object& u, TokenCounts& t) {
  int64_t uncached = t.input - t.cached_input - t.cache_write;
  bool present = false;
  int64_t v = count_at(u, "input_tokens", &present);
  if (present) uncached = v;
  v = count_at(u, "cache_read_input_tokens", &present);
  if (present) t.cached_input = v;
  v = count_at(u, "cache_creation_input_tokens", &present);
  if (present) t.cache_write = v;
  t.input = uncached + t.cached_input + t.cache_write;  // each at most kMaxTokens: no overflow
  bool has_output = false;
  v = count_at(u, "output_tokens", &has_output);
  if (has_output) t.output = v;
  return has_output;
}

void take_model(dom::object o, std::string& model) {
  std::string_view m;
  if (model.empty() && o.at_key("model").get_string().get(m) == simdjson::SUCCESS) model.assign(m);
}

using TextTally = SseUsageReader::TextTally;

/// Counts the string at `o[key]`, if it is one.
void count_text(dom::object o, std::string_view key, TextTally& text) {
  std::string_view s;
  if (o.at_key(key).get_string().get(s) != simdjson::SUCCESS) return;
  text.bytes += static_cast<int64_t>(s.size());
  ++text.strings;
  text.key = key;
}

// ---- Request size estimate ----

/// Members holding media (base64 data, URLs) rather than text: their token cost depends on
/// the media, not on the length of the string, so they are left out of the estimate.
bool is_media_key(std::string_view key) {
  return key == "url" || key == "image_url" || key == "data" || key == "file_data";
}

/// Bytes of text under a request member: every string value (roles and part types too,
/// which stands in for the per-message overhead), 4 bytes for every number (token-id
/// inputs such as "input": [[1, 2, 3]]), nothing for media.
int64_t text_bytes_of(dom::element e) {
  switch (e.type()) {
    case dom::element_type::STRING:
      return static_cast<int64_t>(e.get_string().value_unsafe().size());
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return 4;
    case dom::element_type::ARRAY: {
      int64_t sum = 0;
      dom::array items = e.get_array().value_unsafe();
      for (dom::element item : items) sum += text_bytes_of(item);
      return sum;
    }
    case dom::element_type::OBJECT: {
      int64_t sum = 0;
      dom::object fields = e.get_object().value_unsafe();
      for (dom::key_value_pair field : fields) {
        if (is_media_key(field.key) && field.value.type() == dom::element_type::STRING) continue;
        sum += text_bytes_of(field.value);
      }
      return sum;
    }
    default:
      return 0;
  }
}

/// Top-level request members whose text becomes input tokens, across the formats.
bool is_text_member(std::string_view key) {
  return key == "messages" || key == "prompt" || key == "input" || key == "system" ||
         key == "instructions" || key == "tools" || key == "functions";
}

// ---- The include_usage scanner ----

/// A cursor over JSON text that finds members and skips values without building anything.
/// It is meant for text that simdjson has accepted; on anything else it only promises to
/// stay within bounds and to report failure.
class JsonCursor {
 public:
  JsonCursor(std::string_view text, size_t pos) : s_(text), i_(pos) {}

  size_t pos() const { return i_; }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void advance() { ++i_; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  /// At a '"': moves past the closing quote.
  bool skip_string() {
    size_t from = i_ + 1;
    while (from < s_.size()) {
      const void* hit = std::memchr(s_.data() + from, '"', s_.size() - from);
      if (!hit) break;
      size_t q = static_cast<const char*>(hit) - s_.data();
      size_t backslashes = 0;
      while (q - backslashes > i_ + 1 && s_[q - backslashes - 1] == '\\') ++backslashes;
      if (backslashes % 2 == 0) {
        i_ = q + 1;
        return true;
      }
      from = q + 1;
    }
    i_ = s_.size();
    return false;
  }

  /// Moves past one value of any kind.
  bool skip_value() {
    skip_ws();
    char c = peek();
    if (c == '"') return skip_string();
    if (c == '{' || c == '[') {
      size_t depth = 0;
      while (i_ < s_.size()) {
        char d = s_[i_];
        if (d == '"') {
          if (!skip_string()) return false;
          continue;
        }
        if (d == '{' || d == '[') {
          ++depth;
        } else if (d == '}' || d == ']') {
          if (--depth == 0) {
            ++i_;
            return true;
          }
        }
        ++i_;
      }
      return false;
    }
    size_t start = i_;
    while (i_ < s_.size() && std::strchr(",}]:{[\" \t\n\r", s_[i_]) == nullptr) ++i_;
    return i_ > start;
  }

  /// At a '{': calls visit(raw_key, value_begin, value_end) for each member and moves past
  /// the '}'. False if the text is not an object or visit returns false.
  template <typename Visit>
  bool for_each_member(Visit&& visit) {
    skip_ws();
    if (peek() != '{') return false;
    advance();
    skip_ws();
    if (peek() == '}') {
      advance();
      return true;
    }
    while (true) {
      skip_ws();
      if (peek() != '"') return false;
      size_t key_begin = i_;
      if (!skip_string()) return false;
      std::string_view raw_key = s_.substr(key_begin + 1, i_ - key_begin - 2);
      skip_ws();
      if (peek() != ':') return false;
      advance();
      skip_ws();
      size_t value_begin = i_;
      if (!skip_value()) return false;
      if (!visit(raw_key, value_begin, i_)) return false;
      skip_ws();
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() == '}') {
        advance();
        return true;
      }
      return false;
    }
  }

 private:
  std::string_view s_;
  size_t i_;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Whether a key as written (escapes and all) names `target`, an ASCII name: a client may
/// spell "stream_options" with \u escapes, and the upstream would read it as the same key.
bool key_is(std::string_view raw, std::string_view target) {
  size_t j = 0;
  for (size_t i = 0; i < raw.size();) {
    if (j >= target.size()) return false;
    char c = raw[i];
    if (c == '\\') {
      if (i + 1 >= raw.size()) return false;
      char e = raw[i + 1];
      i += 2;
      switch (e) {
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 't':
          c = '\t';
          break;
        case 'u': {
          if (i + 4 > raw.size()) return false;
          int code = 0;
          for (int k = 0; k < 4; ++k) {
            int h = hex_value(raw[i + k]);
            if (h < 0) return false;
            code = code * 16 + h;
          }
          i += 4;
          if (code >= 0x80) return false;  // the targets are ASCII
          c = static_cast<char>(code);
          break;
        }
        default:
          c = e;
          break;  // \" \\ \/
      }
    } else {
      ++i;
    }
    if (c != target[j++]) return false;
  }
  return j == target.size();
}

struct Edit {
  size_t pos;
  size_t erase;
  std::string_view insert;
};

constexpr std::string_view kStreamOptionsMember = R"("stream_options":{"include_usage":true})";
constexpr std::string_view kStreamOptionsMemberComma =
    R"("stream_options":{"include_usage":true},)";
constexpr std::string_view kStreamOptionsObject = R"({"include_usage":true})";
constexpr std::string_view kIncludeUsageMember = R"("include_usage":true)";
constexpr std::string_view kIncludeUsageMemberComma = R"("include_usage":true,)";

/// Edits that make the stream_options object starting at `begin` say include_usage true.
bool plan_include_usage(std::string_view body, size_t begin, std::vector<Edit>& edits) {
  JsonCursor cursor(body, begin);
  bool any_member = false;
  bool found = false;
  bool ok = cursor.for_each_member([&](std::string_view key, size_t value_begin, size_t value_end) {
    any_member = true;
    if (!key_is(key, "include_usage")) return true;
    found = true;
    if (body.substr(value_begin, value_end - value_begin) != "true") {
      edits.push_back({value_begin, value_end - value_begin, "true"});
    }
    return true;
  });
  if (!ok) return false;
  if (!found) {
    edits.push_back({begin + 1, 0, any_member ? kIncludeUsageMemberComma : kIncludeUsageMember});
  }
  return true;
}

// ---- SSE ----

constexpr size_t kNotYet = std::string_view::npos;

/// Where the event at the start of `bytes` ends, just past the blank line that ends it, or
/// kNotYet. The search starts at `from`; `*resume` says where the next search may start
/// once more bytes have arrived. Lines end with "\n" or "\r\n".
size_t event_end(std::string_view bytes, size_t from, size_t* resume) {
  size_t i = from;
  while (i < bytes.size()) {
    const void* hit = std::memchr(bytes.data() + i, '\n', bytes.size() - i);
    if (!hit) break;
    size_t q = static_cast<const char*>(hit) - bytes.data();
    if (q + 1 >= bytes.size()) {
      *resume = q;
      return kNotYet;
    }
    if (bytes[q + 1] == '\n') return q + 2;
    if (bytes[q + 1] == '\r') {
      if (q + 2 >= bytes.size()) {
        *resume = q;
        return kNotYet;
      }
      if (bytes[q + 2] == '\n') return q + 3;
    }
    i = q + 1;
  }
  *resume = bytes.size();
  return kNotYet;
}

/// Counts output text in an OpenAI chat or completions chunk: deltas of content, refusals,
/// reasoning (as some compatible servers send it), tool-call names and arguments, and the
/// completions API's text.
void count_openai_chunk_text(dom::array choices, TextTally& text) {
  for (dom::element choice_element : choices) {
    dom::object choice;
    if (choice_element.get_object().get(choice) != simdjson::SUCCESS) continue;
    count_text(choice, "text", text);
    dom::object delta;
    if (choice.at_key("delta").get_object().get(delta) != simdjson::SUCCESS) continue;
    for (std::string_view key : {"content", "refusal", "reasoning_content", "reasoning"})
      count_text(delta, key, text);
    dom::object function;
    if (delta.at_key("function_call").get_object().get(function) == simdjson::SUCCESS) {
      count_text(function, "name", text);
      count_text(function, "arguments", text);
    }
    dom::array calls;
    if (delta.at_key("tool_calls").get_array().get(calls) != simdjson::SUCCESS) continue;
    for (dom::element call : calls) {
      if (call["function"].get_object().get(function) == simdjson::SUCCESS) {
        count_text(function, "name", text);
        count_text(function, "arguments", text);
      }
    }
  }
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// Writes the last parse's canonical form into `out`: simdjson's tape of the document (a
/// 64-bit word per value with its type, and where a container ends or a string's text
/// lies; a number's 8 bytes in the next word), then the text of its strings and keys (each a
/// 32-bit length, the bytes and a NUL), both as the parse left them. Two bodies share them
/// exactly when they are the same JSON value: white space, the spelling of a number (1.0,
/// 1.00, 1e0) and string escapes (\u0041, A) leave no trace; member order does. Two copies
/// instead of a walk that writes every value again (850 instead of 4,100 instructions on the
/// benchmark's chat request; the form is a little longer to hash).
/// NOTE: this reads simdjson's own layout (dom::document's tape and string_buf: public
/// members that its documentation marks private; the layout is that of its doc/tape.md).
/// Another simdjson could lay them out otherwise: the digests would then change, as after
/// any change of this form (the pinned digest in wire_test.cc fails first).
void append_canonical(std::string& out, const dom::document& doc) {
  using simdjson::internal::JSON_VALUE_MASK;
  const uint64_t* tape = doc.tape.get();
  const size_t words = static_cast<size_t>(tape[0] & JSON_VALUE_MASK);  // the root's: the length
  size_t strings_end = 0;  // strings are written in tape order: the last one ends the text
  for (size_t i = 1; i < words; ++i) {
    const auto type = static_cast<char>(tape[i] >> 56);
    if (type == '"') {
      const size_t at = static_cast<size_t>(tape[i] & JSON_VALUE_MASK);
      uint32_t length = 0;
      std::memcpy(&length, doc.string_buf.get() + at, sizeof length);
      strings_end = at + sizeof length + length + 1;
    } else if (type == 'l' || type == 'u' || type == 'd') {
      ++i;  // the number's own word
    }
  }
  out.append(reinterpret_cast<const char*>(tape), words * sizeof(uint64_t));
  out.append(reinterpret_cast<const char*>(doc.string_buf.get()), strings_end);
}

}  // namespace

Result<RequestInfo> parse_request(WireFormat format, std::string_view body, bool model_required,
                                  std::string* canonical) {
  dom::element root;
  if (auto error = scratch().parse(body).get(root); error != simdjson::SUCCESS) {
    return bad_request(std::string("request body is not valid JSON: ") +
                       simdjson::error_message(error));
  }
  dom::object request;
  if (root.get_object().get(request) != simdjson::SUCCESS) {
    return bad_request(std::string("request body must be a JSON object, not ") +
                       type_name(root.type()));
  }
  const bool openai_streaming_format =
      format == WireFormat::kOpenAiChat || format == WireFormat::kOpenAiCompletion;
  RequestInfo info;
  bool has_model = false;
  int64_t text_bytes = 0;
  // One pass over the members; a repeated member counts as its last occurrence, as most
  // upstream JSON readers take it.
  for (dom::key_value_pair member : request) {
    std::string_view key = member.key;
    dom::element value = member.value;
    if (key == "model") {
      std::string_view model;
      if (value.get_string().get(model) != simdjson::SUCCESS) {
        return bad_request(std::string("\"model\" must be a string, not ") +
                           type_name(value.type()));
      }
      info.model.assign(model);
      has_model = true;
    } else if (key == "stream") {
      info.stream = false;
      if (!value.is_null() && value.get_bool().get(info.stream) != simdjson::SUCCESS) {
        return bad_request(std::string("\"stream\" must be true or false, not ") +
                           type_name(value.type()));
      }
    } else if (key == "stream_options" && openai_streaming_format) {
      info.client_asked_usage = false;
      if (value.is_null()) continue;
      dom::object options;
      if (value.get_object().get(options) != simdjson::SUCCESS) {
        return bad_request(std::string("\"stream_options\" must be an object, not ") +
                           type_name(value.type()));
      }
      for (dom::key_value_pair option : options) {
        if (option.key != "include_usage") continue;
        bool include = false;
        if (!option.value.is_null() && option.value.get_bool().get(include) != simdjson::SUCCESS) {
          return bad_request(
              std::string("\"stream_options.include_usage\" must be true or false, not ") +
              type_name(option.value.type()));
        }
        info.client_asked_usage = include;
      }
    } else if (key == "max_tokens" || key == "max_completion_tokens" ||
               key == "max_output_tokens") {
      // The largest, when several are sent: the reservation must cover the worst case.
      info.max_output_tokens = std::max(info.max_output_tokens, count_of(value));
    } else if (key == "temperature") {
      double temperature = 1;
      info.deterministic =
          value.get_double().get(temperature) == simdjson::SUCCESS && temperature == 0;
    } else if (is_text_member(key)) {
      text_bytes += text_bytes_of(value);
    }
  }
  if (!has_model && model_required) return bad_request("\"model\" is missing");
  if (has_model && info.model.empty() && model_required)
    return bad_request("\"model\" must not be empty");
  // NOTE: a rough estimate (about 4 bytes of text a token), used only to size rate-limit and
  // budget reservations before the request is sent; the settled cost uses the provider's counts.
  info.estimated_input_tokens = std::max<int64_t>(1, (text_bytes + 3) / 4);
  if (canonical != nullptr) {
    canonical->clear();
    append_canonical(*canonical, scratch().document());
  }
  return info;
}

bool canonical_json(std::string_view body, std::string& out) {
  out.clear();
  dom::element root;
  if (scratch().parse(body).get(root) != simdjson::SUCCESS || !root.is_object()) return false;
  append_canonical(out, scratch().document());
  return true;
}

std::string with_include_usage(std::string_view body) {
  std::vector<Edit> edits;
  JsonCursor cursor(body, 0);
  cursor.skip_ws();
  const size_t open = cursor.pos();
  bool any_member = false;
  bool found = false;
  bool ok = cursor.for_each_member([&](std::string_view key, size_t value_begin, size_t value_end) {
    any_member = true;
    if (!key_is(key, "stream_options")) return true;
    found = true;
    if (body[value_begin] == '{') return plan_include_usage(body, value_begin, edits);
    // null (or a value that is not an object, which parse_request rejects): replace it.
    edits.push_back({value_begin, value_end - value_begin, kStreamOptionsObject});
    return true;
  });
  if (!ok) return std::string(body);  // not a JSON object: the caller has rejected it already
  if (!found) {
    edits.push_back({open + 1, 0, any_member ? kStreamOptionsMemberComma : kStreamOptionsMember});
  }
  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.pos < b.pos; });

  std::string out;
  size_t grow = 0;
  for (const Edit& e : edits) grow += e.insert.size();
  out.reserve(body.size() + grow);
  size_t copied = 0;
  for (const Edit& e : edits) {
    out.append(body.substr(copied, e.pos - copied));
    out.append(e.insert);
    copied = e.pos + e.erase;
  }
  out.append(body.substr(copied));
  return out;
}

// A response body is read with On-Demand: its top-level members are walked, the values other
// than "usage" skipped, and only the counts the usage rules look for are parsed. That is much
// less work than a DOM parse, which builds the whole document for a few numbers.
//
// found is false unless the body is a JSON object whose first top-level "usage" member is an
// object, as far as this reading checks: the whole body is valid UTF-8 with its strings closed
// (simdjson's first stage); every top-level key, colon and comma is in place up to the closing
// brace, with nothing after it; brackets balance, so a body cut short anywhere is refused; and
// the counts read are valid JSON. A syntax error inside a value that is skipped (another
// member, or a member of the usage object that is not a count) is not seen: such a body yields
// the counts it states. They are the provider's own, what it bills, so they are kept rather
// than replaced by an estimate from the body's size (what found=false leads to); the body is
// passed to the client as sent either way.
TokenCounts usage_from_body(WireFormat format, std::string_view body, bool& found) {
  found = false;
  ondemand::document document;
  ondemand::object root;
  if (scratch().iterate(body).get(document) != simdjson::SUCCESS ||
      document.get_object().get(root) != simdjson::SUCCESS) {
    return {};
  }
  TokenCounts t;
  bool has_usage = false;
  bool broken = false;
  for (auto member : root) {
    std::string_view key;
    if (member.unescaped_key().get(key) != simdjson::SUCCESS) return {};
    if (key != "usage" || has_usage) continue;  // the first "usage" counts, as DOM finds it
    has_usage = true;
    OnDemandObject usage{{}, &broken};
    if (member.value().get_object().get(usage.object) != simdjson::SUCCESS) return {};
    if (format == WireFormat::kAnthropicMessages) {
      update_anthropic_usage(usage, t);
      keep_parts_within(t);
    } else {
      t = openai_usage(format, usage);
    }
    if (broken) return {};
  }
  // Past the closing brace, and nothing after it. (An error inside the walk ends it early, at
  // a member that reports the error, or leaves the document short of its end.)
  if (!has_usage || document.current_location().error() != simdjson::OUT_OF_BOUNDS) return {};
  found = true;
  return t;
}

bool is_json_document(std::string_view body) {
  dom::element document;
  return scratch().parse(body).get(document) == simdjson::SUCCESS;
}

SseUsageReader::SseUsageReader(WireFormat format, bool strip_usage_chunk,
                               bool reuse_event_shapes)
    : format_(format), strip_(strip_usage_chunk), reuse_shapes_(reuse_event_shapes) {}

void SseUsageReader::feed(std::string_view bytes, std::string& out) {
  if (bytes.empty()) return;
  if (pending_.empty()) {
    // The common case: whole events in one read are handled in place, only a tail is kept.
    size_t used = consume_events(bytes, out);
    pending_.assign(bytes.substr(used));
  } else {
    pending_.append(bytes);
    size_t used = consume_events(pending_, out);
    pending_.erase(0, used);
  }
  if (pending_.size() > kMaxEventBytes) {
    out.append(pending_);
    pending_.clear();
    scanned_ = 0;
  }
}

void SseUsageReader::finish(std::string& out) {
  if (pending_.empty()) return;
  read_event(pending_, /*may_learn_shape=*/false);  // not a whole event: no shape to keep
  out.append(pending_);
  pending_.clear();
  scanned_ = 0;
}

size_t SseUsageReader::consume_events(std::string_view bytes, std::string& out) {
  size_t start = 0;
  while (start < bytes.size()) {
    // A blank line where an event would start (extra separators): pass it through.
    if (bytes[start] == '\n') {
      out.push_back('\n');
      ++start;
      scanned_ = 0;
      continue;
    }
    if (bytes[start] == '\r') {
      if (start + 1 >= bytes.size()) break;  // "\r\n" or the first byte of an event: wait
      if (bytes[start + 1] == '\n') {
        out.append("\r\n");
        start += 2;
        scanned_ = 0;
        continue;
      }
    }
    // Tried once per event: an event still incomplete is left to the search for its end,
    // which resumes where it stopped (a shape tried on every piece would scan it again).
    if (has_shape_ && scanned_ == 0) {
      const size_t known = read_known_shape(bytes.substr(start));
      if (known != 0) {
        out.append(bytes.data() + start, known);
        start += known;
        scanned_ = 0;
        continue;
      }
    }
    size_t resume = 0;
    size_t end = event_end(bytes.substr(start), scanned_, &resume);
    if (end == kNotYet) {
      scanned_ = resume;
      break;
    }
    handle_event(bytes.substr(start, end), out);
    start += end;
    scanned_ = 0;
  }
  return start;
}

void SseUsageReader::handle_event(std::string_view event, std::string& out) {
  bool usage_only = read_event(event, reuse_shapes_);
  if (!(usage_only && strip_)) out.append(event);
}

bool SseUsageReader::read_event(std::string_view event, bool may_learn_shape) {
  // Fields: "event: <name>" and any number of "data: <line>" (joined with "\n").
  std::string_view name;
  std::string_view data;
  std::string joined;
  int data_lines = 0;
  for (size_t i = 0; i < event.size();) {
    size_t newline = event.find('\n', i);
    size_t line_end = newline == std::string_view::npos ? event.size() : newline;
    std::string_view line = event.substr(i, line_end - i);
    i = line_end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == ':') continue;  // a blank line or a comment
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value =
        colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (data_lines == 1) joined.assign(data);
      if (data_lines >= 1) {
        joined.push_back('\n');
        joined.append(value);
      } else {
        data = value;
      }
      ++data_lines;
    } else if (field == "event") {
      name = value;
    }
  }
  if (data_lines == 0) return false;
  if (data_lines > 1) data = joined;
  if (data == "[DONE]") {
    complete_ = true;
    return false;
  }
  const TokenCounts usage_before = usage_;
  const bool found_before = found_;
  const bool complete_before = complete_;
  bool parsed = false;
  TextTally text;
  const bool usage_only = read_json(name, data, parsed, text);
  output_bytes_ += text.bytes;
  if (may_learn_shape && data_lines == 1 && parsed && !usage_only && usage_ == usage_before &&
      found_ == found_before && complete_ == complete_before && text.strings == 1) {
    learn_shape(event, data, text);
  }
  return usage_only;
}

// An event that is a learned event's bytes with another plain string (no quote, escape or
// control character; valid UTF-8) in the place of its one counted text string has the same
// fields, and its data parses to the same tree but for that string's value: its reading
// finds the same type, model and absence of usage, and counts that string where the learned
// event counted its own. So its reading is the string's length, with no parse, and it is
// found without a search for its end: the string ends at its first quote, where the learned
// event's bytes after the text must follow, down to its blank line. The learned event has no
// escape anywhere, so every quote in it delimits a string and its text member's key, written
// once, is found by its bytes. Events with usage are never learned: they are always parsed.

namespace {

/// Whether `text` may stand as the contents of a JSON string exactly as written: no quote,
/// no escape, no control character, valid UTF-8.
bool is_plain_string(std::string_view text) {
  bool ascii = true;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u == '"' || u == '\\' || u < 0x20) return false;
    ascii = ascii && u < 0x80;
  }
  return ascii || simdjson::validate_utf8(text.data(), text.size());
}

/// The contents of the string value of the member written `quoted_key` in `data`, as
/// [begin, end), when that key appears exactly once in the data and its value is a plain
/// string (is_plain_string).
bool plain_string_member(std::string_view data, std::string_view quoted_key, size_t& begin,
                         size_t& end) {
  // memmem, not string_view::find: find stops at every quote, the key's first byte.
  auto find = [&](size_t from) -> size_t {
    const void* hit = memmem(data.data() + from, data.size() - from, quoted_key.data(),
                             quoted_key.size());
    return hit == nullptr ? std::string_view::npos
                          : static_cast<size_t>(static_cast<const char*>(hit) - data.data());
  };
  const size_t at = find(0);
  if (at == std::string_view::npos || find(at + 1) != std::string_view::npos) return false;
  JsonCursor cursor(data, at + quoted_key.size());
  cursor.skip_ws();
  if (cursor.peek() != ':') return false;
  cursor.advance();
  cursor.skip_ws();
  if (cursor.peek() != '"') return false;
  begin = cursor.pos() + 1;
  end = data.find('"', begin);
  return end != std::string_view::npos && is_plain_string(data.substr(begin, end - begin));
}

}  // namespace

size_t SseUsageReader::read_known_shape(std::string_view bytes) {
  const size_t before = shape_split_;
  const size_t after = shape_.size() - shape_split_;
  if (bytes.size() < shape_.size() || std::memcmp(bytes.data(), shape_.data(), before) != 0)
    return 0;
  const void* quote = std::memchr(bytes.data() + before, '"', bytes.size() - before);
  if (quote == nullptr) return 0;
  const size_t text_end = static_cast<size_t>(static_cast<const char*>(quote) - bytes.data());
  if (bytes.size() - text_end < after ||
      std::memcmp(bytes.data() + text_end, shape_.data() + before, after) != 0)
    return 0;
  std::string_view text = bytes.substr(before, text_end - before);
  if (!is_plain_string(text)) return 0;
  output_bytes_ += static_cast<int64_t>(text.size());
  return text_end + after;
}

void SseUsageReader::learn_shape(std::string_view event, std::string_view data,
                                 const TextTally& text) {
  // The Responses API numbers its events (sequence_number): no two have one shape.
  if (format_ == WireFormat::kOpenAiResponses) return;
  if (std::memchr(event.data(), '\\', event.size()) != nullptr) return;
  char quoted[32];
  if (text.key.size() + 2 > sizeof quoted) return;
  quoted[0] = '"';
  std::memcpy(quoted + 1, text.key.data(), text.key.size());
  quoted[text.key.size() + 1] = '"';
  size_t begin = 0;
  size_t end = 0;
  if (!plain_string_member(data, std::string_view(quoted, text.key.size() + 2), begin, end) ||
      static_cast<int64_t>(end - begin) != text.bytes)
    return;
  const size_t offset = static_cast<size_t>(data.data() - event.data());  // data is in event
  shape_.assign(event.substr(0, offset + begin));
  shape_.append(event.substr(offset + end));
  shape_split_ = offset + begin;
  has_shape_ = true;
}

bool SseUsageReader::read_json(std::string_view name, std::string_view data, bool& parsed,
                               TextTally& text) {
  ++parsed_events_;
  dom::element root;
  dom::object obj;
  if (scratch().parse(data).get(root) != simdjson::SUCCESS) return false;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return false;
  parsed = true;
  std::string_view type;
  if (obj.at_key("type").get_string().get(type) != simdjson::SUCCESS) type = name;

  switch (format_) {
    case WireFormat::kOpenAiChat:
    case WireFormat::kOpenAiCompletion: {
      take_model(obj, model_);
      dom::array choices;
      bool has_choices = obj.at_key("choices").get_array().get(choices) == simdjson::SUCCESS;
      if (has_choices) count_openai_chunk_text(choices, text);
      dom::object usage;
      if (obj.at_key("usage").get_object().get(usage) != simdjson::SUCCESS) return false;
      usage_ = openai_usage(format_, usage);
      found_ = true;
      return has_choices && choices.size() == 0;
    }
    case WireFormat::kOpenAiResponses: {
      dom::object response;
      bool has_response = obj.at_key("response").get_object().get(response) == simdjson::SUCCESS;
      if (has_response) take_model(response, model_);
      if (ends_with(type, ".delta") && type != "response.audio.delta") {
        count_text(obj, "delta", text);  // base64 audio is not text
      }
      if (type == "response.completed" || type == "response.incomplete" ||
          type == "response.failed") {
        complete_ = true;
        dom::object usage;
        if (has_response && response.at_key("usage").get_object().get(usage) == simdjson::SUCCESS) {
          usage_ = openai_usage(format_, usage);
          found_ = true;
        }
      }
      return false;
    }
    case WireFormat::kAnthropicMessages: {
      if (type == "message_start") {
        dom::object message;
        if (obj.at_key("message").get_object().get(message) != simdjson::SUCCESS) return false;
        take_model(message, model_);
        dom::object usage;
        if (message.at_key("usage").get_object().get(usage) == simdjson::SUCCESS) {
          update_anthropic_usage(usage, usage_);  // output here is a first count, not the final one
          keep_parts_within(usage_);
        }
      } else if (type == "content_block_delta") {
        dom::object delta;
        if (obj.at_key("delta").get_object().get(delta) == simdjson::SUCCESS) {
          for (std::string_view key : {"text", "partial_json", "thinking"})
            count_text(delta, key, text);
        }
      } else if (type == "message_delta") {
        dom::object usage;
        if (obj.at_key("usage").get_object().get(usage) == simdjson::SUCCESS) {
          if (update_anthropic_usage(usage, usage_)) found_ = true;  // cumulative output count
          keep_parts_within(usage_);
        }
      } else if (type == "message_stop") {
        complete_ = true;
      }
      return false;
    }
    case WireFormat::kOpenAiEmbedding:
      return false;
  }
  return false;
}

}  // namespace aifinops::gateway
