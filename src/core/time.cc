#include "core/time.h"

#include <cstdio>

namespace aifinops {
namespace {

bool digits(std::string_view s, size_t pos, size_t count, int& out) {
  if (pos + count > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    unsigned d = (unsigned)(s[i] - '0');
    if (d > 9) return false;
    v = v * 10 + (int)d;
  }
  out = v;
  return true;
}

constexpr int64_t kDay = 86400;

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

// Howard Hinnant's public-domain civil calendar algorithms.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = (int64_t)yoe + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

std::optional<EpochSeconds> parse_timestamp(std::string_view s, TimestampStyle* style) {
  int year, month, day;
  if (!digits(s, 0, 4, year) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, month) ||
      s[7] != '-' || !digits(s, 8, 2, day))
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31) return std::nullopt;
  int64_t t = days_from_civil(year, (unsigned)month, (unsigned)day) * kDay;
  if (s.size() == 10) {
    if (style) *style = TimestampStyle::kDateOnly;
    return t;
  }
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return std::nullopt;
  int hour, minute, second = 0;
  if (!digits(s, 11, 2, hour) || s.size() < 16 || s[13] != ':' || !digits(s, 14, 2, minute))
    return std::nullopt;
  size_t i = 16;
  if (i < s.size() && s[i] == ':') {
    if (!digits(s, 17, 2, second)) return std::nullopt;
    i = 19;
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    }
  }
  // 24:00:00 is allowed by ISO 8601 as the end of a day (some exports write it).
  if (hour > 24 || minute > 59 || second > 60 || (hour == 24 && (minute || second)))
    return std::nullopt;
  t += hour * 3600 + minute * 60 + second;
  TimestampStyle st = TimestampStyle::kRfc3339;
  if (i == s.size()) {
    st = TimestampStyle::kNoZone;
  } else if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) {
  } else if (s[i] == '+' || s[i] == '-') {
    int oh, om = 0;
    if (!digits(s, i + 1, 2, oh)) return std::nullopt;
    size_t j = i + 3;
    if (j < s.size() && s[j] == ':') ++j;
    if (j < s.size()) {
      if (!digits(s, j, 2, om)) return std::nullopt;
      j += 2;
    }
    if (j != s.size() || oh > 23 || om > 59) return std::nullopt;
    int offset = oh * 3600 + om * 60;
    t -= s[i] == '+' ? offset : -offset;
  } else {
    return std::nullopt;
  }
  if (style) *style = st;
  return t;
}

std::string format_timestamp(EpochSeconds t) {
  int64_t days = floor_div(t, kDay), secs = t - days * kDay;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d,
                (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
  return buf;
}

std::string format_date(EpochSeconds t) { return format_timestamp(t).substr(0, 10); }
std::string format_month(EpochSeconds t) { return format_timestamp(t).substr(0, 7); }

EpochSeconds floor_day(EpochSeconds t) { return floor_div(t, kDay) * kDay; }

EpochSeconds floor_week(EpochSeconds t) {
  int64_t days = floor_div(t, kDay);
  int64_t since_monday = ((days + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday
  return (days - since_monday) * kDay;
}

EpochSeconds floor_month(EpochSeconds t) {
  int64_t y;
  unsigned m, d;
  civil_from_days(floor_div(t, kDay), y, m, d);
  return days_from_civil(y, m, 1) * kDay;
}

EpochSeconds next_month(EpochSeconds t) {
  int64_t y;
  unsigned m, d;
  civil_from_days(floor_div(t, kDay), y, m, d);
  if (++m == 13) {
    m = 1;
    ++y;
  }
  return days_from_civil(y, m, 1) * kDay;
}

}  // namespace aifinops
