// aifinops tags (being written).
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace aifinops::cli {

void add_tags_command(CLI::App&, int&) {}

}  // namespace aifinops::cli
