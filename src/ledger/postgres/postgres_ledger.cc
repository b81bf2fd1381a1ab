#include "ledger/postgres/postgres_ledger.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>

#include "ledger/ledger_internal.h"
#include "ledger/location.h"

namespace aifinops::ledger {
using namespace detail;  // the representation shared with SqliteLedger
namespace {

// Advisory lock keys ("aifinops" + a purpose byte): writers of batches and prices take
// turns on the first, schema migrations on the second.
constexpr int64_t kWriterLock = 0x6169'6669'6e6f'7001;
constexpr int64_t kMigrationLock = 0x6169'6669'6e6f'7002;
// A batch's records stream in one COPY; they are handed to libpq in blocks of this size.
constexpr size_t kCopySendBytes = 256 << 10;
// Quarantined rows are buffered up to this size, then sent in a COPY of their own.
constexpr size_t kCopyFlushBytes = 8 << 20;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  // libpq puts "FATAL:  " style prefixes with two spaces; one reads better.
  for (size_t at; (at = s.find(":  ")) != std::string::npos;) s.erase(at + 1, 1);
  for (size_t at; (at = s.find('\n')) != std::string::npos;) s.replace(at, 1, "; ");
  std::erase(s, '\t');
  return s;
}

/// Text as PostgreSQL accepts it: valid UTF-8 without NUL bytes. Input rows may hold
/// neither promise (a quarantined row is cut at 64 KiB, maybe inside a character); invalid
/// bytes become U+FFFD and NULs are dropped, so that a bad row is kept, not refused.
std::string_view valid_text(std::string_view s, std::string& storage) {
  size_t i = 0;
  auto valid_at = [&](size_t at, size_t& length) {
    unsigned char c = (unsigned char)s[at];
    if (c == 0) return false;
    if (c < 0x80) return length = 1, true;
    size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || at + n > s.size()) return false;
    uint32_t cp = c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      unsigned char cc = (unsigned char)s[at + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    return length = n, true;
  };
  size_t length = 0;
  while (i < s.size() && valid_at(i, length)) i += length;
  if (i == s.size()) return s;
  storage.assign(s.substr(0, i));
  while (i < s.size()) {
    if (valid_at(i, length)) {
      storage.append(s.substr(i, length));
      i += length;
    } else {
      if (s[i] != '\0') storage += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return storage;
}

/// Query parameters in text form; an empty optional is SQL NULL.
class Params {
 public:
  Params& text(std::string_view v) {
    std::string storage;
    std::string_view t = valid_text(v, storage);
    values_.emplace_back(std::string(t));
    return *this;
  }
  /// Empty text is stored as NULL, as SQLite's ledger does ("(none)" in answers).
  Params& text_or_null(std::string_view v) {
    if (v.empty()) return null();
    return text(v);
  }
  Params& number(int64_t v) {
    values_.emplace_back(std::to_string(v));
    return *this;
  }
  Params& null() {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  Params& optional(const std::optional<Decimal>& d) { return d ? number(d->nanos) : null(); }
  int size() const { return (int)values_.size(); }
  std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
  }

 private:
  std::vector<std::optional<std::string>> values_;
};

// --- binary COPY -------------------------------------------------------------------------

void put16(std::string& b, int16_t v) {
  uint16_t n = __builtin_bswap16((uint16_t)v);
  b.append(reinterpret_cast<const char*>(&n), 2);
}
void put32(std::string& b, int32_t v) {
  uint32_t n = __builtin_bswap32((uint32_t)v);
  b.append(reinterpret_cast<const char*>(&n), 4);
}
void put_int8_field(std::string& b, int64_t v) {
  put32(b, 8);
  uint64_t n = __builtin_bswap64((uint64_t)v);
  b.append(reinterpret_cast<const char*>(&n), 8);
}
void put_text_field(std::string& b, std::string_view v, bool empty_is_null) {
  if (empty_is_null && v.empty()) {
    put32(b, -1);
    return;
  }
  std::string storage;
  std::string_view t = valid_text(v, storage);
  put32(b, (int32_t)t.size());
  b.append(t);
}
void start_copy(std::string& b) {
  static constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // 11 bytes with its NUL
  b.assign(kSignature, 11);
  put32(b, 0);  // flags
  put32(b, 0);  // header extension length
}

/// One record row in binary COPY form: 29 int8 fields.
void put_record(std::string& b, const int64_t row[kRecordColumns]) {
  char encoded[2 + kRecordColumns * 12];
  uint16_t count = __builtin_bswap16((uint16_t)kRecordColumns);
  std::memcpy(encoded, &count, 2);
  char* at = encoded + 2;
  const uint32_t length = __builtin_bswap32(8u);
  for (size_t c = 0; c < kRecordColumns; ++c) {
    uint64_t v = __builtin_bswap64((uint64_t)row[c]);
    std::memcpy(at, &length, 4);
    std::memcpy(at + 4, &v, 8);
    at += 12;
  }
  b.append(encoded, sizeof encoded);
}

/// An integer numeric (a sum of bigints) as PostgreSQL prints it, exactly.
__int128 parse_int128_integer(const char* s) {
  bool negative = *s == '-';
  if (negative || *s == '+') ++s;
  __int128 v = 0;
  for (; *s >= '0' && *s <= '9'; ++s) v = v * 10 + (*s - '0');
  return negative ? -v : v;
}

int64_t int_at(PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return 0;
  return std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
}
std::string text_at(PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}
std::optional<Decimal> optional_at(PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return std::nullopt;
  return Decimal{int_at(r, row, col)};
}

// --- schema --------------------------------------------------------------------------------

constexpr const char* kLedgerTables[] = {"schema_version", "batches",    "attributes",    "records",
                                         "quarantine",     "rollup_day", "rollup_month",  "notes",
                                         "model_prices",   "gpu_prices", "ledger_changes"};

/// Schema v3 in PostgreSQL's terms, created in one step (a PostgreSQL ledger never had v1
/// or v2). Differences from SQLite's, where the engines differ: records have no id (they
/// are removed by batch, through a BRIN index: batches arrive in id order) and are
/// partitioned by month of charge_period_start; ids that users see (batches, prices) are
/// given as max + 1 under the writer lock, as SQLite's rowids are, so that both number
/// alike; attribute set ids too, by the writer, which knows every set (see intern_attributes).
/// Rollups split each sum as SQLite's do (value = hi * 10^9 + lo, two bigints, which stream in
/// binary COPY); queries add them up in `numeric`, exact at any size.
std::string schema_v3() {
  std::string attrs, facts, rollup_facts;
  for (size_t i = 0; i < kAttrCount; ++i)
    attrs += ", " + std::string(attribute_name(static_cast<Attr>(i))) + " text";
  for (const char* c : kFactColumns) {
    facts += std::string(", ") + c + " bigint NOT NULL";
    rollup_facts += std::string(", ") + c + "_hi bigint NOT NULL, " + c + "_lo bigint NOT NULL";
  }
  std::string sql =
      "CREATE TABLE batches(id bigint PRIMARY KEY, source_path text, source_kind text NOT NULL,"
      " fingerprint text, ingested_at text NOT NULL, state text NOT NULL,"
      " first_record bigint, last_record bigint, rows_read bigint, rows_ingested bigint,"
      " rows_quarantined bigint, billed_cost text, effective_cost text);"
      "CREATE INDEX batches_by_fingerprint ON batches(fingerprint);"
      "CREATE INDEX batches_by_path ON batches(source_path);"
      "CREATE TABLE attributes(id bigint PRIMARY KEY, fingerprint bytea NOT NULL UNIQUE" +
      attrs +
      ");"
      "CREATE TABLE records(batch_id bigint NOT NULL, line bigint NOT NULL,"
      " attributes_id bigint NOT NULL, charge_period_start bigint NOT NULL,"
      " charge_period_end bigint NOT NULL" +
      facts +
      ", price_version bigint NOT NULL, flags bigint NOT NULL, latency_ms bigint NOT NULL,"
      " ttft_ms bigint NOT NULL, gpu_memory_peak_mib bigint NOT NULL)"
      " PARTITION BY RANGE (charge_period_start);"
      "CREATE INDEX records_by_batch ON records USING brin(batch_id);"
      "CREATE TABLE quarantine(id bigserial PRIMARY KEY, batch_id bigint NOT NULL, line bigint,"
      " column_name text, reason text NOT NULL, raw text);"
      "CREATE INDEX quarantine_by_batch ON quarantine(batch_id);";
  for (const char* grain : {"day", "month"})
    sql += std::string("CREATE TABLE rollup_") + grain +
           "(bucket bigint NOT NULL, attributes_id bigint NOT NULL, record_count bigint NOT NULL" +
           rollup_facts + ", PRIMARY KEY(bucket, attributes_id));";
  sql +=
      "CREATE TABLE notes(kind text NOT NULL, key text NOT NULL, detail text NOT NULL,"
      " recorded_at text NOT NULL, PRIMARY KEY(kind, key));"
      "CREATE TABLE model_prices(id bigint PRIMARY KEY, model text NOT NULL, provider text,"
      " mode text, effective_from bigint NOT NULL, currency text NOT NULL, input bigint,"
      " cached_input bigint, cache_write bigint, output bigint, reasoning bigint,"
      " batch_discount bigint, max_output_tokens bigint, tiers text, source text);"
      "CREATE INDEX model_prices_by_model ON model_prices(model, effective_from);"
      "CREATE TABLE gpu_prices(id bigint PRIMARY KEY, sku text NOT NULL, provider text,"
      " gpu_type text, gpus bigint NOT NULL, effective_from bigint NOT NULL, currency text NOT "
      "NULL,"
      " on_demand bigint, reserved bigint, spot bigint, source text);"
      "CREATE INDEX gpu_prices_by_sku ON gpu_prices(sku, effective_from);"
      "CREATE TABLE ledger_changes(version bigint NOT NULL);"
      "INSERT INTO ledger_changes VALUES(0);"
      // A raw tag's value as SQLite's json_extract gives it, so that both ledgers group
      // alike: strings unquoted, booleans 1 and 0, JSON null as SQL NULL, others as JSON.
      "CREATE FUNCTION aifinops_tag(tags text, key text) RETURNS text LANGUAGE sql IMMUTABLE"
      " PARALLEL SAFE AS $$ SELECT CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}'"
      " WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END"
      " WHEN 'null' THEN NULL ELSE v::text END FROM (SELECT tags::jsonb -> key AS v) s $$;";
  return sql;
}

std::string time_bucket_sql(Grain grain, const std::string& column) {
  switch (grain) {
    case Grain::kHour:
      return "((" + column + " / 3600) * 3600)";
    case Grain::kDay:
      return "((" + column + " / 86400) * 86400)";
    case Grain::kWeek:
      return "((" + column + " / 86400 - ((" + column + " / 86400 + 3) % 7)) * 86400)";
    case Grain::kMonth:
      return "(extract(epoch FROM date_trunc('month', to_timestamp(" + column +
             ") AT TIME ZONE 'UTC'))::bigint)";
    case Grain::kNone:
      break;
  }
  return column;
}

/// The partition of records holding the month that starts at `month_start`.
std::string partition_name(int64_t month_start) {
  std::string month = format_month(month_start);  // "2025-10"
  std::string name = "records_";
  for (char c : month) name += c == '-' ? '_' : c;
  return name;
}

std::string connect_hint(const std::string& reason) {
  if (reason.find("does not exist") != std::string::npos &&
      reason.find("database") != std::string::npos)
    return "create the database first (createdb NAME, or CREATE DATABASE NAME); the ledger "
           "creates its tables on first use";
  if (reason.find("password") != std::string::npos ||
      reason.find("authentication") != std::string::npos)
    return "check the user and the password (PGPASSWORD or ~/.pgpass rather than a password in "
           "the URL)";
  if (reason.find("Connection refused") != std::string::npos ||
      reason.find("could not connect") != std::string::npos ||
      reason.find("could not translate host") != std::string::npos ||
      reason.find("timeout") != std::string::npos)
    return "check that PostgreSQL runs and listens at that host and port (pg_isready -d URL)";
  return "see docs/postgresql.md for the URL form";
}

void ignore_notice(void*, const char*) {}

/// Connects with the URL's own settings (libpq's variables apply) and names the program.
Result<PGconn*> connect(const std::string& url) {
  const char* keywords[] = {"application_name", "dbname", nullptr};
  const char* values[] = {"aifinops", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  const std::string shown = redact_location(url);
  if (conn == nullptr) return make_error(ErrorCode::kIo, "ledger " + shown + ": out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string reason = trim(PQerrorMessage(conn));
    PQfinish(conn);
    return make_error(ErrorCode::kIo, "ledger " + shown + ": cannot connect to PostgreSQL: " +
                                          reason + "; " + connect_hint(reason));
  }
  // CREATE ... IF NOT EXISTS and the like send notices; they are not for the user.
  PQsetNoticeProcessor(conn, ignore_notice, nullptr);
  return conn;
}

}  // namespace

// ---------------------------------------------------------------------------------------

struct PostgresLedger::State {
  bool in_batch = false;
  bool copy_open = false;  // the batch's COPY of records is streaming
  int64_t batch_id = 0;
  std::string records;  // encoded records not yet handed to libpq
  std::string quarantine;
  size_t quarantine_rows = 0;
  DayRollup day;
  // The month of the last record, and the months whose partition the batch made sure of.
  int64_t month_lo = 1, month_hi = 0;
  std::set<int64_t> partitions;
  // Every attribute set's id by fingerprint, brought up to date at each begin_batch under
  // the writer lock (sets are never removed, and only the lock holder adds any): a new set
  // is known to be new without asking the server, and is sent with the batch's COPY.
  struct FingerprintHash {
    size_t operator()(const Fingerprint& f) const {
      return (size_t)(f.high ^ (f.low * 0x9E3779B97F4A7C15ull));
    }
  };
  std::unordered_map<Fingerprint, int64_t, FingerprintHash> attribute_ids;
  int64_t last_attribute_id = 0;            // the largest id in attribute_ids
  std::vector<Fingerprint> new_attributes;  // added by the open batch (forgotten on abort)
  std::string attributes;                   // their rows, binary COPY, not yet sent
  int64_t batch_first_attribute_id = 0;     // last_attribute_id when the batch began
};

namespace {

/// Thin helpers over one connection; every error names the (redacted) ledger URL.
class Session {
 public:
  Session(PGconn* conn, const std::string& url) : conn_(conn), url_(url) {}

  Unexpected error(const std::string& what, PGresult* r = nullptr) const {
    std::string reason = trim(r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
    if (reason.empty()) reason = trim(PQerrorMessage(conn_));
    return make_error(ErrorCode::kIo, "ledger " + url_ + ": " + what + ": " + reason);
  }

  /// Runs SQL without parameters (several statements allowed).
  Result<PgResult> exec(const std::string& sql) {
    return run(sql, [&] { return PQexec(conn_, sql.c_str()); });
  }
  Result<PgResult> exec(const std::string& sql, const Params& params) {
    auto values = params.pointers();
    return run(sql, [&] {
      return PQexecParams(conn_, sql.c_str(), params.size(), nullptr, values.data(), nullptr,
                          nullptr, 0);
    });
  }
  /// Streams `data` (binary or text COPY) with `sql` (a COPY ... FROM STDIN).
  Result<void> copy_in(const std::string& sql, const std::string& data) {
    PgResult start(PQexec(conn_, sql.c_str()));
    if (PQresultStatus(start.get()) != PGRES_COPY_IN) return error("starting " + sql, start.get());
    constexpr size_t kChunk = 1 << 20;
    for (size_t at = 0; at < data.size(); at += kChunk) {
      int n = (int)std::min(kChunk, data.size() - at);
      if (PQputCopyData(conn_, data.data() + at, n) != 1) {
        PQputCopyEnd(conn_, "aifinops: sending failed");
        drain();
        return error("sending " + sql);
      }
    }
    if (PQputCopyEnd(conn_, nullptr) != 1) return error("ending " + sql);
    PgResult done(PQgetResult(conn_));
    if (PQresultStatus(done.get()) != PGRES_COMMAND_OK) {
      Unexpected failure = error(sql, done.get());
      drain();
      return failure;
    }
    drain();
    return {};
  }

 private:
  /// A statement that finds the connection broken (the server restarted since the last
  /// one) connects again and runs once more, but only when no transaction was open: inside
  /// one, the work before it is gone and the caller must see the failure.
  template <typename Send>
  Result<PgResult> run(const std::string& sql, Send send) {
    const bool idle = PQtransactionStatus(conn_) == PQTRANS_IDLE;
    PgResult r(send());
    if (!ok(r.get()) && idle && PQstatus(conn_) == CONNECTION_BAD) {
      PQreset(conn_);
      if (PQstatus(conn_) == CONNECTION_OK) r.reset(send());
    }
    if (!ok(r.get())) return error("\"" + sql.substr(0, 120) + "\"", r.get());
    return r;
  }
  static bool ok(PGresult* r) {
    auto status = PQresultStatus(r);
    return r != nullptr && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK);
  }
  void drain() {
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
  }
  PGconn* conn_;
  const std::string& url_;
};

}  // namespace

PostgresLedger::PostgresLedger(pg_conn* conn, std::string url)
    : conn_(conn), url_(redact_location(url)), state_(std::make_unique<State>()) {}

PostgresLedger::~PostgresLedger() {
  if (state_ && state_->in_batch) abort_batch();
  PQfinish(conn_);
}

Result<std::unique_ptr<PostgresLedger>> PostgresLedger::open(const std::string& url) {
  auto conn = connect(url);
  if (!conn) return Unexpected{conn.error()};
  std::unique_ptr<PostgresLedger> ledger(new PostgresLedger(*conn, url));
  if (auto r = ledger->migrate(); !r) return Unexpected{r.error()};
  return ledger;
}

Result<void> PostgresLedger::migrate() {
  Session db(conn_, url_);
  // Two processes opening a new database at once: one creates, the other waits and sees it.
  if (auto r = db.exec("BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) +
                       "); CREATE TABLE IF NOT EXISTS schema_version(version integer NOT NULL)");
      !r)
    return Unexpected{r.error()};
  auto fail = [&](const Error& e) -> Result<void> {
    PQclear(PQexec(conn_, "ROLLBACK"));
    return Unexpected{e};
  };
  auto version_row = db.exec("SELECT coalesce(max(version), 0) FROM schema_version");
  if (!version_row) return fail(version_row.error());
  const int64_t version = int_at(version_row->get(), 0, 0);
  if (version > kSchemaVersion)
    return fail(
        Error{ErrorCode::kConflict, url_ + ": the ledger has schema version " +
                                        std::to_string(version) + ", newer than this aifinops (" +
                                        std::to_string(kSchemaVersion) + "); upgrade aifinops"});
  // Migrations from v3 on run in order here; add new ones at the end.
  if (version < 3) {
    if (auto r = db.exec(schema_v3() + "INSERT INTO schema_version VALUES(3);"); !r)
      return fail(r.error());
  }
  if (auto r = db.exec("COMMIT"); !r) return fail(r.error());
  return {};
}

Result<int64_t> PostgresLedger::begin_batch(const BatchInfo& info) {
  State& s = *state_;
  if (s.in_batch) return make_error(ErrorCode::kInternal, "ledger: a batch is already open");
  Session db(conn_, url_);
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  // The rollup sums of the batch go through a temporary table on their way to the rollups
  // (made in the batch's transaction: it exists whenever a batch does, also after the
  // connection was made again).
  std::string delta = "bucket bigint, attributes_id bigint, record_count bigint";
  for (const char* c : kFactColumns)
    delta += std::string(", ") + c + "_hi bigint, " + c + "_lo bigint";
  if (auto r = db.exec("BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kWriterLock) +
                       "); CREATE TEMP TABLE IF NOT EXISTS aifinops_rollup_delta(" + delta + ")");
      !r)
    return Unexpected{r.error()};
  s.in_batch = true;
  auto row = db.exec(
      "INSERT INTO batches(id, source_path, source_kind, ingested_at, state) "
      "SELECT coalesce(max(id), 0) + 1, $1, $2, $3, 'open' FROM batches RETURNING id",
      Params().text_or_null(info.source_path).text_or_null(info.source_kind).text(now_rfc3339()));
  if (!row) {
    abort_batch();
    return Unexpected{row.error()};
  }
  s.batch_id = int_at(row->get(), 0, 0);
  // The attribute sets stored since this process last looked (by any writer).
  auto known = db.exec("SELECT id, fingerprint FROM attributes WHERE id > $1 ORDER BY id",
                       Params().number(s.last_attribute_id));
  if (!known) {
    abort_batch();
    return Unexpected{known.error()};
  }
  for (int i = 0; i < PQntuples(known->get()); ++i) {
    size_t length = 0;
    unsigned char* blob = PQunescapeBytea(
        reinterpret_cast<const unsigned char*>(PQgetvalue(known->get(), i, 1)), &length);
    if (blob != nullptr && length == 16) {
      Fingerprint f;
      std::memcpy(&f.high, blob, 8);
      std::memcpy(&f.low, blob + 8, 8);
      s.attribute_ids[f] = int_at(known->get(), i, 0);
    }
    PQfreemem(blob);
    s.last_attribute_id = std::max(s.last_attribute_id, int_at(known->get(), i, 0));
  }
  s.batch_first_attribute_id = s.last_attribute_id;
  s.new_attributes.clear();
  s.attributes.clear();
  s.records.clear();
  s.quarantine.clear();
  s.quarantine_rows = 0;
  s.partitions.clear();
  s.month_lo = 1;
  s.month_hi = 0;
  return s.batch_id;
}

Result<int64_t> PostgresLedger::intern_attributes(const AttributeViews& attributes,
                                                  const Fingerprint& fingerprint) {
  State& s = *state_;
  if (!s.in_batch)
    return make_error(ErrorCode::kInternal, "ledger: intern_attributes outside a batch");
  if (auto it = s.attribute_ids.find(fingerprint); it != s.attribute_ids.end()) return it->second;
  // New: no other writer can add it while this batch holds the writer lock.
  const int64_t id = ++s.last_attribute_id;
  if (s.attributes.empty()) start_copy(s.attributes);
  put16(s.attributes, (int16_t)(2 + kAttrCount));
  put_int8_field(s.attributes, id);
  char blob[16];
  std::memcpy(blob, &fingerprint.high, 8);
  std::memcpy(blob + 8, &fingerprint.low, 8);
  put32(s.attributes, 16);
  s.attributes.append(blob, 16);
  for (size_t i = 0; i < kAttrCount; ++i) put_text_field(s.attributes, attributes[i], true);
  s.attribute_ids.emplace(fingerprint, id);
  s.new_attributes.push_back(fingerprint);
  if (s.attributes.size() >= kCopyFlushBytes)
    if (auto r = flush_attributes(); !r) return Unexpected{r.error()};
  return id;
}

Result<void> PostgresLedger::flush_attributes() {
  State& s = *state_;
  if (s.attributes.empty()) return {};
  if (auto r = end_records_copy(); !r) return r;
  put16(s.attributes, -1);
  std::string columns = "id, fingerprint";
  for (size_t i = 0; i < kAttrCount; ++i)
    columns += ", " + std::string(attribute_name(static_cast<Attr>(i)));
  Session db(conn_, url_);
  auto r = db.copy_in("COPY attributes(" + columns + ") FROM STDIN (FORMAT binary)", s.attributes);
  s.attributes.clear();
  return r;
}

Result<void> PostgresLedger::append(int64_t attributes_id, const UsageFacts& f,
                                    const Lineage& lineage) {
  State& s = *state_;
  if (f.charge_period_start < s.month_lo || f.charge_period_start >= s.month_hi) {
    s.month_lo = floor_month(f.charge_period_start);
    s.month_hi = next_month(s.month_lo);
    if (!s.partitions.count(s.month_lo)) {
      // A month new to this batch: its partition must exist before its rows arrive, and
      // the DDL cannot run while the COPY streams.
      if (auto r = end_records_copy(); !r) return r;
      if (auto r = ensure_partition(s.month_lo); !r) return r;
    }
  }
  if (!s.copy_open)
    if (auto r = start_records_copy(); !r) return r;
  int64_t row[kRecordColumns];
  record_row(attributes_id, f, lineage, row);
  put_record(s.records, row);
  // Handed to libpq in blocks: the server stores them while the next ones are parsed.
  if (s.records.size() >= kCopySendBytes)
    if (auto r = send_records(); !r) return r;
  // Rollups: one hash update per row, by day; months are summed from days at flush.
  s.day.add(row);
  if (s.day.full()) {
    if (auto r = end_records_copy(); !r) return r;
    return flush_rollups();
  }
  return {};
}

Result<void> PostgresLedger::ensure_partition(int64_t month_start) {
  // Inside the batch (and its writer lock): a partition made for an aborted batch goes
  // with it, and no two writers race to make the same one.
  Session db(conn_, url_);
  const int64_t end = next_month(month_start);
  auto r = db.exec("CREATE TABLE IF NOT EXISTS " + partition_name(month_start) +
                   " PARTITION OF records FOR VALUES FROM (" + std::to_string(month_start) +
                   ") TO (" + std::to_string(end) + ")");
  if (!r) return Unexpected{r.error()};
  state_->partitions.insert(month_start);
  return {};
}

Result<void> PostgresLedger::start_records_copy() {
  State& s = *state_;
  std::string columns = "batch_id, line, attributes_id, charge_period_start, charge_period_end";
  for (const char* c : kFactColumns) columns += std::string(", ") + c;
  columns += ", price_version, flags, latency_ms, ttft_ms, gpu_memory_peak_mib";
  const std::string sql = "COPY records(" + columns + ") FROM STDIN (FORMAT binary)";
  PgResult started(PQexec(conn_, sql.c_str()));
  if (PQresultStatus(started.get()) != PGRES_COPY_IN)
    return Session(conn_, url_).error("starting the COPY of records", started.get());
  s.copy_open = true;
  start_copy(s.records);
  return {};
}

Result<void> PostgresLedger::send_records() {
  State& s = *state_;
  if (s.records.empty()) return {};
  if (PQputCopyData(conn_, s.records.data(), (int)s.records.size()) != 1)
    return Session(conn_, url_).error("sending records");
  s.records.clear();
  return {};
}

Result<void> PostgresLedger::ready() {
  // In a batch, a connection runs one command at a time, and the COPY of records is one.
  if (state_->in_batch) return end_records_copy();
  // Outside one, a long-lived process (serve, a gateway) outlives a server restart.
  if (PQstatus(conn_) != CONNECTION_OK) PQreset(conn_);
  return {};
}

Result<void> PostgresLedger::end_records_copy() {
  State& s = *state_;
  if (!s.copy_open) return {};
  put16(s.records, -1);  // trailer
  if (auto r = send_records(); !r) return r;
  s.copy_open = false;
  Session db(conn_, url_);
  if (PQputCopyEnd(conn_, nullptr) != 1) return db.error("ending the COPY of records");
  PgResult done(PQgetResult(conn_));
  if (PQresultStatus(done.get()) != PGRES_COMMAND_OK) {
    Unexpected failure = db.error("storing records", done.get());
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
    return failure;
  }
  while (PGresult* r = PQgetResult(conn_)) PQclear(r);
  return {};
}

Result<void> PostgresLedger::flush_quarantine() {
  State& s = *state_;
  if (s.quarantine_rows == 0) return {};
  if (auto r = end_records_copy(); !r) return r;
  put16(s.quarantine, -1);
  Session db(conn_, url_);
  auto r = db.copy_in(
      "COPY quarantine(batch_id, line, column_name, reason, raw) FROM STDIN (FORMAT binary)",
      s.quarantine);
  s.quarantine.clear();
  s.quarantine_rows = 0;
  return r;
}

Result<void> PostgresLedger::flush_rollups() {
  std::vector<RollupEntry> days = state_->day.take(), months;
  if (days.empty()) return {};
  days_and_months(days, months);
  Session db(conn_, url_);
  std::string columns = "bucket, attributes_id, record_count",
              update = "record_count = t.record_count + excluded.record_count";
  for (const char* c : kFactColumns)
    for (const char* part : {"_hi", "_lo"}) {
      const std::string col = std::string(c) + part;
      columns += ", " + col;
      update += ", " + col + " = t." + col + " + excluded." + col;
    }
  for (auto [entries, table] :
       {std::pair{&days, "rollup_day"}, std::pair{&months, "rollup_month"}}) {
    // Binary COPY into the session's delta table, then one upsert in key order. Each sum
    // is split as SQLite's rollups split it: value = hi * 10^9 + lo.
    std::string data;
    start_copy(data);
    data.reserve(entries->size() * (2 + (3 + 2 * kFactCount) * 12));
    for (const auto& [key, sums] : *entries) {
      put16(data, (int16_t)(3 + 2 * kFactCount));
      put_int8_field(data, key.bucket);
      put_int8_field(data, key.attributes_id);
      put_int8_field(data, sums.record_count);
      for (size_t i = 0; i < kFactCount; ++i) {
        const __int128 hi = sums.facts[i] / kNanosPerUnit, lo = sums.facts[i] % kNanosPerUnit;
        if (hi > INT64_MAX || hi < INT64_MIN)
          return make_error(
              ErrorCode::kInvalidArgument,
              std::string("ledger: a rollup sum of ") + kFactColumns[i] + " passes 9.2e18 units");
        put_int8_field(data, (int64_t)hi);
        put_int8_field(data, (int64_t)lo);
      }
    }
    put16(data, -1);
    if (auto r = db.copy_in(
            "COPY aifinops_rollup_delta(" + columns + ") FROM STDIN (FORMAT binary)", data);
        !r)
      return r;
    if (auto r = db.exec(std::string("INSERT INTO ") + table + " AS t(" + columns + ") SELECT " +
                         columns +
                         " FROM aifinops_rollup_delta ORDER BY bucket, attributes_id"
                         " ON CONFLICT(bucket, attributes_id) DO UPDATE SET " +
                         update + "; TRUNCATE aifinops_rollup_delta;");
        !r)
      return Unexpected{r.error()};
  }
  return {};
}

Result<void> PostgresLedger::quarantine(int64_t batch_id, const QuarantinedRow& row) {
  State& s = *state_;
  if (s.quarantine_rows == 0) start_copy(s.quarantine);
  put16(s.quarantine, 5);
  put_int8_field(s.quarantine, batch_id);
  put_int8_field(s.quarantine, row.line);
  put_text_field(s.quarantine, row.column, true);
  put_text_field(s.quarantine, row.reason, false);
  put_text_field(s.quarantine, row.raw, true);
  ++s.quarantine_rows;
  if (s.quarantine.size() >= kCopyFlushBytes) return flush_quarantine();
  return {};
}

Result<void> PostgresLedger::commit_batch(const BatchSummary& summary) {
  State& s = *state_;
  if (!s.in_batch) return make_error(ErrorCode::kInternal, "ledger: commit without a batch");
  auto fail = [&](const Error& e) -> Result<void> {
    abort_batch();
    return Unexpected{e};
  };
  if (auto r = end_records_copy(); !r) return fail(r.error());
  if (auto r = flush_attributes(); !r) return fail(r.error());
  if (auto r = flush_quarantine(); !r) return fail(r.error());
  if (auto r = flush_rollups(); !r) return fail(r.error());
  Session db(conn_, url_);
  auto updated = db.exec(
      "UPDATE batches SET state = 'committed', fingerprint = $1, rows_read = $2, rows_ingested = "
      "$3,"
      " rows_quarantined = $4, billed_cost = $5, effective_cost = $6 WHERE id = $7",
      Params()
          .text_or_null(summary.fingerprint_hex)
          .number(summary.rows_read)
          .number(summary.rows_ingested)
          .number(summary.rows_quarantined)
          .text(format_decimal(summary.billed_cost))
          .text(format_decimal(summary.effective_cost))
          .number(s.batch_id));
  if (!updated) return fail(updated.error());
  if (auto r = db.exec("UPDATE ledger_changes SET version = version + 1; COMMIT"); !r)
    return fail(r.error());
  s.in_batch = false;
  return {};
}

void PostgresLedger::abort_batch() {
  State& s = *state_;
  if (!s.in_batch) return;
  if (s.copy_open) {
    // End the stream with an error: the server discards it, and the connection takes
    // commands again.
    PQputCopyEnd(conn_, "aborted by aifinops");
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
    s.copy_open = false;
  }
  PQclear(PQexec(conn_, "ROLLBACK"));
  s.in_batch = false;
  s.records.clear();
  s.quarantine.clear();
  s.quarantine_rows = 0;
  s.day.take();
  // The sets this batch added were rolled back with it.
  for (const Fingerprint& f : s.new_attributes) s.attribute_ids.erase(f);
  s.new_attributes.clear();
  s.attributes.clear();
  s.last_attribute_id = s.batch_first_attribute_id;
}

namespace {
const char* kBatchColumns =
    "id, source_path, source_kind, fingerprint, ingested_at, rows_read, rows_ingested, "
    "rows_quarantined, billed_cost, effective_cost";

std::vector<BatchSummary> read_batches(PGresult* r) {
  std::vector<BatchSummary> out;
  for (int i = 0; i < PQntuples(r); ++i) {
    BatchSummary b;
    b.id = int_at(r, i, 0);
    b.source_path = text_at(r, i, 1);
    b.source_kind = text_at(r, i, 2);
    b.fingerprint_hex = text_at(r, i, 3);
    b.ingested_at = text_at(r, i, 4);
    b.rows_read = int_at(r, i, 5);
    b.rows_ingested = int_at(r, i, 6);
    b.rows_quarantined = int_at(r, i, 7);
    b.billed_cost = parse_int128_decimal(text_at(r, i, 8));
    b.effective_cost = parse_int128_decimal(text_at(r, i, 9));
    out.push_back(std::move(b));
  }
  return out;
}
}  // namespace

Result<std::optional<BatchSummary>> PostgresLedger::find_batch_by_fingerprint(
    const Fingerprint& f) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  auto r = db.exec(
      std::string("SELECT ") + kBatchColumns +
          " FROM batches WHERE fingerprint = $1 AND state = 'committed' ORDER BY id LIMIT 1",
      Params().text(f.hex()));
  if (!r) return Unexpected{r.error()};
  auto found = read_batches(r->get());
  if (found.empty()) return std::optional<BatchSummary>();
  return std::optional<BatchSummary>(std::move(found.front()));
}

Result<std::vector<BatchSummary>> PostgresLedger::find_batches_by_path(const std::string& path) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  auto r =
      db.exec(std::string("SELECT ") + kBatchColumns +
                  " FROM batches WHERE source_path = $1 AND state = 'committed' ORDER BY id DESC",
              Params().text(path));
  if (!r) return Unexpected{r.error()};
  return read_batches(r->get());
}

Result<std::vector<BatchSummary>> PostgresLedger::batches() {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  auto r = db.exec(std::string("SELECT ") + kBatchColumns +
                   " FROM batches WHERE state = 'committed' ORDER BY id");
  if (!r) return Unexpected{r.error()};
  return read_batches(r->get());
}

Result<void> PostgresLedger::remove_batch(int64_t batch_id) {
  if (!state_->in_batch)
    return make_error(ErrorCode::kInternal, "ledger: remove_batch outside a batch");
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  const std::string id = std::to_string(batch_id);
  auto found = db.exec("SELECT 1 FROM batches WHERE id = " + id);
  if (!found) return Unexpected{found.error()};
  if (PQntuples(found->get()) == 0)
    return make_error(ErrorCode::kNotFound, "ledger: no batch " + id);
  // Subtract the batch's contribution from each rollup, then drop emptied groups.
  std::string columns = "bucket, attributes_id, record_count", negated = "-count(*)",
              update = "record_count = t.record_count + excluded.record_count";
  for (const char* c : kFactColumns) {
    negated += std::string(", -sum(") + c + " / 1000000000), -sum(" + c + " % 1000000000)";
    for (const char* part : {"_hi", "_lo"}) {
      const std::string col = std::string(c) + part;
      columns += ", " + col;
      update += ", " + col + " = t." + col + " + excluded." + col;
    }
  }
  std::string sql;
  for (auto [table, grain] :
       {std::pair{"rollup_day", Grain::kDay}, std::pair{"rollup_month", Grain::kMonth}}) {
    sql += std::string("INSERT INTO ") + table + " AS t(" + columns + ") SELECT " +
           time_bucket_sql(grain, "charge_period_start") + ", attributes_id, " + negated +
           " FROM records WHERE batch_id = " + id +
           " GROUP BY 1, 2 ORDER BY 1, 2 ON CONFLICT(bucket, attributes_id) DO UPDATE SET " +
           update + "; DELETE FROM " + table + " WHERE record_count = 0;";
  }
  sql += "DELETE FROM records WHERE batch_id = " + id +
         "; DELETE FROM quarantine WHERE batch_id = " + id +
         "; UPDATE batches SET state = 'replaced' WHERE id = " + id + ";";
  if (auto r = db.exec(sql); !r) return Unexpected{r.error()};
  return {};
}

Result<std::vector<QuarantinedRow>> PostgresLedger::quarantined_rows(int64_t batch_id) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  auto r = db.exec(
      "SELECT line, column_name, reason, raw FROM quarantine WHERE batch_id = $1 ORDER BY id",
      Params().number(batch_id));
  if (!r) return Unexpected{r.error()};
  std::vector<QuarantinedRow> out;
  for (int i = 0; i < PQntuples(r->get()); ++i)
    out.push_back({int_at(r->get(), i, 0), text_at(r->get(), i, 1), text_at(r->get(), i, 2),
                   text_at(r->get(), i, 3)});
  return out;
}

