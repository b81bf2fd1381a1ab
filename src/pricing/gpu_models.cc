// GPU model look-up by spelling.
#include "pricing/gpu_models.h"

namespace aifinops::pricing {
namespace {

/// Lower case, with '-', '_' and runs of spaces as one space: "A100-SXM4-40GB" and
/// "a100 sxm4 40gb" compare equal.
std::string fold(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back(' ');
  for (char c : s) {
    if (c == '-' || c == '_' || c == ' ' || c == '\t') {
      if (out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
    }
  }
  if (out.back() != ' ') out.push_back(' ');
  return out;
}

}  // namespace

const GpuModelSpec* GpuModelTable::find(std::string_view model) const {
  if (model.empty()) return nullptr;
  const std::string folded = fold(model);
  const GpuModelSpec* best = nullptr;
  size_t best_length = 0;
  for (const GpuModelSpec& spec : specs_) {
    for (const std::string& m : spec.match) {
      // Surrounding spaces make the match whole words: "L4" does not match "L40S".
      std::string needle = fold(m);
      if (needle.size() > best_length && folded.find(needle) != std::string::npos) {
        best = &spec;
        best_length = needle.size();
      }
    }
  }
  return best;
}

std::optional<Decimal> GridIntensityTable::find(std::string_view region) const {
  std::string key(region);
  for (char& c : key) c = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  auto it = g_per_kwh.find(key);
  if (it == g_per_kwh.end()) return std::nullopt;
  return it->second;
}

}  // namespace aifinops::pricing
