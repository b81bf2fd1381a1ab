// Writing JSON text by hand where a JSON library would be overkill (report rows, spool
// lines, error bodies): the string escaping every writer needs, in one place.
#pragma once

#include <string>
#include <string_view>

namespace aifinops {

/// The JSON escape of `s`, without surrounding quotes: \" \\ \n \r \t and \u00XX for the
/// other control characters. Other bytes (UTF-8 included) are copied as they are.
std::string json_escape(std::string_view s);

/// Appends `s` as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

}  // namespace aifinops
