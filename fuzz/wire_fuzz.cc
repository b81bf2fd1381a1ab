// libFuzzer target for the gateway's wire formats: nothing a client or an upstream sends can
// crash them, and they keep their promises on any input:
// - parse_request and usage_from_body accept or refuse every body, for every format; usage
//   counts are never negative and parts stay within their wholes; on a valid JSON body,
//   usage_from_body finds usage exactly when a full DOM parse does;
// - with_include_usage turns any JSON object into a JSON object whose stream_options say
//   include_usage true;
// - SseUsageReader gives the same output and the same reading however the bytes are split,
//   and whether it reads events of a known shape without a parse or parses every event;
//   without stripping its output is its input, byte for byte.
// The first input byte chooses the format, the flags and the split sizes; the rest is the body
// or the stream.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/wire.h"

namespace {

using namespace aifinops::gateway;

constexpr WireFormat kFormats[] = {WireFormat::kOpenAiChat, WireFormat::kOpenAiCompletion,
                                   WireFormat::kOpenAiEmbedding, WireFormat::kOpenAiResponses,
                                   WireFormat::kAnthropicMessages};

void check(bool condition) {
  if (!condition) __builtin_trap();
}

void check_counts(const TokenCounts& t) {
  check(t.input >= 0 && t.cached_input >= 0 && t.cache_write >= 0 && t.output >= 0 &&
        t.reasoning >= 0);
  check(t.cached_input + t.cache_write <= t.input);
  check(t.reasoning <= t.output);
}

bool is_json_object(simdjson::dom::parser& parser, std::string_view text) {
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return false;
  return root.type() == simdjson::dom::element_type::OBJECT;
}

/// A valid JSON object whose first top-level "usage" member is an object.
bool has_usage_object(simdjson::dom::parser& parser, std::string_view text) {
  simdjson::dom::element root;
  simdjson::dom::object usage;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return false;
  return root["usage"].get_object().get(usage) == simdjson::SUCCESS;
}

/// Every top-level stream_options is an object whose every include_usage is true, and
/// there is at least one.
bool asks_for_usage(simdjson::dom::parser& parser, std::string_view text) {
  simdjson::dom::element root;
  simdjson::dom::object request;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return false;
  if (root.get_object().get(request) != simdjson::SUCCESS) return false;
  int options = 0;
  for (simdjson::dom::key_value_pair member : request) {
    if (member.key != "stream_options") continue;
    ++options;
    simdjson::dom::object stream_options;
    if (member.value.get_object().get(stream_options) != simdjson::SUCCESS) return false;
    int flags = 0;
    for (simdjson::dom::key_value_pair option : stream_options) {
      if (option.key != "include_usage") continue;
      ++flags;
      bool value = false;
      if (option.value.get_bool().get(value) != simdjson::SUCCESS || !value) return false;
    }
    if (flags == 0) return false;
  }
  return options > 0;
}

struct Reading {
  std::string out;
  TokenCounts usage;
  bool found = false;
  bool complete = false;
  std::string model;
  int64_t text_bytes = 0;
  bool operator==(const Reading&) const = default;
};

Reading read_stream(WireFormat format, bool strip, std::string_view stream, std::mt19937* random,
                    bool reuse_event_shapes = true) {
  SseUsageReader reader(format, strip, reuse_event_shapes);
  Reading r;
  if (random == nullptr) {
    reader.feed(stream, r.out);
  } else {
    for (size_t i = 0; i < stream.size();) {
      size_t n = std::uniform_int_distribution<size_t>(0, 64)(*random);
      reader.feed(stream.substr(i, n), r.out);
      i += n;
    }
  }
  reader.finish(r.out);
  r.usage = reader.usage();
  r.found = reader.found_usage();
  r.complete = reader.complete();
  r.model = reader.response_model();
  r.text_bytes = reader.output_text_bytes();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const WireFormat format = kFormats[selector % 5];
  const bool model_required = (selector & 0x08) != 0;
  static simdjson::dom::parser parser;

  auto request = parse_request(format, text, model_required);
  if (request) {
    check(request->estimated_input_tokens >= 1);
    check(request->max_output_tokens >= 0);
    check(!model_required || !request->model.empty());
    check(is_json_object(parser, text));
  }

  // Not a JSON object: no promise beyond not crashing (the gateway refuses such a body first).
  std::string with_usage = with_include_usage(text);
  if (is_json_object(parser, text)) check(asks_for_usage(parser, with_usage));

  // usage_from_body reads with On-Demand: on every valid body it must find usage exactly when a
  // full parse does. (A body that is not valid JSON may still give the counts it states, when
  // the error lies in a value it skips: see usage_from_body.)
  bool found = false;
  check_counts(usage_from_body(format, text, found));
  if (is_json_object(parser, text)) check(found == has_usage_object(parser, text));

  std::mt19937 random(selector);
  for (bool strip : {false, true}) {
    Reading whole = read_stream(format, strip, text, nullptr);
    check_counts(whole.usage);
    check(whole.text_bytes >= 0);
    if (!strip) check(whole.out == text);
    if (strip) check(whole.out.size() <= text.size());
    check(read_stream(format, strip, text, &random) == whole);
    check(read_stream(format, strip, text, nullptr, /*reuse_event_shapes=*/false) == whole);
  }
  return 0;
}