Result<bool> PostgresLedger::note_once(std::string_view kind, std::string_view key,
                                       std::string_view detail) {
  bool inserted = false;
  if (auto r = write_note(false, kind, key, detail, &inserted); !r) return Unexpected{r.error()};
  return inserted;
}

Result<void> PostgresLedger::note(std::string_view kind, std::string_view key,
                                  std::string_view detail) {
  return write_note(true, kind, key, detail, nullptr);
}

Result<void> PostgresLedger::write_note(bool replace, std::string_view kind, std::string_view key,
                                        std::string_view detail, bool* inserted) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  const bool own_transaction = !state_->in_batch;
  if (own_transaction)
    if (auto r = db.exec("BEGIN"); !r) return Unexpected{r.error()};
  auto fail = [&](const Error& e) -> Result<void> {
    if (own_transaction) PQclear(PQexec(conn_, "ROLLBACK"));
    return Unexpected{e};
  };
  std::string sql =
      "INSERT INTO notes(kind, key, detail, recorded_at) VALUES($1, $2, $3, $4) ON CONFLICT(kind, "
      "key) ";
  sql += replace ? "DO UPDATE SET detail = excluded.detail, recorded_at = excluded.recorded_at"
                 : "DO NOTHING";
  auto r = db.exec(sql, Params().text(kind).text(key).text(detail).text(now_rfc3339()));
  if (!r) return fail(r.error());
  const bool changed = std::strcmp(PQcmdTuples(r->get()), "0") != 0;
  if (inserted != nullptr) *inserted = changed;
  if (changed)
    if (auto v = db.exec("UPDATE ledger_changes SET version = version + 1"); !v)
      return fail(v.error());
  if (own_transaction)
    if (auto c = db.exec("COMMIT"); !c) return fail(c.error());
  return {};
}

