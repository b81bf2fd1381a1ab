#include "ingest/csv_reader.h"

#if defined(__SSE2__)
#include <emmintrin.h>  // SSE2: part of every x86-64 CPU
#endif

#include <algorithm>
#include <array>
#include <cstring>

namespace aifinops::ingest {
namespace {

// Bytes that end an unquoted field.
constexpr std::array<bool, 256> kFieldEnd = [] {
  std::array<bool, 256> t{};
  t[(unsigned char)','] = true;
  t[(unsigned char)'\n'] = true;
  t[(unsigned char)'\r'] = true;
  return t;
}();

/// The first ',', '\n' or '\r' at or after p (or end). Sixteen bytes per step: most FOCUS
/// fields are short, so one vector compare usually finds the end.
inline const char* find_field_end(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i comma = _mm_set1_epi8(','), lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, lf)),
                               _mm_cmpeq_epi8(v, cr));
    int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return p + __builtin_ctz((unsigned)mask);
    p += 16;
  }
#endif
  while (p < end && !kFieldEnd[(unsigned char)*p]) ++p;
  return p;
}

}  // namespace

CsvReader::CsvReader(std::unique_ptr<FileInput> input, size_t block_size)
    : input_(std::move(input)), buffer_(block_size) {
  spans_.reserve(64);
}

Result<size_t> CsvReader::refill(size_t keep_from) {
  size_t keep = end_ - keep_from;
  if (keep_from > 0 && keep > 0) std::memmove(buffer_.data(), buffer_.data() + keep_from, keep);
  end_ = keep;
  pos_ = 0;
  // A record longer than the buffer: grow (memory follows the longest record, not the file).
  if (buffer_.size() - end_ < buffer_.size() / 4) buffer_.resize(buffer_.size() * 2);
  auto got = input_->read(buffer_.data() + end_, buffer_.size() - end_);
  if (!got) return Unexpected{got.error()};
  if (*got == 0) eof_ = true;
  end_ += *got;
  if (first_block_ && end_ >= 3 && std::memcmp(buffer_.data(), "\xEF\xBB\xBF", 3) == 0) pos_ = 3;
  first_block_ = false;
  return *got;
}

bool CsvReader::scan(CsvRecord& record, bool at_eof) {
  const char* base = buffer_.data();
  const char* p = base + pos_;
  const char* end = base + end_;
  const char* record_begin = p;
  int64_t newlines_inside = 0;
  spans_.clear();
  record.malformed = false;
  for (;;) {
    // One field.
    if (p < end && *p == '"') {
      const char* q = p + 1;
      bool escaped = false;
      for (;;) {
        const char* close = static_cast<const char*>(std::memchr(q, '"', (size_t)(end - q)));
        if (close == nullptr) {
          if (!at_eof) return false;
          // Unclosed quote at end of file: the rest is the field.
          newlines_inside += std::count(q, end, '\n');
          spans_.push_back({(size_t)(p + 1 - base), (size_t)(end - base), escaped});
          record.malformed = true;
          record.malformed_reason = "a quoted field is not closed before the end of the file";
          p = end;
          goto record_done;
        }
        if (close + 1 < end && close[1] == '"') {
          escaped = true;
          q = close + 2;
          continue;
        }
        if (close + 1 == end && !at_eof) return false;  // might be a doubled quote
        newlines_inside += std::count(p + 1, close, '\n');
        spans_.push_back({(size_t)(p + 1 - base), (size_t)(close - base), escaped});
        p = close + 1;
        break;
      }
      // Lenient: text after the closing quote is kept, but the record is flagged.
      if (p < end && !kFieldEnd[(unsigned char)*p]) {
        record.malformed = true;
        record.malformed_reason = "text follows a closing quote";
        while (p < end && !kFieldEnd[(unsigned char)*p]) ++p;
        spans_.back().end = (size_t)(p - base);
      }
    } else {
      const char* field_begin = p;
      p = find_field_end(p, end);
      spans_.push_back({(size_t)(field_begin - base), (size_t)(p - base), false});
    }
    if (p == end) {
      if (!at_eof) return false;
      break;  // last record without a line ending
    }
    if (*p == ',') {
      ++p;
      if (p == end && at_eof) {  // trailing comma at end of file: one more empty field
        spans_.push_back({(size_t)(p - base), (size_t)(p - base), false});
        break;
      }
      continue;
    }
    break;  // '\r' or '\n'
  }
record_done:
  record.raw = std::string_view(record_begin, (size_t)(p - record_begin));
  // Line ending: \n, \r\n or a lone \r.
  if (p < end && *p == '\r') {
    if (p + 1 == end && !at_eof) return false;
    ++p;
    if (p < end && *p == '\n') ++p;
  } else if (p < end && *p == '\n') {
    ++p;
  }
  pos_ = (size_t)(p - base);
  record.line = line_;
  line_ += 1 + newlines_inside;

  // Materialise the fields; doubled quotes are removed into `unescaped_`, whose capacity
  // is reserved up front so that earlier views stay valid.
  record.fields.resize(spans_.size());
  bool any_escaped = false;
  for (const Span& s : spans_) any_escaped |= s.escaped;
  if (any_escaped) {
    unescaped_.clear();
    unescaped_.reserve(record.raw.size());
  }
  for (size_t i = 0; i < spans_.size(); ++i) {
    const Span& s = spans_[i];
    if (!s.escaped) {
      record.fields[i] = std::string_view(base + s.begin, s.end - s.begin);
      continue;
    }
    size_t start = unescaped_.size();
    for (size_t k = s.begin; k < s.end; ++k) {
      unescaped_.push_back(base[k]);
      if (base[k] == '"' && k + 1 < s.end && base[k + 1] == '"') ++k;
    }
    record.fields[i] = std::string_view(unescaped_.data() + start, unescaped_.size() - start);
  }
  return true;
}

Result<bool> CsvReader::next(CsvRecord& record) {
  for (;;) {
    if (pos_ < end_ || eof_) {
      if (pos_ >= end_ && eof_) return false;
      if (scan(record, eof_)) {
        // A blank line is not a record.
        if (record.fields.size() == 1 && record.fields[0].empty() && !record.malformed) continue;
        return true;
      }
    }
    auto got = refill(pos_);
    if (!got) return Unexpected{got.error()};
  }
}

}  // namespace aifinops::ingest
