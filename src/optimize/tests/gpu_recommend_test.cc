#include <gtest/gtest.h>

#include "config/gpu_data_yaml.h"
#include "optimize/idle_gpu.h"
#include "optimize/rightsize.h"
#include "tests/testing/ledger_builder.h"

namespace aifinops::optimize {
namespace {

// A week of hourly GPU instance bills and telemetry, built so the answers are known:
//   host-a  8 x A100 on p4d.24xlarge, billed $32/h, every GPU 2% busy, shutdown_eligible=true
//   host-b  1 x A100 (Azure), billed $3.50/h, 5% busy, shutdown_eligible=no
//   host-c  1 x L4 with no bill, 1% busy: priced from the catalog (g6.xlarge, $0.8048/h)
//   host-d  4 x A10G on g5.12xlarge, billed $5.672/h, 30% busy (35% on the busiest day),
//           10 GiB peak memory: fits g6.12xlarge (4 x L4, $4.6016/h)
//   host-e  1 x T4 on g4dn.xlarge, billed $0.526/h, 12% busy (15% busiest), 500 MiB: fits CPU
//   host-f  2 x A100, one 50% busy and one idle (3%): half the host is wasted
class GpuRecommendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto price = [&](const char* sku, const char* provider, const char* gpu, int gpus, const char* on_demand) {
      pricing::GpuInstancePrice p;
      p.sku = sku;
      p.provider = provider;
      p.gpu_type = gpu;
      p.gpus = gpus;
      p.on_demand = parse_decimal(on_demand);
      catalog_.add(p);
    };
    price("p4d.24xlarge", "aws", "A100 40GB", 8, "32.7726");
    price("g5.12xlarge", "aws", "A10G 24GB", 4, "5.672");
    price("g6.12xlarge", "aws", "L4 24GB", 4, "4.6016");
    price("g6.xlarge", "aws", "L4 24GB", 1, "0.8048");
    price("g4dn.xlarge", "aws", "T4 16GB", 1, "0.526");
    price("m7i.2xlarge", "aws", "", 0, "0.4032");
    for (int hour = 0; hour < 7 * 24; ++hour) {
      const std::string when = format_timestamp(start_ + hour * 3600);
      bill("host-a", "p4d.24xlarge", "AWS", "true", "research", 8, "32", when);
      bill("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/host-b",
           "Standard_NC24ads_A100_v4", "Microsoft", "no", "search", 1, "3.5", when);
      bill("host-d", "g5.12xlarge", "AWS", "", "chat", 4, "5.672", when);
      bill("host-e", "g4dn.xlarge", "AWS", "", "ocr", 1, "0.526", when);
      bill("host-f", "p4d.24xlarge", "AWS", "true", "vision", 2, "8", when);
      const int day = hour / 24;
      for (int g = 0; g < 8; ++g) gpu("host-a", "GPU-a" + std::to_string(g), "NVIDIA A100-SXM4-40GB", 20, 2000, when);
      gpu("host-b", "GPU-b", "NVIDIA A100 80GB PCIe", 50, 1000, when);
      gpu("host-c", "GPU-c", "NVIDIA L4", 10, 300, when);
      for (int g = 0; g < 4; ++g)
        gpu("host-d", "GPU-d" + std::to_string(g), "NVIDIA A10G", day == 3 ? 350 : 283, g == 0 ? 10240 : 8000, when);
      gpu("host-e", "GPU-e", "Tesla T4", day == 5 ? 150 : 115, 500, when);
      gpu("host-f", "GPU-f0", "NVIDIA A100-SXM4-40GB", 500, 30000, when);
      gpu("host-f", "GPU-f1", "NVIDIA A100-SXM4-40GB", 30, 100, when);
    }
    builder_.commit();
    context_.ledger = &builder_.ledger();
    context_.catalog = &catalog_;
    context_.gpu_models = &config::default_gpu_models();
    context_.as_of = start_ + 7 * 86400;
    context_.gpu_window_days = 7;
  }

  void bill(const std::string& resource, const std::string& sku, const std::string& provider,
            const std::string& shutdown, const std::string& team, int gpus, const std::string& cost,
            const std::string& when) {
    builder_.add({{Attr::kResourceId, resource}, {Attr::kSkuId, sku}, {Attr::kProviderName, provider},
                  {Attr::kShutdownEligible, shutdown}, {Attr::kTeam, team}},
                 when, cost, [&](UsageFacts& f) { f.gpu_milliseconds = gpus * 3'600'000LL; });
  }
  /// One GPU-hour of telemetry at `permille` utilisation with `memory_mib` used.
  void gpu(const std::string& host, const std::string& uuid, const std::string& model, int permille,
           int64_t memory_mib, const std::string& when) {
    builder_.add({{Attr::kResourceId, host}, {Attr::kGpuType, model}, {Attr::kServiceName, "GPU telemetry"},
                  {Attr::kExtra, "{\"gpu_uuid\":\"" + uuid + "\"}"}},
                 when, "0", [&](UsageFacts& f) {
                   f.gpu_observed_milliseconds = 3'600'000;
                   f.gpu_busy_milliseconds = 3'600 * (int64_t)permille;
                   f.gpu_memory_mib_milliseconds = memory_mib * 3'600'000;
                   f.gpu_memory_peak_mib = memory_mib;
                 });
  }

