// Reconciliation: metered AI usage (gateway, usage-API and OTLP records) against billed AI
// cost (FOCUS bills, native cloud exports, cost APIs) per provider, model and day; the
// differences in tokens and money, spend metered but not billed, spend billed but never
// metered (traffic that bypasses the gateway), and the share of AI spend metered and attributed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "ledger/ledger.h"
#include "pricing/catalog.h"

namespace aifinops::analyze {

/// Which side of the reconciliation a record is on.
enum class CostSide { kMetered, kBilled };

/// The attributes that tell a metered record from a billed one.
struct SideAttributes {
  std::string_view resource_type;
  std::string_view charge_description;
  std::string_view billing_account_id;
};

/// The one rule that decides the side, from what the ledger keeps per record:
///  - a gateway record (ResourceType "Virtual key") is metered;
///  - a record with a charge description or a billing account is billed: FOCUS makes both
///    mandatory, the native-export readers fill both, and the cost-API readers (openai-costs,
///    anthropic-costs) fill the description with the bill's line item;
///  - anything else is metered: usage-API pages (openai-usage, anthropic-usage) and OTLP spans
///    describe usage, not a line of a bill (they may name the invoice issuer, so that is no
///    signal).
/// Values "(none)" and "" mean missing.
CostSide cost_side(const SideAttributes& a);

struct ReconcileQuery {
  std::optional<EpochSeconds> from, to;  ///< on charge period start; to is exclusive
  bool by_provider = true;
  bool by_model = true;
  ledger::Grain grain = ledger::Grain::kDay;  ///< kDay, kMonth or kNone
};

enum class ReconcileStatus { kMatched, kMeteredNotBilled, kBilledNotMetered };
std::string_view reconcile_status_name(ReconcileStatus s);

/// One (time, provider, model) group.
struct ReconcileRow {
  std::string period;    ///< the day or month; empty for kNone
  std::string provider;  ///< catalog spelling, lower case
  std::string model;     ///< catalog spelling ("gpt-4o" for "gpt-4o-2024-08-06"), "(none)" when absent
  __int128 metered_cost = 0, billed_cost = 0;  ///< effective cost, nanos
  __int128 metered_attributed_cost = 0;        ///< metered cost with a team or project
  int64_t metered_tokens = 0, billed_tokens = 0;
  ReconcileStatus status = ReconcileStatus::kMatched;
  __int128 cost_difference() const { return billed_cost - metered_cost; }
  int64_t token_difference() const { return billed_tokens - metered_tokens; }
};

struct ReconcileReport {
  std::vector<ReconcileRow> rows;  ///< by period, then largest billed cost
  __int128 billed_cost = 0, metered_cost = 0;
  __int128 billed_not_metered = 0;  ///< Σ max(0, billed − metered) per row
  __int128 metered_not_billed = 0;  ///< Σ max(0, metered − billed) per row
  __int128 matched = 0;             ///< Σ min(billed, metered)
  __int128 matched_attributed = 0;  ///< Σ min(billed, metered attributed)
  /// Share of billed AI spend that metered usage accounts for (matched / billed), and the
  /// share accounted for by metered usage that is also attributed to a team or project.
  double coverage = 0, attributed_coverage = 0;
};

/// Reconciles the AI spend (service category "AI and Machine Learning", charge category
/// Usage) in the ledger. Provider and model names follow the catalog's spelling.
Result<ReconcileReport> reconcile(ledger::Ledger& ledger, const pricing::Catalog& catalog,
                                  const ReconcileQuery& query);

/// A provider name in the catalog's spelling: "OpenAI" -> "openai", "Microsoft" -> "azure",
/// "Amazon Web Services" -> "bedrock", "Google Cloud" -> "vertex_ai".
std::string catalog_provider(std::string_view provider);

/// A model name in the catalog's most general spelling: "gpt-4o-2024-08-06" -> "gpt-4o" when
/// the catalog has gpt-4o, "openai/gpt-4o" -> "gpt-4o"; unknown names lower-cased.
std::string catalog_model(const pricing::Catalog& catalog, std::string_view model, EpochSeconds at);

/// The report as JSON (docs/reconcile.md).
std::string reconcile_report_json(const ReconcileReport& report, const ReconcileQuery& query);

}  // namespace aifinops::analyze