Result<std::vector<Note>> PostgresLedger::notes(std::string_view kind) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  // Byte order ("C"), as SQLite compares: the same notes in the same order on both.
  auto r = db.exec(
      "SELECT kind, key, detail, recorded_at FROM notes WHERE kind = $1 "
      "ORDER BY recorded_at COLLATE \"C\", key COLLATE \"C\"",
      Params().text(kind));
  if (!r) return Unexpected{r.error()};
  std::vector<Note> out;
  for (int i = 0; i < PQntuples(r->get()); ++i)
    out.push_back({text_at(r->get(), i, 0), text_at(r->get(), i, 1), text_at(r->get(), i, 2),
                   text_at(r->get(), i, 3)});
  return out;
}

Result<int64_t> PostgresLedger::change_count() {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  auto r = db.exec("SELECT version FROM ledger_changes");
  if (!r) return Unexpected{r.error()};
  return int_at(r->get(), 0, 0);
}

// ---------------------------------------------------------------------------------------
// Queries

Result<QueryResult> PostgresLedger::query(const QuerySpec& spec) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  auto choice = choose_table(spec);
  if (!choice) return Unexpected{choice.error()};
  const std::string& table = choice->table;
  const std::string& time_column = choice->time_column;

  // Inner query: aggregate by attribute set (and time bucket) over integer keys only;
  // outer query: join the few distinct attribute sets and group by the requested columns.
  // Sums of bigints are `numeric` in PostgreSQL: exact at any size, read back as text.
  std::string inner_keys = "attributes_id", inner_group = "attributes_id";
  std::vector<std::string> outer_select;
  Params params;
  int time_index = 0;
  auto tag_sql = [&](const Dimension& d) {
    std::string sql;
    for (const std::string& key : d.tag_keys) {
      params.text(key);
      sql += (sql.empty() ? "" : ", ") + std::string("aifinops_tag(a.tags, $") +
             std::to_string(params.size()) + ")";
    }
    // An empty value groups with a missing one: both are "(none)" (as in SQLite).
    return "nullif(" + (d.tag_keys.size() == 1 ? sql : "coalesce(" + sql + ")") + ", '')";
  };
  for (const Dimension& d : spec.group_by) {
    switch (d.kind) {
      case Dimension::Kind::kTime: {
        std::string alias = "t" + std::to_string(time_index++);
        bool native = (table == "rollup_month" && d.grain == Grain::kMonth) ||
                      (table == "rollup_day" && d.grain == Grain::kDay);
        inner_keys +=
            ", " + (native ? time_column : time_bucket_sql(d.grain, time_column)) + " AS " + alias;
        inner_group += ", " + alias;
        outer_select.push_back("r." + alias);
        break;
      }
      case Dimension::Kind::kAttribute:
        outer_select.push_back("a." + std::string(attribute_name(d.attribute)));
        break;
      case Dimension::Kind::kTag:
        outer_select.push_back(tag_sql(d));
        break;
    }
  }
  const bool peak = metric_is_peak(spec.metric), ratio = metric_is_ratio(spec.metric);
  const bool rollup = table != "records";
  auto sums = [rollup](const std::vector<std::string>& columns) {
    if (columns.empty()) return std::string("0::numeric");
    std::string sql;
    for (const std::string& c : columns) {
      sql += sql.empty() ? "" : " + ";
      sql += rollup ? "sum(" + c + "_hi) * 1000000000 + sum(" + c + "_lo)" : "sum(" + c + ")";
    }
    return sql;
  };
  std::string inner_metric = peak ? "max(" + metric_columns(spec.metric).front() + ") AS v"
                                  : sums(metric_columns(spec.metric)) + " AS v";
  if (ratio) inner_metric += ", " + sums(metric_denominator_columns(spec.metric)) + " AS d";
  std::string inner_where;
  if (spec.from) inner_where += " AND " + time_column + " >= " + std::to_string(*spec.from);
  if (spec.to) inner_where += " AND " + time_column + " < " + std::to_string(*spec.to);

  std::string sql = "SELECT ";
  for (const std::string& s : outer_select) sql += s + ", ";
  sql += peak ? "max(r.v)" : "sum(r.v)";
  if (ratio) sql += ", sum(r.d)";
  sql += " FROM (SELECT " + inner_keys + ", " + inner_metric + " FROM " + table + " WHERE true" +
         inner_where + " GROUP BY " + inner_group +
         ") r JOIN attributes a ON a.id = r.attributes_id WHERE true";
  for (const Filter& f : spec.filters) {
    std::string column = f.dimension.kind == Dimension::Kind::kTag
                             ? tag_sql(f.dimension)
                             : "a." + std::string(attribute_name(f.dimension.attribute));
    if (f.value == "(none)") {
      sql += " AND coalesce(" + column + ", '') = ''";
    } else {
      params.text(f.value);
      sql += " AND " + column + " = $" + std::to_string(params.size());
    }
  }
  if (!outer_select.empty()) {
    sql += " GROUP BY ";
    for (size_t i = 0; i < outer_select.size(); ++i) sql += (i ? ", " : "") + std::to_string(i + 1);
  }
  Session db(conn_, url_);
  auto r = db.exec(sql, params);
  if (!r) return Unexpected{r.error()};
  PGresult* res = r->get();
  ResultBuilder result(spec, table);
  const int col = (int)spec.group_by.size();
  for (int row = 0; row < PQntuples(res); ++row) {
    if (PQgetisnull(res, row, col)) continue;  // no records at all: an ungrouped sum over nothing
    std::vector<std::string> keys;
    for (int i = 0; i < col; ++i) {
      const Dimension& d = spec.group_by[i];
      if (PQgetisnull(res, row, i)) {
        keys.push_back("(none)");
      } else if (d.kind == Dimension::Kind::kTime) {
        keys.push_back(format_bucket(d.grain, int_at(res, row, i)));
      } else {
        std::string v = text_at(res, row, i);
        keys.push_back(v.empty() ? "(none)" : v);
      }
    }
    const __int128 v = parse_int128_integer(PQgetvalue(res, row, col));
    const __int128 d = ratio ? parse_int128_integer(PQgetvalue(res, row, col + 1)) : 0;
    result.add(std::move(keys), v, d);
  }
  return result.finish();
}

