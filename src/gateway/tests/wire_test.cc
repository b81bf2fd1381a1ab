#include "gateway/wire.h"

#include <gtest/gtest.h>

#define XXH_INLINE_ALL  // the header alone: the hash response_cache.cc takes of the canonical form
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace aifinops::gateway {
namespace {

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

std::string fixture(const std::string& relative) {
  std::string path = std::string(AIFINOPS_SOURCE_DIR) + "/tests/fixtures/formats/" + relative;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TokenCounts counts(int64_t input, int64_t cached_input, int64_t cache_write, int64_t output,
                   int64_t reasoning) {
  return TokenCounts{input, cached_input, cache_write, output, reasoning};
}

std::string describe(const TokenCounts& t) {
  std::ostringstream s;
  s << "{input " << t.input << ", cached " << t.cached_input << ", write " << t.cache_write
    << ", output " << t.output << ", reasoning " << t.reasoning << "}";
  return s.str();
}

TokenCounts body_usage(WireFormat format, const std::string& body, bool expect_found = true) {
  bool found = !expect_found;
  TokenCounts t = usage_from_body(format, body, found);
  EXPECT_EQ(found, expect_found);
  return t;
}

// ---- Usage from non-streaming bodies ----

TEST(UsageFromBodyTest, ReadsOpenAiChatCompletion) {
  auto t = body_usage(WireFormat::kOpenAiChat,
                      fixture("openai-api/chat_completions_nonstream_gpt-4o-mini.json"));
  EXPECT_EQ(t, counts(12, 0, 0, 5, 0)) << describe(t);
  t = body_usage(WireFormat::kOpenAiChat, fixture("openai-api/spec_chat_completions_default.json"));
  EXPECT_EQ(t, counts(19, 0, 0, 10, 0)) << describe(t);
  t = body_usage(WireFormat::kOpenAiChat, fixture("gateway-mock/completion.json"));
  EXPECT_EQ(t, counts(412, 0, 0, 96, 0)) << describe(t);
}

TEST(UsageFromBodyTest, ReadsCachedAndReasoningTokensOfOpenAiChat) {
  // The recorded payloads all have zero cached tokens; this is their shape with counts.
  std::string body =
      R"({"object":"chat.completion","usage":{"prompt_tokens":2006,"completion_tokens":300,
    "total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
    "completion_tokens_details":{"reasoning_tokens":192,"audio_tokens":0}}})";
  auto t = body_usage(WireFormat::kOpenAiChat, body);
  EXPECT_EQ(t, counts(2006, 1920, 0, 300, 192)) << describe(t);
}

TEST(UsageFromBodyTest, ReadsResponsesApiReasoningAndCachedTokens) {
  auto t = body_usage(WireFormat::kOpenAiResponses,
                      fixture("openai-api/responses_reasoning_tokens.json"));
  EXPECT_EQ(t, counts(44, 0, 0, 288, 9)) << describe(t);
  t = body_usage(WireFormat::kOpenAiResponses, fixture("openai-api/responses_cached_tokens.json"));
  EXPECT_EQ(t, counts(22, 0, 0, 6, 0)) << describe(t);
  t = body_usage(WireFormat::kOpenAiResponses, fixture("openai-api/spec_responses_reasoning.json"));
  EXPECT_EQ(t, counts(81, 0, 0, 1035, 832)) << describe(t);
  std::string cached =
      R"({"usage":{"input_tokens":5000,"input_tokens_details":{"cached_tokens":4096},
    "output_tokens":20,"output_tokens_details":{"reasoning_tokens":0}}})";
  t = body_usage(WireFormat::kOpenAiResponses, cached);
  EXPECT_EQ(t, counts(5000, 4096, 0, 20, 0)) << describe(t);
}

TEST(UsageFromBodyTest, ReadsEmbeddingPromptTokensAsInput) {
  auto t = body_usage(WireFormat::kOpenAiEmbedding,
                      fixture("openai-api/embeddings_with_dimensions.json"));
  EXPECT_EQ(t, counts(8, 0, 0, 0, 0)) << describe(t);
}

TEST(UsageFromBodyTest, ReadsAnthropicMessages) {
  auto t = body_usage(WireFormat::kAnthropicMessages,
                      fixture("anthropic/messages_nonstream_parse.json"));
  EXPECT_EQ(t, counts(406, 0, 0, 50, 0)) << describe(t);
  t = body_usage(WireFormat::kAnthropicMessages,
                 fixture("anthropic/messages_nonstream_tool_use_claude-opus-4-5.json"));
  EXPECT_EQ(t, counts(3182, 0, 0, 237, 0)) << describe(t);
}

TEST(UsageFromBodyTest, NormalisesAnthropicCacheReadsAndWritesIntoInput) {
  // Anthropic's input_tokens excludes cache reads and writes; ours counts every prompt token.
  std::string body =
      R"({"type":"message","usage":{"input_tokens":100,"cache_creation_input_tokens":300,
    "cache_read_input_tokens":2000,"cache_creation":{"ephemeral_5m_input_tokens":300,
    "ephemeral_1h_input_tokens":0},"output_tokens":50}})";
  auto t = body_usage(WireFormat::kAnthropicMessages, body);
  EXPECT_EQ(t, counts(2400, 2000, 300, 50, 0)) << describe(t);
}

TEST(UsageFromBodyTest, ReportsNotFoundWithoutUsage) {
  body_usage(WireFormat::kOpenAiChat, R"({"id":"x","choices":[]})", false);
  body_usage(WireFormat::kOpenAiChat, R"({"usage":null})", false);
  body_usage(WireFormat::kOpenAiChat, R"({"usage":{"prompt_tokens":)", false);
  body_usage(WireFormat::kOpenAiChat, "", false);
  body_usage(WireFormat::kOpenAiChat, "[1,2]", false);
  body_usage(WireFormat::kAnthropicMessages, "<html>502 Bad Gateway</html>", false);
}

TEST(UsageFromBodyTest, KeepsPartsWithinWholesAndIgnoresNonsense) {
  std::string body = R"({"usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":50},
    "completion_tokens":-3,"completion_tokens_details":{"reasoning_tokens":7}}})";
  auto t = body_usage(WireFormat::kOpenAiChat, body);
  EXPECT_EQ(t, counts(10, 10, 0, 0, 0)) << describe(t);
  t = body_usage(WireFormat::kOpenAiChat,
                 R"({"usage":{"prompt_tokens":"12","completion_tokens":5.0}})");
  EXPECT_EQ(t, counts(0, 0, 0, 5, 0)) << describe(t);
  t = body_usage(WireFormat::kOpenAiChat,
                 R"({"usage":{"prompt_tokens":1e300,"completion_tokens":18446744073709551615}})");
  EXPECT_EQ(t.input, 1'000'000'000'000);
  EXPECT_EQ(t.output, 1'000'000'000'000);
}

