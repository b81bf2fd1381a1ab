// aifinops recommend: savings recommendations over the ledger (commitments, model fit, cache,
// batch, waste, ...), each with its monthly saving, confidence, assumptions and evidence
// (docs/recommendations.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analyze/business_inputs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "config/gpu_data_yaml.h"
#include "config/yaml_reader.h"
#include "core/json_text.h"
#include "optimize/recommend.h"
#include "optimize/self_hosted.h"

namespace aifinops::cli {
namespace {

struct RecommendFlags {
  std::string db;
  std::string config;
  std::vector<std::string> business;
  std::vector<std::string> rates;
  std::vector<std::string> kinds;
  std::string as_of;
  std::string window = "30d";
  std::string grain = "day";
  std::string format = "table";
  size_t top = 0;
  std::string gpu_window = "7d";       // idle-gpu and rightsize
  std::string idle_threshold = "10";   // percent
  std::string cluster_by = "project";  // self-hosted
  bool unit_economics = false;         // the self-hosted view instead of recommendations
};

/// "30d" or "30" -> 30 days; 1..3660.
Result<int64_t> parse_window(const std::string& text) {
  std::string digits = text;
  if (!digits.empty() && digits.back() == 'd') digits.pop_back();
  int64_t days = 0;
  bool ok = !digits.empty() && digits.size() <= 5;
  for (char c : digits) {
    ok &= c >= '0' && c <= '9';
    if (ok) days = days * 10 + (c - '0');
  }
  if (!ok || days < 1 || days > 3660)
    return make_error(ErrorCode::kInvalidArgument,
                      "--window " + text + ": expected a number of days from 1 to 3660, like 30d");
  return days;
}

void print_table(std::FILE* out, const optimize::RecommendContext& c,
                 const std::vector<optimize::Recommendation>& recs, const std::string& inputs,
                 size_t top) {
  std::fprintf(out, "Recommendations from %s to %s (%lld days, %s grain); %s\n",
               format_date(c.from()).c_str(), format_date(c.as_of).c_str(), (long long)c.window_days,
               c.grain == ledger::Grain::kHour ? "hourly" : "daily", inputs.c_str());
  if (recs.empty()) {
    std::fputs("\nNo recommendations: nothing in the window would save money by these rules.\n", out);
    return;
  }
  size_t shown = top == 0 ? recs.size() : std::min(top, recs.size());
  for (size_t i = 0; i < shown; ++i) {
    const optimize::Recommendation& r = recs[i];
    std::fprintf(out, "\n%2zu. %s/month  [%s, %s confidence]  %s\n", i + 1,
                 optimize::money_text(r.monthly_saving.nanos).c_str(), r.kind.c_str(),
                 std::string(optimize::confidence_name(r.confidence)).c_str(), r.title.c_str());
    std::fprintf(out, "    action: %s\n", r.action.c_str());
    for (const std::string& a : r.assumptions) std::fprintf(out, "    assumes: %s\n", a.c_str());
    for (const optimize::Evidence& e : r.evidence)
      std::fprintf(out, "    %s: %s\n", e.label.c_str(), e.value.c_str());
  }
  if (shown < recs.size())
    std::fprintf(out, "\n%zu more: --top 0 shows all.\n", recs.size() - shown);
  std::fputs("\nSavings are per 30-day month at the window's rate; alternatives for the same usage "
             "(1- and 3-year terms, reserved instances and savings plans) do not add up.\n",
             out);
}

void print_csv(std::FILE* out, const std::vector<optimize::Recommendation>& recs) {
  std::fputs("kind,id,subject,title,action,monthly_saving,currency,confidence,assumptions,evidence\n", out);
  for (const optimize::Recommendation& r : recs) {
    std::string assumptions, evidence;
    for (const std::string& a : r.assumptions) assumptions += (assumptions.empty() ? "" : "; ") + a;
    for (const optimize::Evidence& e : r.evidence)
      evidence += (evidence.empty() ? "" : "; ") + e.label + "=" + e.value;
    std::string line = csv_escape(r.kind) + "," + csv_escape(r.id) + "," + csv_escape(r.subject) + "," +
                       csv_escape(r.title) + "," + csv_escape(r.action) + "," +
                       format_decimal_fixed(r.monthly_saving.nanos, 2) + "," + csv_escape(r.currency) + "," +
                       std::string(optimize::confidence_name(r.confidence)) + "," + csv_escape(assumptions) +
                       "," + csv_escape(evidence) + "\n";
    std::fputs(line.c_str(), out);
  }
}

std::string json_list(const std::vector<std::string>& items) {
  std::string s = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) s += ',';
    append_json_string(s, items[i]);
  }
  return s + "]";
}

