#include "server/openapi.h"

#include "core/json_text.h"

namespace aifinops::server {
namespace {

std::string quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string responses(bool csv, const char* produces) {
  std::string ok =
      "{\"description\":\"The same JSON as the CLI command's --format json\","
      "\"content\":{" +
      quoted(produces) + ":{\"schema\":{\"type\":\"object\"}}";
  if (csv) ok += ",\"text/csv\":{\"schema\":{\"type\":\"string\"}}";
  ok += "}}";
  std::string error_ref =
      "{\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/"
      "Error\"}}},\"description\":";
  return "{\"200\":" + ok + ",\"400\":" + error_ref +
         "\"A parameter is wrong; error.parameter names it\"},\"401\":" + error_ref +
         "\"No token, or an unknown one\"},\"403\":" + error_ref +
         "\"The token may not see what was asked for\"},\"500\":" + error_ref +
         "\"The analysis failed\"}}";
}

}  // namespace

std::string openapi_json(const std::vector<OpenApiEndpoint>& endpoints) {
  std::string s =
      "{\"openapi\":\"3.0.3\",\"info\":{\"title\":\"aifinops API\",\"version\":\"1\","
      "\"description\":\"Every analysis of the aifinops CLI over HTTP: the parameters are the "
      "command's flags without the leading --, the answer is its --format json output. See "
      "docs/api.md.\"},\"servers\":[{\"url\":\"/\"}],"
      "\"security\":[{\"bearer\":[]}],\"paths\":{";
  bool first = true;
  for (const OpenApiEndpoint& e : endpoints) {
    s += first ? "" : ",";
    first = false;
    const std::string path = e.path.front() == '/' ? e.path : "/api/v1/" + e.path;
    s += quoted(path) + ":{\"get\":{\"summary\":" + quoted(e.summary) +
         ",\"operationId\":" + quoted(e.path == "tags/audit" ? "tags_audit" : e.path) +
         ",\"parameters\":[";
    for (size_t i = 0; i < e.parameters.size(); ++i) {
      const OpenApiParameter& p = e.parameters[i];
      s += i ? "," : "";
      s += "{\"name\":" + quoted(p.name) +
           ",\"in\":\"query\",\"required\":false,\"description\":" + quoted(p.description) +
           ",\"schema\":";
      if (p.flag)
        s += "{\"type\":\"boolean\"}";
      else if (p.array)
        s += "{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"style\":\"form\","
             "\"explode\":true";
      else
        s += "{\"type\":\"string\"}";
      s += "}";
    }
    s += "],\"responses\":" + responses(e.csv, e.produces.c_str()) + "}}";
  }
  s += ",\"/api/v1/openapi.json\":{\"get\":{\"summary\":\"This document (no token needed)\","
       "\"security\":[],\"responses\":{\"200\":{\"description\":\"OpenAPI 3\"}}}}";
  s += "},\"components\":{\"securitySchemes\":{\"bearer\":{\"type\":\"http\",\"scheme\":"
       "\"bearer\",\"description\":\"A token from api_tokens in the policy file; "
       "?access_token= works too, for links such as CSV downloads\"}},"
       "\"schemas\":{\"Error\":{\"type\":\"object\",\"properties\":{\"error\":{\"type\":"
       "\"object\",\"properties\":{\"message\":{\"type\":\"string\"},\"parameter\":{\"type\":"
       "\"string\",\"nullable\":true}}}}}}}}\n";
  return s;
}

}  // namespace aifinops::server
