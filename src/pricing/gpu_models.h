// GPU models as hardware: memory size and board power (TDP) per model, from the vendors'
// data sheets. Rightsizing compares memory; energy falls back to TDP × utilisation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aifinops::pricing {

/// One GPU model. Value type.
struct GpuModelSpec {
  std::string name;                ///< canonical, e.g. "H100 SXM 80GB"
  std::vector<std::string> match;  ///< spellings found in telemetry and catalogs ("H100 80GB HBM3")
  int64_t memory_mib = 0;
  int64_t tdp_watts = 0;           ///< maximum board power
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

}  // namespace aifinops::pricing
