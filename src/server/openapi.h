// The OpenAPI 3 document of the REST API (GET /api/v1/openapi.json), built from the
// endpoints' parameter lists so that it always lists what the server accepts.
#pragma once

#include <string>
#include <vector>

namespace aifinops::server {

struct OpenApiParameter {
  std::string name;
  std::string description;
  bool array = false;  ///< comma list or repeated
  bool flag = false;   ///< true/false
};

struct OpenApiEndpoint {
  std::string path;  ///< under /api/v1/ ("report"), or absolute ("/metrics")
  std::string summary;
  std::vector<OpenApiParameter> parameters;
  std::string produces = "application/json";  ///< also text/csv when `csv`
  bool csv = false;
};

/// The document: every endpoint (plus /metrics), bearer auth, the error shape.
std::string openapi_json(const std::vector<OpenApiEndpoint>& endpoints);

}  // namespace aifinops::server
