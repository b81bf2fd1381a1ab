// A synthetic AI organisation ("Northwind Labs") written as a FOCUS 1.2 CSV: six months of
// LLM tokens, GPU and CPU instances, storage and egress, with growth, weekly seasonality,
// commitments, untagged spend and two injected anomalies, for `aifinops demo` and tests.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "pricing/catalog.h"

namespace aifinops::demo {

/// The organisation's name, for headers and docs.
inline constexpr const char* kOrganisationName = "Northwind Labs";

/// What to generate. Plain value type.
struct DemoOptions {
  uint64_t seed = 42;
  /// First second of a UTC month: the period starts here. Passed in (not read from a clock)
  /// so that output is reproducible; demo_start_before() gives the usual value.
  EpochSeconds start = 0;
  int months = 6;  ///< 1..12 whole months
};

/// The first day of the month `months` months before the month containing `now`, so that
/// the demo covers the last `months` complete months.
EpochSeconds demo_start_before(EpochSeconds now, int months = 6);

/// One spend anomaly written into the data on purpose, so that detectors can be checked.
struct DemoAnomaly {
  std::string kind;  ///< "llm_runaway" or "gpu_left_running"
  std::string team;  ///< the team tag of the affected resources
  std::string project;
  std::string environment;
  std::string service;      ///< FOCUS ServiceName of the affected rows
  std::string resource;     ///< ResourceName (or model for LLM rows)
  EpochSeconds start = 0;   ///< first affected UTC day
  int days = 0;             ///< affected days
  __int128 extra_cost = 0;  ///< effective cost above the usual for those days, in nanos
  std::string description;  ///< one human line
};

/// The GPU telemetry written beside the bill (write_demo_focus_csv's `gpu_telemetry`).
struct DemoTelemetryStats {
  int64_t bytes = 0;
  int64_t scrapes = 0;   ///< "# scrape at" markers (one an hour)
  int64_t samples = 0;   ///< metric lines
  EpochSeconds start = 0, end = 0;  ///< first scrape, and the hour after the last
  /// Hosts with readings: each is the ResourceName of a GPU instance row of the bill.
  std::vector<std::string> hosts;
  std::vector<std::string> host_regions;  ///< region id of each host (its bill's RegionId)
  std::vector<std::string> regions;       ///< the distinct region ids, first seen first
  int64_t gpus = 0;
  std::string idle_pool;        ///< ResourceName prefix of the idle inference pool
  std::string rightsize_host;   ///< the training host whose GPU memory fits a smaller GPU
};

/// The self-hosted model the demo's inference cluster serves (Llama 3.1 8B on vLLM).
inline constexpr const char* kDemoSelfHostedModel = "llama-3.1-8b-instruct";

/// Its catalog entry from `from` on: price 0, provider "self-hosted" (the cost is the GPU
/// bill), so that its spans are metered without being charged twice.
pricing::ModelPrice demo_self_hosted_price(EpochSeconds from);

/// The OTLP/JSON traces of the self-hosted cluster (`DemoSources::inference_traces`).
struct DemoTracesStats {
  int64_t bytes = 0;
  int64_t spans = 0;  ///< one per request
  int64_t input_tokens = 0, output_tokens = 0;
  std::string cluster;             ///< the project its GPU instances and spans share
  std::vector<std::string> hosts;  ///< its GPU instances (ResourceName)
};

/// What was written. Costs in nano-units of USD, summed in 128 bits.
struct DemoStats {
  int64_t rows = 0;   ///< data rows, header excluded
  int64_t bytes = 0;  ///< including the header
  EpochSeconds period_start = 0;
  EpochSeconds period_end = 0;  ///< exclusive
  __int128 billed_cost = 0;
  __int128 effective_cost = 0;
  /// Effective cost of rows whose tags name no team (untagged, partly tagged, shared fees).
  __int128 untagged_effective_cost = 0;
  std::vector<DemoAnomaly> anomalies;
  DemoTelemetryStats telemetry;  ///< empty when no telemetry was asked for
  DemoTracesStats traces;        ///< empty when no traces were asked for
};

/// Where the sources besides the bill go; each is optional.
struct DemoSources {
  /// DCGM exporter text of the hosts of one region: called once per region id (in the order
  /// first seen), its stream gets that region's scrapes; null = not written. The DCGM reader
  /// takes one region per file (`--region`, for grid intensity), hence one stream a region.
  std::function<std::ostream*(const std::string& region_id)> gpu_telemetry;
  /// OTLP/JSON trace export lines (one ExportTraceServiceRequest an hour) of the vLLM
  /// cluster's GenAI spans over the telemetry days: gen_ai.provider.name "vllm", model
  /// kDemoSelfHostedModel, resource attributes service.name (= the project), team, cloud.region.
  std::ostream* inference_traces = nullptr;
};

/// Days of GPU telemetry at the end of the period: two weeks, so that the recommenders'
/// default 7-day window ending at the last data is covered with room to spare.
inline constexpr int kDemoTelemetryDays = 14;

/// Writes the organisation's FOCUS CSV (header first) to `out`. Token costs are exactly
/// tokens × the catalog's price per 1M tokens in effect that day (rounded half-to-even to
/// the nano-unit when a price has more than 3 decimals); instance hours are priced at the
/// catalog's on-demand (or reserved) hourly price. Models and SKUs missing from the catalog
/// are skipped, so any subset of the built-in catalog works. Deterministic for a given
/// catalog, seed, start and months. Fails on bad options or a write error.
///
/// When `gpu_telemetry` is given, DCGM exporter text is written to it too: hourly scrapes
/// ("# scrape at" markers) of DCGM_FI_DEV_GPU_UTIL and DCGM_FI_DEV_FB_USED for every GPU of
/// every GPU instance the bill charges in its last kDemoTelemetryDays days, hour by hour as
/// the bill runs them, with Hostname = the instance's ResourceName (the join key of
/// docs/gpu.md). Training GPUs are busy, inference follows the day, one inference pool is
/// idle (tagged shutdown-eligible) and one training host uses one small slice of its GPUs.
/// Ingest it with an interval of at most 6 minutes so that a reading covers its hour.
/// Its randomness is separate from the bill's, so the CSV is the same with or without it.
///
/// GPU hosts carry a `namespace` label naming their team (one Kubernetes namespace per team;
/// none for untagged hosts), and the self-hosted cluster's pods a `pod` label.
Result<DemoStats> write_demo_focus_csv(const pricing::Catalog& catalog, const DemoOptions& options,
                                       std::ostream& out, std::ostream* gpu_telemetry = nullptr);

/// The bill into `out`, and the sources `sources` asks for.
Result<DemoStats> write_demo(const pricing::Catalog& catalog, const DemoOptions& options,
                             std::ostream& out, const DemoSources& sources);

/// The demo's files (created or truncated). Telemetry, when `telemetry_prefix` is not empty,
/// goes to one file per region, `<prefix>.<region>.prom` (listed in DemoTelemetryStats order
/// by `telemetry_files`); traces, when `traces_path` is not empty, to that file.
struct DemoFiles {
  std::string bill;
  std::string telemetry_prefix;
  std::string traces_path;
  std::vector<std::string> telemetry_files;  ///< out: one per DemoTelemetryStats::regions entry
};
Result<DemoStats> write_demo_files(const pricing::Catalog& catalog, const DemoOptions& options,
                                   DemoFiles& files);

/// The bill (and all telemetry in one file, when `telemetry_path` is not empty) into files.
Result<DemoStats> write_demo_focus_csv_file(const pricing::Catalog& catalog,
                                            const DemoOptions& options, const std::string& path,
                                            const std::string& telemetry_path = {});

}  // namespace aifinops::demo
