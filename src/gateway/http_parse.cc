#include "gateway/http_parse.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace aifinops::gateway::http_parse {

namespace {

/// Beast's limit on a head (basic_parser's default header_limit), applied to the start line
/// and to the fields apart, as Beast does when the head comes in one read.
constexpr size_t kHeaderLimit = 8 * 1024;

/// RFC 7230 tchar: letters, digits and !#$%&'*+-.^_`|~.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = table[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

bool is_token(char c) { return kTokenChars[static_cast<unsigned char>(c)]; }
bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
/// A request target's characters (Beast's is_pathchar): visible ASCII and obs-text.
bool is_target_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}
/// What may not be in a field value or reason phrase: controls but HTAB, and DEL.
bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  const char lower = static_cast<char>(c | 0x20);
  if (lower >= 'a' && lower <= 'f') return lower - 'a' + 10;
  return -1;
}

/// The first byte of [p, last) that may not be in a field value (the CR that ends it, for a
/// good one), or `last`. Eight bytes at a time: a word has a byte below 0x20 when
/// (x - 0x20..20) & ~x & 0x80..80 is not zero, and the lowest byte so flagged is the first
/// such byte (a borrow only flags bytes above a flagged one); the same for DEL with x ^ 0x7f.
const char* scan_value(const char* p, const char* last) {
  static_assert(std::endian::native == std::endian::little, "the lowest byte is the first");
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  while (last - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    const uint64_t del = x ^ (kOnes * 0x7f);
    const uint64_t hits = (((x - kOnes * 0x20) & ~x) | ((del - kOnes) & ~del)) & kHigh;
    if (hits == 0) {
      p += 8;
      continue;
    }
    p += std::countr_zero(hits) / 8;
    if (*p != '\t') return p;
    ++p;
  }
  while (p < last && !is_control(*p)) ++p;
  return p;
}

/// The first byte of [p, last) that is not a token character. Eight at a time while all
/// eight are (a field name is 4 to 30 of them): the table's answers and-ed, one branch.
const char* skip_token(const char* p, const char* last) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  while (last - p >= 8 && (kTokenChars[u[0]] & kTokenChars[u[1]] & kTokenChars[u[2]] &
                           kTokenChars[u[3]] & kTokenChars[u[4]] & kTokenChars[u[5]] &
                           kTokenChars[u[6]] & kTokenChars[u[7]])) {
    p += 8;
    u += 8;
  }
  while (p < last && is_token(*p)) ++p;
  return p;
}

bool iequals(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
    if (c != lower[i]) return false;
  }
  return true;
}

/// Whether `list` is a comma-separated list of tokens, empty elements and OWS allowed
/// (Beast's opt_token_list with validate_list): Content-Length, Connection.
bool valid_token_list(std::string_view list) {
  bool need_comma = false;
  const char* p = list.data();
  const char* end = p + list.size();
  for (;;) {
    while (p < end && is_space(*p)) ++p;
    if (p == end) return true;
    if (is_token(*p)) {
      if (need_comma) return false;
      while (p < end && is_token(*p)) ++p;
      need_comma = true;
    } else if (*p == ',') {
      need_comma = false;
      ++p;
    } else {
      return false;
    }
  }
}

/// Calls `on_token` with each token of a list valid_token_list() accepted, and returns how
/// many there were; stops early when `on_token` returns false.
template <class OnToken>
size_t each_token(std::string_view list, OnToken&& on_token) {
  size_t count = 0;
  const char* p = list.data();
  const char* end = p + list.size();
  while (p < end) {
    if (!is_token(*p)) {
      ++p;
      continue;
    }
    const char* begin = p;
    while (p < end && is_token(*p)) ++p;
    ++count;
    if (!on_token(std::string_view(begin, static_cast<size_t>(p - begin)))) break;
  }
  return count;
}