  const Recommendation* find(const std::vector<Recommendation>& rs, const std::string& id) {
    for (const auto& r : rs)
      if (r.id == id) return &r;
    return nullptr;
  }
  std::string evidence(const Recommendation& r, const std::string& label) {
    for (const auto& e : r.evidence)
      if (e.label == label) return e.value;
    return "(missing)";
  }

  EpochSeconds start_ = *parse_timestamp("2025-03-01T00:00:00Z");
  testing::LedgerBuilder builder_;
  pricing::Catalog catalog_;
  RecommendContext context_;
};

TEST_F(GpuRecommendTest, IdleGpusAreFoundPricedFromTheBillAndListedForShutdownOnlyWhenEligible) {
  auto recs = recommend_idle_gpu(context_);
  ASSERT_TRUE(recs.has_value()) << recs.error().message;
  ASSERT_EQ(recs->size(), 4u);  // a, b, c and half of f; d and e are busy enough
  const Recommendation* a = find(*recs, "idle-gpu:host-a");
  ASSERT_NE(a, nullptr);
  // $32/h over 8 GPUs = $4 per GPU-hour; 8 x 168 idle GPU-hours = $5,376 a week.
  EXPECT_EQ(format_decimal(a->monthly_saving.nanos), "23040");  // 5376 x 30 / 7
  EXPECT_EQ(a->confidence, Confidence::kHigh);
  EXPECT_EQ(evidence(*a, "shutdown list"), "yes");
  EXPECT_EQ(a->title.rfind("Shut down host-a", 0), 0u) << a->title;
  EXPECT_EQ(evidence(*a, "mean GPU utilisation").substr(0, 4), "2.0%");

  const Recommendation* b = find(*recs, "idle-gpu:host-b");  // joined through its Azure resource path
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(format_decimal(b->monthly_saving.nanos), "2520");  // 3.5 x 168 x 30 / 7
  EXPECT_EQ(evidence(*b, "shutdown list"), "needs owner review");
  EXPECT_NE(b->action.find("Needs owner review"), std::string::npos);
  EXPECT_NE(b->action.find("team search"), std::string::npos);

  const Recommendation* c = find(*recs, "idle-gpu:host-c");  // no bill: the catalog's L4 price
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(format_decimal(c->monthly_saving.nanos), "579.456");  // 0.8048 x 168 x 30 / 7
  EXPECT_EQ(c->confidence, Confidence::kLow);
  EXPECT_NE(evidence(*c, "cost per GPU-hour").find("g6.xlarge"), std::string::npos);
  EXPECT_EQ(evidence(*c, "shutdown list"), "needs owner review");  // unset is not consent

  const Recommendation* f = find(*recs, "idle-gpu:host-f");  // one of two GPUs idle: $4/GPU-hour
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(format_decimal(f->monthly_saving.nanos), "2880");
  EXPECT_EQ(evidence(*f, "shutdown list"), "no (GPUs in use on the host)");
}

TEST_F(GpuRecommendTest, TheThresholdDecidesWhatIsIdle) {
  context_.idle_gpu_threshold = *parse_decimal("0.013");  // 1.3%: only host-c (1%)
  auto recs = recommend_idle_gpu(context_);
  ASSERT_TRUE(recs.has_value());
  ASSERT_EQ(recs->size(), 1u);
  EXPECT_EQ((*recs)[0].id, "idle-gpu:host-c");
}

TEST_F(GpuRecommendTest, RightsizesToACheaperGpuInstanceOrToCpu) {
  auto recs = recommend_rightsize(context_);
  ASSERT_TRUE(recs.has_value()) << recs.error().message;
  const Recommendation* d = find(*recs, "rightsize:host-d");
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->title.find("g6.12xlarge"), std::string::npos) << d->title;
  EXPECT_EQ(format_decimal(d->monthly_saving.nanos), "770.688");  // (5.672 - 4.6016) x 720
  const Recommendation* e = find(*recs, "rightsize:host-e");
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->title.find("m7i.2xlarge (no GPU)"), std::string::npos) << e->title;
  EXPECT_EQ(format_decimal(e->monthly_saving.nanos), "88.416");  // (0.526 - 0.4032) x 720
  // host-f's busy A100 needs 30000 MiB x 1.2 and 156 TFLOPS: nothing cheaper fits.
  EXPECT_EQ(find(*recs, "rightsize:host-f"), nullptr);
  EXPECT_EQ(find(*recs, "rightsize:host-a"), nullptr);  // all idle: idle-gpu's
  EXPECT_EQ(recs->size(), 2u);
}

TEST_F(GpuRecommendTest, NoTelemetryNoRecommendations) {
  testing::LedgerBuilder empty;
  empty.add({{Attr::kResourceId, "host-x"}}, "2025-03-02T00:00:00Z", "10",
            [](UsageFacts& f) { f.gpu_milliseconds = 3'600'000; });
  context_.ledger = &empty.commit();
  EXPECT_TRUE(recommend_idle_gpu(context_)->empty());
  EXPECT_TRUE(recommend_rightsize(context_)->empty());
}

TEST(ShutdownEligibleTest, OnlyTrueOrYesAllowsAShutdown) {
  EXPECT_TRUE(shutdown_allowed("true"));
  EXPECT_TRUE(shutdown_allowed("YES"));
  EXPECT_FALSE(shutdown_allowed("no"));
  EXPECT_FALSE(shutdown_allowed(""));
  EXPECT_FALSE(shutdown_allowed("1"));
}

}  // namespace
}  // namespace aifinops::optimize
