// Readers of the GPU data files: config/gpu_models.yaml (memory, TDP and throughput per GPU
// model) and config/grid_intensity.yaml (g CO2e per kWh by region), and their built-in copies.
#pragma once

#include <string_view>

#include "core/result.h"
#include "pricing/gpu_models.h"

namespace aifinops::config {

/// Parses a GPU model file; errors name the file, line and key.
Result<pricing::GpuModelTable> parse_gpu_models_yaml(std::string_view text, std::string_view file_name);
/// Parses a grid intensity file; errors name the file, line and key.
Result<pricing::GridIntensityTable> parse_grid_intensity_yaml(std::string_view text, std::string_view file_name);

/// The built-in tables (config/gpu_models.yaml, config/grid_intensity.yaml compiled in).
const pricing::GpuModelTable& default_gpu_models();
const pricing::GridIntensityTable& default_grid_intensity();

}  // namespace aifinops::config
