// Micro-benchmarks of the gateway's JSON work per request (gateway/wire.h): reading the usage
// from a non-streaming response body, and reading a request body, alone and with the canonical
// form and digest that the response cache and the repeat count take from the same parse.
//
// Inputs: the gateway benchmark's mock upstream response (tests/fixtures/formats/gateway-mock/
// completion.json), recorded OpenAI and Anthropic responses from tests/fixtures/formats/, and
// the request bodies the end-to-end gateway benchmark sends (bench/gateway_bench.sh's chat.lua),
// in OpenAI and Anthropic shape, and a streamed chat response of the same shape as the mock
// upstream's (written here: OpenAI chunks of one word each, the finish chunk, the usage-only
// chunk and [DONE]). Compare runs by CPU time: `wire_bench --benchmark_repetitions=5
// --benchmark_report_aggregates_only=true`.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "gateway/response_cache.h"
#include "gateway/wire.h"

namespace aifinops::gateway {
namespace {

std::string fixture(const std::string& relative) {
  const std::string path = std::string(AIFINOPS_SOURCE_DIR) + "/tests/fixtures/formats/" + relative;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "wire_bench: cannot read %s\n", path.c_str());
    std::exit(1);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The prompts of the end-to-end benchmark's request (chat.lua).
constexpr std::string_view kSystemPrompt =
    "You are FinBot, an assistant for a FinOps team. You analyse cloud and AI spend, explain "
    "cost drivers, and recommend concrete savings actions. Always cite the billing period, the "
    "service, and the team that owns the cost. Be concise; use bullet points; never invent "
    "numbers that are not in the data.";
constexpr std::string_view kUserMessage =
    "Summarise the attached quarterly GPU spend report for the leadership sync. Data: Q3 total "
    "cloud spend 4.21M USD (+18% QoQ). Compute 2.61M, of which H100 training clusters in "
    "us-east-1 1.62M, A10G inference fleet 0.41M, CPU services 0.58M. LLM API spend 0.73M: "
    "gpt-4o 0.39M (1.9B input tokens, 0.21B output tokens), gpt-4o-mini 0.11M (7.4B input "
    "tokens), text-embedding-3-large 0.08M, claude-3.5-sonnet 0.15M. Storage 0.52M (S3 training "
    "checkpoints 0.31M). Committed-use discounts covered 41% of eligible usage. Teams: research "
    "2.1M, support-bot 0.62M, search 0.47M, platform 1.02M. Give the top three cost drivers and "
    "three recommended actions.";

/// chat.lua's non-streaming body, byte for byte.
std::string openai_chat_request() {
  return std::string(R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":")") +
         std::string(kSystemPrompt) + R"("},{"role":"user","content":")" +
         std::string(kUserMessage) +
         R"("}],"temperature":0.2,"max_tokens":512,"top_p":1,"user":"team-support-bot",)"
         R"("metadata":{"team":"support-bot","project":"finops-assistant","env":"prod"}})";
}

/// The same request as Anthropic's Messages API takes it (system apart, content blocks).
std::string anthropic_messages_request() {
  return std::string(R"({"model":"claude-sonnet-4-5","max_tokens":512,"system":")") +
         std::string(kSystemPrompt) +
         R"(","messages":[{"role":"user","content":[{"type":"text","text":")" +
         std::string(kUserMessage) +
         R"("}]}],"temperature":0.2,"metadata":{"user_id":"team-support-bot"}})";
}