// The usage counts of chat.completion bodies below: prompt, completion and cached tokens.
constexpr const char* kUsage =
    R"({"prompt_tokens":12,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}})";

std::string with_usage(const char* before, const char* after) {
  return std::string(before) + kUsage + after;
}

TEST(UsageFromBodyTest, FindsTheTopLevelUsageFirstMiddleOrLast) {
  const TokenCounts expected = counts(12, 4, 0, 5, 0);
  for (const std::string& body :
       {with_usage(R"({"usage":)", R"(,"id":"x","choices":[{"index":0}]})"),
        with_usage(R"({"id":"x","usage":)", R"(,"choices":[{"index":0}]})"),
        with_usage(R"({"id":"x","choices":[{"index":0}],"usage":)", "}"),
        with_usage(R"({"usage":)", "}"),
        with_usage(" \n{ \"id\" : \"x\" ,\n \"usage\" :\n ", " \n}\n ")}) {
    EXPECT_EQ(body_usage(WireFormat::kOpenAiChat, body), expected) << body;
  }
}

TEST(UsageFromBodyTest, TakesOnlyTheTopLevelUsage) {
  // "usage" inside choices, inside another object or inside a string is not the response's.
  const char* nested[] = {
      R"({"id":"x","choices":[{"message":{"content":"hi"},"usage":{"prompt_tokens":9}}]})",
      R"({"id":"x","metadata":{"usage":{"prompt_tokens":9}},"object":"chat.completion"})",
      R"({"id":"x","choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":9}"}}]})",
      R"({"id":"x","usage_note":{"prompt_tokens":9}})",
  };
  for (const char* body : nested) body_usage(WireFormat::kOpenAiChat, body, false);
  std::string both = with_usage(
      R"({"choices":[{"usage":{"prompt_tokens":9,"completion_tokens":9}}],"usage":)",
      R"(,"x":{"usage":{"prompt_tokens":7}}})");
  EXPECT_EQ(body_usage(WireFormat::kOpenAiChat, both), counts(12, 4, 0, 5, 0));
}

TEST(UsageFromBodyTest, TakesTheFirstOfARepeatedUsageAsBefore) {
  EXPECT_EQ(body_usage(WireFormat::kOpenAiChat,
                       with_usage(R"({"usage":)", R"(,"usage":{"prompt_tokens":99}})")),
            counts(12, 4, 0, 5, 0));
  body_usage(WireFormat::kOpenAiChat, with_usage(R"({"usage":null,"usage":)", "}"), false);
  // A key spelled with escapes is the same key.
  EXPECT_EQ(body_usage(WireFormat::kOpenAiChat, with_usage(R"({"us\u0061ge":)", "}")),
            counts(12, 4, 0, 5, 0));
}

TEST(UsageFromBodyTest, ReportsNotFoundWhenUsageIsNotAnObject) {
  for (const char* usage : {"null", "[]", R"([{"prompt_tokens":1}])", R"("12")", "12", "true"}) {
    body_usage(WireFormat::kOpenAiChat, std::string(R"({"id":"x","usage":)") + usage + "}", false);
    body_usage(WireFormat::kAnthropicMessages, std::string(R"({"usage":)") + usage + R"(,"x":1})",
               false);
  }
}

TEST(UsageFromBodyTest, ReadsAnAzureOpenAiBody) {
  // Azure OpenAI: members in alphabetical order (usage last), content filter results around
  // the choices, the deployment's model name.
  std::string body =
      R"({"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},)"
      R"("self_harm":{"filtered":false,"severity":"safe"}},"finish_reason":"stop","index":0,)"
      R"("logprobs":null,"message":{"content":"Hello.","refusal":null,"role":"assistant"}}],)"
      R"("created":1748000000,"id":"chatcmpl-A1","model":"gpt-4o-2024-11-20",)"
      R"("object":"chat.completion","prompt_filter_results":[{"prompt_index":0,)"
      R"("content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}],)"
      R"("system_fingerprint":"fp_1","usage":{"completion_tokens":7,)"
      R"("completion_tokens_details":{"accepted_prediction_tokens":0,"reasoning_tokens":0},)"
      R"("prompt_tokens":2048,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":1024},)"
      R"("total_tokens":2055}})";
  EXPECT_EQ(body_usage(WireFormat::kOpenAiChat, body), counts(2048, 1024, 0, 7, 0));
}

TEST(UsageFromBodyTest, ReadsUsageMembersInAnyOrder) {
  std::string body =
      R"({"usage":{"completion_tokens_details":{"reasoning_tokens":3},"total_tokens":30,)"
      R"("prompt_tokens_details":{"cache_write_tokens":2,"cached_tokens":5},)"
      R"("completion_tokens":10,"prompt_tokens":20}})";
  EXPECT_EQ(body_usage(WireFormat::kOpenAiChat, body), counts(20, 5, 2, 10, 3));
  body = R"({"usage":{"output_tokens":6,"cache_read_input_tokens":40,"input_tokens":3,)"
         R"("cache_creation_input_tokens":8}})";
  EXPECT_EQ(body_usage(WireFormat::kAnthropicMessages, body), counts(51, 40, 8, 6, 0));
}

TEST(UsageFromBodyTest, ReportsNotFoundForABodyCutShortAnywhere) {
  const std::pair<WireFormat, const char*> files[] = {
      {WireFormat::kOpenAiChat, "gateway-mock/completion.json"},
      {WireFormat::kOpenAiResponses, "openai-api/responses_reasoning_tokens.json"},
      {WireFormat::kAnthropicMessages,
       "anthropic/messages_nonstream_tool_use_claude-opus-4-5.json"},
  };
  for (const auto& [format, file] : files) {
    std::string body = fixture(file);
    const size_t end = body.rfind('}');
    for (size_t k = 0; k < end; ++k) {
      bool found = true;
      usage_from_body(format, std::string_view(body).substr(0, k), found);
      EXPECT_FALSE(found) << file << " cut at " << k;
      if (found) break;
    }
  }
}

