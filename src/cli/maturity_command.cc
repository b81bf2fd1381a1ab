// aifinops maturity (being written).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace aifinops::cli {

void add_maturity_command(CLI::App&, int&) {}

}  // namespace aifinops::cli