/// Whether a Transfer-Encoding value ends in chunked, read as Beast's token_list reads it:
/// its tokens up to the first thing that is not one (the rest is ignored), chunked only when
/// its first "chunked" is the last token.
bool ends_in_chunked(std::string_view value) {
  const char* p = value.data();
  const char* end = p + value.size();
  bool need_comma = false;
  bool found = false;
  bool last = false;
  for (;;) {
    while (p < end && is_space(*p)) ++p;
    if (p == end) break;
    if (is_token(*p)) {
      if (need_comma) break;
      const char* begin = p;
      while (p < end && is_token(*p)) ++p;
      const std::string_view token(begin, static_cast<size_t>(p - begin));
      if (found) {
        last = false;
      } else if (iequals(token, "chunked")) {
        found = last = true;
      }
      need_comma = true;
    } else if (*p == ',') {
      need_comma = false;
      ++p;
    } else {
      break;
    }
  }
  return found && last;
}

/// Decimal digits only, within 64 bits (Beast's parse_dec).
bool parse_decimal(std::string_view text, std::uint64_t& value) {
  if (text.empty()) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
  }
  value = v;
  return true;
}

/// Whether [p, end) is a chunk's extensions, as Beast's parse_chunk_extensions accepts them:
/// *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ), nothing after.
bool valid_chunk_extensions(const char* p, const char* end) {
  auto skip_space = [&] {
    while (p < end && is_space(*p)) ++p;
  };
  auto skip_token = [&] {
    if (p == end || !is_token(*p)) return false;
    while (p < end && is_token(*p)) ++p;
    return true;
  };
  while (p < end) {
    skip_space();
    if (p == end || *p != ';') return false;
    ++p;
    for (;;) {  // after a ';'
      skip_space();
      if (!skip_token()) return false;
      const char* after_name = p;
      skip_space();
      if (p == end) return p == after_name;  // BWS before the end of the line: refused
      if (*p == ';') {
        ++p;
        continue;
      }
      if (*p != '=') {
        if (p != after_name) return false;
        break;  // the next character must be BWS or ';' of another extension, or the end
      }
      ++p;
      skip_space();
      if (p == end) return false;
      if (*p != '"') {
        if (!skip_token()) return false;
      } else {
        for (++p;; ++p) {
          if (p == end) return false;
          if (*p == '"') break;
          if (*p == '\\' && ++p == end) return false;
        }
        ++p;
      }
      break;
    }
    if (p < end && !is_space(*p) && *p != ';') return false;
  }
  return true;
}

/// What a start line says.
struct StartLine {
  std::string_view method;
  std::string_view target;
  unsigned version = 0;
  unsigned status = 0;
};

/// "HTTP/1.0" or "HTTP/1.1" at `p` (8 bytes there).
const char* parse_version(const char* p, const char* last, unsigned& version,
                          ParseError& error) {
  if (last - p < 8) {
    error = ParseError::kNeedMore;
    return nullptr;
  }
  if (std::memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5]) || p[6] != '.' || !is_digit(p[7])) {
    error = ParseError::kBadVersion;
    return nullptr;
  }
  version = static_cast<unsigned>(10 * (p[5] - '0') + (p[7] - '0'));
  if (version != 10 && version != 11) {
    error = ParseError::kBadVersion;
    return nullptr;
  }
  return p + 8;
}

/// request-line = method SP request-target SP HTTP-version CRLF
const char* parse_request_line(const char* p, const char* last, StartLine& line,
                               ParseError& error) {
  const char* begin = p;
  while (p < last && is_token(*p)) ++p;
  if (p >= last) return error = ParseError::kNeedMore, nullptr;
  if (*p != ' ' || p == begin) return error = ParseError::kBadMethod, nullptr;
  line.method = std::string_view(begin, static_cast<size_t>(p - begin));
  begin = ++p;
  while (p < last && is_target_char(*p)) ++p;
  if (p >= last) return error = ParseError::kNeedMore, nullptr;
  if (*p != ' ' || p == begin) return error = ParseError::kBadTarget, nullptr;
  line.target = std::string_view(begin, static_cast<size_t>(p - begin));
  p = parse_version(p + 1, last, line.version, error);
  if (p == nullptr) return nullptr;
  if (last - p < 2) return error = ParseError::kNeedMore, nullptr;
  if (p[0] != '\r' || p[1] != '\n') return error = ParseError::kBadVersion, nullptr;
  return p + 2;
}

