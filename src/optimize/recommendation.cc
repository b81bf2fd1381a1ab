#include "optimize/recommendation.h"

namespace aifinops::optimize {

std::string_view confidence_name(Confidence c) {
  switch (c) {
    case Confidence::kLow: return "low";
    case Confidence::kMedium: return "medium";
    case Confidence::kHigh: return "high";
  }
  return "unknown";
}

}  // namespace aifinops::optimize
