// aifinops budgets (being written).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace aifinops::cli {

void add_budgets_command(CLI::App&, int&) {}

}  // namespace aifinops::cli
