// Idle GPUs (R16): GPUs whose utilisation stays under a threshold over the GPU window, their
// wasted cost from the joined GPU instance bill (or the catalog), and a shutdown list that
// honours shutdown_eligible. Also the per-host GPU fleet view that rightsize reads too.
#pragma once

#include <string>
#include <vector>

#include "optimize/recommend.h"

namespace aifinops::optimize {

/// One GPU seen by telemetry over the window.
struct ObservedGpu {
  std::string uuid;            ///< or "index N" when the exporter gave no UUID
  std::string model;           ///< as reported ("NVIDIA H100 80GB HBM3")
  __int128 observed_hours = 0; ///< nanos of an hour
  __int128 utilization = 0;    ///< mean over the window, nanos (1e9 = 100%)
  __int128 peak_daily_utilization = 0;  ///< the busiest day's mean, nanos
  int64_t days = 0;            ///< days with readings
  int64_t peak_memory_mib = 0;
  int64_t memory_total_mib = 0;
};

/// One host (resource) with its GPUs and what its GPU instance cost over the window.
struct GpuHost {
  std::string resource;        ///< the telemetry's resource id (host)
  std::vector<ObservedGpu> gpus;
  // From the joined cost records (empty / zero when the bill does not have the host).
  bool billed = false;
  std::string billed_resource_id, sku, provider, region;
  __int128 cost = 0;           ///< effective cost over the window, nanos
  __int128 billed_gpu_hours = 0;
  // Allocation, from the bill first, else from the telemetry's own dimensions.
  std::string shutdown_eligible, team, project;
};

/// The GPU fleet over the context's GPU window: telemetry per GPU joined to the cost records
/// by host. Join rule: a cost record with GPU-hours whose resource id or name equals the
/// host, or whose resource id ends with "/host" (an ARN or an Azure resource path),
/// case-insensitively.
Result<std::vector<GpuHost>> load_gpu_fleet(const RecommendContext& context);

/// What one GPU-hour of a host costs: from its bill (cost / billed GPU-hours), else the
/// cheapest catalog on-demand price per GPU of an instance with that GPU model. `source`
/// says which; 0 when neither is known.
__int128 gpu_hour_price(const RecommendContext& context, const GpuHost& host, std::string& source);

/// "true"/"yes" (any case) only: anything else needs its owner's review before a shutdown.
bool shutdown_allowed(std::string_view value);

/// The `idle-gpu` recommendation kind.
Result<std::vector<Recommendation>> recommend_idle_gpu(const RecommendContext& context);

}  // namespace aifinops::optimize
