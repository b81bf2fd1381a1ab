// The gateway's own HTTP/1.x message parser: request and response heads, Content-Length,
// chunked and to-the-end bodies, keep-alive. It accepts and rejects what Beast 1.81's
// basic_parser does (checked by a differential test against it), except where a comment in
// http_parse.cc says why not. No Beast or Asio here: http_io.h wraps it in the interface
// server.cc reads with, and maps ParseError to Beast's error codes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>

namespace aifinops::gateway::http_parse {

/// Why put() or put_eof() stopped; each has a Beast http::error of the same meaning.
enum class ParseError : uint8_t {
  kNone,
  kNeedMore,     ///< the message is not over: call put() again with these bytes and more
  kNeedBuffer,   ///< the body buffer is full (body_into())
  kBodyLimit,    ///< the body is longer than body_limit()
  kHeaderLimit,  ///< the start line, the fields, a chunk's size line or the trailer is longer than 8 KiB
  kPartialMessage,
  kBadMethod,
  kBadTarget,
  kBadVersion,
  kBadStatus,
  kBadReason,
  kBadField,
  kBadValue,
  kObsFold,  ///< a field value continued on the next line (Beast unfolds it; we refuse)
  kBadLineEnding,
  kBadContentLength,
  kMultipleContentLength,
  kBadTransferEncoding,
  kBadChunk,
  kBadChunkExtension,
};

/// The header fields a parser keeps, by lower-case name: a field's value goes to the slot
/// of its name's position in the list. Looked up by length and first byte, compared in full
/// only then. Built once per kind of message (static), shared const.
class FieldTable {
 public:
  /// At most kMaxKept names of at most kMaxNameLength characters, in lower case.
  /// `keep_empty`: an empty value counts as the first (else the first non-empty is kept).
  FieldTable(std::initializer_list<std::string_view> kept, bool keep_empty);

  static constexpr size_t kMaxKept = 8;
  static constexpr size_t kMaxNameLength = 31;

  enum class Role : uint8_t { kKept, kContentLength, kTransferEncoding, kConnection };
  struct Entry {
    std::string_view name;  ///< lower case
    Role role;
    uint8_t slot;  ///< for kKept
  };

  /// The entry for field name `name` (any case), or nullptr for a field nobody reads.
  const Entry* find(std::string_view name) const {
    if (name.size() > kMaxNameLength || (lengths_ >> name.size() & 1) == 0) return nullptr;
    const char first = static_cast<char>(name[0] | 0x20);
    for (uint8_t i = bucket_[name.size()]; i < bucket_[name.size() + 1]; ++i) {
      const Entry& entry = entries_[i];
      if (entry.name[0] == first && equals_lower(name, entry.name)) return &entry;
    }
    return nullptr;
  }
  size_t kept_count() const { return kept_count_; }
  bool keep_empty() const { return keep_empty_; }

 private:
  /// `name` is a token (letters, digits and `!#$%&'*+-.^_|~`): setting 0x20 lowers its
  /// letters and maps no other token character onto a letter or '-'.
  static bool equals_lower(std::string_view name, std::string_view lower) {
    for (size_t i = 1; i < name.size(); ++i)
      if (static_cast<char>(name[i] | 0x20) != lower[i]) return false;
    return true;
  }

