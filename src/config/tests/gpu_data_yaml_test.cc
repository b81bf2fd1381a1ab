#include <gtest/gtest.h>

#include "config/gpu_data_yaml.h"

namespace aifinops::config {
namespace {

TEST(GpuDataYamlTest, TheBuiltInTablesParseAndAnswer) {
  const pricing::GpuModelTable& models = default_gpu_models();
  const pricing::GpuModelSpec* h100 = models.find("NVIDIA H100 80GB HBM3");
  ASSERT_NE(h100, nullptr);
  EXPECT_EQ(h100->tdp_watts, 700);
  EXPECT_EQ(h100->memory_mib, 80 * 1024);
  EXPECT_EQ(models.find("NVIDIA L4")->name, "L4 24GB");
  EXPECT_EQ(models.find("NVIDIA L40S")->name, "L40S 48GB");
  EXPECT_EQ(models.find("A10G 24GB")->name, "A10G 24GB");
  EXPECT_EQ(models.find("Tesla T4")->tdp_watts, 70);
  EXPECT_EQ(models.find("NVIDIA A100-SXM4-80GB")->name, "A100 80GB");
  const pricing::GridIntensityTable& grid = default_grid_intensity();
  EXPECT_EQ(grid.year, 2020);
  EXPECT_EQ(format_decimal(grid.find("EU-WEST-1")->nanos), "316");
  EXPECT_EQ(format_decimal(grid.find("us-east-1")->nanos), "415.755");
  EXPECT_FALSE(grid.find("mars-north-1").has_value());
}

TEST(GpuDataYamlTest, ErrorsNameTheFileLineAndKey) {
  auto bad = parse_grid_intensity_yaml("year: 2024\nregions:\n  eu-west-1: lots\n", "g.yaml");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("g.yaml:3"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("regions.eu-west-1"), std::string::npos);
  auto no_memory = parse_gpu_models_yaml("gpu_models:\n  - name: X\n    memory_gib: 0\n    tdp_watts: 1\n    source: s\n", "m.yaml");
  ASSERT_FALSE(no_memory.has_value());
  EXPECT_NE(no_memory.error().message.find("memory_gib"), std::string::npos);
}

}  // namespace
}  // namespace aifinops::config