// ---------------------------------------------------------------------------------------
// Prices

Result<int64_t> PostgresLedger::store_prices(std::vector<pricing::ModelPrice>& models,
                                             std::vector<pricing::GpuInstancePrice>& gpus) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  const bool own_transaction = !state_->in_batch;
  // Under the writer lock: the catalog read here is the one the new versions follow.
  if (own_transaction)
    if (auto r =
            db.exec("BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kWriterLock) + ")");
        !r)
      return Unexpected{r.error()};
  auto fail = [&](const Error& e) -> Result<int64_t> {
    if (own_transaction) PQclear(PQexec(conn_, "ROLLBACK"));
    return Unexpected{e};
  };
  auto existing = load_catalog();
  if (!existing) return fail(existing.error());
  int64_t added = 0;
  for (pricing::ModelPrice& m : models) {
    if (model_price_known(*existing, m)) continue;
    auto r = db.exec(
        "INSERT INTO model_prices(id, model, provider, mode, effective_from, currency, input, "
        "cached_input,"
        " cache_write, output, reasoning, batch_discount, max_output_tokens, tiers, source)"
        " SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
        "$14"
        " FROM model_prices RETURNING id",
        Params()
            .text_or_null(m.model)
            .text_or_null(m.provider)
            .text_or_null(m.mode)
            .number(m.effective_from)
            .text_or_null(m.currency)
            .optional(m.prices.input)
            .optional(m.prices.cached_input)
            .optional(m.prices.cache_write)
            .optional(m.prices.output)
            .optional(m.prices.reasoning)
            .optional(m.batch_discount)
            .number(m.max_output_tokens)
            .text_or_null(tiers_json(m.tiers))
            .text_or_null(m.source));
    if (!r) return fail(r.error());
    m.version = int_at(r->get(), 0, 0);
    ++added;
  }
  for (pricing::GpuInstancePrice& g : gpus) {
    if (gpu_price_known(*existing, g)) continue;
    auto r = db.exec(
        "INSERT INTO gpu_prices(id, sku, provider, gpu_type, gpus, effective_from, currency, "
        "on_demand,"
        " reserved, spot, source) SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, "
        "$9, $10"
        " FROM gpu_prices RETURNING id",
        Params()
            .text_or_null(g.sku)
            .text_or_null(g.provider)
            .text_or_null(g.gpu_type)
            .number(g.gpus)
            .number(g.effective_from)
            .text_or_null(g.currency)
            .optional(g.on_demand)
            .optional(g.reserved)
            .optional(g.spot)
            .text_or_null(g.source));
    if (!r) return fail(r.error());
    g.version = int_at(r->get(), 0, 0);
    ++added;
  }
  if (added > 0)
    if (auto r = db.exec("UPDATE ledger_changes SET version = version + 1"); !r)
      return fail(r.error());
  if (own_transaction)
    if (auto r = db.exec("COMMIT"); !r) return fail(r.error());
  return added;
}

