// GPU telemetry samples and their aggregation into ledger records: one record per GPU (and
// pod) per hour, whatever the sampling rate, shared by the DCGM and nvidia-smi readers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/money.h"
#include "core/record.h"
#include "core/result.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"

namespace aifinops::ingest {

/// Who a reading is about: one GPU (or MIG instance) on one host, as seen by one pod.
struct GpuIdentity {
  std::string host;        ///< node / instance name: the record's resource id (the join key)
  std::string uuid;        ///< "GPU-8f3e..." (or "MIG-..."); the GPU's stable name
  std::string index;       ///< the GPU's index on its host ("0")
  std::string model;       ///< "NVIDIA H100 80GB HBM3", "Tesla T4"
  std::string pci_bus_id;
  std::string mig_profile; ///< MIG instance profile when the reading is a MIG slice
  // Kubernetes, when the exporter maps GPUs to pods.
  std::string pod, namespace_name, container;
};

/// One GPU's readings at one time. Unknown values are negative.
struct GpuReading {
  int64_t time_ms = 0;
  int64_t line = 0;                  ///< where the reading starts, for lineage
  int32_t utilization_permille = -1; ///< 0..1000 (percent × 10, so that DCGM_FI_PROF ratios keep a decimal)
  /// DCGM_FI_PROF_GR_ENGINE_ACTIVE (permille): the utilisation when there is no GPU_UTIL
  /// (MIG instances have none).
  int32_t engine_active_permille = -1;
  int64_t memory_used_mib = -1;
  int64_t memory_free_mib = -1;
  int64_t memory_total_mib = -1;
  int64_t power_milliwatts = -1;
};

/// How readings become records.
struct GpuAggregation {
  int64_t bucket_ms = 3'600'000;            ///< one record per GPU per bucket (an hour)
  int64_t default_interval_ms = 30'000;     ///< time a reading covers when no next reading says
  int64_t max_gap_ms = 300'000;             ///< a longer gap is an outage: the reading covers this much
  std::string region;                       ///< Attr::kRegionId of every record
  std::string source_label;                 ///< "dcgm", "nvidia-smi": in charge_description
  /// Board power (W) by model, for energy when a reading has utilisation but no power:
  /// power = TDP × utilisation. Returns a negative value when the model is unknown.
  int64_t (*tdp_watts)(std::string_view model, const void* context) = nullptr;
  const void* tdp_context = nullptr;
  /// Emissions: grid intensity (g CO2e per kWh) × PUE; unset = no co2e.
  std::optional<Decimal> grid_gco2e_per_kwh;
  Decimal pue{1'200'000'000};
};

/// Collects readings per GPU and turns them into records at the end. A reading covers the
/// time until the same GPU's next reading (at most max_gap_ms; out-of-order or repeated
/// times cover default_interval_ms); the last reading of a GPU covers its previous gap, or
/// default_interval_ms when it has none. Each covered span is counted in the bucket where
/// the reading was taken. Not thread-safe.
class GpuSampleAggregator {
 public:
  explicit GpuSampleAggregator(GpuAggregation options) : options_(std::move(options)) {}

  /// A stable small number for a GPU identity (the identity is copied the first time).
  size_t gpu(const GpuIdentity& identity);
  const GpuIdentity& identity(size_t gpu) const { return gpus_[gpu].identity; }

  /// The open reading of `gpu` at `time_ms`, to fill in. A reading at another time closes
  /// the open one first (readers that get one metric per line fill a reading field by field).
  GpuReading& reading(size_t gpu, int64_t time_ms, int64_t line);

  /// Closes every open reading and returns the records (ordered by GPU, then time): zero
  /// cost, SourceKind telemetry facts, resource id = host, GPU model in gpu_type, the pod's
  /// namespace/pod/container as raw tags, GPU uuid, index, PCI bus id and memory size in extra.
  /// The tag policy (applied by the sink) maps the raw tags to dimensions.
  std::vector<Record> finish();

  /// Readings taken so far (each GPU at each time once).
  int64_t readings() const { return readings_; }
  /// Readings with no utilisation (MIG "[N/A]"): they add memory and energy, not observed time.
  int64_t readings_without_utilization() const { return no_utilization_; }
  /// Readings whose energy came from TDP × utilisation (no power value).
  int64_t readings_with_estimated_energy() const { return estimated_energy_; }

 private:
  struct Bucket {
    int64_t first_line = 0;
    int64_t observed_ms = 0;
    int64_t busy_permille_ms = 0;
    int64_t memory_mib_ms = 0;
    int64_t memory_peak_mib = 0;
    int64_t energy_microjoules = 0;
    bool estimated = false;
  };
  struct Gpu {
    GpuIdentity identity;
    bool open = false, pending = false;
    GpuReading open_reading, pending_reading;
    int64_t last_gap_ms = 0;
    int64_t memory_total_mib = -1;
    std::unordered_map<int64_t, Bucket> buckets;  // by bucket start (ms)
  };
  void close(Gpu& gpu);
  void account(Gpu& gpu, const GpuReading& r, int64_t covered_ms);

  GpuAggregation options_;
  std::vector<Gpu> gpus_;
  std::unordered_map<std::string, size_t> index_;
  std::string key_;
  int64_t readings_ = 0, no_utilization_ = 0, estimated_energy_ = 0;
};

class RecordSink;

/// Ends a telemetry batch: turns the aggregator's readings into records, fills project
/// (from the namespace) and workload (from the pod) where the tag policy maps neither raw
/// key, appends them, and commits. Rows are the sample lines read (`rows_read` =
/// ingested + quarantined); `skipped` lines of other metrics are reported apart.
Result<IngestSummary> finish_gpu_batch(RecordSink& sink, GpuSampleAggregator& aggregator, int64_t rows_read,
                                       int64_t skipped, const ledger::Fingerprint& content, int64_t bytes,
                                       std::string format_label);

/// The GpuAggregation for a reader, from the ingest options.
GpuAggregation gpu_aggregation(const GpuTelemetryOptions& options, std::string source_label);

/// The workload (Deployment, StatefulSet) a pod name belongs to: the name without
/// the ReplicaSet hash and pod suffix ("cuda-75454ffb9f-8ljq7" -> "cuda"), or without the
/// ordinal ("vllm-0" -> "vllm"); the name itself when it has neither.
std::string workload_of_pod(std::string_view pod);

}  // namespace aifinops::ingest
