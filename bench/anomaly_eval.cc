// Evaluation of the anomaly detector on labelled synthetic series: precision, recall and F1
// by spike size, and the time the detector takes (one thread). Targets (docs/anomalies.md):
// precision >= 0.9 and recall >= 0.9 for spikes >= 30%; 100,000 series x 180 days in < 2 s.
//
// Usage: anomaly_eval [--series N] [--days D] [--seed S] [--noise X] [--shifts P]
//                     [--spikes P] [--threshold K] [--fixed] [--sweep]
//   --noise X, --shifts P, --spikes P   the base series' noise (0.05), and the probability
//             per day of a level shift (0.003) and of a spike (0.02)
//   --fixed   every series has the base shape (no per-series variation)
//   --sweep   also run 20,000 series at fixed noise levels 2%, 5%, 8%, 10%
// Exit code: 0 when the targets are met, 1 when one is not, 2 on a bad flag.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "analyze/anomaly.h"

namespace {

using aifinops::analyze::AnomalyEvaluation;
using aifinops::analyze::AnomalyEvaluationSpec;
using aifinops::analyze::evaluate_anomaly_detector;
using aifinops::analyze::SpikeBucket;

constexpr double kTargetPrecision = 0.9, kTargetRecall = 0.9, kTargetSeconds = 2.0;
constexpr double kTargetMinSpike = 0.3;
constexpr double kTargetPoints = 100000.0 * 180.0;

std::string bucket_name(const SpikeBucket& b) {
  char text[32];
  if (b.from == 0)
    std::snprintf(text, sizeof text, "< %.0f%%", b.to * 100);
  else if (b.to > 1e100)
    std::snprintf(text, sizeof text, ">= %.0f%%", b.from * 100);
  else
    std::snprintf(text, sizeof text, "%.0f-%.0f%%", b.from * 100, b.to * 100);
  return text;
}

void print_evaluation(const AnomalyEvaluation& e) {
  std::printf("  %-10s %8s %9s %7s\n", "spike", "spikes", "detected", "recall");
  for (const SpikeBucket& b : e.buckets)
    std::printf("  %-10s %8zu %9zu %7.3f\n", bucket_name(b).c_str(), b.spikes, b.detected,
                b.recall());
  const double false_per_1000 =
      e.points ? 1000.0 * (double)e.false_positives / (double)e.points : 0;
  std::printf("  flags: %zu on spikes, %zu false, %zu on level-shift onsets\n", e.true_positives,
              e.false_positives, e.shift_onsets_flagged);
  std::printf("  precision %.3f (strict, shift onsets counted as false: %.3f)\n", e.precision(),
              e.strict_precision());
  std::printf("  recall >= 30%%: %.3f   F1 >= 30%%: %.3f   recall all: %.3f   F1 all: %.3f\n",
              e.recall(0.3), e.f1(0.3), e.recall(0.0), e.f1(0.0));
  std::printf("  false alarms per 1,000 series-days: %.3f\n", false_per_1000);
  const double ns_per_point = e.points ? e.cpu_seconds * 1e9 / (double)e.points : 0;
  std::printf(
      "  detector time: %.3f s CPU (%.3f s wall) for %zu series (%zu scored points), "
      "%.1f ns CPU per point\n",
      e.cpu_seconds, e.seconds, e.series, e.points, ns_per_point);
}

bool parse_number(const char* text, double& out) {
  char* end = nullptr;
  out = std::strtod(text, &end);
  return end != text && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  AnomalyEvaluationSpec spec;
  spec.series = 100000;
  bool sweep = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    double value = 0;
    if (flag == "--fixed") {
      spec.vary = false;
      continue;
    }
    if (flag == "--sweep") {
      sweep = true;
      continue;
    }
    if (i + 1 >= argc || !parse_number(argv[i + 1], value)) {
      std::fprintf(stderr,
                   "anomaly_eval: %s needs a number (see the header of bench/anomaly_eval.cc)\n",
                   flag.c_str());
      return 2;
    }
    ++i;
    if (flag == "--series" && value >= 1) {
      spec.series = (size_t)value;
    } else if (flag == "--days" && value >= 35) {
      spec.synthetic.days = (int)value;
    } else if (flag == "--seed") {
      spec.seed = (uint64_t)value;
    } else if (flag == "--noise" && value >= 0) {
      spec.synthetic.noise = value;
    } else if (flag == "--shifts" && value >= 0 && value <= 1) {
      spec.synthetic.level_shift_probability = value;
    } else if (flag == "--spikes" && value >= 0 && value <= 1) {
      spec.synthetic.spike_probability = value;
    } else if (flag == "--threshold" && value > 0) {
      spec.detector.threshold = value;
    } else {
      std::fprintf(stderr, "anomaly_eval: unknown flag or bad value: %s %s\n", flag.c_str(),
                   argv[i]);
      return 2;
    }
  }

  std::printf(
      "anomaly_eval: %zu series x %d days, seed %llu, %s; base noise %.0f%%, trend %+.1f%%/day, "
      "weekly swing %.0f%%, level shifts on %.1f%% of days, spikes %.0f-%.0f%% on %.0f%% of "
      "days; threshold %.2f\n",
      spec.series, spec.synthetic.days, (unsigned long long)spec.seed,
      spec.vary ? "shape varied per series" : "one shape", spec.synthetic.noise * 100,
      spec.synthetic.trend_per_day * 100, spec.synthetic.weekly_amplitude * 100,
      spec.synthetic.level_shift_probability * 100, spec.synthetic.min_spike * 100,
      spec.synthetic.max_spike * 100, spec.synthetic.spike_probability * 100,
      spec.detector.threshold);
  AnomalyEvaluation e = evaluate_anomaly_detector(spec);
  print_evaluation(e);

  // CPU time for the target's size, from the measured time per series-day: CPU time,
  // because the wall clock also counts whatever else the machine is running.
  const double all_points = (double)spec.series * spec.synthetic.days;
  const double seconds_at_target = e.cpu_seconds * kTargetPoints / all_points;
  const bool precision_ok = e.precision() >= kTargetPrecision;
  const bool recall_ok = e.recall(kTargetMinSpike) >= kTargetRecall;
  const bool time_ok = seconds_at_target < kTargetSeconds;
  std::printf(
      "targets: precision %.3f >= %.2f %s; recall >= 30%% %.3f >= %.2f %s; "
      "100,000 x 180 in %.3f s CPU < %.1f s %s\n",
      e.precision(), kTargetPrecision, precision_ok ? "met" : "NOT MET", e.recall(kTargetMinSpike),
      kTargetRecall, recall_ok ? "met" : "NOT MET", seconds_at_target, kTargetSeconds,
      time_ok ? "met" : "NOT MET");

  if (sweep) {
    for (double noise : {0.02, 0.05, 0.08, 0.10}) {
      AnomalyEvaluationSpec s = spec;
      s.series = 20000;
      s.vary = false;
      s.synthetic.noise = noise;
      std::printf("\nsweep: 20,000 series, one shape, noise %.0f%%\n", noise * 100);
      print_evaluation(evaluate_anomaly_detector(s));
    }
  }
  return precision_ok && recall_ok && time_ok ? 0 : 1;
}
