// config/gpu_models.yaml and config/grid_intensity.yaml.
#include "config/gpu_data_yaml.h"

#include <cstdio>
#include <cstdlib>

#include "config/embedded_gpu_data.h"
#include "config/yaml_reader.h"

namespace aifinops::config {
namespace {

class GpuModelsReader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Result<pricing::GpuModelTable> read(const YAML::Node& root) {
    pricing::GpuModelTable table;
    if (!root || !root.IsMap()) return fail_result(root, "(top level)", "expected a mapping with gpu_models:");
    if (!check_keys(root, "", {"source", "gpu_models"})) return *error_;
    bool ok = read_list(root, "gpu_models", [&](const YAML::Node& n, const std::string& path) {
      if (!check_keys(n, path, {"name", "match", "memory_gib", "tdp_watts", "fp16_tflops", "source"})) return false;
      pricing::GpuModelSpec spec;
      int64_t memory_gib = 0;
      if (!n["name"] || !n["memory_gib"] || !n["tdp_watts"])
        return fail(n, path, "a GPU model needs name, memory_gib and tdp_watts");
      if (!read_string(n["name"], path + ".name", spec.name) ||
          (n["match"] && !read_string_list(n["match"], path + ".match", spec.match)) ||
          !read_count(n["memory_gib"], path + ".memory_gib", memory_gib) ||
          !read_count(n["tdp_watts"], path + ".tdp_watts", spec.tdp_watts) ||
          (n["fp16_tflops"] && !read_count(n["fp16_tflops"], path + ".fp16_tflops", spec.fp16_tflops)) ||
          (n["source"] && !read_string(n["source"], path + ".source", spec.source)))
        return false;
      if (spec.name.empty()) return fail(n, path + ".name", "a GPU model needs a name");
      if (memory_gib <= 0) return fail(n, path + ".memory_gib", "must be more than 0");
      spec.memory_mib = memory_gib * 1024;
      if (spec.match.empty()) spec.match.push_back(spec.name);
      table.add(std::move(spec));
      return true;
    });
    if (!ok) return *error_;
    return table;
  }
};

class GridIntensityReader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Result<pricing::GridIntensityTable> read(const YAML::Node& root) {
    pricing::GridIntensityTable table;
    if (!root || !root.IsMap()) return fail_result(root, "(top level)", "expected a mapping with regions:");
    if (!check_keys(root, "", {"year", "source", "unit", "regions"})) return *error_;
    std::string unit;
    if ((root["year"] && !read_count(root["year"], "year", table.year)) ||
        (root["source"] && !read_string(root["source"], "source", table.source)) ||
        (root["unit"] && !read_string(root["unit"], "unit", unit)))
      return *error_;
    if (!unit.empty() && unit != "gCO2e/kWh") return fail_result(root["unit"], "unit", "must be gCO2e/kWh");
    const YAML::Node regions = root["regions"];
    if (!regions || !regions.IsMap()) return fail_result(root, "regions", "expected a mapping of region: gCO2e/kWh");
    for (const auto& item : regions) {
      std::string region = item.first.Scalar();
      std::optional<Decimal> value;
      if (!read_decimal(item.second, "regions." + region, value)) return *error_;
      if (!value) return fail_result(item.second, "regions." + region, "needs a number of g CO2e per kWh");
      for (char& c : region) c = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
      table.g_per_kwh[region] = *value;
    }
    return table;
  }
};

/// An embedded file by name; a build without it is broken, not bad input.
std::string embedded(std::string_view name) {
  for (size_t i = 0; i < kEmbeddedGpuDataFileCount; ++i)
    if (std::string_view(kEmbeddedGpuDataFiles[i].name) == name) return embedded_text(kEmbeddedGpuDataFiles[i]);
  std::fprintf(stderr, "aifinops: %.*s is not built in\n", (int)name.size(), name.data());
  std::abort();
}

template <typename T>
T or_abort(Result<T> r) {
  if (!r) {
    // The same files are parsed by config_test, so this is a broken build.
    std::fprintf(stderr, "aifinops: a built-in GPU data file does not parse: %s\n", r.error().message.c_str());
    std::abort();
  }
  return std::move(*r);
}

}  // namespace

Result<pricing::GpuModelTable> parse_gpu_models_yaml(std::string_view text, std::string_view file_name) {
  auto root = load_yaml(text, file_name);
  if (!root) return Unexpected{root.error()};
  return GpuModelsReader(file_name).read(*root);
}

Result<pricing::GridIntensityTable> parse_grid_intensity_yaml(std::string_view text, std::string_view file_name) {
  auto root = load_yaml(text, file_name);
  if (!root) return Unexpected{root.error()};
  return GridIntensityReader(file_name).read(*root);
}

const pricing::GpuModelTable& default_gpu_models() {
  static const pricing::GpuModelTable table =
      or_abort(parse_gpu_models_yaml(embedded("config/gpu_models.yaml"), "config/gpu_models.yaml"));
  return table;
}

const pricing::GridIntensityTable& default_grid_intensity() {
  static const pricing::GridIntensityTable table =
      or_abort(parse_grid_intensity_yaml(embedded("config/grid_intensity.yaml"), "config/grid_intensity.yaml"));
  return table;
}

}  // namespace aifinops::config
