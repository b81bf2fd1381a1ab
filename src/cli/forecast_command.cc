// aifinops forecast (being written).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace aifinops::cli {

void add_forecast_command(CLI::App&, int&) {}

}  // namespace aifinops::cli