/// "$0.1733" (two to four decimals) for a price per million tokens; "-" when unknown.
std::string per_million(__int128 nanos, bool known) {
  if (!known) return "-";
  std::string v = format_decimal_fixed(nanos, 4);
  while (v.size() > 3 && v.back() == '0' && v[v.size() - 3] != '.') v.pop_back();
  return "$" + v;
}

/// The unit-economics view: one line per inference cluster and model (docs/unit-economics.md).
void print_unit_economics(std::FILE* out, OutputFormat format, const optimize::RecommendContext& c,
                          const std::vector<optimize::UnitEconomicsRow>& rows) {
  const std::string dimension(attribute_name(c.cluster_dimension));
  auto utilization = [](const optimize::UnitEconomicsRow& r) {
    return r.utilization ? format_decimal_fixed(*r.utilization * 100, 1) + "%" : std::string("-");
  };
  if (format == OutputFormat::kJson) {
    std::string s = "{\"from\":\"" + format_date(c.from()) + "\",\"to\":\"" + format_date(c.as_of) +
                    "\",\"cluster_by\":\"" + dimension + "\",\"rows\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const optimize::UnitEconomicsRow& r = rows[i];
      if (i > 0) s += ",\n";
      s += "{\"cluster\":";
      append_json_string(s, r.cluster);
      s += ",\"model\":";
      append_json_string(s, r.model);
      s += ",\"provider\":";
      append_json_string(s, r.provider);
      s += ",\"first_day\":\"" + r.first_day + "\",\"last_day\":\"" + r.last_day +
           "\",\"days\":" + std::to_string(r.days) +
           ",\"input_tokens\":" + std::to_string(r.input_tokens) +
           ",\"output_tokens\":" + std::to_string(r.output_tokens) +
           ",\"requests\":" + std::to_string(r.requests) + ",\"gpu_cost\":\"" +
           format_decimal_fixed(r.gpu_cost, 2) + "\",\"gpu_hours\":\"" +
           format_decimal(r.gpu_hours) + "\",\"gpu_utilization\":" +
           (r.utilization ? "\"" + format_decimal(*r.utilization) + "\"" : std::string("null")) +
           ",\"score\":" +
           (r.score ? "\"" + format_decimal(r.score->nanos) + "\"" : std::string("null")) +
           ",\"self_hosted_per_million\":\"" + format_decimal(r.self_hosted_per_million) +
           "\",\"cheapest_api\":";
      append_json_string(s, r.cheapest_api);
      s += ",\"cheapest_api_per_million\":" +
           (r.cheapest_api.empty() ? std::string("null")
                                   : "\"" + format_decimal(r.cheapest_api_per_million) + "\"") +
           ",\"same_model_api\":";
      append_json_string(s, r.same_model_api);
      s += ",\"same_model_api_per_million\":" +
           (r.same_model_api.empty() ? std::string("null")
                                     : "\"" + format_decimal(r.same_model_api_per_million) + "\"") +
           "}";
    }
    s += "]}\n";
    std::fputs(s.c_str(), out);
    return;
  }
  if (format == OutputFormat::kCsv) {
    std::fputs(
        (dimension +
         ",model,provider,first_day,last_day,days,input_tokens,output_tokens,requests,gpu_cost,"
         "gpu_hours,gpu_utilization,self_hosted_per_million,cheapest_api,cheapest_api_per_million,"
         "same_model_api,same_model_api_per_million\n")
            .c_str(),
        out);
    for (const optimize::UnitEconomicsRow& r : rows) {
      std::string line =
          csv_escape(r.cluster) + "," + csv_escape(r.model) + "," + csv_escape(r.provider) + "," +
          r.first_day + "," + r.last_day + "," + std::to_string(r.days) + "," +
          std::to_string(r.input_tokens) + "," + std::to_string(r.output_tokens) + "," +
          std::to_string(r.requests) + "," + format_decimal_fixed(r.gpu_cost, 2) + "," +
          format_decimal(r.gpu_hours) + "," +
          (r.utilization ? format_decimal(*r.utilization) : "") + "," +
          format_decimal(r.self_hosted_per_million) + "," + csv_escape(r.cheapest_api) + "," +
          (r.cheapest_api.empty() ? "" : format_decimal(r.cheapest_api_per_million)) + "," +
          csv_escape(r.same_model_api) + "," +
          (r.same_model_api.empty() ? "" : format_decimal(r.same_model_api_per_million)) + "\n";
      std::fputs(line.c_str(), out);
    }
    return;
  }
  std::fprintf(out,
               "Self-hosted inference from %s to %s (clusters by %s); cost per 1M tokens of each "
               "model's own "
               "input/output mix\n",
               format_date(c.from()).c_str(), format_date(c.as_of).c_str(), dimension.c_str());
  if (rows.empty()) {
    std::fprintf(
        out,
        "\nNo inference cluster: no self-hosted token records share a %s with GPU instance records "
        "(docs/unit-economics.md).\n",
        dimension.c_str());
    return;
  }
  for (const optimize::UnitEconomicsRow& r : rows) {
    std::fprintf(out, "\n%s=%s  %s (%s), %s .. %s (%lld days)\n", dimension.c_str(),
                 r.cluster.c_str(), r.model.c_str(), r.provider.c_str(), r.first_day.c_str(),
                 r.last_day.c_str(), (long long)r.days);
    std::fprintf(out, "  tokens          %s input, %s output, %s requests\n",
                 group_thousands(std::to_string(r.input_tokens)).c_str(),
                 group_thousands(std::to_string(r.output_tokens)).c_str(),
                 group_thousands(std::to_string(r.requests)).c_str());
    std::fprintf(out, "  GPU cost        %s over %s GPU-hours, %s utilisation\n",
                 optimize::money_text(r.gpu_cost).c_str(), format_decimal(r.gpu_hours).c_str(),
                 utilization(r).c_str());
    std::fprintf(out, "  self-hosted     %s per 1M tokens\n",
                 per_million(r.self_hosted_per_million, true).c_str());
    std::fprintf(out, "  cheapest API    %s per 1M tokens  %s\n",
                 per_million(r.cheapest_api_per_million, !r.cheapest_api.empty()).c_str(),
                 r.cheapest_api.empty() ? "(no comparable model with a score and a price)"
                                        : r.cheapest_api.c_str());
    std::fprintf(
        out, "  same model API  %s per 1M tokens  %s\n",
        per_million(r.same_model_api_per_million, !r.same_model_api.empty()).c_str(),
        r.same_model_api.empty() ? "(not offered in the catalog)" : r.same_model_api.c_str());
  }
}

