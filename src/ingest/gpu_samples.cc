// GPU readings to hourly telemetry records.
#include "ingest/gpu_samples.h"

#include <algorithm>

#include "core/json_text.h"
#include "ingest/record_sink.h"

namespace aifinops::ingest {
namespace {

int64_t floor_to(int64_t t, int64_t step) {
  int64_t q = t / step;
  if (t % step != 0 && t < 0) --q;
  return q * step;
}

bool all_lower_alnum(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

void put_json(std::string& json, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  if (json.size() > 1) json.push_back(',');
  append_json_string(json, key);
  json.push_back(':');
  append_json_string(json, value);
}

}  // namespace

std::string workload_of_pod(std::string_view pod) {
  // Deployment pods: <name>-<replicaset hash, 6-10 chars>-<5 chars>.
  size_t last = pod.rfind('-');
  if (last != std::string_view::npos && last > 0) {
    std::string_view suffix = pod.substr(last + 1);
    size_t second = pod.rfind('-', last - 1);
    if (second != std::string_view::npos && suffix.size() == 5 && all_lower_alnum(suffix)) {
      std::string_view hash = pod.substr(second + 1, last - second - 1);
      if (hash.size() >= 6 && hash.size() <= 10 && all_lower_alnum(hash)) return std::string(pod.substr(0, second));
    }
    // StatefulSet pods: <name>-<ordinal>. (Job pods' random suffix cannot be told from a
    // word of the name, so they keep their name.)
    if (all_digits(suffix)) return std::string(pod.substr(0, last));
  }
  return std::string(pod);
}

size_t GpuSampleAggregator::gpu(const GpuIdentity& id) {
  key_.clear();
  for (const std::string* part : {&id.host, &id.uuid, &id.index, &id.pod, &id.namespace_name, &id.container,
                                  &id.mig_profile}) {
    key_ += *part;
    key_.push_back('\x1f');
  }
  auto it = index_.find(key_);
  if (it != index_.end()) return it->second;
  gpus_.push_back(Gpu{});
  gpus_.back().identity = id;
  index_.emplace(key_, gpus_.size() - 1);
  return gpus_.size() - 1;
}

GpuReading& GpuSampleAggregator::reading(size_t index, int64_t time_ms, int64_t line) {
  Gpu& g = gpus_[index];
  if (g.open && g.open_reading.time_ms == time_ms) return g.open_reading;
  if (g.open) close(g);
  g.open = true;
  g.open_reading = GpuReading{};
  g.open_reading.time_ms = time_ms;
  g.open_reading.line = line;
  return g.open_reading;
}

void GpuSampleAggregator::close(Gpu& g) {
  // The open reading becomes pending; the pending one now knows how long it lasted.
  g.open = false;
  ++readings_;
  if (g.open_reading.utilization_permille < 0) g.open_reading.utilization_permille = g.open_reading.engine_active_permille;
  if (g.open_reading.memory_total_mib < 0 && g.open_reading.memory_used_mib >= 0 &&
      g.open_reading.memory_free_mib >= 0)
    g.open_reading.memory_total_mib = g.open_reading.memory_used_mib + g.open_reading.memory_free_mib;
  if (g.open_reading.memory_total_mib > 0) g.memory_total_mib = g.open_reading.memory_total_mib;
  if (g.pending) {
    int64_t gap = g.open_reading.time_ms - g.pending_reading.time_ms;
    int64_t covered = options_.default_interval_ms;
    if (gap > 0) {
      covered = std::min(gap, options_.max_gap_ms);
      g.last_gap_ms = covered;
    }
    account(g, g.pending_reading, covered);
  }
  g.pending = true;
  g.pending_reading = g.open_reading;
}

void GpuSampleAggregator::account(Gpu& g, const GpuReading& r, int64_t covered) {
  Bucket& b = g.buckets[floor_to(r.time_ms, options_.bucket_ms)];
  if (b.first_line == 0 || (r.line > 0 && r.line < b.first_line)) b.first_line = r.line;
  if (r.utilization_permille >= 0) {
    b.observed_ms += covered;
    b.busy_permille_ms += (int64_t)r.utilization_permille * covered;
  } else {
    ++no_utilization_;
  }
  if (r.memory_used_mib >= 0) {
    b.memory_mib_ms += r.memory_used_mib * covered;
    b.memory_peak_mib = std::max(b.memory_peak_mib, r.memory_used_mib);
  }
  int64_t milliwatts = r.power_milliwatts;
  if (milliwatts < 0 && r.utilization_permille >= 0 && options_.tdp_watts != nullptr) {
    int64_t tdp = options_.tdp_watts(g.identity.model, options_.tdp_context);
    if (tdp > 0) {
      milliwatts = tdp * r.utilization_permille;  // W × permille = mW
      b.estimated = true;
      ++estimated_energy_;
    }
  }
  if (milliwatts >= 0) b.energy_microjoules += milliwatts * covered;
}

std::vector<Record> GpuSampleAggregator::finish() {
  for (Gpu& g : gpus_) {
    if (g.open) close(g);
    if (g.pending) {
      account(g, g.pending_reading, g.last_gap_ms > 0 ? g.last_gap_ms : options_.default_interval_ms);
      g.pending = false;
    }
  }
  std::vector<Record> out;
  for (const Gpu& g : gpus_) {
    std::vector<int64_t> starts;
    for (const auto& [start, bucket] : g.buckets) starts.push_back(start);
    std::sort(starts.begin(), starts.end());
    const GpuIdentity& id = g.identity;
    std::string tags = "{";
    put_json(tags, "namespace", id.namespace_name);
    put_json(tags, "pod", id.pod);
    put_json(tags, "container", id.container);
    tags += "}";
    std::string extra = "{";
    put_json(extra, "gpu_uuid", id.uuid);
    put_json(extra, "gpu_index", id.index);
    put_json(extra, "pci_bus_id", id.pci_bus_id);
    put_json(extra, "mig_profile", id.mig_profile);
    if (g.memory_total_mib > 0) put_json(extra, "gpu_memory_total_mib", std::to_string(g.memory_total_mib));
    extra += "}";
    for (int64_t start : starts) {
      const Bucket& b = g.buckets.at(start);
      Record r;
      r[Attr::kResourceId] = id.host;
      r[Attr::kResourceName] = id.host;
      r[Attr::kResourceType] = "GPU";
      r[Attr::kServiceName] = "GPU telemetry";
      r[Attr::kChargeDescription] = options_.source_label + " GPU telemetry";
      r[Attr::kGpuType] = id.model;
      r[Attr::kRegionId] = options_.region;
      if (tags.size() > 2) r[Attr::kTags] = tags;
      if (extra.size() > 2) r[Attr::kExtra] = extra;
      UsageFacts& f = r.facts;
      f.charge_period_start = start / 1000;
      f.charge_period_end = (start + options_.bucket_ms) / 1000;
      f.gpu_observed_milliseconds = b.observed_ms;
      f.gpu_busy_milliseconds = (b.busy_permille_ms + 500) / 1000;
      f.gpu_memory_mib_milliseconds = b.memory_mib_ms;
      f.gpu_memory_peak_mib = b.memory_peak_mib;
      f.energy_millijoules = (b.energy_microjoules + 500) / 1000;
      if (b.estimated) f.flags |= kFlagEstimated;
      if (options_.grid_gco2e_per_kwh) {
        // µg = mJ / 3.6e9 (mJ per kWh) × g/kWh × 1e6 µg/g × PUE = mJ × g/kWh × PUE / 3600.
        // Micrograms keep the per-record rounding far below what a report shows.
        f.co2e_micrograms = (int64_t)mul_div_round(
            (__int128)f.energy_millijoules * options_.grid_gco2e_per_kwh->nanos,
            options_.pue.nanos, (__int128)3'600 * kNanosPerUnit * kNanosPerUnit);
      }
      r.lineage.line = b.first_line;
      out.push_back(std::move(r));
    }
  }
  return out;
}

namespace {
int64_t tdp_from_table(std::string_view model, const void* context) {
  const auto* table = static_cast<const pricing::GpuModelTable*>(context);
  const pricing::GpuModelSpec* spec = table->find(model);
  return spec != nullptr && spec->tdp_watts > 0 ? spec->tdp_watts : -1;
}
}  // namespace

GpuAggregation gpu_aggregation(const GpuTelemetryOptions& options, std::string source_label) {
  GpuAggregation a;
  a.default_interval_ms = options.interval_ms > 0 ? options.interval_ms : 30'000;
  // An outage is a gap of more than ten intervals (at least five minutes).
  a.max_gap_ms = std::max<int64_t>(300'000, 10 * a.default_interval_ms);
  a.region = options.region;
  a.source_label = std::move(source_label);
  a.grid_gco2e_per_kwh = options.grid_gco2e_per_kwh;
  a.pue = options.pue;
  if (options.gpu_models != nullptr) {
    a.tdp_watts = tdp_from_table;
    a.tdp_context = options.gpu_models;
  }
  return a;
}

Result<IngestSummary> finish_gpu_batch(RecordSink& sink, GpuSampleAggregator& aggregator, int64_t rows_read,
                                       int64_t skipped, const ledger::Fingerprint& content, int64_t bytes,
                                       std::string format_label) {
  const allocate::TagPolicy& policy = sink.context().tag_policy;
  // A policy that maps the raw key decides; otherwise the Kubernetes meaning is the default.
  const bool project_from_namespace = policy.dimension_of("namespace") == Attr::kCount;
  const bool workload_from_pod = policy.dimension_of("pod") == Attr::kCount;
  std::vector<Record> records = aggregator.finish();
  for (Record& r : records) {
    std::string_view tags = r[Attr::kTags];
    auto tag_value = [&](std::string_view key) -> std::string {
      // Our own JSON ({"namespace":"x",...}): values have no escapes worth undoing here.
      std::string needle = "\"" + std::string(key) + "\":\"";
      size_t at = tags.find(needle);
      if (at == std::string_view::npos) return "";
      size_t start = at + needle.size(), end = tags.find('"', start);
      return std::string(tags.substr(start, end - start));
    };
    if (project_from_namespace) r[Attr::kProject] = tag_value("namespace");
    if (workload_from_pod) {
      std::string pod = tag_value("pod");
      if (!pod.empty()) r[Attr::kWorkload] = workload_of_pod(pod);
    }
    if (auto appended = sink.append(r); !appended) return Unexpected{appended.error()};
  }
  IngestSummary& summary = sink.summary();
  summary.rows_read = rows_read;
  summary.rows_ingested = rows_read - summary.rows_quarantined;
  summary.rows_skipped = skipped;
  if (aggregator.readings_without_utilization() > 0)
    summary.conformance.push_back({"utilization", "readings without utilisation (e.g. MIG [N/A]): memory and energy kept, not counted in utilisation", aggregator.readings_without_utilization()});
  if (aggregator.readings_with_estimated_energy() > 0)
    summary.conformance.push_back({"power", "readings without power: energy estimated as TDP x utilisation", aggregator.readings_with_estimated_energy()});
  return sink.finish(content, bytes, std::move(format_label));
}

}  // namespace aifinops::ingest