/// status-line = HTTP-version SP 3DIGIT SP reason-phrase CRLF
const char* parse_status_line(const char* p, const char* last, StartLine& line,
                              ParseError& error) {
  p = parse_version(p, last, line.version, error);
  if (p == nullptr) return nullptr;
  if (p >= last) return error = ParseError::kNeedMore, nullptr;
  if (*p++ != ' ') return error = ParseError::kBadVersion, nullptr;
  if (last - p < 4) return error = ParseError::kNeedMore, nullptr;
  if (!is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2]) || p[3] != ' ')
    return error = ParseError::kBadStatus, nullptr;
  line.status = static_cast<unsigned>(100 * (p[0] - '0') + 10 * (p[1] - '0') + (p[2] - '0'));
  p = scan_value(p + 4, last);
  if (p >= last || (*p == '\r' && p + 1 >= last)) return error = ParseError::kNeedMore, nullptr;
  if (*p != '\r') return error = ParseError::kBadReason, nullptr;
  if (p[1] != '\n') return error = ParseError::kBadLineEnding, nullptr;
  return p + 2;
}

}  // namespace

FieldTable::FieldTable(std::initializer_list<std::string_view> kept, bool keep_empty)
    : keep_empty_(keep_empty) {
  // The framing fields are looked up in the same table; Proxy-Connection counts as
  // Connection, as for Beast.
  std::array<Entry, kMaxEntries> all{};
  size_t count = 0;
  for (std::string_view name : kept) all[count++] = {name, Role::kKept, kept_count_++};
  all[count++] = {"content-length", Role::kContentLength, 0};
  all[count++] = {"transfer-encoding", Role::kTransferEncoding, 0};
  all[count++] = {"connection", Role::kConnection, 0};
  all[count++] = {"proxy-connection", Role::kConnection, 0};
  std::stable_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(count),
                   [](const Entry& a, const Entry& b) { return a.name.size() < b.name.size(); });
  entries_ = all;
  size_t at = 0;
  for (size_t length = 0; length <= kMaxNameLength + 1; ++length) {
    bucket_[length] = static_cast<uint8_t>(at);
    while (at < count && all[at].name.size() == length) {
      lengths_ |= 1u << length;
      ++at;
    }
  }
}

MessageParser::MessageParser(Kind kind, const FieldTable& table,
                             std::span<std::pmr::string* const> kept, std::pmr::string* method,
                             std::pmr::string* target)
    : table_(table), kept_(kept), method_(method), target_(target), kind_(kind) {}

bool MessageParser::keep_alive() const {
  if (framing_.http11 ? framing_.close : !framing_.keep_alive) return false;
  return !to_eof_;
}

size_t MessageParser::put(const char* data, size_t size, ParseError& error) {
  error = ParseError::kNone;
  const char* p = data;
  const char* end = data + size;
  if (state_ == State::kComplete) return 0;
  if (state_ == State::kNothingYet) {
    if (size == 0) {
      error = ParseError::kNeedMore;
      return 0;
    }
    state_ = State::kHead;
  }
  if (state_ == State::kHead) {
    p += parse_head(p, end, error);
    if (error != ParseError::kNone || !eager_) return static_cast<size_t>(p - data);
  }
  while (p < end) {
    switch (state_) {
      case State::kBody:
      case State::kChunkData: {
        const size_t n = static_cast<size_t>(
            std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p)));
        const size_t taken = deliver(p, n, error);
        p += taken;
        remaining_ -= taken;
        if (error != ParseError::kNone) return static_cast<size_t>(p - data);
        if (remaining_ == 0) state_ = state_ == State::kBody ? State::kComplete : State::kChunkSize;
        break;
      }
      case State::kBodyToEof: {
        const auto n = static_cast<size_t>(end - p);
        if (body_left_ != kUnlimited && n > body_left_) {
          error = ParseError::kBodyLimit;
          return static_cast<size_t>(p - data);
        }
        const size_t taken = deliver(p, n, error);  // what a full buffer left is offered again
        if (body_left_ != kUnlimited) body_left_ -= taken;
        p += taken;
        if (error != ParseError::kNone) return static_cast<size_t>(p - data);
        break;
      }
      case State::kChunkSize:
        p += parse_chunk_size(p, end, error);
        if (error != ParseError::kNone) return static_cast<size_t>(p - data);
        break;
      default:  // kComplete: what follows is the next message's
        return static_cast<size_t>(p - data);
    }
  }
  return static_cast<size_t>(p - data);
}