TEST(UsageFromBodyTest, ReportsNotFoundForMalformedBodiesItCanSee) {
  const char* bodies[] = {
      "{\"id\":\"\xff\",\"usage\":{\"prompt_tokens\":1}}",         // not UTF-8, anywhere
      "{\"id\":\"a\x01\",\"usage\":{\"prompt_tokens\":1}}",        // a control character
      R"({"id":"x,"usage":{"prompt_tokens":1}})",                  // a string left open
      R"({"id":"x" "usage":{"prompt_tokens":1}})",                 // top level: no comma
      R"({"id" "x","usage":{"prompt_tokens":1}})",                 // top level: no colon
      R"({"id":"x",,"usage":{"prompt_tokens":1}})",                // top level: two commas
      R"({1:"x","usage":{"prompt_tokens":1}})",                    // top level: a key not a string
      R"({"usage":{"prompt_tokens":1},})",                         // a comma before the brace
      R"({"usage":{"prompt_tokens":1}} x)",                        // something after the object
      R"({"usage":{"prompt_tokens":1}}{})",
      R"({"usage":{"prompt_tokens":1}}])",
      R"({"choices":[{"x":1}],"usage":{"prompt_tokens":1})",       // the last brace missing
      R"({"usage":{"prompt_tokens":012}})",                        // counts: a malformed number
      R"({"usage":{"prompt_tokens":1.5e}})",
      R"({"usage":{"prompt_tokens":-}})",
      R"({"usage":{"prompt_tokens":tru}})",                        // a malformed literal
      R"({"usage":{"prompt_tokens":nul}})",
      R"({"usage":{"prompt_tokens":"\q"}})",                       // a bad escape
      R"({"usage":{"prompt_tokens" 1}})",                          // no colon before a count
      R"({"usage":{"completion_tokens":1,"prompt_tokens"}})",
  };
  for (const char* body : bodies) body_usage(WireFormat::kOpenAiChat, body, false);
  body_usage(WireFormat::kAnthropicMessages, R"({"usage":{"input_tokens":1,"output_tokens":x}})",
             false);
}

TEST(UsageFromBodyTest, SurvivesAMalformedUsageObjectFoundByFuzzing) {
  // A usage object whose members run into each other: simdjson's find_field_unordered, which
  // assumes the part of an object it has passed is valid, went out of bounds on it.
  std::string body =
      R"({"id":"x","usage":{"prompt_tokens":412,"completion_tokens":96,"total_tokens":508,)"
      R"("prompt_tokens_details":{"cached_tokans":0,"audio_tokenid":"chf compute cost) and as":)"
      R"({"cached_tokens":0,"audio_token"completion_tokens_details"tails":{"reasoning_tokens":0,)"
      R"("audio_tokens":0}},"service_tier":"default","system_finges":0},"completion_tokens_de_)"
      R"(tokens":0,"audio_tokens":0}},"service_tier":"default"})";
  for (WireFormat format : {WireFormat::kOpenAiCompletion, WireFormat::kOpenAiResponses,
                            WireFormat::kAnthropicMessages}) {
    body_usage(format, body, false);
  }
}

TEST(UsageFromBodyTest, KeepsTheStatedCountsOfABodyBrokenOnlyWhereItIsNotRead) {
  // Values other than the counts are skipped, not parsed: a syntax error inside one is not
  // seen, and the counts the body states are kept (see usage_from_body in wire.cc). No
  // provider sends such a body; this pins the choice.
  EXPECT_EQ(body_usage(WireFormat::kOpenAiChat,
                       with_usage(R"({"choices":[{"index":0 "x":tru}],"usage":)", "}")),
            counts(12, 4, 0, 5, 0));
  std::string body = R"({"usage":{"prompt_tokens":12,"total_tokens":1.e,"completion_tokens":5}})";
  EXPECT_EQ(body_usage(WireFormat::kOpenAiChat, body), counts(12, 0, 0, 5, 0));
}

TEST(IsJsonDocumentTest, ChecksEveryValueWhereReadingUsageSkipsThem) {
  // The cache's check on what it stores: the bodies above whose usage reads are refused.
  EXPECT_FALSE(is_json_document(with_usage(R"({"choices":[{"index":0 "x":tru}],"usage":)", "}")));
  EXPECT_FALSE(is_json_document(R"({"usage":{"prompt_tokens":12,"total_tokens":1.e}})"));
  EXPECT_FALSE(is_json_document(R"({"usage":{}} {})"));
  EXPECT_FALSE(is_json_document(""));
  EXPECT_TRUE(is_json_document(with_usage(R"({"choices":[{"index":0,"x":true}],"usage":)", "}")));
  EXPECT_TRUE(is_json_document(R"( {"usage":{"prompt_tokens":12}} )"));
}

// ---- SSE streams ----

struct StreamCase {
  const char* file;
  WireFormat format;
  TokenCounts usage;
  const char* model;
  int64_t text_bytes;
};

const std::vector<StreamCase>& stream_cases() {
  static const std::vector<StreamCase> cases = {
      {"openai-api/chat_completions_stream_include_usage_gpt-4.sse", WireFormat::kOpenAiChat,
       counts(12, 0, 0, 5, 0), "gpt-4-0613", 17},
      {"openai-api/chat_completions_stream_tools.sse", WireFormat::kOpenAiChat,
       counts(75, 0, 0, 51, 0), "gpt-4o-mini-2024-07-18", 98},
      {"gateway-mock/stream.sse", WireFormat::kOpenAiChat, counts(412, 0, 0, 19, 0),
       "gpt-4o-mini-2024-07-18", 107},
      {"openai-api/responses_streaming.sse", WireFormat::kOpenAiResponses, counts(22, 0, 0, 6, 0),
       "gpt-4o-mini-2024-07-18", 15},
      {"openai-api/spec_responses_streaming.sse", WireFormat::kOpenAiResponses,
       counts(37, 0, 0, 11, 0), "gpt-5.4", 2},
      {"anthropic/messages_stream_basic_sdk_fixture.sse", WireFormat::kAnthropicMessages,
       counts(11, 0, 0, 6, 0), "claude-3-opus-latest", 12},
      {"anthropic/messages_stream_claude-haiku-4-5.sse", WireFormat::kAnthropicMessages,
       counts(656, 0, 0, 74, 0), "claude-haiku-4-5-20251001", 47},
      {"anthropic/messages_stream_claude-sonnet-4-5.sse", WireFormat::kAnthropicMessages,
       counts(135, 0, 0, 10, 0), "claude-sonnet-4-5-20250929", 13},
  };
  return cases;
}

bool is_openai_chat(WireFormat f) {
  return f == WireFormat::kOpenAiChat || f == WireFormat::kOpenAiCompletion;
}

/// What a reader made of a stream fed in the given pieces.
struct StreamResult {
  std::string out;
  TokenCounts usage;
  bool found = false;
  bool complete = false;
  std::string model;
  int64_t text_bytes = 0;
};

