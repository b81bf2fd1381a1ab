// Money and exact decimals: fixed-point integers in nano-units (1e-9), never binary floats.
// Parsing and formatting are exact; sums that could overflow use 128 bits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aifinops {

/// Nano-units per unit (1 USD = 1,000,000,000 nano-USD).
inline constexpr int64_t kNanosPerUnit = 1'000'000'000;

/// An exact decimal with 9 fractional digits, stored as an integer count of nano-units.
/// Used for money and for quantities (tokens, hours, GB). Plain value type.
struct Decimal {
  int64_t nanos = 0;

  static constexpr Decimal from_units(int64_t units) { return Decimal{units * kNanosPerUnit}; }
  constexpr Decimal operator+(Decimal o) const { return Decimal{nanos + o.nanos}; }
  constexpr Decimal operator-(Decimal o) const { return Decimal{nanos - o.nanos}; }
  constexpr Decimal operator-() const { return Decimal{-nanos}; }
  Decimal& operator+=(Decimal o) {
    nanos += o.nanos;
    return *this;
  }
  constexpr auto operator<=>(const Decimal&) const = default;
};

/// Money is a Decimal in the record's currency (ISO 4217 code kept beside it).
using Money = Decimal;

/// Why a decimal did not parse.
enum class DecimalError { kEmpty, kSyntax, kOverflow, kTooPrecise };

/// Parses "12", "-0.5", "1.25e-7", "+3.", ".5" exactly. Digits beyond 9 decimals must be
/// zeros unless `round` is true, in which case they are rounded half-to-even.
/// Returns the error kind on failure; no exceptions, no allocation.
bool parse_decimal(std::string_view text, Decimal& out, DecimalError* error = nullptr,
                   bool round = false);
std::optional<Decimal> parse_decimal(std::string_view text);

/// Human text for a DecimalError.
const char* decimal_error_text(DecimalError e);

/// Full precision, trailing zeros trimmed: 1.5, 0.000000001, -3, 0.
std::string format_decimal(int64_t nanos);
std::string format_decimal(__int128 nanos);
/// Rounded half away from zero to `places` (0..9) decimals, always that many: "12.30".
std::string format_decimal_fixed(__int128 nanos, int places);

/// a × b / c rounded half-to-even, in 128 bits. Used for price × quantity.
/// c must be positive.
__int128 mul_div_round(__int128 a, __int128 b, __int128 c);

}  // namespace aifinops