ParseError MessageParser::put_eof() {
  if (state_ <= State::kHead) return ParseError::kPartialMessage;
  if (state_ == State::kBodyToEof) {
    state_ = State::kComplete;
    return ParseError::kNone;
  }
  return state_ == State::kComplete ? ParseError::kNone : ParseError::kPartialMessage;
}

size_t MessageParser::parse_head(const char* p, const char* end, ParseError& error) {
  // Parsed again from its start until it is whole: nothing is kept of a head in pieces, and
  // most heads come in one read. A bad line is reported as soon as it is there.
  const auto size = static_cast<size_t>(end - p);
  StartLine line;
  const char* last = p + std::min(size, kHeaderLimit);
  const char* fields = kind_ == Kind::kRequest ? parse_request_line(p, last, line, error)
                                               : parse_status_line(p, last, line, error);
  if (fields == nullptr) {
    if (error == ParseError::kNeedMore && size >= kHeaderLimit) error = ParseError::kHeaderLimit;
    return 0;
  }
  Framing framing;
  framing.http11 = line.version == 11;
  KeptViews kept{};
  const auto rest = static_cast<size_t>(end - fields);
  const char* head_end =
      parse_fields(fields, fields + std::min(rest, kHeaderLimit), framing, &kept, error);
  if (head_end == nullptr) {
    if (error == ParseError::kNeedMore && rest >= kHeaderLimit) error = ParseError::kHeaderLimit;
    return 0;
  }
  // Whole: copied out of the caller's buffer, which the body may overwrite.
  if (kind_ == Kind::kRequest) {
    method_->assign(line.method);
    target_->assign(line.target);
  }
  status_ = line.status;
  for (size_t slot = 0; slot < table_.kept_count(); ++slot)
    if (kept[slot].data() != nullptr) kept_[slot]->assign(kept[slot]);
  framing_ = framing;
  finish_head(error);
  return static_cast<size_t>(head_end - p);
}

const char* MessageParser::parse_fields(const char* p, const char* last, Framing& framing,
                                        KeptViews* kept, ParseError& error) const {
  for (;;) {
    if (last - p < 2) return error = ParseError::kNeedMore, nullptr;
    if (*p == '\r') {
      if (p[1] != '\n') return error = ParseError::kBadLineEnding, nullptr;
      return p + 2;
    }
    // field-name ":" OWS field-value OWS CRLF
    const char* name = p;
    p = skip_token(p, last);
    if (p >= last) return error = ParseError::kNeedMore, nullptr;
    if (*p != ':' || p == name) return error = ParseError::kBadField, nullptr;
    const std::string_view name_text(name, static_cast<size_t>(p - name));
    ++p;
    while (p < last && is_space(*p)) ++p;
    const char* value = p;
    p = scan_value(p, last);
    if (p >= last || (*p == '\r' && p + 1 >= last)) return error = ParseError::kNeedMore, nullptr;
    if (*p != '\r') return error = ParseError::kBadValue, nullptr;
    if (p[1] != '\n') return error = ParseError::kBadLineEnding, nullptr;
    const char* value_end = p;
    while (value_end > value && is_space(value_end[-1])) --value_end;
    p += 2;
    // Beast looks at the next line's first byte for an obs-fold, so do we (the same bytes
    // are needed before the field counts).
    if (p >= last) return error = ParseError::kNeedMore, nullptr;
    // A value folded onto the next line (obs-fold): Beast joins the lines; we refuse the
    // message, as RFC 7230 3.2.4 allows a server to. A proxy that joined them would see a
    // value that a peer which does not join them reads differently.
    if (is_space(*p)) return error = ParseError::kObsFold, nullptr;
    if (const FieldTable::Entry* entry = table_.find(name_text)) {
      apply_field(*entry, std::string_view(value, static_cast<size_t>(value_end - value)),
                  framing, kept, error);
      if (error != ParseError::kNone) return nullptr;
    }
  }
}