StreamResult run(WireFormat format, bool strip, const std::vector<std::string_view>& pieces,
                 bool reuse_event_shapes = true) {
  SseUsageReader reader(format, strip, reuse_event_shapes);
  StreamResult r;
  for (std::string_view piece : pieces) reader.feed(piece, r.out);
  reader.finish(r.out);
  r.usage = reader.usage();
  r.found = reader.found_usage();
  r.complete = reader.complete();
  r.model = reader.response_model();
  r.text_bytes = reader.output_text_bytes();
  return r;
}

StreamResult run_whole(WireFormat format, bool strip, std::string_view stream) {
  return run(format, strip, {stream});
}

/// The stream without OpenAI's usage-only event, found independently of the reader: the
/// "\n\n"-terminated event whose chunk has an empty choices array and a usage object.
std::string without_usage_event(const std::string& stream) {
  std::string result;
  size_t start = 0;
  int removed = 0;
  while (start < stream.size()) {
    size_t end = stream.find("\n\n", start);
    end = end == std::string::npos ? stream.size() : end + 2;
    std::string event = stream.substr(start, end - start);
    if (event.find("\"choices\":[]") != std::string::npos &&
        event.find("\"usage\":{") != std::string::npos) {
      ++removed;
    } else {
      result += event;
    }
    start = end;
  }
  EXPECT_EQ(removed, 1);
  return result;
}

/// `at`: the split point, or the number of pieces.
void expect_same_reading(const StreamResult& a, const StreamResult& b, std::string_view file,
                         size_t at) {
  bool same = a.out == b.out && a.usage == b.usage && a.found == b.found &&
              a.complete == b.complete && a.model == b.model && a.text_bytes == b.text_bytes;
  if (same) return;
  std::string where = std::string(file) + " (" + std::to_string(at) + ")";
  EXPECT_EQ(a.out, b.out) << where;
  EXPECT_EQ(a.usage, b.usage) << where;
  EXPECT_EQ(a.found, b.found) << where;
  EXPECT_EQ(a.complete, b.complete) << where;
  EXPECT_EQ(a.model, b.model) << where;
  EXPECT_EQ(a.text_bytes, b.text_bytes) << where;
}

TEST(SseUsageReaderTest, ReadsEveryTokenKindFromRealStreams) {
  for (const StreamCase& c : stream_cases()) {
    std::string stream = fixture(c.file);
    StreamResult r = run_whole(c.format, false, stream);
    EXPECT_TRUE(r.found) << c.file;
    EXPECT_TRUE(r.complete) << c.file;
    EXPECT_EQ(r.usage, c.usage) << c.file << ": " << describe(r.usage);
    EXPECT_EQ(r.model, c.model) << c.file;
    EXPECT_EQ(r.text_bytes, c.text_bytes) << c.file;
  }
}

TEST(SseUsageReaderTest, PassesEveryByteThroughWhenNotStripping) {
  for (const StreamCase& c : stream_cases()) {
    std::string stream = fixture(c.file);
    EXPECT_EQ(run_whole(c.format, false, stream).out, stream) << c.file;
  }
}

TEST(SseUsageReaderTest, StripsOnlyTheUsageOnlyChunkWhenAsked) {
  for (const StreamCase& c : stream_cases()) {
    std::string stream = fixture(c.file);
    StreamResult r = run_whole(c.format, true, stream);
    std::string expected = is_openai_chat(c.format) ? without_usage_event(stream) : stream;
    EXPECT_EQ(r.out, expected) << c.file;
    EXPECT_TRUE(r.found) << c.file;  // usage is still read from the stripped chunk
    EXPECT_EQ(r.usage, c.usage) << c.file;
    if (is_openai_chat(c.format)) {
      EXPECT_EQ(r.out.find("\"usage\":{"), std::string::npos) << c.file;
      EXPECT_NE(r.out.find("data: [DONE]"), std::string::npos) << c.file;
    }
  }
}

TEST(SseUsageReaderTest, GivesTheSameResultAtEverySplitPoint) {
  for (const StreamCase& c : stream_cases()) {
    std::string stream = fixture(c.file);
    for (bool strip : {false, true}) {
      SCOPED_TRACE(strip ? "stripping" : "not stripping");
      StreamResult whole = run_whole(c.format, strip, stream);
      for (size_t k = 0; k <= stream.size(); ++k) {
        std::string_view s = stream;
        StreamResult split = run(c.format, strip, {s.substr(0, k), s.substr(k)});
        expect_same_reading(split, whole, c.file, k);
        if (HasFailure()) return;
      }
    }
  }
}

TEST(SseUsageReaderTest, GivesTheSameResultForByteByByteAndRandomPieces) {
  std::mt19937 random(42);
  for (const StreamCase& c : stream_cases()) {
    std::string stream = fixture(c.file);
    std::string_view s = stream;
    for (bool strip : {false, true}) {
      StreamResult whole = run_whole(c.format, strip, stream);
      std::vector<std::string_view> bytes;
      for (size_t i = 0; i < s.size(); ++i) bytes.push_back(s.substr(i, 1));
      expect_same_reading(run(c.format, strip, bytes), whole, c.file, 1);
      for (int round = 0; round < 50; ++round) {
        std::vector<std::string_view> pieces;
        for (size_t i = 0; i < s.size();) {
          size_t n = std::uniform_int_distribution<size_t>(0, 300)(random);
          pieces.push_back(s.substr(i, n));
          i += n;
        }
        expect_same_reading(run(c.format, strip, pieces), whole, c.file, pieces.size());
      }
    }
  }
}

std::string with_crlf(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '\n') out += '\r';
    out += ch;
  }
  return out;
}

TEST(SseUsageReaderTest, ReadsStreamsWithCrlfLineEndings) {
  for (const StreamCase& c : stream_cases()) {
    std::string stream = with_crlf(fixture(c.file));
    StreamResult r = run_whole(c.format, false, stream);
    EXPECT_EQ(r.out, stream) << c.file;
    EXPECT_EQ(r.usage, c.usage) << c.file;
    EXPECT_TRUE(r.found && r.complete) << c.file;
    std::string_view s = stream;
    StreamResult whole = run_whole(c.format, true, stream);
    for (size_t k = 0; k <= s.size(); ++k) {
      expect_same_reading(run(c.format, true, {s.substr(0, k), s.substr(k)}), whole, c.file, k);
      if (HasFailure()) return;
    }
  }
}

TEST(SseUsageReaderTest, StripsTheUsageChunkWithCrlfLineEndings) {
  std::string stream =
      with_crlf(fixture("openai-api/chat_completions_stream_include_usage_gpt-4.sse"));
  StreamResult r = run_whole(WireFormat::kOpenAiChat, true, stream);
  EXPECT_EQ(r.out.find("\"usage\":{"), std::string::npos);
  EXPECT_EQ(r.out.size() + 0,
            stream.size() - (stream.find("data: [DONE]") - stream.rfind("data: {")));
}

