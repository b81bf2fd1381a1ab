// Rightsizing GPU hosts against the catalog.
#include "optimize/rightsize.h"

#include <algorithm>
#include <cctype>

namespace aifinops::optimize {
namespace {

/// The catalog's price in effect at the end of the window, or nullptr.
const pricing::GpuInstancePrice* current_price(const RecommendContext& context, const std::string& sku) {
  if (sku.empty()) return nullptr;
  return context.catalog->find_gpu_instance(sku, context.as_of - 1);
}

bool lower_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return true;
}

std::string gib_text(int64_t mib) { return format_decimal(mul_div_round(mib, kNanosPerUnit, 1024)) + " GiB"; }

}  // namespace

Result<std::vector<Recommendation>> recommend_rightsize(const RecommendContext& context) {
  std::vector<Recommendation> out;
  if (context.gpu_models == nullptr || context.catalog == nullptr) return out;
  auto fleet = load_gpu_fleet(context);
  if (!fleet) return Unexpected{fleet.error()};
  const __int128 threshold = context.idle_gpu_threshold.nanos;
  const __int128 window_hours = (__int128)context.gpu_window_days * 24 * kNanosPerUnit;
  for (const GpuHost& host : *fleet) {
    if (host.gpus.empty()) continue;
    const pricing::GpuModelSpec* current_spec = context.gpu_models->find(host.gpus.front().model);
    if (current_spec == nullptr || current_spec->fp16_tflops <= 0) continue;
    // The GPUs that work; idle ones are idle-gpu's.
    int64_t working = 0, peak_memory = 0;
    __int128 compute_need = 0, peak_util = 0, host_hours = 0;
    for (const ObservedGpu& g : host.gpus) {
      host_hours = std::max(host_hours, g.observed_hours);
      if (g.utilization < threshold && g.peak_daily_utilization < threshold) continue;
      ++working;
      peak_memory = std::max(peak_memory, g.peak_memory_mib);
      peak_util = std::max(peak_util, g.peak_daily_utilization);
      compute_need += g.peak_daily_utilization * current_spec->fp16_tflops;  // nano-TFLOPS
    }
    if (working == 0) continue;
    const int64_t gpus = (int64_t)host.gpus.size();
    // What the host costs per hour: the catalog's price of its SKU, else its bill.
    __int128 current_hourly = 0;
    std::string current_source;
    if (const pricing::GpuInstancePrice* p = current_price(context, host.sku); p != nullptr && p->on_demand) {
      current_hourly = p->on_demand->nanos;
      current_source = "catalog on-demand price of " + p->sku;
    } else {
      std::string source;
      __int128 per_gpu = gpu_hour_price(context, host, source);
      current_hourly = per_gpu * gpus;
      current_source = source;
    }
    if (current_hourly <= 0) continue;
    const std::string provider = provider_key(host.provider);
    const pricing::GpuInstancePrice* best = nullptr;
    const pricing::GpuModelSpec* best_spec = nullptr;
    const bool cpu_fits = peak_memory < 1024 && peak_util < 2 * threshold;
    for (const pricing::GpuInstancePrice* p : context.catalog->gpu_instance_prices()) {
      if (current_price(context, p->sku) != p || !p->on_demand || p->on_demand->nanos >= current_hourly) continue;
      if (!provider.empty() && provider_key(p->provider) != provider) continue;
      if (lower_equal(p->sku, host.sku)) continue;
      const pricing::GpuModelSpec* spec = nullptr;
      if (p->gpus <= 0) {
        if (!cpu_fits) continue;  // no GPU: only for light work with almost no GPU memory
      } else {
        spec = context.gpu_models->find(p->gpu_type);
        if (spec == nullptr || spec->fp16_tflops <= 0 || p->gpus < working) continue;
        if ((__int128)peak_memory * kMemoryHeadroomPercent > (__int128)spec->memory_mib * 100) continue;
        const __int128 capacity = (__int128)p->gpus * spec->fp16_tflops * kNanosPerUnit * kComputeCeilingPercent / 100;
        if (compute_need > capacity) continue;
      }
      if (best == nullptr || p->on_demand->nanos < best->on_demand->nanos) {
        best = p;
        best_spec = spec;
      }
    }
    if (best == nullptr) continue;
    const __int128 hourly_saving = current_hourly - best->on_demand->nanos;
    // Per 30-day month at the share of the window the host ran.
    const __int128 running = std::min(host_hours, window_hours);
    const __int128 monthly = mul_div_round(hourly_saving * 720, running, window_hours);
    Recommendation r;
    r.kind = "rightsize";
    r.id = "rightsize:" + host.resource;
    r.subject = host.resource;
    const std::string from = (host.sku.empty() ? std::to_string(gpus) + " x " + host.gpus.front().model : host.sku);
    const std::string to = best->gpus > 0 ? best->sku + " (" + std::to_string(best->gpus) + " x " + best->gpu_type + ")"
                                          : best->sku + " (no GPU)";
    r.title = "Move " + host.resource + " from " + from + " to " + to;
    r.action = best->gpus > 0 ? "Redeploy the workload on " + best->sku + ": its peak GPU memory and busiest-day compute fit"
                              : "Run the workload on CPU (" + best->sku + "): it uses almost no GPU memory or compute";
    r.monthly_saving = Money{(int64_t)monthly};
    r.confidence = Confidence::kMedium;
    r.assumptions.push_back("catalog on-demand prices; peak memory x 1.2 fits the new GPU and the busiest day's compute stays under 80% of its FP16 throughput");
    if (best->gpus == 0) r.assumptions.push_back("the workload can run on CPU (under 1 GiB of GPU memory, light compute)");
    r.evidence.push_back({"current", from + ", " + money_text(current_hourly) + "/h (" + current_source + ")"});
    r.evidence.push_back({"candidate", to + ", " + money_text(best->on_demand->nanos) + "/h on-demand"});
    r.evidence.push_back({"peak GPU memory", gib_text(peak_memory) + (best_spec ? " of " + gib_text(best_spec->memory_mib) + " on the candidate" : "")});
    r.evidence.push_back({"busiest day's utilisation", percent_text((double)peak_util / 1e9) + " of " + current_spec->name});
    r.evidence.push_back({"compute at peak", std::to_string((int64_t)(compute_need / kNanosPerUnit)) + " TFLOPS FP16" +
                                                 (best_spec ? " of " + std::to_string(best->gpus * best_spec->fp16_tflops) + " on the candidate" : "")});
    r.evidence.push_back({"hours observed", format_decimal(running) + " of " + format_decimal(window_hours)});
    if (!host.team.empty()) r.dimensions.push_back({"team", host.team});
    if (!host.project.empty()) r.dimensions.push_back({"project", host.project});
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace aifinops::optimize
