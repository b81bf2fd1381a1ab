// Recommendation: one way to cut the AI bill, with the monthly saving it would make, how
// sure we are, and the evidence (ledger records and figures) it rests on.
#pragma once

#include <string>
#include <vector>

#include "core/money.h"

namespace aifinops::optimize {

/// How sure a recommendation is: high = the saving follows from the ledger alone; medium =
/// it rests on an assumption stated in `assumptions`; low = a heuristic worth a look.
enum class Confidence { kLow, kMedium, kHigh };
std::string_view confidence_name(Confidence c);

/// One figure or record behind a recommendation ("p95 utilisation" = "3.1%", or a record
/// reference such as "resource i-0abc, 2025-03-02 .. 2025-03-09").
struct Evidence {
  std::string label;
  std::string value;
};

struct Recommendation {
  std::string kind;            ///< idle-gpu | rightsize | commitment | model-fit | cache | batch | waste
  std::string id;              ///< stable within a run: kind + subject, e.g. "idle-gpu:host-7/GPU-3"
  std::string subject;         ///< what it is about: a resource, workload, model or scope
  std::string title;           ///< one line a person acts on ("Shut down host-7 GPU 3 ...")
  std::string action;          ///< the concrete step
  Money monthly_saving;        ///< in `currency`, per 30-day month at the observed rate
  std::string currency = "USD";
  Confidence confidence = Confidence::kMedium;
  std::vector<std::string> assumptions;
  std::vector<Evidence> evidence;
  /// Canonical dimension values of the subject (team, project, ...), for filtering and
  /// for restricted viewers; name = attribute_name() of the dimension.
  std::vector<std::pair<std::string, std::string>> dimensions;
};

}  // namespace aifinops::optimize
