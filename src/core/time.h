// UTC timestamps as integer seconds since the Unix epoch, with the lenient ISO 8601
// parsing that real billing exports need ("2024-10-01T00:00:00Z", "+02:00", "2024-10-01 00:00:00").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aifinops {

/// Seconds since 1970-01-01T00:00:00Z.
using EpochSeconds = int64_t;

/// How a timestamp was written, so that readers can report non-conformant ones.
enum class TimestampStyle {
  kRfc3339,        ///< 2024-10-01T00:00:00Z or with an offset: what FOCUS asks for
  kNoZone,         ///< 2024-10-01T00:00:00 or 2024-10-01 00:00:00: read as UTC
  kDateOnly,       ///< 2024-10-01: midnight UTC
};

/// Parses an ISO 8601 date-time (fractional seconds ignored, offsets applied).
/// Returns nullopt if it is not one.
std::optional<EpochSeconds> parse_timestamp(std::string_view text, TimestampStyle* style = nullptr);

/// Days since epoch for a civil date (proleptic Gregorian); and back.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d);

/// "2024-10-01T00:00:00Z"
std::string format_timestamp(EpochSeconds t);
/// "2024-10-01"
std::string format_date(EpochSeconds t);
/// "2024-10"
std::string format_month(EpochSeconds t);

/// Start of the UTC day, ISO week (Monday) and month containing t.
EpochSeconds floor_day(EpochSeconds t);
EpochSeconds floor_week(EpochSeconds t);
EpochSeconds floor_month(EpochSeconds t);
/// The first second of the month after the one containing t.
EpochSeconds next_month(EpochSeconds t);

}  // namespace aifinops
