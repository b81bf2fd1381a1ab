// Writing the Prometheus text exposition format by hand (the gateway's and serve's /metrics):
// the label-value escaping both need, in one place.
#pragma once

#include <string>
#include <string_view>

namespace aifinops {

/// A label value as Prometheus text wants it between the quotes: \\ for a backslash, \" for a
/// quote, \n for a line break; other bytes as they are.
std::string prometheus_label_value(std::string_view value);

}  // namespace aifinops