Result<pricing::Catalog> PostgresLedger::load_catalog() {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  Session db(conn_, url_);
  pricing::Catalog catalog;
  auto models = db.exec(
      "SELECT id, model, provider, mode, effective_from, currency, input, cached_input, "
      "cache_write, output,"
      " reasoning, batch_discount, max_output_tokens, tiers, source FROM model_prices ORDER BY id");
  if (!models) return Unexpected{models.error()};
  PGresult* r = models->get();
  for (int i = 0; i < PQntuples(r); ++i) {
    pricing::ModelPrice m;
    m.version = int_at(r, i, 0);
    m.model = text_at(r, i, 1);
    m.provider = text_at(r, i, 2);
    m.mode = text_at(r, i, 3);
    m.effective_from = int_at(r, i, 4);
    m.currency = text_at(r, i, 5);
    m.prices.input = optional_at(r, i, 6);
    m.prices.cached_input = optional_at(r, i, 7);
    m.prices.cache_write = optional_at(r, i, 8);
    m.prices.output = optional_at(r, i, 9);
    m.prices.reasoning = optional_at(r, i, 10);
    m.batch_discount = optional_at(r, i, 11);
    m.max_output_tokens = int_at(r, i, 12);
    m.tiers = parse_tiers(text_at(r, i, 13));
    m.source = text_at(r, i, 14);
    catalog.add(std::move(m));
  }
  auto gpus = db.exec(
      "SELECT id, sku, provider, gpu_type, gpus, effective_from, currency, on_demand, reserved, "
      "spot, source"
      " FROM gpu_prices ORDER BY id");
  if (!gpus) return Unexpected{gpus.error()};
  r = gpus->get();
  for (int i = 0; i < PQntuples(r); ++i) {
    pricing::GpuInstancePrice g;
    g.version = int_at(r, i, 0);
    g.sku = text_at(r, i, 1);
    g.provider = text_at(r, i, 2);
    g.gpu_type = text_at(r, i, 3);
    g.gpus = (int32_t)int_at(r, i, 4);
    g.effective_from = int_at(r, i, 5);
    g.currency = text_at(r, i, 6);
    g.on_demand = optional_at(r, i, 7);
    g.reserved = optional_at(r, i, 8);
    g.spot = optional_at(r, i, 9);
    g.source = text_at(r, i, 10);
    catalog.add(std::move(g));
  }
  return catalog;
}