TEST(SseUsageReaderTest, JoinsMultipleDataLinesOfOneEvent) {
  std::string stream =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n"
      "event: chunk\n"
      "data: {\"choices\":[],\n"
      "data: \"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n"
      ": a comment\n\n"
      "data: [DONE]\n\n";
  StreamResult r = run_whole(WireFormat::kOpenAiChat, true, stream);
  EXPECT_TRUE(r.found);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.usage, counts(3, 0, 0, 1, 0));
  EXPECT_EQ(r.text_bytes, 2);
  EXPECT_EQ(r.out,
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n"
            ": a comment\n\n"
            "data: [DONE]\n\n");
}

TEST(SseUsageReaderTest, KeepsUsageInChunksThatStillHaveChoices) {
  // Some compatible servers send usage on a chunk that also carries a choice: it is read,
  // never stripped.
  std::string stream =
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}],"
      "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
  StreamResult r = run_whole(WireFormat::kOpenAiChat, true, stream);
  EXPECT_EQ(r.out, stream);
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.usage, counts(7, 0, 0, 1, 0));
}

TEST(SseUsageReaderTest, ReadsCompletionsApiText) {
  std::string stream =
      "data: "
      "{\"object\":\"text_completion\",\"model\":\"gpt-3.5-turbo-instruct\",\"choices\":[{\"text\":"
      "\"Hello\",\"index\":0}]}\n\n"
      "data: {\"object\":\"text_completion\",\"model\":\"gpt-3.5-turbo-instruct\",\"choices\":[],"
      "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n"
      "data: [DONE]\n\n";
  StreamResult r = run_whole(WireFormat::kOpenAiCompletion, true, stream);
  EXPECT_EQ(r.text_bytes, 5);
  EXPECT_EQ(r.usage, counts(5, 0, 0, 2, 0));
  EXPECT_EQ(r.model, "gpt-3.5-turbo-instruct");
  EXPECT_EQ(r.out, without_usage_event(stream));
}

TEST(SseUsageReaderTest, ReportsAStreamCutShortAsIncompleteWithoutUsage) {
  for (const StreamCase& c : stream_cases()) {
    std::string stream = fixture(c.file);
    // Cut inside the event that carries the final usage: text has streamed, the usage has not.
    size_t final_event = std::string::npos;
    for (const char* marker :
         {"\"choices\":[]", "event: response.completed", "event: message_delta"}) {
      final_event = std::min(final_event, stream.find(marker));
    }
    ASSERT_NE(final_event, std::string::npos) << c.file;
    std::string cut = stream.substr(0, final_event + 5);
    StreamResult r = run_whole(c.format, true, cut);
    EXPECT_FALSE(r.found) << c.file;
    EXPECT_FALSE(r.complete) << c.file;
    EXPECT_GT(r.text_bytes, 0) << c.file;
    EXPECT_EQ(r.out, cut) << c.file;  // the partial event is passed on unchanged
  }
}

TEST(SseUsageReaderTest, KeepsAnthropicInputCountsWhenTheStreamIsCutShort) {
  std::string stream = fixture("anthropic/messages_stream_claude-haiku-4-5.sse");
  std::string cut = stream.substr(0, stream.find("event: message_delta"));
  StreamResult r = run_whole(WireFormat::kAnthropicMessages, false, cut);
  EXPECT_FALSE(r.found);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(r.usage.input, 656);  // from message_start; its output count is not the final one
}

TEST(SseUsageReaderTest, NormalisesAnthropicStreamCacheCounts) {
  std::string stream =
      "event: message_start\n"
      "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5\",\"usage\":"
      "{\"input_tokens\":20,\"cache_creation_input_tokens\":1000,\"cache_read_input_tokens\":4000,"
      "\"output_tokens\":1}}}\n\n"
      "event: content_block_delta\n"
      "data: "
      "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
      "\"thinking\":\"hmm\"}}\n\n"
      "event: message_delta\n"
      "data: "
      "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_"
      "tokens\":321}}\n\n"
      "event: message_stop\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  StreamResult r = run_whole(WireFormat::kAnthropicMessages, false, stream);
  EXPECT_TRUE(r.found);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.usage, counts(5020, 4000, 1000, 321, 0)) << describe(r.usage);
  EXPECT_EQ(r.text_bytes, 3);
}

TEST(SseUsageReaderTest, FindsUsageWithoutTheEndMarker) {
  std::string stream = fixture("openai-api/chat_completions_stream_include_usage_gpt-4.sse");
  std::string cut = stream.substr(0, stream.find("data: [DONE]"));
  StreamResult r = run_whole(WireFormat::kOpenAiChat, false, cut);
  EXPECT_TRUE(r.found);
  EXPECT_FALSE(r.complete);
}

TEST(SseUsageReaderTest, ReadsEventsOfARepeatedShapeWithoutAParse) {
  // The benchmark's stream: a first chunk (role), 19 content chunks, the finish chunk, the
  // usage chunk and [DONE]. The first two content-bearing shapes are parsed (the role chunk's
  // differs from the rest), then 18 chunks are read by their shape; the finish and usage
  // chunks are parsed.
  std::string stream = fixture("gateway-mock/stream.sse");
  SseUsageReader reader(WireFormat::kOpenAiChat, true);
  std::string out;
  reader.feed(stream, out);
  reader.finish(out);
  EXPECT_EQ(reader.parsed_events(), 4);
  EXPECT_EQ(reader.output_text_bytes(), 107);
  EXPECT_EQ(reader.usage(), counts(412, 0, 0, 19, 0));

  SseUsageReader parse_every(WireFormat::kOpenAiChat, true, false);
  std::string out_parsed;
  parse_every.feed(stream, out_parsed);
  parse_every.finish(out_parsed);
  EXPECT_EQ(parse_every.parsed_events(), 21);
  EXPECT_EQ(out_parsed, out);
}

TEST(SseUsageReaderTest, ReadsRealStreamsAlikeWithAndWithoutKnownShapes) {
  for (const StreamCase& c : stream_cases()) {
    std::string stream = fixture(c.file);
    for (bool strip : {false, true}) {
      if (strip && !is_openai_chat(c.format)) continue;
      StreamResult reference = run(c.format, strip, {stream}, false);
      for (size_t at = 0; at <= stream.size(); at += 7) {
        std::string_view whole = stream;
        expect_same_reading(reference, run(c.format, strip, {whole.substr(0, at), whole.substr(at)}),
                            c.file, at);
      }
    }
  }
}

