#include "core/money.h"

#include <cstdlib>

namespace aifinops {
namespace {

constexpr __int128 kMaxNanos = INT64_MAX;

bool fail(DecimalError* error, DecimalError e) {
  if (error != nullptr) *error = e;
  return false;
}

}  // namespace

bool parse_decimal(std::string_view s, Decimal& out, DecimalError* error, bool round) {
  size_t i = 0, n = s.size();
  if (n == 0) return fail(error, DecimalError::kEmpty);
  bool negative = false;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    i = 1;
  }
  // Collect significant digits into a 128-bit mantissa with a decimal exponent.
  __int128 mantissa = 0;
  int exponent = 0;  // value = mantissa * 10^exponent
  int digits = 0;
  bool dropped_nonzero = false;  // digits beyond what 128 bits hold (only if absurdly long)
  bool seen_point = false;
  for (; i < n; ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      ++digits;
      if (mantissa < (__int128)1 << 120) {
        mantissa = mantissa * 10 + (c - '0');
        if (seen_point) --exponent;
      } else {
        if (c != '0') dropped_nonzero = true;
        if (!seen_point) ++exponent;
      }
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (digits == 0) return fail(error, DecimalError::kSyntax);
  if (i < n) {
    if (s[i] != 'e' && s[i] != 'E') return fail(error, DecimalError::kSyntax);
    ++i;
    bool exp_negative = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
      exp_negative = s[i] == '-';
      ++i;
    }
    if (i == n) return fail(error, DecimalError::kSyntax);
    int e = 0;
    for (; i < n; ++i) {
      if (s[i] < '0' || s[i] > '9') return fail(error, DecimalError::kSyntax);
      if (e < 10000) e = e * 10 + (s[i] - '0');
    }
    exponent += exp_negative ? -e : e;
  }
  // Scale to nano-units: nanos = mantissa * 10^(exponent + 9).
  int scale = exponent + 9;
  __int128 nanos = mantissa;
  if (scale >= 0) {
    for (int k = 0; k < scale && nanos != 0; ++k) {
      nanos *= 10;
      if (nanos > kMaxNanos) return fail(error, DecimalError::kOverflow);
    }
  } else {
    __int128 rem_any = 0, last = 0;
    for (int k = 0; k < -scale && nanos != 0; ++k) {
      rem_any |= last;
      last = nanos % 10;
      nanos /= 10;
    }
    bool exact = last == 0 && rem_any == 0 && !dropped_nonzero;
    if (!exact) {
      if (!round) return fail(error, DecimalError::kTooPrecise);
      // Half to even on the first dropped digit; anything after it breaks the tie.
      bool sticky = rem_any != 0 || dropped_nonzero;
      if (last > 5 || (last == 5 && (sticky || (nanos & 1)))) nanos += 1;
    }
  }
  if (nanos > kMaxNanos) return fail(error, DecimalError::kOverflow);
  out.nanos = negative ? -(int64_t)nanos : (int64_t)nanos;
  return true;
}

std::optional<Decimal> parse_decimal(std::string_view text) {
  Decimal d;
  if (!parse_decimal(text, d)) return std::nullopt;
  return d;
}

const char* decimal_error_text(DecimalError e) {
  switch (e) {
    case DecimalError::kEmpty: return "is empty";
    case DecimalError::kSyntax: return "is not a decimal number";
    case DecimalError::kOverflow: return "is too large (limit 9,223,372,036.854775807)";
    case DecimalError::kTooPrecise: return "has more than 9 decimal places";
  }
  return "is invalid";
}

static std::string format_abs(unsigned __int128 v, bool negative, int places_out, bool trim) {
  unsigned __int128 units = v / kNanosPerUnit;
  auto frac = (uint64_t)(v % kNanosPerUnit);
  char buf[64];
  int pos = sizeof buf;
  // fraction, 9 digits, then cut to places_out
  char frac_digits[9];
  for (int k = 8; k >= 0; --k) {
    frac_digits[k] = char('0' + frac % 10);
    frac /= 10;
  }
  int keep = places_out;
  if (trim) {
    keep = 9;
    while (keep > 0 && frac_digits[keep - 1] == '0') --keep;
  }
  std::string out;
  if (negative) out.push_back('-');
  do {
    buf[--pos] = char('0' + (int)(units % 10));
    units /= 10;
  } while (units != 0);
  out.append(buf + pos, sizeof buf - pos);
  if (keep > 0) {
    out.push_back('.');
    out.append(frac_digits, keep);
  }
  return out;
}

std::string format_decimal(__int128 nanos) {
  bool negative = nanos < 0;
  unsigned __int128 v = negative ? (unsigned __int128)(-nanos) : (unsigned __int128)nanos;
  return format_abs(v, negative, 9, true);
}

std::string format_decimal(int64_t nanos) { return format_decimal((__int128)nanos); }

std::string format_decimal_fixed(__int128 nanos, int places) {
  if (places < 0) places = 0;
  if (places > 9) places = 9;
  bool negative = nanos < 0;
  unsigned __int128 v = negative ? (unsigned __int128)(-nanos) : (unsigned __int128)nanos;
  unsigned __int128 step = 1;
  for (int k = 0; k < 9 - places; ++k) step *= 10;
  v = (v + step / 2) / step * step;  // half away from zero
  if (v == 0) negative = false;
  return format_abs(v, negative, places, false);
}

__int128 mul_div_round(__int128 a, __int128 b, __int128 c) {
  __int128 p = a * b;
  bool negative = p < 0;
  if (negative) p = -p;
  __int128 q = p / c, r = p % c;
  if (2 * r > c || (2 * r == c && (q & 1))) ++q;
  return negative ? -q : q;
}

}  // namespace aifinops
