// aifinops kpi (being written).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace aifinops::cli {

void add_kpi_command(CLI::App&, int&) {}

}  // namespace aifinops::cli