TEST(SseUsageReaderTest, ParsesEventsThatOnlyLookLikeAKnownShape) {
  // The first event teaches the shape; each later one fits it outside its text. Where that
  // text is not a plain string, the event is parsed, and read as a parse reads it.
  const std::string before = "data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"";
  const std::string after = "\"}}],\"usage\":null}\n\n";
  const std::vector<std::string> texts = {
      "first",
      "shape",                                   // read by its shape: 5
      "plain",
      "line\\nbreak",                           // an escape: 10 bytes once unescaped
      "a\",\"refusal\":\"bbbb",                  // a second text member: 1 + 4
      "a\"}}],\"usage\":{\"prompt_tokens\":3},\"x\":[{\"y\":{\"z\":\"",  // usage: a parse finds it
      "tab\there",                               // a control character: not JSON, not counted
      "\xff\xfe",                                // not UTF-8: not JSON, not counted
      "caf\xc3\xa9",                             // UTF-8: read by its shape, 5 bytes
  };
  std::string stream;
  for (const std::string& t : texts) stream += before + t + after;
  for (WireFormat f : {WireFormat::kOpenAiChat}) {
    StreamResult reference = run(f, false, {stream}, false);
    StreamResult r = run(f, false, {stream});
    expect_same_reading(reference, r, "crafted", 0);
    EXPECT_EQ(r.text_bytes, 5 + 5 + 5 + 10 + 5 + 1 + 5);
    EXPECT_TRUE(r.found);
    EXPECT_EQ(r.usage.input, 3);
  }
  SseUsageReader reader(WireFormat::kOpenAiChat, false);
  std::string out;
  reader.feed(stream, out);
  EXPECT_EQ(reader.parsed_events(), 6);  // all but "shape", "plain" and "café"
}

TEST(SseUsageReaderTest, KnowsAnthropicShapesByTheirEventName) {
  // Same data, another event name: not the learned shape. Anthropic clients go by the name.
  const std::string data =
      "data: {\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
  std::string stream = "event: content_block_delta\n" + data + "event: content_block_delta\n" +
                       data + "event: other\n" + data;
  SseUsageReader reader(WireFormat::kAnthropicMessages, false);
  std::string out;
  reader.feed(stream, out);
  EXPECT_EQ(reader.output_text_bytes(), 4);  // text counts only in content_block_delta events
  EXPECT_EQ(reader.parsed_events(), 2);
  EXPECT_EQ(out, stream);
}

TEST(SseUsageReaderTest, PassesMalformedEventsThroughUnread) {
  std::string stream =
      "data: {not json\n\n"
      "data: {\"choices\":[],\"usage\":[1]}\n\n"
      "\n\n\r\n"
      "data: [1,2,3]\n\n"
      "retry: 100\nid: 7\n\n"
      "data:\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}";  // no blank line: not stripped
  for (WireFormat f : {WireFormat::kOpenAiChat, WireFormat::kOpenAiResponses,
                       WireFormat::kAnthropicMessages, WireFormat::kOpenAiEmbedding}) {
    StreamResult r = run_whole(f, true, stream);
    EXPECT_EQ(r.out, stream);
    EXPECT_FALSE(r.complete);
  }
}

// ---- Requests ----

RequestInfo parsed(WireFormat format, std::string_view body, bool model_required = true) {
  auto info = parse_request(format, body, model_required);
  EXPECT_TRUE(info.has_value()) << body << ": " << (info ? "" : info.error().message);
  return info ? *info : RequestInfo{};
}

std::string request_error(WireFormat format, std::string_view body, bool model_required = true) {
  auto info = parse_request(format, body, model_required);
  EXPECT_FALSE(info.has_value()) << body;
  if (info) return "";
  EXPECT_EQ(info.error().code, ErrorCode::kInvalidArgument);
  return info.error().message;
}

TEST(ParseRequestTest, ReadsAChatRequest) {
  // The benchmark's request body.
  std::string system = "You are FinBot, an assistant for a FinOps team.";
  std::string user = "Summarise the attached quarterly GPU spend report.";
  std::string body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":")" + system +
      R"("},{"role":"user","content":")" + user +
      R"("}],"temperature":0.2,"max_tokens":512,"top_p":1,"user":"team-support-bot",)"
      R"("metadata":{"team":"support-bot"}})";
  RequestInfo info = parsed(WireFormat::kOpenAiChat, body);
  EXPECT_EQ(info.model, "gpt-4o-mini");
  EXPECT_FALSE(info.stream);
  EXPECT_FALSE(info.client_asked_usage);
  EXPECT_EQ(info.max_output_tokens, 512);
  EXPECT_FALSE(info.deterministic);
  // Text of the messages (roles included), about 4 bytes a token, rounded up.
  int64_t text =
      static_cast<int64_t>(system.size() + user.size() + std::string("systemuser").size());
  EXPECT_EQ(info.estimated_input_tokens, (text + 3) / 4);
}

TEST(ParseRequestTest, ReadsStreamingAndIncludeUsage) {
  RequestInfo info = parsed(
      WireFormat::kOpenAiChat,
      R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]})");
  EXPECT_TRUE(info.stream);
  EXPECT_TRUE(info.client_asked_usage);
  info = parsed(WireFormat::kOpenAiChat,
                R"({"model":"m","stream":true,"stream_options":{"include_usage":false}})");
  EXPECT_FALSE(info.client_asked_usage);
  info = parsed(WireFormat::kOpenAiChat, R"({"model":"m","stream":true,"stream_options":null})");
  EXPECT_FALSE(info.client_asked_usage);
  info = parsed(WireFormat::kOpenAiChat, R"({"model":"m","stream":null})");
  EXPECT_FALSE(info.stream);
}

TEST(ParseRequestTest, MarksTemperatureZeroAsDeterministic) {
  EXPECT_TRUE(parsed(WireFormat::kOpenAiChat, R"({"model":"m","temperature":0})").deterministic);
  EXPECT_TRUE(parsed(WireFormat::kOpenAiChat, R"({"model":"m","temperature":0.0})").deterministic);
  EXPECT_FALSE(
      parsed(WireFormat::kOpenAiChat, R"({"model":"m","temperature":0.01})").deterministic);
  EXPECT_FALSE(parsed(WireFormat::kOpenAiChat, R"({"model":"m"})").deterministic);
  EXPECT_FALSE(
      parsed(WireFormat::kOpenAiChat, R"({"model":"m","temperature":null})").deterministic);
}

