// GPU models as hardware (memory, board power, throughput per model, from the vendors' data
// sheets) and grid carbon intensity per region: the data behind rightsizing and carbon.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <string_view>
#include <vector>

#include "core/money.h"

namespace aifinops::pricing {

/// One GPU model. Value type.
struct GpuModelSpec {
  std::string name;                ///< canonical, e.g. "H100 SXM 80GB"
  std::vector<std::string> match;  ///< spellings found in telemetry and catalogs ("H100 80GB HBM3")
  int64_t memory_mib = 0;
  int64_t tdp_watts = 0;           ///< maximum board power
  int64_t fp16_tflops = 0;         ///< dense FP16 tensor throughput; 0 = not compared
  std::string source;
};

/// Looks a model up by any spelling. Immutable after loading; const look-ups are thread-safe.
class GpuModelTable {
 public:
  void add(GpuModelSpec spec) { specs_.push_back(std::move(spec)); }
  /// The spec whose longest `match` spelling occurs in `model` (case-insensitive, spaces,
  /// '-' and '_' alike, on word boundaries): "NVIDIA H100 80GB HBM3" finds "H100 80GB".
  /// nullptr when none occurs.
  const GpuModelSpec* find(std::string_view model) const;
  const std::vector<GpuModelSpec>& specs() const { return specs_; }

 private:
  std::vector<GpuModelSpec> specs_;
};

/// Grams of CO2e per kWh by region (location-based annual averages), with the source and
/// year of the figures. Value type.
struct GridIntensityTable {
  int64_t year = 0;
  std::string source;
  std::unordered_map<std::string, Decimal> g_per_kwh;  ///< region id (lower case) -> g/kWh
  /// The region's intensity (case-insensitive), or nullopt when the table lacks it.
  std::optional<Decimal> find(std::string_view region) const;
};

}  // namespace aifinops::pricing