int run_recommend(const RecommendFlags& flags, const CommandEnv& env) {
  auto window = parse_window(flags.window);
  if (!window) return env.usage_error(window.error().message);
  std::vector<const optimize::RecommendationKind*> kinds;
  std::vector<std::string> kind_names;
  for (const std::string& name : flags.kinds) {
    auto k = optimize::find_recommendation_kind(name);
    if (!k) return env.usage_error("--kind: " + k.error().message);
    kinds.push_back(*k);
    kind_names.push_back(name);
  }
  std::optional<EpochSeconds> as_of;
  if (!flags.as_of.empty()) {
    auto t = parse_as_of(flags.as_of);
    if (!t) return env.usage_error(t.error().message);
    as_of = *t;
  }
  auto policy = env.policy(flags.config);
  if (!policy) return env.report_error(policy.error());
  auto business = analyze::load_business_files(business_files(flags.business, env));
  if (!business) return env.report_error(business.error());
  auto rates = optimize::builtin_rate_tables();
  if (!rates) return env.report_error(rates.error());
  for (const std::string& path : flags.rates) {
    auto text = config::read_text_file(path, "rates file");
    if (!text) return env.report_error(text.error());
    if (auto r = optimize::parse_rate_tables_yaml(*text, path, *rates); !r) return env.report_error(r.error());
  }
  auto opened = env.ledger(flags.db);
  if (!opened) return env.report_error(opened.error());
  ledger::Ledger& ledger = **opened;
  auto catalog = ledger.load_catalog();
  if (!catalog) return env.report_error(catalog.error());

  optimize::RecommendContext context;
  context.ledger = &ledger;
  context.catalog = &*catalog;
  context.business = &*business;
  context.tags = &policy->tags;
  context.rates = &*rates;
  context.window_days = *window;
  context.grain = flags.grain == "hour" ? ledger::Grain::kHour : ledger::Grain::kDay;
  if (as_of) {
    context.as_of = *as_of;
  } else {
    auto last = optimize::last_data_day_end(ledger, (EpochSeconds)std::time(nullptr));
    if (!last) return env.report_error(last.error());
    context.as_of = *last;
  }
  auto gpu_window = parse_window(flags.gpu_window);
  if (!gpu_window) return env.usage_error("--gpu-window: " + gpu_window.error().message);
  context.gpu_window_days = *gpu_window;
  auto threshold = parse_decimal(flags.idle_threshold);
  if (!threshold || threshold->nanos < 0 || threshold->nanos > 100 * kNanosPerUnit)
    return env.usage_error("--idle-threshold " + flags.idle_threshold + ": a percentage from 0 to 100, like 10");
  context.idle_gpu_threshold = Decimal{threshold->nanos / 100};
  context.gpu_models = &config::default_gpu_models();
  auto cluster = ledger::parse_dimension(flags.cluster_by);
  if (!cluster || cluster->kind != ledger::Dimension::Kind::kAttribute)
    return env.usage_error(
        "--cluster-by " + flags.cluster_by +
        ": a dimension such as project, workload, team or resource (not a tag or time)");
  context.cluster_dimension = cluster->attribute;
  if (flags.unit_economics) {
    auto rows = optimize::unit_economics(context);
    if (!rows) return env.report_error(rows.error());
    print_unit_economics(env.out, output_format_from_name(flags.format), context, *rows);
    return kExitOk;
  }
  auto recs = optimize::recommend(context, kinds);
  if (!recs) return env.report_error(recs.error());

  std::string business_text;
  for (const std::string& f : business->files) business_text += (business_text.empty() ? "" : ", ") + f;
  std::string rates_text = "built-in rate tables";
  for (const std::string& f : flags.rates) rates_text += " + " + f;
  std::string inputs = "business inputs: " + (business_text.empty() ? std::string("none") : business_text) +
                       "; rates: " + rates_text;
  switch (output_format_from_name(flags.format)) {
    case OutputFormat::kJson: {
      std::string s = "{\"from\":\"" + format_date(context.from()) + "\",\"to\":\"" +
                      format_date(context.as_of) + "\",\"window_days\":" + std::to_string(context.window_days) +
                      ",\"grain\":\"" + flags.grain + "\",\"kinds\":";
      if (kind_names.empty())
        for (const optimize::RecommendationKind& k : optimize::recommendation_kinds())
          kind_names.emplace_back(k.name);
      s += json_list(kind_names) + ",\"inputs\":{\"ledger\":";
      append_json_string(s, ledger::redact_location(resolve_db_location(flags.db)));
      s += ",\"business\":" + json_list(business->files) + ",\"rates\":" + json_list(rates->files) +
           "},\"recommendations\":[";
      for (size_t i = 0; i < recs->size(); ++i) {
        if (i > 0) s += ",\n";
        s += optimize::recommendation_json((*recs)[i]);
      }
      s += "]}\n";
      std::fputs(s.c_str(), env.out);
      break;
    }
    case OutputFormat::kCsv:
      print_csv(env.out, *recs);
      break;
    case OutputFormat::kTable:
      print_table(env.out, context, *recs, inputs, flags.top);
      break;
  }
  return kExitOk;
}

}  // namespace