TEST(ParseRequestTest, ReadsEveryMaxTokensSpelling) {
  EXPECT_EQ(parsed(WireFormat::kOpenAiChat, R"({"model":"m","max_completion_tokens":4096})")
                .max_output_tokens,
            4096);
  EXPECT_EQ(parsed(WireFormat::kOpenAiResponses, R"({"model":"m","max_output_tokens":300})")
                .max_output_tokens,
            300);
  EXPECT_EQ(parsed(WireFormat::kAnthropicMessages, R"({"model":"m","max_tokens":1024})")
                .max_output_tokens,
            1024);
  // Both sent: the larger, since the reservation covers the worst case.
  EXPECT_EQ(
      parsed(WireFormat::kOpenAiChat, R"({"model":"m","max_tokens":10,"max_completion_tokens":20})")
          .max_output_tokens,
      20);
  EXPECT_EQ(parsed(WireFormat::kOpenAiChat, R"({"model":"m","max_tokens":null})").max_output_tokens,
            0);
  EXPECT_EQ(parsed(WireFormat::kOpenAiChat, R"({"model":"m","max_tokens":-5})").max_output_tokens,
            0);
}

TEST(ParseRequestTest, EstimatesInputFromTextAndLeavesOutMedia) {
  // Anthropic: system and message text count; base64 image data does not.
  std::string image(40000, 'A');
  RequestInfo info = parsed(
      WireFormat::kAnthropicMessages,
      R"({"model":"claude","max_tokens":10,"system":"abcdefgh","messages":[{"role":"user",)"
      R"("content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":")" +
          image + R"("}},{"type":"text","text":"abcd"}]}]})");
  int64_t text = 8 + 4 + 4 /*user*/ + 5 /*image*/ + 6 /*base64*/ + 9 /*image/png*/ + 4 /*text*/;
  EXPECT_EQ(info.estimated_input_tokens, (text + 3) / 4);
  // Embeddings of token ids: one token each.
  info = parsed(WireFormat::kOpenAiEmbedding,
                R"({"model":"text-embedding-3-small","input":[[1,2,3],[4,5]]})");
  EXPECT_EQ(info.estimated_input_tokens, 5);
  info = parsed(WireFormat::kOpenAiResponses,
                R"({"model":"m","instructions":"12345678","input":"1234"})");
  EXPECT_EQ(info.estimated_input_tokens, 3);
  // Never 0 for a body.
  EXPECT_EQ(parsed(WireFormat::kOpenAiChat, R"({"model":"m"})").estimated_input_tokens, 1);
  EXPECT_EQ(
      parsed(WireFormat::kOpenAiCompletion, R"({"model":"m","prompt":"a"})").estimated_input_tokens,
      1);
}

TEST(ParseRequestTest, TakesTheLastOfARepeatedModel) {
  // As most upstream JSON readers do: the model that is billed is the one that runs.
  EXPECT_EQ(parsed(WireFormat::kOpenAiChat, R"({"model":"gpt-4o-mini","model":"gpt-4o"})").model,
            "gpt-4o");
}

TEST(ParseRequestTest, RejectsMalformedJsonSayingSo) {
  EXPECT_CONTAINS(request_error(WireFormat::kOpenAiChat, R"({"model":"m",)"),
                  std::string_view("request body is not valid JSON: "));
  EXPECT_CONTAINS(request_error(WireFormat::kOpenAiChat, ""),
                  std::string_view("request body is not valid JSON: "));
  EXPECT_CONTAINS(request_error(WireFormat::kOpenAiChat, "{\"model\":\"\xff\"}"),
                  std::string_view("not valid JSON"));
  EXPECT_CONTAINS(request_error(WireFormat::kOpenAiChat, R"({"model":"m"} x)"),
                  std::string_view("not valid JSON"));
  EXPECT_EQ(request_error(WireFormat::kOpenAiChat, R"([{"model":"m"}])"),
            "request body must be a JSON object, not an array");
}

TEST(ParseRequestTest, RejectsAMissingOrMistypedModel) {
  EXPECT_EQ(request_error(WireFormat::kOpenAiChat, R"({"messages":[]})"), "\"model\" is missing");
  EXPECT_EQ(request_error(WireFormat::kAnthropicMessages, R"({"max_tokens":1})"),
            "\"model\" is missing");
  EXPECT_EQ(request_error(WireFormat::kOpenAiChat, R"({"model":42})"),
            "\"model\" must be a string, not a number");
  EXPECT_EQ(request_error(WireFormat::kOpenAiChat, R"({"model":null})"),
            "\"model\" must be a string, not null");
  EXPECT_EQ(request_error(WireFormat::kOpenAiChat, R"({"model":""})"),
            "\"model\" must not be empty");
}

TEST(ParseRequestTest, AllowsNoModelOnAzureDeploymentRoutes) {
  RequestInfo info =
      parsed(WireFormat::kOpenAiChat, R"({"messages":[{"role":"user","content":"hi"}]})", false);
  EXPECT_EQ(info.model, "");
  EXPECT_CONTAINS(request_error(WireFormat::kOpenAiChat, R"({"model":[]})", false),
                  std::string_view("\"model\" must be a string"));
}

TEST(ParseRequestTest, RejectsMistypedStreamFields) {
  EXPECT_EQ(request_error(WireFormat::kOpenAiChat, R"({"model":"m","stream":"yes"})"),
            "\"stream\" must be true or false, not a string");
  EXPECT_EQ(request_error(WireFormat::kOpenAiChat, R"({"model":"m","stream_options":true})"),
            "\"stream_options\" must be an object, not a boolean");
  EXPECT_EQ(request_error(WireFormat::kOpenAiChat,
                          R"({"model":"m","stream_options":{"include_usage":1}})"),
            "\"stream_options.include_usage\" must be true or false, not a number");
}

// ---- The canonical form ----

/// The digest the response cache and the repeat count key on (digest_of_canonical): XXH3-128
/// of the canonical form, as two 64-bit halves in hex.
std::string digest_hex(const std::string& canonical) {
  XXH128_hash_t h = XXH3_128bits(canonical.data(), canonical.size());
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return hex;
}

TEST(CanonicalJsonTest, KeepsTheDigestOfAFixedRequest) {
  // The normalisation tests compare digests with each other, which a rewrite of the canonical
  // form could change without failing them; this pins the value itself, so that a change is a
  // decision, not an accident. The value holds on a little-endian machine (numbers and lengths
  // are written in the machine's byte order).
  const std::string body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are FinBot."},)"
      R"({"role":"user","content":"Summarise \"Q3\" \u00e9\n"}],"temperature":0.2,)"
      R"("max_tokens":512,"top_p":1,"seed":-7,"logit_bias":{"50256":-100},)"
      R"("n":18446744073709551615,"stop":null,"stream":false,"logprobs":true,"tools":[],)"
      R"("metadata":{}})";
  std::string canonical;
  ASSERT_TRUE(parse_request(WireFormat::kOpenAiChat, body, true, &canonical).has_value());
  EXPECT_EQ(digest_hex(canonical), "49406539bad3dbc22207f3e578988e74");
  std::string alone;
  ASSERT_TRUE(canonical_json(body, alone));
  EXPECT_EQ(alone, canonical);
}

