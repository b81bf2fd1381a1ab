// libFuzzer target for the gateway's HTTP/1.x parser (http_parse.h, under http_io.h's
// RequestParser and ResponseParser): on any bytes, fed in any pieces, it accepts and refuses
// what Beast's request_parser / response_parser do and makes the same of what it accepts
// (http_differential.h, which also lists the differences chosen on purpose), and the
// sanitizers find nothing. The first input byte chooses request or response, the body limit
// and the seed of the split points; the rest is the message.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/tests/http_differential.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool request = (control & 1) != 0;
  constexpr uint64_t kLimits[] = {1024 * 1024, 0, 4, 64};
  const uint64_t limit = kLimits[(control >> 1) & 3];
  std::mt19937 random(control >> 3);
  std::vector<size_t> cuts(random() % 4);
  for (size_t& cut : cuts) cut = random() % (text.size() + 1);
  std::sort(cuts.begin(), cuts.end());
  const std::string difference =
      aifinops::gateway::http_differential::check(text, request, cuts, limit);
  if (!difference.empty()) {
    std::fprintf(stderr, "%s\n", difference.c_str());
    __builtin_trap();
  }
  return 0;
}