void add_recommend_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  auto flags = std::make_shared<RecommendFlags>();
  std::string kinds_help = "Kinds to run (default: all): ";
  for (size_t i = 0; i < optimize::recommendation_kinds().size(); ++i)
    kinds_help += (i > 0 ? ", " : "") + std::string(optimize::recommendation_kinds()[i].name);
  CLI::App* cmd = app.add_subcommand(
      "recommend",
      "Savings recommendations: idle GPUs, GPU rightsizing, commitments (RIs, savings plans, "
      "CUDs, PTUs), cheaper models that meet the required quality, caching, batch APIs, "
      "self-hosted inference against API prices and waste; each with its monthly saving, "
      "confidence, assumptions and evidence.");
  cmd->add_option("--kind", flags->kinds, kinds_help)->delimiter(',');
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--config", flags->config,
                  "Policy file, for custom dimensions in business scopes (default: "
                  "$AIFINOPS_CONFIG, or ./policy.yaml if present)");
  cmd->add_option("--business", flags->business,
                  "business.yaml with workloads: (required quality) and model_quality: scores; "
                  "repeat for more (default: ./business.yaml if present)");
  cmd->add_option("--rates", flags->rates,
                  "A rates file (commitments, batch_discounts, provisioned_throughput, "
                  "model_scores) whose rows replace the built-in ones; repeat for more");
  cmd->add_option("--as-of", flags->as_of,
                  "End of the window (2025-10-31: that day included); default: the last day "
                  "with data");
  cmd->add_option("--window", flags->window, "Days of history to read, like 30d")->capture_default_str();
  cmd->add_option("--grain", flags->grain,
                  "Usage history grain: day reads the day rollup (fast); hour reads hourly "
                  "records (exact commitments for hourly data, off-hours batch traffic)")
      ->check(CLI::IsMember({"day", "hour"}))
      ->capture_default_str();
  cmd->add_option("--gpu-window", flags->gpu_window,
                  "Days of GPU telemetry idle-gpu and rightsize read, like 7d")
      ->capture_default_str();
  cmd->add_option("--idle-threshold", flags->idle_threshold,
                  "idle-gpu: a GPU whose mean utilisation, and every day's, stays under this "
                  "percentage is idle")
      ->capture_default_str();
  cmd->add_option("--cluster-by", flags->cluster_by,
                  "self-hosted: the dimension that names an inference cluster on both its GPU "
                  "instance cost records and the token records of the models it serves")
      ->capture_default_str();
  cmd->add_flag("--unit-economics", flags->unit_economics,
                "Instead of recommendations: every inference cluster's cost per million tokens "
                "beside the cheapest comparable API and the same model at an API");
  cmd->add_option("--top", flags->top, "Show the N largest (table only; 0: all)")->capture_default_str();
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  aifinops recommend\n"
      "  aifinops recommend --kind commitment --grain hour --window 60d\n"
      "  aifinops recommend --kind model-fit --business business.yaml --format json\n"
      "  aifinops recommend --rates my_discounts.yaml --as-of 2025-10-31\n"
      "  aifinops recommend --kind idle-gpu,rightsize --gpu-window 14d --idle-threshold 5\n"
      "  aifinops recommend --kind self-hosted --cluster-by workload\n"
      "  aifinops recommend --unit-economics --window 14d --format csv\n"
      "Methods, inputs and the JSON shape: docs/recommendations.md.\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code, env] { exit_code = run_recommend(*flags, env); });
}

}  // namespace aifinops::cli
