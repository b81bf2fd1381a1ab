// aifinops budgets: where each budget of policy.yaml stands (status) and alerts on its
// thresholds to a Slack-compatible webhook, once per budget, threshold and period (alert).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "analyze/budgets.h"
#include "analyze/webhook.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_output.h"

namespace aifinops::cli {
namespace {

constexpr int64_t kDay = 86400;
constexpr const char* kWebhookVariable = "AIFINOPS_WEBHOOK_URL";

struct BudgetsFlags {
  std::string db;
  std::string config;
  std::string as_of;
  std::vector<std::string> names;
  int history = 120;
  double interval = 80;
  std::string format = "table";
  // alert
  std::string webhook;
  bool dry_run = false;
  double timeout_s = 10;
};

std::string money(__int128 nanos) { return format_decimal_fixed(nanos, 2); }
std::string money(double dollars) { return fixed(dollars, 2); }

std::string optional_date(const std::optional<EpochSeconds>& t) {
  return t ? "\"" + format_date(*t) + "\"" : "null";
}

/// Everything status and alert share: the policy's budgets at the as-of time.
struct Loaded {
  config::Policy policy;
  ledger::Ledger* ledger = nullptr;
  analyze::BudgetOptions options;
  std::vector<analyze::BudgetStatus> statuses;
  std::vector<ledger::Note> alerts_sent;
};

/// Returns an exit code when it fails (after printing why).
std::optional<int> load(const BudgetsFlags& flags, const CommandEnv& env, Loaded& out) {
  if (!(flags.interval >= 1 && flags.interval <= 99)) {
    return env.usage_error("--interval " + fixed(flags.interval, 1) +
                           ": expected a percentage from 1 to 99");
  }
  if (flags.history < 14 || flags.history > 3660)
    return env.usage_error("--history " + std::to_string(flags.history) +
                           ": expected 14 to 3660 days");
  out.options.interval = flags.interval / 100;
  out.options.history_days = flags.history;
  out.options.as_of = static_cast<EpochSeconds>(std::time(nullptr));
  if (!flags.as_of.empty()) {
    auto t = parse_as_of(flags.as_of);
    if (!t) return env.usage_error(t.error().message);
    out.options.as_of = *t;
  }
  auto policy = env.policy(flags.config);
  if (!policy) return env.report_error(policy.error());
  out.policy = std::move(*policy);
  std::vector<analyze::ScopedBudget> budgets;
  const std::set<std::string> wanted(flags.names.begin(), flags.names.end());
  std::set<std::string> unknown = wanted;
  for (const BudgetRule& rule : out.policy.budgets) {
    if (!wanted.empty() && !wanted.count(rule.name)) continue;
    unknown.erase(rule.name);
    analyze::ScopedBudget b{rule, {}};
    for (const auto& [dimension, value] : rule.scope) {
      auto d = resolve_dimension(out.policy, dimension);
      if (!d)
        return env.report_error(
            {ErrorCode::kInvalidArgument,
             "budget \"" + rule.name + "\": scope " + dimension + ": " + d.error().message});
      b.filters.push_back({*d, value});
    }
    budgets.push_back(std::move(b));
  }
  if (!unknown.empty())
    return env.usage_error(
        "--budget " + *unknown.begin() + ": no budget of that name in " +
        (out.policy.source.empty() ? std::string("the policy") : out.policy.source));
  auto ledger = env.ledger(flags.db);
  if (!ledger) return env.report_error(ledger.error());
  out.ledger = *ledger;
  auto statuses = analyze::budget_status(*out.ledger, budgets, out.options);
  if (!statuses) return env.report_error(statuses.error());
  out.statuses = std::move(*statuses);
  auto notes = out.ledger->notes("budget_alert");
  if (!notes) return env.report_error(notes.error());
  out.alerts_sent = std::move(*notes);
  return std::nullopt;
}

void warn_no_budgets(const Loaded& l) {
  std::fprintf(
      stderr,
      "aifinops: %s defines no budgets (add a budgets: list; see docs/forecast-and-budgets.md)\n",
      l.policy.source.empty() ? "no policy file found; the built-in policy"
                              : l.policy.source.c_str());
}

std::string crossed_labels(const analyze::BudgetStatus& s) {
  std::string out;
  for (const auto& t : s.thresholds)
    if (t.crossed) out += (out.empty() ? "" : ", ") + t.threshold.label();
  return out.empty() ? "-" : out;
}

void print_status_json(std::FILE* out, const Loaded& l) {
  std::set<std::string> sent;
  for (const ledger::Note& n : l.alerts_sent) sent.insert(n.key);
  std::string s = "{\"as_of\":\"" + format_timestamp(l.options.as_of) + "\",\"policy\":";
  append_json_string(s, l.policy.source);
  s += ",\"interval\":" + fixed(l.options.interval, 2) +
       ",\"history_days\":" + std::to_string(l.options.history_days) + ",\"budgets\":[";
  for (size_t i = 0; i < l.statuses.size(); ++i) {
    const analyze::BudgetStatus& b = l.statuses[i];
    s += i ? ",{" : "{";
    s += "\"name\":";
    append_json_string(s, b.name);
    s += ",\"scope\":{";
    bool first = true;
    for (const BudgetRule& rule : l.policy.budgets) {
      if (rule.name != b.name) continue;
      for (const auto& [dimension, value] : rule.scope) {
        s += first ? "" : ",";
        first = false;
        append_json_string(s, dimension);
        s += ":";
        append_json_string(s, value);
      }
    }
    s += "},\"period\":\"" + std::string(period_name(b.period)) + "\",\"period_label\":";
    append_json_string(s, analyze::period_label(b.period, b.period_start));
    s +=
        ",\"period_start\":\"" + format_date(b.period_start) + "\",\"period_last_day\":\"" +
        format_date(b.period_end - kDay) + "\",\"days_elapsed\":" + std::to_string(b.days_elapsed) +
        ",\"days_in_period\":" + std::to_string(b.days_in_period) + ",\"enforce\":\"" +
        (b.hard ? "hard" : "soft") + "\",\"amount_usd\":" + format_decimal(b.amount) +
        ",\"actual_usd\":" + format_decimal(b.actual) +
        ",\"used_percent\":" + fixed(b.used_percent, 2) + ",\"forecast_usd\":" + money(b.forecast) +
        ",\"forecast_lower_usd\":" + money(b.forecast_lower) +
        ",\"forecast_upper_usd\":" + money(b.forecast_upper) +
        ",\"forecast_percent\":" + fixed(b.forecast_percent, 2) +
        ",\"exhausted_on\":" + optional_date(b.exhausted_on) +
        ",\"projected_exhaustion\":" + optional_date(b.projected_exhaustion) + ",\"thresholds\":[";
    for (size_t k = 0; k < b.thresholds.size(); ++k) {
      const auto& t = b.thresholds[k];
      s += std::string(k ? "," : "") + "{\"label\":";
      append_json_string(s, t.threshold.label());
      s += ",\"on\":\"" + std::string(t.threshold.forecast ? "forecast" : "actual") +
           "\",\"percent\":" + std::to_string(t.threshold.percent) +
           ",\"at_usd\":" + format_decimal(t.at) +
           ",\"crossed\":" + (t.crossed ? "true" : "false") +
           ",\"alerted\":" + (sent.count(t.key) ? "true" : "false") + "}";
    }
    const auto& m = b.model;
    s += "],\"forecast_inputs\":{\"history_from\":\"" + format_date(b.history_start) +
         "\",\"history_to\":\"" + format_date(floor_day(b.as_of) - kDay) + "\",\"method\":\"" +
         m.method + "\",\"history_days\":" + std::to_string(m.history_days) +
         ",\"level_per_day\":" + money(m.level) +
         ",\"trend_per_day\":" + fixed(m.trend_per_day, 4) + ",\"damping\":" + fixed(m.phi, 3) +
         ",\"month_start_charge\":" + money(m.month_start_charge) +
         ",\"noise\":" + fixed(m.noise, 4) +
         ",\"remaining_forecast_usd\":" + money(b.remaining_forecast) + "}}";
  }
  s += "]}\n";
  std::fputs(s.c_str(), out);
}

int run_status(const BudgetsFlags& flags, const CommandEnv& env) {
  Loaded l;
  if (auto failed = load(flags, env, l)) return *failed;
  const OutputFormat format = output_format_from_name(flags.format);
  if (l.statuses.empty() && flags.names.empty()) warn_no_budgets(l);
  if (format == OutputFormat::kJson) {
    print_status_json(env.out, l);
    return kExitOk;
  }
  if (format == OutputFormat::kCsv) {
    std::fprintf(
        env.out,
        "budget,scope,period,period_start,amount_usd,actual_usd,used_percent,forecast_usd,"
        "forecast_lower_usd,forecast_upper_usd,forecast_percent,exhausted_on,projected_exhaustion,"
        "crossed\n");
    for (const auto& b : l.statuses)
      std::fprintf(env.out, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n",
                   csv_escape(b.name).c_str(), csv_escape(b.scope).c_str(), period_name(b.period),
                   format_date(b.period_start).c_str(), format_decimal(b.amount).c_str(),
                   format_decimal(b.actual).c_str(), fixed(b.used_percent, 2).c_str(),
                   money(b.forecast).c_str(), money(b.forecast_lower).c_str(),
                   money(b.forecast_upper).c_str(), fixed(b.forecast_percent, 2).c_str(),
                   b.exhausted_on ? format_date(*b.exhausted_on).c_str() : "",
                   b.projected_exhaustion ? format_date(*b.projected_exhaustion).c_str() : "",
                   csv_escape(crossed_labels(b) == "-" ? "" : crossed_labels(b)).c_str());
    return kExitOk;
  }
  std::fprintf(env.out,
               "Budgets as of %s (%s); forecast from up to %d days of history, %s%% interval\n\n",
               analyze::as_of_text(l.options.as_of).c_str(),
               l.policy.source.empty() ? "built-in policy" : l.policy.source.c_str(),
               l.options.history_days, fixed(l.options.interval * 100, 0).c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : l.statuses) {
    std::string runs_out = "-";
    if (b.exhausted_on)
      runs_out = "used up " + format_date(*b.exhausted_on);
    else if (b.projected_exhaustion)
      runs_out = format_date(*b.projected_exhaustion);
    rows.push_back(
        {b.name, analyze::period_label(b.period, b.period_start),
         std::to_string(b.days_elapsed) + "/" + std::to_string(b.days_in_period),
         group_thousands(money(b.amount)), group_thousands(money(b.actual)),
         fixed(b.used_percent, 1) + "%", group_thousands(money(b.forecast)),
         group_thousands(money(b.forecast_lower)) + ".." + group_thousands(money(b.forecast_upper)),
         fixed(b.forecast_percent, 1) + "%", runs_out, crossed_labels(b)});
  }
  print_aligned(env.out,
                {"budget", "period", "days", "amount", "actual", "used", "forecast", "interval",
                 "fcst used", "runs out", "crossed"},
                rows, 2, nullptr, 9);
  if (!l.statuses.empty())
    std::fprintf(
        env.out,
        "\nactual: effective cost from the period start to %s (whole days from the day rollup); "
        "forecast: actual plus the forecast of the days left.\n",
        analyze::as_of_text(l.options.as_of).c_str());
  return kExitOk;
}

int run_alert(const BudgetsFlags& flags, const CommandEnv& env) {
  std::string url = flags.webhook;
  if (url.empty())
    if (const char* env = std::getenv(kWebhookVariable); env != nullptr) url = env;
  std::optional<analyze::WebhookUrl> target;
  if (!url.empty()) {
    auto parsed = analyze::parse_webhook_url(url);
    if (!parsed) return env.usage_error("--webhook: " + parsed.error().message);
    target = *parsed;
  } else if (!flags.dry_run) {
    return env.usage_error(std::string("budgets alert needs --webhook URL (or $") +
                           kWebhookVariable +
                           "), or --dry-run to see the messages without sending them");
  }
  if (!(flags.timeout_s > 0 && flags.timeout_s <= 300))
    return env.usage_error("--timeout: expected 0 to 300 seconds");
  Loaded l;
  if (auto failed = load(flags, env, l)) return *failed;
  if (l.statuses.empty() && flags.names.empty()) warn_no_budgets(l);
  const auto timeout = std::chrono::milliseconds((int64_t)(flags.timeout_s * 1000));
  analyze::AlertPoster post = [&](const std::string& json) -> Result<void> {
    return analyze::post_webhook(*target, json, timeout);
  };
  auto run = analyze::send_budget_alerts(*l.ledger, l.statuses, post, flags.dry_run);
  if (!run) return env.report_error(run.error());
  const OutputFormat format = output_format_from_name(flags.format);
  const std::string destination = target ? target->origin() : "";
  if (format == OutputFormat::kJson) {
    std::string s = "{\"as_of\":\"" + format_timestamp(l.options.as_of) +
                    "\",\"dry_run\":" + (flags.dry_run ? "true" : "false") + ",\"webhook\":";
    if (target)
      append_json_string(s, destination);
    else
      s += "null";
    s += ",\"alerts\":[";
    for (size_t i = 0; i < run->outcomes.size(); ++i) {
      const auto& o = run->outcomes[i];
      s += i ? ",{" : "{";
      s += "\"budget\":";
      append_json_string(s, o.budget);
      s += ",\"threshold\":";
      append_json_string(s, o.threshold);
      s += ",\"period_start\":\"" + format_date(o.period_start) + "\",\"state\":\"" +
           analyze::alert_state_name(o.state) + "\",\"key\":";
      append_json_string(s, o.key);
      s += ",\"message\":" + std::to_string(o.message);
      if (!o.error.empty()) {
        s += ",\"error\":";
        append_json_string(s, o.error);
      }
      s += "}";
    }
    s += "],\"messages\":[";
    for (size_t i = 0; i < run->messages.size(); ++i) s += (i ? "," : "") + run->messages[i];
    s += "]}\n";
    std::fputs(s.c_str(), env.out);
  } else if (format == OutputFormat::kCsv) {
    std::fprintf(env.out, "budget,threshold,period_start,state,error\n");
    for (const auto& o : run->outcomes)
      std::fprintf(env.out, "%s,%s,%s,%s,%s\n", csv_escape(o.budget).c_str(),
                   csv_escape(o.threshold).c_str(), format_date(o.period_start).c_str(),
                   analyze::alert_state_name(o.state), csv_escape(o.error).c_str());
  } else {
    if (run->outcomes.empty()) {
      std::fprintf(env.out, "No budget has crossed a threshold as of %s.\n",
                   analyze::as_of_text(l.options.as_of).c_str());
    } else {
      std::vector<std::vector<std::string>> rows;
      for (const auto& o : run->outcomes)
        rows.push_back({o.budget, o.threshold, format_date(o.period_start),
                        std::string(analyze::alert_state_name(o.state)) +
                            (o.error.empty() ? "" : ": " + o.error)});
      print_aligned(env.out, {"budget", "threshold", "period start", "state"}, rows, 4, nullptr);
    }
    if (flags.dry_run && !run->messages.empty()) {
      std::fprintf(env.out,
                   "\nWould post %zu message(s)%s (dry run: nothing sent or remembered):\n",
                   run->messages.size(), target ? (" to " + destination).c_str() : "");
      for (const std::string& m : run->messages) std::fprintf(env.out, "%s\n", m.c_str());
    }
  }
  if (run->failed > 0) {
    std::fprintf(stderr,
                 "aifinops: error: %d alert message(s) could not be delivered; they will be "
                 "tried again on the next run\n",
                 run->failed);
    return kExitError;
  }
  return kExitOk;
}

void add_common_options(CLI::App* cmd, BudgetsFlags& flags) {
  cmd->add_option("--db", flags.db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option(
      "--config", flags.config,
      "Policy file with the budgets (default: $AIFINOPS_CONFIG, or ./policy.yaml if present)");
  cmd->add_option(
      "--as-of", flags.as_of,
      "When the status is taken: a date means the end of that day (2025-10-20), a month "
      "its end, or an RFC 3339 time; default: now");
  cmd->add_option("--budget", flags.names, "Only the budget with this name; repeat for more");
  cmd->add_option("--history", flags.history, "Days of history the forecast learns from, at most")
      ->capture_default_str();
  cmd->add_option("--interval", flags.interval, "Central interval of the period forecast, percent")
      ->capture_default_str();
  cmd->add_option("--format", flags.format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
}

}  // namespace

void add_budgets_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  CLI::App* cmd = app.add_subcommand(
      "budgets",
      "Budgets from policy.yaml: status (actual, forecast, % used, exhaustion date) and alerts.");
  cmd->require_subcommand(1);

  auto status_flags = std::make_shared<BudgetsFlags>();
  CLI::App* status = cmd->add_subcommand("status",
                                         "Actual spend, the forecast for the period, % used and "
                                         "the projected exhaustion date of every budget.");
  add_common_options(status, *status_flags);
  status->footer(
      "Examples:\n"
      "  aifinops budgets status\n"
      "  aifinops budgets status --as-of 2025-10-20 --format json\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  status->callback([status_flags, &exit_code, env] { exit_code = run_status(*status_flags, env); });

  auto alert_flags = std::make_shared<BudgetsFlags>();
  CLI::App* alert = cmd->add_subcommand(
      "alert",
      "Post a Slack-compatible message for every budget threshold newly crossed; each budget, "
      "threshold and period alerts once (remembered in the ledger).");
  add_common_options(alert, *alert_flags);
  alert->add_option(
      "--webhook", alert_flags->webhook,
      std::string("Where to POST the messages (Slack incoming webhook or compatible); "
                  "default: $") +
          kWebhookVariable);
  alert->add_flag("--dry-run", alert_flags->dry_run,
                  "Print the messages that would be sent; send nothing and remember nothing");
  alert
      ->add_option("--timeout", alert_flags->timeout_s,
                   "Seconds to wait for the webhook, per message")
      ->capture_default_str();
  alert->footer(
      "Examples:\n"
      "  aifinops budgets alert --dry-run\n"
      "  aifinops budgets alert --webhook https://hooks.slack.com/services/T000/B000/XXXX\n"
      "Exit codes: 0 ok, 1 error (including a message that could not be delivered), 2 bad flags.");
  alert->callback([alert_flags, &exit_code, env] { exit_code = run_alert(*alert_flags, env); });
}

}  // namespace aifinops::cli