TEST(CanonicalJsonTest, IsTheParsesTapeAndStrings) {
  // The format itself, on a small body: simdjson's tape, a 64-bit word per value with its
  // type in the top byte ('r' root, '{' '}' '[' ']' containers, '"' string, 'l' 'u' 'd'
  // numbers with their 8 bytes in the next word, 't' 'f' 'n'), then the strings' text, each a
  // 32-bit length, the bytes and a NUL. A container's word holds where it ends (and, from
  // bit 32, how many members it has); a string's, where its text is.
  std::string canonical;
  ASSERT_TRUE(canonical_json(R"({"a":[1,"b",true,null,1.5]})", canonical));
  std::string expected;
  auto word = [&expected](char type, uint64_t payload) {
    const uint64_t w = (static_cast<uint64_t>(static_cast<unsigned char>(type)) << 56) | payload;
    expected.append(reinterpret_cast<const char*>(&w), sizeof w);
  };
  auto raw = [&expected](auto v) {
    static_assert(sizeof v == 8);
    expected.append(reinterpret_cast<const char*>(&v), sizeof v);
  };
  word('r', 14);                       // 14 words
  word('{', (uint64_t{1} << 32) | 13); // 1 member, ends before word 13
  word('"', 0);                        // "a": at 0 in the strings
  word('[', (uint64_t{5} << 32) | 12); // 5 elements, ends before word 12
  word('l', 0);
  raw(int64_t{1});
  word('"', 6);                        // "b": at 6 (4 + 1 + 1 after "a")
  word('t', 0);
  word('n', 0);
  word('d', 0);
  raw(1.5);
  word(']', 3);  // where its '[' is
  word('}', 1);
  word('r', 0);
  for (std::string_view text : {"a", "b"}) {
    const uint32_t length = static_cast<uint32_t>(text.size());
    expected.append(reinterpret_cast<const char*>(&length), sizeof length);
    expected += text;
    expected += '\0';
  }
  EXPECT_EQ(canonical, expected);
}

// ---- include_usage injection ----

void expect_asks_usage(const std::string& body) {
  RequestInfo info = parsed(WireFormat::kOpenAiChat, body);
  EXPECT_TRUE(info.client_asked_usage) << body;
}

TEST(WithIncludeUsageTest, AddsStreamOptionsRightAfterTheOpeningBrace) {
  std::string body = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})";
  std::string out = with_include_usage(body);
  EXPECT_EQ(
      out,
      R"({"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  expect_asks_usage(out);
  EXPECT_EQ(with_include_usage("{}"), R"({"stream_options":{"include_usage":true}})");
  EXPECT_EQ(with_include_usage(" \n{ }\n"), " \n{\"stream_options\":{\"include_usage\":true} }\n");
  std::string pretty = "{\n  \"model\": \"m\",\n  \"stream\": true\n}\n";
  EXPECT_EQ(with_include_usage(pretty),
            "{\"stream_options\":{\"include_usage\":true},\n  \"model\": \"m\",\n  \"stream\": "
            "true\n}\n");
}

TEST(WithIncludeUsageTest, TurnsIncludeUsageFalseIntoTrue) {
  std::string body =
      R"({"model":"m","stream_options": {"include_usage" : false, "x":1},"stream":true})";
  std::string out = with_include_usage(body);
  EXPECT_EQ(out,
            R"({"model":"m","stream_options": {"include_usage" : true, "x":1},"stream":true})");
  expect_asks_usage(out);
  out = with_include_usage(R"({"model":"m","stream_options":{"include_usage":null}})");
  EXPECT_EQ(out, R"({"model":"m","stream_options":{"include_usage":true}})");
}

TEST(WithIncludeUsageTest, AddsIncludeUsageToExistingStreamOptions) {
  std::string out =
      with_include_usage(R"({"model":"m","stream_options":{"continuous_usage_stats":false}})");
  EXPECT_EQ(
      out,
      R"({"model":"m","stream_options":{"include_usage":true,"continuous_usage_stats":false}})");
  expect_asks_usage(out);
  out = with_include_usage(R"({"model":"m","stream_options":{ }})");
  EXPECT_EQ(out, R"({"model":"m","stream_options":{"include_usage":true }})");
  out = with_include_usage(R"({"model":"m","stream_options":null})");
  EXPECT_EQ(out, R"({"model":"m","stream_options":{"include_usage":true}})");
  expect_asks_usage(out);
}

TEST(WithIncludeUsageTest, LeavesABodyThatAlreadyAsksUnchanged) {
  std::string body = R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})";
  EXPECT_EQ(with_include_usage(body), body);
}

TEST(WithIncludeUsageTest, IgnoresLookalikesInsideStringsAndNestedObjects) {
  std::string body =
      R"({"model":"m","messages":[{"role":"user","content":"set \"stream_options\":{\"include_usage\":false} \\"}],)"
      R"("metadata":{"stream_options":{"include_usage":false}}})";
  std::string out = with_include_usage(body);
  EXPECT_EQ(out, R"({"stream_options":{"include_usage":true},)" + body.substr(1));
  expect_asks_usage(out);
}

TEST(WithIncludeUsageTest, RecognisesAnEscapedKey) {
  std::string body = R"({"model":"m","stream\u005foptions":{"include\u005Fusage":false}})";
  std::string out = with_include_usage(body);
  EXPECT_EQ(out, R"({"model":"m","stream\u005foptions":{"include\u005Fusage":true}})");
  expect_asks_usage(out);
}

TEST(WithIncludeUsageTest, SetsEveryCopyOfARepeatedKey) {
  std::string out = with_include_usage(
      R"({"stream_options":{"include_usage":false},"model":"m","stream_options":{"include_usage":false,"include_usage":true}})");
  EXPECT_EQ(
      out,
      R"({"stream_options":{"include_usage":true},"model":"m","stream_options":{"include_usage":true,"include_usage":true}})");
  expect_asks_usage(out);
}

TEST(WithIncludeUsageTest, LeavesWhatIsNotAnObjectUnchanged) {
  for (std::string body : {"", "[]", "{\"model\":", "{\"a\" 1}", "null", "\"{}\""}) {
    EXPECT_EQ(with_include_usage(body), body);
  }
}

}  // namespace
}  // namespace aifinops::gateway
