// Renders a ledger query as an aligned table, CSV or JSON (the report command's output,
// reused by demo and showback).
#pragma once

#include <cstdio>

#include "cli/common.h"
#include "ledger/ledger.h"

namespace aifinops::cli {

/// Table: aligned, money to 2 decimals, a total line. CSV: header of dimension labels then
/// the metric name; full precision. JSON: {"rows":[{...}],"total":...}.
void print_report(std::FILE* out, const ledger::QuerySpec& spec, const ledger::QueryResult& result,
                  OutputFormat format);

}  // namespace aifinops::cli
