// Result<T>: a value or an Error, with std::expected's API (g++ 12 under C++20 has none).
// Expected failures (bad input, I/O, limits) travel as values; exceptions are for bugs.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace aifinops {

/// What the caller should do next about an error.
enum class ErrorCode {
  kInvalidArgument,  ///< The caller's input is wrong: fix it and retry.
  kNotFound,         ///< A named thing does not exist.
  kIo,               ///< The file system or a socket failed.
  kParse,            ///< Input data does not follow its format.
  kConflict,         ///< The request contradicts stored state (e.g. already ingested).
  kInternal,         ///< A bug or an unexpected library failure.
};

/// An error with a message that names the place and the fix.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

/// Wraps an Error so that `return Unexpected(...)` converts to any Result<T>.
struct Unexpected {
  Error error;
};

inline Unexpected make_error(ErrorCode code, std::string message) {
  return Unexpected{Error{code, std::move(message)}};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Unexpected u) : state_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected u) : error_(std::move(u.error)), ok_(false) {}  // NOLINT
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace aifinops
