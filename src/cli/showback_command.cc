// aifinops showback: one statement per team (or project, cost center, ...) for a period,
// with its resources, models, tokens, direct cost and share of shared costs (R9), for
// chargeback.
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "allocate/shared_costs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_output.h"

namespace aifinops::cli {
namespace {

namespace fs = std::filesystem;

struct ShowbackFlags {
  std::string db;
  std::string config;
  std::string by = "team";
  std::string from, to, period;
  std::string format = "table";
  std::string output_dir;
  size_t lines = 10;
};

/// What the statements cover, as printed.
struct StatementPeriod {
  std::optional<EpochSeconds> from, to;
  std::string label;  ///< "2025-10", or "2025-10-01..2025-10-15"
};

std::string money(__int128 nanos, bool table) {
  return table ? format_decimal_fixed(nanos, 2) : format_decimal(nanos);
}

std::string count_text(__int128 n) { return format_decimal(n * kNanosPerUnit); }

std::string csv_header(const std::string& by) {
  return "period," + csv_escape(by) +
         ",line,service,resource,resource_name,model,shared_rule,tokens,effective_cost\n";
}

/// A statement's CSV lines: usage lines, one line per shared-cost rule it received from,
/// then its total.
std::string statement_csv(const allocate::Showback& sb, const allocate::ShowbackStatement& s,
                          const std::string& period) {
  std::string out;
  std::string head = csv_escape(period) + "," + csv_escape(s.owner) + ",";
  for (const allocate::ShowbackLine& l : s.lines)
    out += head + "usage," + csv_escape(l.service) + "," + csv_escape(l.resource) + "," +
           csv_escape(l.resource_name) + "," + csv_escape(l.model) + ",," + count_text(l.tokens) +
           "," + money(l.cost, false) + "\n";
  for (size_t r = 0; r < s.shared.size(); ++r)
    if (s.shared[r] != 0)
      out += head + "shared,,,,," + csv_escape(sb.rule_names[r]) + ",0," +
             money(s.shared[r], false) + "\n";
  out += head + "total,,,,,," + count_text(s.tokens) + "," + money(s.total, false) + "\n";
  return out;
}

std::string statement_json(const allocate::Showback& sb, const allocate::ShowbackStatement& s) {
  std::string out = "{\"owner\":";
  append_json_string(out, s.owner);
  __int128 shared = 0;
  for (__int128 v : s.shared) shared += v;
  out += ",\"direct\":" + money(s.direct, false) + ",\"shared\":" + money(shared, false) +
         ",\"shared_by_rule\":{";
  bool first = true;
  for (size_t r = 0; r < s.shared.size(); ++r) {
    if (s.shared[r] == 0) continue;
    out += first ? "" : ",";
    append_json_string(out, sb.rule_names[r]);
    out += ":" + money(s.shared[r], false);
    first = false;
  }
  std::string share = percent_text(s.total, sb.total, 2);
  out += "},\"effective_cost\":" + money(s.total, false) +
         ",\"share\":" + (share.empty() ? "null" : share) + ",\"tokens\":" + count_text(s.tokens) +
         ",\"models\":[";
  for (size_t i = 0; i < s.models.size(); ++i) {
    out += i ? ",{\"model\":" : "{\"model\":";
    append_json_string(out, s.models[i].model);
    out += ",\"tokens\":" + count_text(s.models[i].tokens) +
           ",\"effective_cost\":" + money(s.models[i].cost, false) + "}";
  }
  out += "],\"lines\":[";
  for (size_t i = 0; i < s.lines.size(); ++i) {
    const allocate::ShowbackLine& l = s.lines[i];
    out += i ? ",{\"service\":" : "{\"service\":";
    append_json_string(out, l.service);
    out += ",\"resource\":";
    append_json_string(out, l.resource);
    out += ",\"resource_name\":";
    append_json_string(out, l.resource_name);
    out += ",\"model\":";
    append_json_string(out, l.model);
    out +=
        ",\"tokens\":" + count_text(l.tokens) + ",\"effective_cost\":" + money(l.cost, false) + "}";
  }
  return out + "]}";
}

std::string statement_table(const allocate::Showback& sb, const allocate::ShowbackStatement& s,
                            const std::string& by, size_t max_lines) {
  std::string out;
  __int128 shared = 0;
  for (__int128 v : s.shared) shared += v;
  std::string share = percent_text(s.total, sb.total, 1);
  out += "== " + by + " " + s.owner + ": " + money(s.total, true) +
         (share.empty() ? "" : " (" + share + "% of total)") + "\n";
  out += "   direct " + money(s.direct, true) + ", shared " + money(shared, true);
  std::string parts;
  for (size_t r = 0; r < s.shared.size(); ++r)
    if (s.shared[r] != 0)
      parts += (parts.empty() ? "" : ", ") + sb.rule_names[r] + " " + money(s.shared[r], true);
  if (!parts.empty()) out += " (" + parts + ")";
  out += ", tokens " + group_thousands(count_text(s.tokens)) + "\n";
  if (!s.models.empty()) {
    std::vector<std::vector<std::string>> lines;
    for (const allocate::ShowbackModel& m : s.models)
      lines.push_back({m.model, group_thousands(count_text(m.tokens)), money(m.cost, true)});
    out += aligned_text({"model", "tokens", "effective_cost"}, lines, 1, nullptr, SIZE_MAX, "   ");
    out += "\n";
  }
  std::vector<std::vector<std::string>> lines;
  __int128 rest_cost = 0;
  size_t rest = 0;
  for (size_t i = 0; i < s.lines.size(); ++i) {
    const allocate::ShowbackLine& l = s.lines[i];
    if (max_lines > 0 && i >= max_lines) {
      rest_cost += l.cost;
      ++rest;
      continue;
    }
    std::string resource = l.resource_name != "(none)" ? l.resource_name : l.resource;
    if (resource.size() > 48) resource = "..." + resource.substr(resource.size() - 45);
    lines.push_back(
        {l.service, resource, l.model, group_thousands(count_text(l.tokens)), money(l.cost, true)});
  }
  if (rest > 0)
    lines.push_back({"(" + std::to_string(rest) + " more)", "", "", "", money(rest_cost, true)});
  if (!lines.empty())
    out += aligned_text({"service", "resource", "model", "tokens", "effective_cost"}, lines, 3,
                        nullptr, SIZE_MAX, "   ");
  return out;
}

void print_summary_table(const allocate::Showback& sb, const std::string& by) {
  std::vector<std::vector<std::string>> lines;
  __int128 direct = 0, shared_total = 0, tokens = 0;
  for (const allocate::ShowbackStatement& s : sb.statements) {
    __int128 shared = 0;
    for (__int128 v : s.shared) shared += v;
    direct += s.direct;
    shared_total += shared;
    tokens += s.tokens;
    std::string share = percent_text(s.total, sb.total, 1);
    lines.push_back({s.owner, money(s.direct, true), money(shared, true), money(s.total, true),
                     share.empty() ? "" : share + "%", group_thousands(count_text(s.tokens))});
  }
  std::vector<std::string> total{"total",
                                 money(direct, true),
                                 money(shared_total, true),
                                 money(sb.total, true),
                                 sb.statements.empty() ? "" : "100.0%",
                                 group_thousands(count_text(tokens))};
  print_aligned(stdout, {by, "direct", "shared", "effective_cost", "share", "tokens"}, lines, 1,
                &total);
}

/// A file name part from an owner value: letters, digits, '.', '-', '_' kept.
std::string file_safe(const std::string& s) {
  std::string out;
  for (char c : s)
    out += (std::isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_') ? c : '_';
  while (!out.empty() && out.front() == '_') out.erase(out.begin());
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "none" : out;
}

Result<StatementPeriod> statement_period(const ShowbackFlags& flags, ledger::Ledger& ledger) {
  StatementPeriod p;
  if (!flags.period.empty() || !flags.from.empty() || !flags.to.empty()) {
    if (auto r = read_time_flags(flags.period, flags.from, flags.to, p.from, p.to); !r)
      return Unexpected{Error{ErrorCode::kInvalidArgument, r.error().message}};
    p.label = !flags.period.empty() ? flags.period
                                    : (p.from ? format_date(*p.from) : std::string()) + ".." +
                                          (p.to ? format_date(*p.to) : std::string());
    return p;
  }
  // No period given: the latest month with records.
  auto latest = latest_month(ledger);
  if (!latest) return Unexpected{latest.error()};
  if (!*latest)
    return make_error(ErrorCode::kNotFound,
                      "the ledger has no records yet; ingest a bill first (aifinops ingest FILE)");
  p.label = format_month((*latest)->from);
  p.from = (*latest)->from;
  p.to = (*latest)->to;
  return p;
}

int run_showback(const ShowbackFlags& flags) {
  auto policy = load_policy(flags.config);
  if (!policy) return report_error(policy.error());
  auto by = resolve_dimension(*policy, flags.by);
  if (!by) return usage_error("--by: " + by.error().message);
  if (by->kind == ledger::Dimension::Kind::kTime)
    return usage_error("--by " + flags.by +
                       ": statements are per owner (team, project, cost_center, ...); "
                       "choose the time range with --period");
  if (!flags.period.empty() || !flags.from.empty() || !flags.to.empty()) {
    std::optional<EpochSeconds> from, to;
    if (auto r = read_time_flags(flags.period, flags.from, flags.to, from, to); !r)
      return usage_error(r.error().message);
  }
  auto ledger = open_existing_ledger(flags.db);
  if (!ledger) return report_error(ledger.error());
  auto period = statement_period(flags, **ledger);
  if (!period) return report_error(period.error());
  auto sb = allocate::build_showback(**ledger, policy->tags, policy->shared_costs, *by,
                                     period->from, period->to);
  if (!sb) return report_error(sb.error());
  OutputFormat format = output_format_from_name(flags.format);

  auto document = [&](const std::vector<const allocate::ShowbackStatement*>& statements) {
    std::string out;
    if (format == OutputFormat::kCsv) {
      out = csv_header(flags.by);
      for (const auto* s : statements) out += statement_csv(*sb, *s, period->label);
    } else if (format == OutputFormat::kJson) {
      out = "{\"by\":";
      append_json_string(out, flags.by);
      out += ",\"period\":";
      append_json_string(out, period->label);
      out += ",\"from\":" +
             (period->from ? "\"" + format_timestamp(*period->from) + "\"" : std::string("null"));
      out += ",\"to\":" +
             (period->to ? "\"" + format_timestamp(*period->to) + "\"" : std::string("null"));
      out += ",\"total\":" + money(sb->total, false) + ",\"statements\":[";
      for (size_t i = 0; i < statements.size(); ++i)
        out += (i ? "," : "") + statement_json(*sb, *statements[i]);
      out += "],\"rules\":";
      append_rules_json(out, policy->shared_costs, sb->rules, ledger::Metric::kEffectiveCost);
      out += "}\n";
    } else {
      for (const auto* s : statements)
        out += statement_table(*sb, *s, flags.by, flags.lines) + "\n";
    }
    return out;
  };

  if (!flags.output_dir.empty()) {
    std::error_code ec;
    fs::create_directories(flags.output_dir, ec);
    if (ec)
      return report_error({ErrorCode::kIo, flags.output_dir + ": cannot create the directory: " +
                                               ec.message() + " (choose another --output-dir)"});
    const char* ext = format == OutputFormat::kCsv    ? ".csv"
                      : format == OutputFormat::kJson ? ".json"
                                                      : ".txt";
    for (const allocate::ShowbackStatement& s : sb->statements) {
      fs::path file = fs::path(flags.output_dir) /
                      ("showback-" + file_safe(period->label) + "-" + file_safe(s.owner) + ext);
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out << document({&s});
      out.close();
      if (!out)
        return report_error({ErrorCode::kIo, file.string() + ": cannot write the statement"});
      std::printf("%s  %s\n", file.string().c_str(), money(s.total, true).c_str());
    }
    return kExitOk;
  }
  std::vector<const allocate::ShowbackStatement*> all;
  for (const allocate::ShowbackStatement& s : sb->statements) all.push_back(&s);
  if (format == OutputFormat::kTable) {
    std::printf("Showback by %s, %s%s\n\n", flags.by.c_str(), period->label.c_str(),
                period->from && period->to ? (" (" + format_date(*period->from) + " to " +
                                              format_date(*period->to) + ", exclusive)")
                                                 .c_str()
                                           : "");
    print_summary_table(*sb, flags.by);
    print_rule_lines(stdout, policy->shared_costs, sb->rules, ledger::Metric::kEffectiveCost);
    std::printf("\n");
  }
  std::fputs(document(all).c_str(), stdout);
  return kExitOk;
}

}  // namespace

void add_showback_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ShowbackFlags>();
  CLI::App* cmd = app.add_subcommand(
      "showback",
      "One statement per team (or other owner) for a period: its resources, models, tokens, own "
      "cost and share of shared costs, for showback and chargeback.");
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--config", flags->config,
                  "Policy file with shared_costs rules and custom dimensions (default: "
                  "$AIFINOPS_CONFIG, or ./policy.yaml if present)");
  cmd->add_option("--by", flags->by,
                  "Who gets a statement: team, project, cost_center, environment, a custom "
                  "dimension, ...")
      ->capture_default_str();
  cmd->add_option("--period", flags->period,
                  "A year (2025), quarter (2025-Q4), month (2025-10) or day; default: the latest "
                  "month in the ledger");
  cmd->add_option("--from", flags->from, "Start, inclusive (2025-10-01), instead of --period");
  cmd->add_option("--to", flags->to, "End, exclusive (2025-11-01), instead of --period");
  cmd->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->add_option("--output-dir", flags->output_dir,
                  "Write one file per statement here (showback-PERIOD-OWNER.csv, .json or .txt) "
                  "instead of printing them");
  cmd->add_option("--lines", flags->lines,
                  "Table format: usage lines shown per statement; 0 shows all")
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  aifinops showback --by team --period 2025-10\n"
      "  aifinops showback --by team --period 2025-10 --format csv > chargeback-2025-10.csv\n"
      "  aifinops showback --by cost_center --period 2025-Q4 --format json --output-dir "
      "statements/\n"
      "Statements add up to the period's total: shared costs are split by the policy's\n"
      "shared_costs rules; what no tag or rule covers is the (unallocated) statement.\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  cmd->callback([flags, &exit_code] { exit_code = run_showback(*flags); });
}

}  // namespace aifinops::cli
