// libFuzzer target for the number and time parsers every reader relies on: parse_decimal
// (exact and rounding) and parse_timestamp never crash, and what they parse survives a
// round trip through the formatters: format_decimal(d) parses back to d, and an RFC 3339
// timestamp in years 1970-9999 formats to text that parses back to the same second.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/money.h"
#include "core/time.h"

namespace {

using namespace aifinops;

void check_decimal(std::string_view text, bool round) {
  Decimal d;
  DecimalError error;
  if (!parse_decimal(text, d, &error, round)) return;
  std::string formatted = format_decimal(d.nanos);
  Decimal back;
  if (!parse_decimal(formatted, back)) __builtin_trap();
  if (back.nanos != d.nanos) __builtin_trap();
  // The wide overload must agree with the narrow one.
  if (format_decimal((__int128)d.nanos) != formatted) __builtin_trap();
  // Rounded output always parses (it may round, so only the parse is checked). Rounding
  // up the largest values can leave the Decimal range, so those are skipped.
  constexpr int64_t kRoundingRoom = 9'000'000'000'000'000'000;
  if (d.nanos > kRoundingRoom || d.nanos < -kRoundingRoom) return;
  for (int places = 0; places <= 9; ++places) {
    std::string fixed = format_decimal_fixed(d.nanos, places);
    Decimal f;
    if (!parse_decimal(fixed, f)) __builtin_trap();
  }
}

}  // namespace

// The build compiles with -fsanitize=undefined, which by default reports and carries on:
// make every report a crash that libFuzzer records, with a stack. (Overridable with
// UBSAN_OPTIONS at run time.)
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_decimal(text, false);
  check_decimal(text, true);

  TimestampStyle style;
  auto t = parse_timestamp(text, &style);
  constexpr EpochSeconds kYear10000 = 253402300800;  // 10000-01-01T00:00:00Z
  if (t && *t >= 0 && *t < kYear10000) {
    std::string formatted = format_timestamp(*t);
    TimestampStyle back_style;
    auto back = parse_timestamp(formatted, &back_style);
    if (!back || *back != *t || back_style != TimestampStyle::kRfc3339) __builtin_trap();
  }
  return 0;
}
