// aifinops tags audit: tag compliance against the policy (R6): share of cost fully
// allocated, coverage per dimension, values the policy does not allow, untagged resources.
#include <CLI/CLI.hpp>
#include <memory>

#include "allocate/compliance.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_output.h"

namespace aifinops::cli {
namespace {

struct AuditFlags {
  std::string db;
  std::string config;
  std::string from, to, period;
  size_t top = 10;
  std::string format = "table";
};

std::string money(__int128 nanos, bool table) {
  return table ? format_decimal_fixed(nanos, 2) : format_decimal(nanos);
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

/// Long resource ids (Azure paths) would make the table unreadable: keep the end.
std::string shorten(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return "..." + s.substr(s.size() - (max - 3));
}

std::string range_text(const std::optional<EpochSeconds>& from,
                       const std::optional<EpochSeconds>& to) {
  if (!from && !to) return "all time";
  return (from ? format_date(*from) : std::string("the start")) + " to " +
         (to ? format_date(*to) + " (exclusive)" : std::string("the end"));
}

void print_json(std::FILE* out, const allocate::ComplianceReport& r,
                const std::optional<EpochSeconds>& from, const std::optional<EpochSeconds>& to,
                const std::string& policy_source) {
  auto pct = [&](__int128 part) {
    std::string p = percent_text(part, r.total, 2);
    return p.empty() ? std::string("null") : p;
  };
  std::string s = "{";
  s += "\"from\":" + (from ? "\"" + format_timestamp(*from) + "\"" : std::string("null"));
  s += ",\"to\":" + (to ? "\"" + format_timestamp(*to) + "\"" : std::string("null"));
  s += ",\"policy\":";
  if (policy_source.empty())
    s += "null";
  else
    append_json_string(s, policy_source);
  s += ",\"total\":" + money(r.total, false);
  s += ",\"allocated\":" + money(r.allocated, false) + ",\"allocated_percent\":" + pct(r.allocated);
  s += ",\"unallocated\":" + money(r.total - r.allocated, false);
  s += ",\"required\":[";
  for (size_t i = 0; i < r.required.size(); ++i) {
    if (i) s += ",";
    append_json_string(s, r.required[i]);
  }
  s += std::string("],\"required_by_default\":") + (r.required_by_default ? "true" : "false");
  s += ",\"dimensions\":[";
  for (size_t i = 0; i < r.dimensions.size(); ++i) {
    const allocate::DimensionCoverage& d = r.dimensions[i];
    s += i ? ",{" : "{";
    s += "\"dimension\":";
    append_json_string(s, d.dimension);
    s += std::string(",\"required\":") + (d.required ? "true" : "false") + ",\"allowed\":[";
    for (size_t k = 0; k < d.allowed.size(); ++k) {
      if (k) s += ",";
      append_json_string(s, d.allowed[k]);
    }
    s += "],\"tagged\":" + money(d.tagged, false) + ",\"tagged_percent\":" + pct(d.tagged) +
         ",\"valid\":" + money(d.valid, false) + ",\"valid_percent\":" + pct(d.valid) + "}";
  }
  s += "],\"violations\":[";
  for (size_t i = 0; i < r.violations.size(); ++i) {
    const allocate::PolicyViolation& v = r.violations[i];
    s += i ? ",{" : "{";
    s += "\"dimension\":";
    append_json_string(s, v.dimension);
    s += ",\"value\":";
    append_json_string(s, v.value);
    s += ",\"effective_cost\":" + money(v.cost, false) + ",\"percent\":" + pct(v.cost) + "}";
  }
  s += "],\"untagged_resource_count\":" + std::to_string(r.untagged_count) +
       ",\"untagged_resources\":[";
  for (size_t i = 0; i < r.untagged.size(); ++i) {
    const allocate::UntaggedResource& u = r.untagged[i];
    s += i ? ",{" : "{";
    s += "\"resource\":";
    append_json_string(s, u.resource);
    s += ",\"resource_name\":";
    append_json_string(s, u.resource_name);
    s += ",\"service\":";
    append_json_string(s, u.service);
    s += ",\"provider\":";
    append_json_string(s, u.provider);
    s += ",\"effective_cost\":" + money(u.cost, false) + ",\"percent\":" + pct(u.cost) +
         ",\"problems\":[";
    for (size_t k = 0; k < u.problems.size(); ++k) {
      if (k) s += ",";
      append_json_string(s, u.problems[k]);
    }
    s += "]}";
  }
  s += "]}\n";
  std::fputs(s.c_str(), out);
}

void print_csv(std::FILE* out, const allocate::ComplianceReport& r) {
  std::string s =
      "section,dimension,value,resource_name,service,provider,problem,effective_cost,percent\n";
  auto line = [&](const std::string& section, const std::string& dimension,
                  const std::string& value, const std::string& name, const std::string& service,
                  const std::string& provider, const std::string& problem, __int128 cost) {
    s += csv_escape(section) + "," + csv_escape(dimension) + "," + csv_escape(value) + "," +
         csv_escape(name) + "," + csv_escape(service) + "," + csv_escape(provider) + "," +
         csv_escape(problem) + "," + money(cost, false) + "," + percent_text(cost, r.total, 2) +
         "\n";
  };
  line("summary", "", "total", "", "", "", "", r.total);
  line("summary", join(r.required, " "), "fully_allocated", "", "", "", "", r.allocated);
  line("summary", join(r.required, " "), "not_fully_allocated", "", "", "", "",
       r.total - r.allocated);
  for (const allocate::DimensionCoverage& d : r.dimensions) {
    line("coverage", d.dimension, "tagged", "", "", "", d.required ? "required" : "", d.tagged);
    line("coverage", d.dimension, "valid", "", "", "", d.required ? "required" : "", d.valid);
  }
  for (const allocate::PolicyViolation& v : r.violations)
    line("violation", v.dimension, v.value, "", "", "", "not allowed", v.cost);
  for (const allocate::UntaggedResource& u : r.untagged)
    line("untagged", "", u.resource, u.resource_name, u.service, u.provider, join(u.problems, "; "),
         u.cost);
  std::fputs(s.c_str(), out);
}

void print_table(std::FILE* out, const allocate::ComplianceReport& r,
                 const std::optional<EpochSeconds>& from, const std::optional<EpochSeconds>& to,
                 const std::string& policy_source) {
  auto pct = [&](__int128 part) {
    std::string p = percent_text(part, r.total, 1);
    return p.empty() ? p : p + "%";
  };
  std::fprintf(out, "Tag compliance, %s; policy: %s\n", range_text(from, to).c_str(),
               policy_source.empty() ? "built-in defaults" : policy_source.c_str());
  std::fprintf(
      out, "Fully allocated: %s of %s (%s); required: %s%s\n\n", money(r.allocated, true).c_str(),
      money(r.total, true).c_str(), pct(r.allocated).c_str(), join(r.required, ", ").c_str(),
      r.required_by_default ? " (the policy requires no dimension; set required: true in it)" : "");
  std::vector<std::vector<std::string>> lines;
  for (const allocate::DimensionCoverage& d : r.dimensions) {
    std::string allowed = d.allowed.empty() ? "any" : join(d.allowed, ", ");
    if (allowed.size() > 40) allowed = allowed.substr(0, 37) + "...";  // the JSON has them all
    lines.push_back({d.dimension, d.required ? "yes" : "", allowed, money(d.tagged, true),
                     pct(d.tagged), money(d.valid, true), pct(d.valid)});
  }
  print_aligned(out, {"dimension", "required", "allowed", "tagged", "tagged %", "valid", "valid %"},
                lines, 3, nullptr);
  std::fprintf(out, "\nValues the policy does not allow\n");
  if (r.violations.empty()) {
    std::fprintf(out, "(none)\n");
  } else {
    lines.clear();
    for (const allocate::PolicyViolation& v : r.violations)
      lines.push_back({v.dimension, v.value, money(v.cost, true), pct(v.cost)});
    print_aligned(out, {"dimension", "value", "effective_cost", "share"}, lines, 2, nullptr);
  }
  std::fprintf(out, "\nResources with unallocated cost (top %zu of %lld)\n", r.untagged.size(),
               (long long)r.untagged_count);
  if (r.untagged.empty()) {
    std::fprintf(out, "(none)\n");
    return;
  }
  lines.clear();
  for (const allocate::UntaggedResource& u : r.untagged) {
    std::string name = u.resource_name != "(none)" ? u.resource_name : shorten(u.resource, 48);
    lines.push_back(
        {name, u.service, u.provider, money(u.cost, true), pct(u.cost), join(u.problems, "; ")});
  }
  print_aligned(out, {"resource", "service", "provider", "effective_cost", "share", "problems"},
                lines, 3, nullptr, 5);
}

int run_audit(const AuditFlags& flags, const CommandEnv& env) {
  allocate::AuditRequest request;
  if (auto r = read_time_flags(flags.period, flags.from, flags.to, request.from, request.to); !r)
    return env.usage_error(r.error().message);
  request.top_resources = flags.top;
  auto policy = env.policy(flags.config);
  if (!policy) return env.report_error(policy.error());
  auto ledger = env.ledger(flags.db);
  if (!ledger) return env.report_error(ledger.error());
  auto report = allocate::audit_tags(**ledger, policy->tags, request);
  if (!report) return env.report_error(report.error());
  switch (output_format_from_name(flags.format)) {
    case OutputFormat::kJson:
      print_json(env.out, *report, request.from, request.to, policy->source);
      break;
    case OutputFormat::kCsv:
      print_csv(env.out, *report);
      break;
    case OutputFormat::kTable:
      print_table(env.out, *report, request.from, request.to, policy->source);
      break;
  }
  return kExitOk;
}

}  // namespace

void add_tags_command(CLI::App& app, int& exit_code, const CommandEnv& env) {
  CLI::App* tags = app.add_subcommand("tags", "Check tags against the policy (tag compliance).");
  tags->require_subcommand(1);
  tags->footer("Run 'aifinops tags audit --help' for the flags. Guide: docs/allocation.md");
  auto flags = std::make_shared<AuditFlags>();
  CLI::App* audit = tags->add_subcommand(
      "audit",
      "Share of cost fully allocated (every required dimension present and allowed), coverage "
      "per dimension, values the policy does not allow and the top resources with unallocated "
      "cost.");
  audit->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  audit->add_option("--config", flags->config,
                    "Policy file with dimensions: aliases, allowed values, required (default: "
                    "$AIFINOPS_CONFIG, or ./policy.yaml if present, else the built-in policy, "
                    "which requires team)");
  audit->add_option("--period", flags->period,
                    "A year (2025), quarter (2025-Q4), month (2025-10) or day");
  audit->add_option("--from", flags->from, "Start, inclusive (2025-10-01)");
  audit->add_option("--to", flags->to, "End, exclusive (2025-11-01)");
  audit
      ->add_option("--top", flags->top,
                   "How many resources with unallocated cost to list; 0 lists all")
      ->capture_default_str();
  audit->add_option("--format", flags->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  audit->footer(
      "Examples:\n"
      "  aifinops tags audit --config policy.yaml\n"
      "  aifinops tags audit --period 2025-10 --top 20\n"
      "  aifinops tags audit --format json | jq .allocated_percent\n"
      "A value is allowed when it equals an allowed entry or matches its * pattern (team-*).\n"
      "Exit codes: 0 ok, 1 error, 2 bad flags.");
  audit->callback([flags, &exit_code, env] { exit_code = run_audit(*flags, env); });
}

}  // namespace aifinops::cli