void MessageParser::apply_field(const FieldTable::Entry& entry, std::string_view value,
                                Framing& framing, KeptViews* kept, ParseError& error) const {
  switch (entry.role) {
    case FieldTable::Role::kKept: {
      if (kept == nullptr) return;  // a trailer's fields are not the head's
      std::string_view& slot = (*kept)[entry.slot];
      // `value` points into the buffer: never null, also when empty.
      if (table_.keep_empty() ? slot.data() == nullptr : slot.empty() && !value.empty())
        slot = value;
      return;
    }
    case FieldTable::Role::kContentLength: {
      // Beast: a list of equal numbers ("5, 5"), equal to an earlier Content-Length's.
      if (framing.chunked) {
        error = ParseError::kBadContentLength;
        return;
      }
      std::uint64_t number = 0;
      if (parse_decimal(value, number)) {  // the usual one number, read once
        if (framing.has_content_length && number != framing.content_length) {
          error = ParseError::kMultipleContentLength;
          return;
        }
        framing.has_content_length = true;
        framing.content_length = number;
        return;
      }
      if (!valid_token_list(value)) {
        error = ParseError::kBadContentLength;
        return;
      }
      bool have = framing.has_content_length;
      std::uint64_t length = framing.content_length;
      const size_t tokens = each_token(value, [&](std::string_view token) {
        std::uint64_t v = 0;
        if (!parse_decimal(token, v)) {
          error = ParseError::kBadContentLength;
        } else if (have && v != length) {
          error = ParseError::kMultipleContentLength;
        }
        have = true;
        length = v;
        return error == ParseError::kNone;
      });
      if (error != ParseError::kNone) return;
      // No empty element ("5,", ",5", "5,,5") and at least one number.
      if (tokens != 1 + static_cast<size_t>(std::count(value.begin(), value.end(), ','))) {
        error = ParseError::kBadContentLength;
        return;
      }
      framing.has_content_length = true;
      framing.content_length = length;
      return;
    }
    case FieldTable::Role::kTransferEncoding:
      // A second Transfer-Encoding after chunked, or one after a Content-Length: refused
      // (request smuggling).
      if (framing.chunked || framing.has_content_length) {
        error = ParseError::kBadTransferEncoding;
        return;
      }
      framing.transfer_encoding = true;
      framing.chunked = ends_in_chunked(value);
      return;
    case FieldTable::Role::kConnection:
      // The usual single token first: a valid list.
      if (iequals(value, "keep-alive")) {
        framing.keep_alive = true;
        return;
      }
      if (iequals(value, "close")) {
        framing.close = true;
        return;
      }
      if (!valid_token_list(value)) {
        error = ParseError::kBadValue;
        return;
      }
      each_token(value, [&](std::string_view token) {
        if (iequals(token, "close")) framing.close = true;
        if (iequals(token, "keep-alive")) framing.keep_alive = true;
        return true;
      });
      return;
  }
}

void MessageParser::finish_head(ParseError& error) {
  remaining_ = framing_.content_length;
  if (kind_ == Kind::kRequest && framing_.transfer_encoding && !framing_.chunked) {
    // Deliberately stricter than Beast, which reads a request whose Transfer-Encoding does
    // not end in chunked by its Content-Length, or as having no body: its length cannot be
    // known (RFC 7230 3.3.3: "the server MUST respond with the 400"), and the bytes a peer
    // takes for the next request are what request smuggling is made of.
    error = ParseError::kBadTransferEncoding;
  } else if (kind_ == Kind::kResponse &&
             (status_ / 100 == 1 || status_ == 204 || status_ == 304)) {  // no body, whatever it says
    state_ = State::kComplete;
  } else if (framing_.has_content_length) {
    if (body_left_ != kUnlimited && framing_.content_length > body_left_) {
      error = ParseError::kBodyLimit;  // the head stays "not done", as Beast's
      return;
    }
    state_ = framing_.content_length > 0 ? State::kBody : State::kComplete;
  } else if (framing_.chunked) {
    state_ = State::kChunkSize;
  } else if (kind_ == Kind::kRequest) {
    state_ = State::kComplete;
  } else {
    to_eof_ = true;
    state_ = State::kBodyToEof;
  }
}