  static constexpr size_t kMaxEntries = kMaxKept + 4;
  std::array<Entry, kMaxEntries> entries_{};  ///< sorted by name length
  std::array<uint8_t, kMaxNameLength + 2> bucket_{};  ///< entries of length n: [bucket_[n], bucket_[n+1])
  uint32_t lengths_ = 0;  ///< bit n: some entry is n characters long
  uint8_t kept_count_ = 0;
  bool keep_empty_ = false;
};

/// Parses one HTTP/1.x request or response incrementally, as bytes arrive. The head is
/// parsed when it is whole (put() uses none of its bytes before: the caller keeps them and
/// offers them again with more); the body is delivered as it comes, decoded when chunked.
/// Of the head it keeps the request line or status, what framing and keep-alive need, and
/// the fields of its FieldTable, copied to strings the owner gives (so they outlive the
/// caller's read buffer). One parser per message. Not thread-safe.
class MessageParser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };

  /// `kept[i]` receives the value of `table`'s slot i; `method` and `target` the request
  /// line's (requests only). All must outlive the parser.
  MessageParser(Kind kind, const FieldTable& table, std::span<std::pmr::string* const> kept,
                std::pmr::string* method = nullptr, std::pmr::string* target = nullptr);
  MessageParser(const MessageParser&) = delete;
  MessageParser& operator=(const MessageParser&) = delete;

  /// Parses what it can of [data, data + size) and returns how many bytes it used; the
  /// caller offers the rest again, with more, on the next call. kNeedMore when the head,
  /// a chunk's size line or the trailer is not whole yet.
  size_t put(const char* data, size_t size, ParseError& error);
  /// The connection ended: completes a body that runs to the end, else kPartialMessage
  /// when the message is not over.
  ParseError put_eof();

  /// Whether put() goes on into the body once the head is parsed (else it stops there).
  void eager(bool on) { eager_ = on; }
  /// Bodies longer than `limit` are refused (kBodyLimit); by default there is no limit.
  void body_limit(std::uint64_t limit) { body_left_ = limit; }

  /// The body goes to `sink`, appended, instead of into body_into()'s buffer.
  void body_to(std::string* sink) { body_sink_ = sink; }
  /// The body's next bytes go to [data, data + size); kNeedBuffer when it is full.
  void body_into(char* data, size_t size) {
    body_data_ = data;
    body_room_ = size;
  }
  size_t body_room() const { return body_room_; }

  bool got_some() const { return state_ != State::kNothingYet; }
  bool is_header_done() const { return state_ > State::kHead; }
  bool is_done() const { return state_ == State::kComplete; }
  /// Valid once the head is parsed.
  bool keep_alive() const;
  unsigned version() const { return framing_.http11 ? 11 : 10; }
  unsigned status() const { return status_; }
  /// The Content-Length's value (0 before the head is parsed or without one).
  std::uint64_t content_length() const { return framing_.content_length; }
  bool has_content_length() const { return framing_.has_content_length; }
  /// The body bytes still to come by Content-Length.
  std::uint64_t content_length_remaining() const { return remaining_; }

 private:
  static constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();
  enum class State : uint8_t {
    kNothingYet,
    kHead,
    kBody,        ///< Content-Length bytes
    kBodyToEof,   ///< a response without length: until the connection closes
    kChunkSize,   ///< a chunk's size line (after the previous chunk's CRLF)
    kChunkData,
    kComplete,
  };
  /// What the head's fields (and a chunked body's trailer) say about the framing.
  struct Framing {
    bool http11 = false;
    bool has_content_length = false;
    bool chunked = false;
    bool transfer_encoding = false;  ///< any Transfer-Encoding field
    bool close = false;              ///< Connection: close
    bool keep_alive = false;         ///< Connection: keep-alive
    std::uint64_t content_length = 0;
  };
  /// The values of kept fields found while parsing a head, copied out once it is whole.
  using KeptViews = std::array<std::string_view, FieldTable::kMaxKept>;

  size_t parse_head(const char* p, const char* end, ParseError& error);
  const char* parse_fields(const char* p, const char* end, Framing& framing, KeptViews* kept,
                           ParseError& error) const;
  void apply_field(const FieldTable::Entry& entry, std::string_view value, Framing& framing,
                   KeptViews* kept, ParseError& error) const;
  void finish_head(ParseError& error);
  size_t parse_chunk_size(const char* p, const char* end, ParseError& error);
  size_t deliver(const char* p, size_t n, ParseError& error);

  const FieldTable& table_;
  std::span<std::pmr::string* const> kept_;
  std::pmr::string* method_;
  std::pmr::string* target_;
  std::string* body_sink_ = nullptr;
  char* body_data_ = nullptr;
  size_t body_room_ = 0;
  std::uint64_t remaining_ = 0;  ///< of the Content-Length body or the current chunk
  std::uint64_t body_left_ = kUnlimited;
  Framing framing_;
  unsigned status_ = 0;
  Kind kind_;
  State state_ = State::kNothingYet;
  bool eager_ = true;
  bool expect_crlf_ = false;  ///< a chunk's data ended; its CRLF comes before the next size
  bool to_eof_ = false;       ///< a response body that runs to the end of the connection
};

}  // namespace aifinops::gateway::http_parse
