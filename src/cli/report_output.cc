#include "cli/report_output.h"

#include <algorithm>
#include <string>
#include <vector>

namespace aifinops::cli {
namespace {

std::string format_value(ledger::Metric metric, __int128 value, bool for_table) {
  if (!ledger::metric_is_decimal(metric)) return format_decimal(value * kNanosPerUnit);
  if (for_table && (ledger::metric_is_money(metric) || metric == ledger::Metric::kGpuHours))
    return format_decimal_fixed(value, 2);
  return format_decimal(value);
}

std::string percent(__int128 part, __int128 whole) {
  if (whole == 0) return "";
  // One decimal, rounded half away from zero, computed in integers.
  __int128 tenths = mul_div_round(part, 1000, whole);
  bool negative = tenths < 0;
  if (negative) tenths = -tenths;
  return std::string(negative ? "-" : "") + std::to_string((long long)(tenths / 10)) + "." +
         std::to_string((long long)(tenths % 10)) + "%";
}

}  // namespace

void print_report(std::FILE* out, const ledger::QuerySpec& spec, const ledger::QueryResult& result,
                  OutputFormat format) {
  std::string metric(ledger::metric_name(spec.metric));
  if (format == OutputFormat::kCsv) {
    std::string line;
    for (const ledger::Dimension& d : spec.group_by) line += csv_escape(d.label) + ",";
    line += metric + "\n";
    std::fputs(line.c_str(), out);
    for (const ledger::QueryRow& row : result.rows) {
      line.clear();
      for (const std::string& k : row.keys) line += csv_escape(k) + ",";
      line += format_value(spec.metric, row.value, false) + "\n";
      std::fputs(line.c_str(), out);
    }
    return;
  }
  if (format == OutputFormat::kJson) {
    std::string s = "{\"metric\":\"" + metric + "\",\"rows\":[";
    for (size_t r = 0; r < result.rows.size(); ++r) {
      const ledger::QueryRow& row = result.rows[r];
      s += r ? ",{" : "{";
      for (size_t i = 0; i < row.keys.size(); ++i)
        s += "\"" + json_escape(spec.group_by[i].label) + "\":\"" + json_escape(row.keys[i]) + "\",";
      s += "\"" + metric + "\":" + format_value(spec.metric, row.value, false) + "}";
    }
    s += "],\"total\":" + format_value(spec.metric, result.total, false) + "}\n";
    std::fputs(s.c_str(), out);
    return;
  }
  // Table: aligned columns, numbers right-aligned, a share column and a total line.
  std::vector<std::string> header;
  for (const ledger::Dimension& d : spec.group_by) header.push_back(d.label);
  header.push_back(metric);
  header.push_back("share");
  std::vector<std::vector<std::string>> cells;
  for (const ledger::QueryRow& row : result.rows) {
    std::vector<std::string> line = row.keys;
    line.push_back(format_value(spec.metric, row.value, true));
    line.push_back(percent(row.value, result.total));
    cells.push_back(std::move(line));
  }
  std::vector<std::string> total_line(spec.group_by.size(), "");
  if (!total_line.empty()) total_line[0] = "total";
  total_line.push_back(format_value(spec.metric, result.total, true));
  total_line.push_back(result.rows.empty() ? "" : "100.0%");
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& line) {
    for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  };
  measure(header);
  for (const auto& line : cells) measure(line);
  measure(total_line);
  size_t numeric_from = spec.group_by.size();
  auto print_line = [&](const std::vector<std::string>& line) {
    std::string s;
    for (size_t i = 0; i < line.size(); ++i) {
      size_t pad = width[i] - line[i].size();
      if (i > 0) s += "  ";
      if (i >= numeric_from) s += std::string(pad, ' ') + line[i];
      else s += line[i] + (i + 1 < line.size() ? std::string(pad, ' ') : "");
    }
    s += "\n";
    std::fputs(s.c_str(), out);
  };
  print_line(header);
  size_t total_width = 0;
  for (size_t w : width) total_width += w + 2;
  std::string rule(total_width - 2, '-');
  std::fprintf(out, "%s\n", rule.c_str());
  for (const auto& line : cells) print_line(line);
  std::fprintf(out, "%s\n", rule.c_str());
  print_line(total_line);
}

}  // namespace aifinops::cli
