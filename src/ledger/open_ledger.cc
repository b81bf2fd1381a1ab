// open_ledger: the one place that turns a location into a ledger (SQLite for a path,
// PostgreSQL for a postgresql:// URL), and the location helpers of ledger/location.h.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "ledger/ledger.h"
#include "ledger/location.h"
#include "ledger/postgres/postgres_ledger.h"
#include "ledger/sqlite/sqlite_ledger.h"

namespace aifinops::ledger {

bool is_postgres_url(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

std::string redact_location(std::string_view location) {
  if (!is_postgres_url(location)) return std::string(location);
  std::string out(location);
  const size_t authority = out.find("://") + 3;
  const size_t authority_end = std::min(out.find_first_of("/?", authority), out.size());
  const size_t at = out.rfind('@', authority_end);
  if (at != std::string::npos && at >= authority) {
    const size_t colon = out.find(':', authority);
    if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  // password=... among the query parameters (any case, as libpq reads them).
  const size_t query = out.find('?');
  if (query != std::string::npos) {
    for (size_t start = query + 1; start < out.size();) {
      size_t end = out.find('&', start);
      if (end == std::string::npos) end = out.size();
      std::string name = out.substr(start, std::min(out.find('=', start), end) - start);
      for (char& c : name) c = (char)std::tolower((unsigned char)c);
      if (name == "password" && out.find('=', start) < end) {
        const size_t value = out.find('=', start) + 1;
        out.replace(value, end - value, "***");
        end = value + 3;
      }
      start = end + 1;
    }
  }
  return out;
}

Result<std::unique_ptr<Ledger>> open_ledger(const std::string& location) {
  if (is_postgres_url(location)) {
    auto ledger = PostgresLedger::open(location);
    if (!ledger) return Unexpected{ledger.error()};
    return std::unique_ptr<Ledger>(std::move(*ledger));
  }
  auto ledger = SqliteLedger::open(location);
  if (!ledger) return Unexpected{ledger.error()};
  return std::unique_ptr<Ledger>(std::move(*ledger));
}

namespace {

/// Any write touches the SQLite file or its WAL file: a stat is cheaper than a query.
class SqliteChangeProbe final : public ChangeProbe {
 public:
  explicit SqliteChangeProbe(std::string path) : path_(std::move(path)) {}
  std::string version() override {
    std::string version;
    for (const std::string& file : {path_, path_ + "-wal"}) {
      struct stat st {};
      if (::stat(file.c_str(), &st) != 0) {
        version += "-;";
        continue;
      }
      version += std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                 ":" + std::to_string(st.st_size) + ";";
    }
    return version;
  }

 private:
  std::string path_;
};

/// The ledger's change counter over one kept connection, opened again after a failure.
class PostgresChangeProbe final : public ChangeProbe {
 public:
  explicit PostgresChangeProbe(std::string url) : url_(std::move(url)) {}
  std::string version() override {
    std::lock_guard lock(mutex_);
    if (!ledger_) {
      auto opened = PostgresLedger::open(url_);
      if (!opened) return unique_failure();
      ledger_ = std::move(*opened);
    }
    auto count = ledger_->change_count();
    if (!count) {
      ledger_.reset();
      return unique_failure();
    }
    return "pg:" + std::to_string(*count);
  }

 private:
  std::string unique_failure() { return "unavailable:" + std::to_string(++failures_); }
  std::string url_;
  std::mutex mutex_;
  std::unique_ptr<PostgresLedger> ledger_;
  uint64_t failures_ = 0;
};

}  // namespace

std::unique_ptr<ChangeProbe> make_change_probe(const std::string& location) {
  if (is_postgres_url(location)) return std::make_unique<PostgresChangeProbe>(location);
  return std::make_unique<SqliteChangeProbe>(location);
}

}  // namespace aifinops::ledger