// ---------------------------------------------------------------------------------------
// Whole-database operations (aifinops demo replaces its ledger)

namespace {
/// `SELECT` of the plain tables in the current schema, partitions of records left out.
constexpr const char* kTablesSql =
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
    " AND NOT c.relispartition ORDER BY c.relname";
}  // namespace

Result<std::vector<std::string>> PostgresLedger::foreign_tables(const std::string& url) {
  auto conn = connect(url);
  if (!conn) return Unexpected{conn.error()};
  std::unique_ptr<PGconn, decltype(&PQfinish)> owned(*conn, &PQfinish);
  std::string shown = redact_location(url);
  Session db(*conn, shown);
  auto r = db.exec(kTablesSql);
  if (!r) return Unexpected{r.error()};
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    std::string name = text_at(r->get(), i, 0);
    if (std::find(std::begin(kLedgerTables), std::end(kLedgerTables), name) ==
        std::end(kLedgerTables))
      out.push_back(name);
  }
  return out;
}

Result<void> PostgresLedger::drop_ledger(const std::string& url) {
  auto conn = connect(url);
  if (!conn) return Unexpected{conn.error()};
  std::unique_ptr<PGconn, decltype(&PQfinish)> owned(*conn, &PQfinish);
  std::string shown = redact_location(url);
  Session db(*conn, shown);
  std::string sql = "BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ");";
  for (const char* table : kLedgerTables)
    sql += std::string("DROP TABLE IF EXISTS ") + table + " CASCADE;";
  sql += "DROP FUNCTION IF EXISTS aifinops_tag(text, text); COMMIT;";
  if (auto r = db.exec(sql); !r) {
    PQclear(PQexec(*conn, "ROLLBACK"));
    return Unexpected{r.error()};
  }
  return {};
}

}  // namespace aifinops::ledger
