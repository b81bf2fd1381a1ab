// gateway.yaml: the gateway's listener, ledger, upstreams, routes, virtual keys with their
// tags and limits, budgets, cache and price overrides, read into a GatewayConfig. Every
// error names the file, the line, the key path and what was expected. The full reference
// is docs/configuration.md ("Gateway").
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "gateway/gateway_config.h"

namespace aifinops::config {

Result<gateway::GatewayConfig> parse_gateway_yaml(std::string_view text, std::string_view file_name);
Result<gateway::GatewayConfig> load_gateway_config(const std::string& path);

}  // namespace aifinops::config