void BM_Wire_UsageFromBody(benchmark::State& state, WireFormat format, std::string file) {
  const std::string body = fixture(file);
  bool found = false;
  for (auto _ : state) {
    TokenCounts t = usage_from_body(format, body, found);
    benchmark::DoNotOptimize(t);
    benchmark::DoNotOptimize(found);
  }
  if (!found) state.SkipWithError("no usage found");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK_CAPTURE(BM_Wire_UsageFromBody, mock_completion, WireFormat::kOpenAiChat,
                  "gateway-mock/completion.json");
BENCHMARK_CAPTURE(BM_Wire_UsageFromBody, openai_chat_gpt4o_mini, WireFormat::kOpenAiChat,
                  "openai-api/chat_completions_nonstream_gpt-4o-mini.json");
BENCHMARK_CAPTURE(BM_Wire_UsageFromBody, openai_responses_reasoning, WireFormat::kOpenAiResponses,
                  "openai-api/responses_reasoning_tokens.json");
BENCHMARK_CAPTURE(BM_Wire_UsageFromBody, anthropic_tool_use, WireFormat::kAnthropicMessages,
                  "anthropic/messages_nonstream_tool_use_claude-opus-4-5.json");

/// `with_digest`: also the canonical form and its digest, as the gateway does when the
/// response cache or the repeat count is on.
void BM_Wire_ParseRequest(benchmark::State& state, WireFormat format, bool with_digest) {
  const std::string body = format == WireFormat::kAnthropicMessages
                               ? anthropic_messages_request()
                               : openai_chat_request();
  std::string canonical;
  for (auto _ : state) {
    auto info = parse_request(format, body, true, with_digest ? &canonical : nullptr);
    if (!info) {
      state.SkipWithError(info.error().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(info);
    if (with_digest) {
      RequestDigest digest = digest_of_canonical(canonical);
      benchmark::DoNotOptimize(digest);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK_CAPTURE(BM_Wire_ParseRequest, openai_chat, WireFormat::kOpenAiChat, false);
BENCHMARK_CAPTURE(BM_Wire_ParseRequest, openai_chat_with_digest, WireFormat::kOpenAiChat, true);
BENCHMARK_CAPTURE(BM_Wire_ParseRequest, anthropic_messages, WireFormat::kAnthropicMessages,
                  false);
BENCHMARK_CAPTURE(BM_Wire_ParseRequest, anthropic_messages_with_digest,
                  WireFormat::kAnthropicMessages, true);

/// A streamed chat completion as OpenAI sends it with include_usage: a role chunk, one chunk
/// per word of `kUserMessage`'s first `words` words, the finish chunk, the usage-only chunk and
/// [DONE]. With 20 words it has the size and shape of the mock upstream's stream (6.6 KB).
std::string openai_chat_stream(int words) {
  const std::string head =
      R"(data: {"id":"chatcmpl-BmockS7tR2vXq9LpA4mN6bZc0kHj","object":"chat.completion.chunk",)"
      R"("created":1748000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default",)"
      R"("system_fingerprint":"fp_7fcd609668","choices":)";
  auto chunk = [&](std::string_view delta, std::string_view finish) {
    return head + R"([{"index":0,"delta":)" + std::string(delta) +
           R"(,"logprobs":null,"finish_reason":)" + std::string(finish) + R"(}],"usage":null})" +
           "\n\n";
  };
  std::string stream = chunk(R"({"role":"assistant","content":"","refusal":null})", "null");
  std::string_view text = kUserMessage;
  for (int i = 0; i < words && !text.empty(); ++i) {
    size_t end = text.find(' ', 1);
    if (end == std::string_view::npos) end = text.size();
    stream += chunk(R"({"content":")" + std::string(text.substr(0, end)) + R"("})", "null");
    text.remove_prefix(end);
  }
  stream += chunk("{}", R"("stop")");
  stream += head +
            R"([],"usage":{"prompt_tokens":412,"completion_tokens":19,"total_tokens":431,)"
            R"("prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},)"
            R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
            R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})"
            "\n\ndata: [DONE]\n\n";
  return stream;
}

/// One streamed response through SseUsageReader as the gateway meters it (the usage-only
/// chunk stripped), fed in one read. Argument 1: events of a known shape are read without a
/// parse (the gateway's way); 0: every event is parsed.
void BM_Wire_SseStream(benchmark::State& state) {
  const std::string stream = openai_chat_stream(20);
  const bool reuse_event_shapes = state.range(0) != 0;
  std::string out;
  for (auto _ : state) {
    SseUsageReader reader(WireFormat::kOpenAiChat, /*strip_usage_chunk=*/true, reuse_event_shapes);
    out.clear();
    reader.feed(stream, out);
    reader.finish(out);
    if (!reader.found_usage() || !reader.complete() || reader.output_text_bytes() == 0) {
      state.SkipWithError("the stream was not read");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_Wire_SseStream)->Arg(1)->Arg(0);

}  // namespace
}  // namespace aifinops::gateway

BENCHMARK_MAIN();
