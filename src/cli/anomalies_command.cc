// aifinops anomalies (being written).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace aifinops::cli {

void add_anomalies_command(CLI::App&, int&) {}

}  // namespace aifinops::cli