size_t MessageParser::parse_chunk_size(const char* p, const char* end, ParseError& error) {
  // [CRLF ending the previous chunk's data] chunk-size [ chunk-ext ] CRLF, and after the last
  // chunk (size 0) the trailer's fields and a CRLF. Nothing is used until a line is whole.
  const char* line = p;
  if (expect_crlf_) {
    if (end - line < 2) return error = ParseError::kNeedMore, 0;
    if (line[0] != '\r' || line[1] != '\n') return error = ParseError::kBadChunk, 0;
    line += 2;
  }
  // The line's length is bounded by the head's limit; Beast bounds neither it nor the
  // trailer, so a peer could make it buffer without end.
  const auto rest = static_cast<size_t>(end - line);
  const char* last = line + std::min(rest, kHeaderLimit);
  const auto* eol = static_cast<const char*>(std::memchr(line, '\r', static_cast<size_t>(last - line)));
  if (eol == nullptr || eol + 1 >= end) {
    error = eol == nullptr && rest >= kHeaderLimit ? ParseError::kHeaderLimit
                                                   : ParseError::kNeedMore;
    return 0;
  }
  if (eol[1] != '\n') return error = ParseError::kBadLineEnding, 0;
  const char* q = line;
  std::uint64_t size = 0;
  if (hex_value(*q) < 0) return error = ParseError::kBadChunk, 0;
  for (int digit; (digit = hex_value(*q)) >= 0; ++q) {
    if (size > (std::numeric_limits<std::uint64_t>::max() - static_cast<unsigned>(digit)) / 16)
      return error = ParseError::kBadChunk, 0;
    size = size * 16 + static_cast<unsigned>(digit);
  }
  if (size != 0) {
    if (body_left_ != kUnlimited) {
      if (size > body_left_) return error = ParseError::kBodyLimit, 0;
      body_left_ -= size;
    }
    if (!valid_chunk_extensions(q, eol)) return error = ParseError::kBadChunkExtension, 0;
    remaining_ = size;
    expect_crlf_ = true;
    state_ = State::kChunkData;
    return static_cast<size_t>(eol + 2 - p);
  }
  if (!valid_chunk_extensions(q, eol)) return error = ParseError::kBadChunkExtension, 0;
  // The trailer: its framing fields count (Beast: a Content-Length or a Transfer-Encoding
  // there is an error, a Connection: close ends the connection); the fields kept are the
  // head's only.
  const char* trailer = eol + 2;
  const auto trailer_rest = static_cast<size_t>(end - trailer);
  Framing framing = framing_;
  const char* done = parse_fields(trailer, trailer + std::min(trailer_rest, kHeaderLimit),
                                  framing, nullptr, error);
  if (done == nullptr) {
    if (error == ParseError::kNeedMore && trailer_rest >= kHeaderLimit)
      error = ParseError::kHeaderLimit;
    return 0;
  }
  framing_ = framing;
  state_ = State::kComplete;
  return static_cast<size_t>(done - p);
}

size_t MessageParser::deliver(const char* p, size_t n, ParseError& error) {
  if (body_sink_ != nullptr) {
    body_sink_->append(p, n);
    return n;
  }
  const size_t taken = std::min(n, body_room_);
  if (taken > 0) std::memcpy(body_data_, p, taken);
  body_data_ += taken;
  body_room_ -= taken;
  if (taken < n) error = ParseError::kNeedBuffer;
  return taken;
}

}  // namespace aifinops::gateway::http_parse
