// Where a ledger lives: an SQLite file path, or a PostgreSQL connection URL told apart by its
// scheme; the location as it may be printed (never a password); and a cheap change token.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace aifinops::ledger {

/// postgresql://... or postgres://... (libpq connection URIs); anything else is a file path.
bool is_postgres_url(std::string_view location);

/// The location with any password replaced by "***" (user:***@host, password=*** in the
/// query): the only form of a URL that goes into a message, a log or an answer.
std::string redact_location(std::string_view location);

/// A token that changes whenever anything is written to a ledger (a batch, a note, prices),
/// for answer caches. SQLite: the file's and its WAL's modification times and sizes (a stat,
/// no query); PostgreSQL: a counter the ledger moves in every write transaction, read over
/// one kept connection. Thread-safe. On an error the token is unique, so nothing is served
/// from a cache that cannot be checked.
class ChangeProbe {
 public:
  virtual ~ChangeProbe() = default;
  virtual std::string version() = 0;
};
std::unique_ptr<ChangeProbe> make_change_probe(const std::string& location);

}  // namespace aifinops::ledger
