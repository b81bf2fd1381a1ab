// The providers' wire formats as the gateway needs them: what a request asks for (model,
// stream, max tokens, an input-size estimate), the usage a response reports (JSON body or
// SSE stream) normalised to OpenAI's token semantics, and the stream_options.include_usage
// injection with removal of the extra usage-only chunk. Pure functions: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aifinops::gateway {

/// Which wire format a route speaks.
enum class WireFormat {
  kOpenAiChat,        ///< POST /v1/chat/completions (also Azure OpenAI deployments)
  kOpenAiCompletion,  ///< POST /v1/completions
  kOpenAiEmbedding,   ///< POST /v1/embeddings
  kOpenAiResponses,   ///< POST /v1/responses
  kAnthropicMessages, ///< POST /v1/messages
};

/// Token usage with OpenAI's semantics: cached_input and cache_write are parts of input,
/// reasoning is part of output. Anthropic's input_tokens (which excludes cache reads and
/// writes) is normalised on read.
struct TokenCounts {
  int64_t input = 0;
  int64_t cached_input = 0;
  int64_t cache_write = 0;
  int64_t output = 0;
  int64_t reasoning = 0;
  bool operator==(const TokenCounts&) const = default;
};

/// What the gateway needs to know about a request before forwarding it.
struct RequestInfo {
  std::string model;                 ///< required; empty only for Azure deployment routes
  bool stream = false;
  bool client_asked_usage = false;   ///< stream_options.include_usage was true
  int64_t max_output_tokens = 0;     ///< max_tokens / max_completion_tokens / max_output_tokens; 0 = unset
  bool deterministic = false;        ///< temperature is 0 (exact-match cache candidate)
  int64_t estimated_input_tokens = 0;///< from the text length (about 4 bytes a token), never 0 for a non-empty body
};

/// Parses a request body. A malformed body or a missing `model` is an error whose message
/// says what is wrong, for a 400 response. `model_required` is false for Azure deployment
/// routes, where the deployment names the model. With `canonical`, a body that parses also
/// leaves its canonical form there (see canonical_json), read from the same parse: the
/// response cache and the repeat count hash it, and parsing the body again for them cost
/// as much as this parse.
Result<RequestInfo> parse_request(WireFormat format, std::string_view body,
                                  bool model_required = true, std::string* canonical = nullptr);

/// Writes a JSON object into `out` (replacing what it held) in a binary form that two bodies
/// share exactly when they are the same JSON value: white space, the spelling of a number
/// (1.0, 1.00, 1e0) and string escapes (\u0041, A) leave no trace; member order does. False
/// when `body` is not a JSON object.
bool canonical_json(std::string_view body, std::string& out);

/// The request body with "stream_options":{"include_usage":true} set (added, or changed
/// from false), everything else byte-for-byte as sent. Only for OpenAI chat/completions.
std::string with_include_usage(std::string_view body);

/// Usage from a complete (non-streaming) response body; `found` is false if it has none, or
/// is not a JSON object as far as reading the usage checks (syntax errors inside the values
/// it skips go unseen: see wire.cc).
TokenCounts usage_from_body(WireFormat format, std::string_view body, bool& found);

/// Whether `body` is one complete JSON document, every value of it checked (a DOM parse).
/// The response cache stores only such bodies: usage_from_body() skips values unchecked,
/// and a body an upstream garbled once must not be replayed for the cache's lifetime.
bool is_json_document(std::string_view body);

/// Follows an SSE response as it streams: passes bytes through, reads usage from the
/// events that carry it (OpenAI's final usage chunk; Anthropic's message_start and
/// message_delta), and, when `strip_usage_chunk` is set (the gateway injected
/// include_usage), removes OpenAI's usage-only chunk so that the client sees exactly the
/// stream it asked for. Events may arrive split across any number of feed() calls.
///
/// Most events of a stream are the same bytes but for one text string (OpenAI's
/// `"delta":{"content":"..."}`, Anthropic's text_delta): an event that repeats the shape of
/// the last text event parsed, with a plain string in that place, is read from its bytes
/// without a JSON parse, with the same result a parse would give (see wire.cc). With
/// `reuse_event_shapes` false, every event is parsed: the reference that tests and the
/// fuzzer compare with. One per response; not thread-safe.
class SseUsageReader {
 public:
  /// The output text strings one event's reading counted: their bytes, how many strings,
  /// and the key of the last one.
  struct TextTally {
    int64_t bytes = 0;
    int strings = 0;
    std::string_view key;
  };

  SseUsageReader(WireFormat format, bool strip_usage_chunk, bool reuse_event_shapes = true);

  /// Consumes bytes from upstream and appends what the client should receive to `out`.
  void feed(std::string_view bytes, std::string& out);
  /// At end of stream: appends any incomplete trailing bytes unchanged (still reading them,
  /// since a last event may lack only its blank line).
  void finish(std::string& out);

  /// True once the final usage was read: OpenAI's usage chunk, the Responses API's
  /// terminal event, or Anthropic's message_delta (its output count is the final one).
  /// Before that, usage() may already hold partial counts (Anthropic's message_start input).
  bool found_usage() const { return found_; }
  const TokenCounts& usage() const { return usage_; }
  /// True once the stream's end marker was seen ("data: [DONE]", Anthropic message_stop,
  /// or the Responses API's response.completed / response.incomplete / response.failed).
  bool complete() const { return complete_; }
  /// The model the response names (first seen), if any.
  const std::string& response_model() const { return model_; }
  /// Output text bytes seen in deltas: lets a cut-short stream be estimated.
  int64_t output_text_bytes() const { return output_bytes_; }
  /// How many events were read with a JSON parse (the others had a known shape, or none).
  int64_t parsed_events() const { return parsed_events_; }

 private:
  void handle_event(std::string_view event, std::string& out);
  /// Reads one event's fields; true if it is the usage-only chunk that may be stripped.
  /// With `may_learn_shape`, a whole event whose text is one string leaves its shape.
  bool read_event(std::string_view event, bool may_learn_shape);
  /// Reads one event's JSON data with a parse (`parsed`: it was a JSON object) and counts
  /// its output text into `text`; returns as read_event.
  bool read_json(std::string_view name, std::string_view data, bool& parsed, TextTally& text);
  /// Reads the event at the front of `bytes` if it has the shape of the last one learned;
  /// returns its size, or 0 when it has not (or is not all there yet).
  size_t read_known_shape(std::string_view bytes);
  /// Keeps the shape of a parsed whole event whose output text is one string (`text`, in
  /// `data`, which lies in `event`).
  void learn_shape(std::string_view event, std::string_view data, const TextTally& text);
  /// Handles the complete events at the front of `bytes`; returns how many bytes it used.
  size_t consume_events(std::string_view bytes, std::string& out);

  WireFormat format_;
  bool strip_;
  std::string pending_;  ///< an event not yet terminated by a blank line
  size_t scanned_ = 0;   ///< bytes of pending_ already searched for the blank line
  TokenCounts usage_;
  bool found_ = false;
  bool complete_ = false;
  std::string model_;
  int64_t output_bytes_ = 0;
  // The shape of the last text event parsed: its bytes without the text string's contents,
  // split where they were.
  bool reuse_shapes_;
  std::string shape_;        ///< the event before the string's contents, then after them
  size_t shape_split_ = 0;   ///< where the part after the contents starts in shape_
  bool has_shape_ = false;
  int64_t parsed_events_ = 0;
};

}  // namespace aifinops::gateway
