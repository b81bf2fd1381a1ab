#include "ledger/sqlite/sqlite_ledger.h"

#include "ledger/ledger_internal.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace aifinops::ledger {
using namespace detail;  // the representation shared with PostgresLedger
namespace {

Unexpected sql_error(sqlite3* db, const std::string& what) {
  return make_error(ErrorCode::kIo, "ledger: " + what + ": " + sqlite3_errmsg(db));
}

/// A prepared statement, finalized on destruction.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }
  Result<void> prepare(sqlite3* db, std::string_view sql) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    db_ = db;
    if (sqlite3_prepare_v2(db, sql.data(), (int)sql.size(), &stmt_, nullptr) != SQLITE_OK)
      return sql_error(db, "preparing \"" + std::string(sql.substr(0, 120)) + "\"");
    return {};
  }
  sqlite3_stmt* get() const { return stmt_; }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, std::string_view v) {
    if (v.empty())
      sqlite3_bind_null(stmt_, i);
    else
      sqlite3_bind_text(stmt_, i, v.data(), (int)v.size(), SQLITE_STATIC);
  }
  void bind_text(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), (int)v.size(), SQLITE_TRANSIENT);
  }
  void bind_blob(int i, const void* p, int n) { sqlite3_bind_blob(stmt_, i, p, n, SQLITE_TRANSIENT); }
  /// Steps once: SQLITE_ROW or SQLITE_DONE, anything else is an error.
  Result<bool> step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sql_error(db_, "executing statement");
  }
  Result<void> run() {
    auto r = step();
    sqlite3_reset(stmt_);
    if (!r) return Unexpected{r.error()};
    return {};
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  /// Steps through every row, calling `on_row()` for each.
  template <typename F>
  Result<void> each_row(F on_row) {
    for (;;) {
      auto row = step();
      if (!row) return Unexpected{row.error()};
      if (!*row) return {};
      on_row();
    }
  }
  int64_t int_at(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool null_at(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string text_at(int col) const {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, col)) : "";
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

Result<void> exec(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string m = message ? message : "unknown error";
    sqlite3_free(message);
    return make_error(ErrorCode::kIo, "ledger: " + m + " (in: " + sql.substr(0, 120) + ")");
  }
  return {};
}

/// Rolls back an open transaction; a failure here leaves nothing more to do.
void rollback(sqlite3* db) { sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr); }

// Records are inserted this many at a time: one statement run per block, not per row.
constexpr size_t kRowsPerInsert = 16;

std::string schema_v1() {
  std::string attrs;
  for (size_t i = 0; i < kAttrCount; ++i)
    attrs += ", " + std::string(attribute_name(static_cast<Attr>(i))) + " TEXT";
  std::string facts, rollup_facts;
  for (size_t f = 0; f < kFactCountV1; ++f) {
    const char* c = kFactColumns[f];
    facts += std::string(", ") + c + " INTEGER NOT NULL";
    // SQLite turns an integer sum that overflows into a float: refuse it instead.
    rollup_facts += std::string(", ") + c + " INTEGER NOT NULL CHECK(typeof(" + c + ") = 'integer')";
  }
  std::string sql =
      "CREATE TABLE batches(id INTEGER PRIMARY KEY, source_path TEXT, source_kind TEXT NOT NULL,"
      " fingerprint TEXT, ingested_at TEXT NOT NULL, state TEXT NOT NULL,"
      " first_record INTEGER, last_record INTEGER, rows_read INTEGER, rows_ingested INTEGER,"
      " rows_quarantined INTEGER, billed_cost TEXT, effective_cost TEXT);"
      "CREATE INDEX batches_by_fingerprint ON batches(fingerprint);"
      "CREATE INDEX batches_by_path ON batches(source_path);"
      "CREATE TABLE attributes(id INTEGER PRIMARY KEY, fingerprint BLOB NOT NULL UNIQUE" +
      attrs +
      ");"
      "CREATE TABLE records(id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL, line INTEGER NOT NULL,"
      " attributes_id INTEGER NOT NULL, charge_period_start INTEGER NOT NULL,"
      " charge_period_end INTEGER NOT NULL" +
      facts +
      ", price_version INTEGER NOT NULL, flags INTEGER NOT NULL, latency_ms INTEGER NOT NULL,"
      " ttft_ms INTEGER NOT NULL);"
      "CREATE TABLE quarantine(id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL, line INTEGER,"
      " column_name TEXT, reason TEXT NOT NULL, raw TEXT);"
      "CREATE INDEX quarantine_by_batch ON quarantine(batch_id);";
  for (const char* grain : {"day", "month"}) {
    sql += std::string("CREATE TABLE rollup_") + grain +
           "(bucket INTEGER NOT NULL, attributes_id INTEGER NOT NULL, record_count INTEGER NOT NULL" +
           rollup_facts + ", PRIMARY KEY(bucket, attributes_id)) WITHOUT ROWID;";
  }
  sql +=
      "CREATE TABLE model_prices(id INTEGER PRIMARY KEY, model TEXT NOT NULL, provider TEXT,"
      " mode TEXT, effective_from INTEGER NOT NULL, currency TEXT NOT NULL, input INTEGER,"
      " cached_input INTEGER, cache_write INTEGER, output INTEGER, reasoning INTEGER,"
      " batch_discount INTEGER, max_output_tokens INTEGER, tiers TEXT, source TEXT);"
      "CREATE INDEX model_prices_by_model ON model_prices(model, effective_from);"
      "CREATE TABLE gpu_prices(id INTEGER PRIMARY KEY, sku TEXT NOT NULL, provider TEXT,"
      " gpu_type TEXT, gpus INTEGER NOT NULL, effective_from INTEGER NOT NULL, currency TEXT NOT NULL,"
      " on_demand INTEGER, reserved INTEGER, spot INTEGER, source TEXT);"
      "CREATE INDEX gpu_prices_by_sku ON gpu_prices(sku, effective_from);";
  return sql;
}

// Rollup tables keep each summed fact as two integers, value = hi * 10^9 + lo, because a
// month of nano-unit quantities for one attribute set (10 billion tokens of one model by one
// project) passes int64. SQLite turns an integer sum that overflows into a float: the CHECKs
// refuse that instead.
constexpr const char* kBucketSql[] = {
    "(charge_period_start / 86400) * 86400",
    "CAST(strftime('%s', charge_period_start, 'unixepoch', 'start of month') AS INTEGER)"};
constexpr const char* kRollupTables[] = {"rollup_day", "rollup_month"};

/// v2: notes; the rollups rebuilt with hi/lo columns from the records.
std::string schema_v2() {
  std::string sql =
      "CREATE TABLE notes(kind TEXT NOT NULL, key TEXT NOT NULL, detail TEXT NOT NULL,"
      " recorded_at TEXT NOT NULL, PRIMARY KEY(kind, key)) WITHOUT ROWID;";
  for (size_t t = 0; t < 2; ++t) {
    std::string table = kRollupTables[t], columns, select;
    for (size_t f = 0; f < kFactCountV1; ++f) {
      const char* c = kFactColumns[f];
      for (const char* part : {"_hi", "_lo"}) {
        std::string col = std::string(c) + part;
        columns += ", " + col + " INTEGER NOT NULL CHECK(typeof(" + col + ") = 'integer')";
      }
      select += std::string(", sum(") + c + " / 1000000000), sum(" + c + " % 1000000000)";
    }
    sql += "DROP TABLE " + table + "; CREATE TABLE " + table +
           "(bucket INTEGER NOT NULL, attributes_id INTEGER NOT NULL, record_count INTEGER NOT NULL" +
           columns + ", PRIMARY KEY(bucket, attributes_id)) WITHOUT ROWID;" + "INSERT INTO " + table +
           " SELECT " + kBucketSql[t] + ", attributes_id, count(*)" + select +
           " FROM records GROUP BY 1, 2;";
  }
  return sql;
}

/// v3: GPU telemetry and carbon facts. Existing rows have none, so the new columns start at
/// 0 and nothing is rebuilt; the peak is a per-record column only.
std::string schema_v3() {
  std::string sql;
  for (size_t f = kFactCountV1; f < kFactCount; ++f) {
    const std::string c = kFactColumns[f];
    sql += "ALTER TABLE records ADD COLUMN " + c + " INTEGER NOT NULL DEFAULT 0;";
    for (const char* table : kRollupTables)
      for (const char* part : {"_hi", "_lo"})
        sql += std::string("ALTER TABLE ") + table + " ADD COLUMN " + c + part +
               " INTEGER NOT NULL DEFAULT 0 CHECK(typeof(" + c + part + ") = 'integer');";
  }
  sql += "ALTER TABLE records ADD COLUMN gpu_memory_peak_mib INTEGER NOT NULL DEFAULT 0;";
  return sql;
}

/// The rollup upsert's column list and "col = col + excluded.col" updates.
void rollup_columns(std::string& columns, std::string& update) {
  columns = "bucket, attributes_id, record_count";
  update = "record_count = record_count + excluded.record_count";
  for (const char* c : kFactColumns) {
    for (const char* part : {"_hi", "_lo"}) {
      std::string col = std::string(c) + part;
      columns += ", " + col;
      update += ", " + col + " = " + col + " + excluded." + col;
    }
  }
}

std::string format_int128(__int128 v) { return format_decimal(v); }

/// Groupings kept per connection: an analysis asks for a few, several times over.
constexpr size_t kCachedGroupings = 16;
/// Time keys a rollup query sums in C++; more (rare: "day,week,month") take the SQL path.
constexpr size_t kRollupTimeKeys = 2;

}  // namespace

/// Which group each attribute set falls in for one grouping and filter list: the
/// attribute and tag columns of a query, evaluated once per attribute set instead of once
/// per rollup row. Valid while the attributes table ends at `max_id` (it is append-only).
struct AttributeGroups {
  int64_t max_id = 0;
  std::vector<int32_t> group_of;               ///< by attributes id; -1: filtered out
  std::vector<std::vector<std::string>> keys;  ///< by group: the non-time key values
};

/// One metric of a rollup table in memory, for one calendar month of the day rollup (or the
/// whole month rollup), in the table's order (bucket, attribute set): repeated analyses over
/// months of days (series, budgets, anomalies) then read arrays instead of decoding hundreds
/// of thousands of wide rows each time, and a first query reads only the months it covers.
/// Valid for the ledger version it was read at. Immutable once made.
struct RollupColumn {
  std::string table;
  Metric metric = Metric::kEffectiveCost;
  int64_t chunk = 0;    ///< the month's first second (day rollup); 0 for the month rollup
  int64_t version = 0;  ///< the ledger version it was read at (rollup_version)
  std::vector<int64_t> buckets;
  std::vector<int32_t> attributes;
  std::vector<__int128> values;
};

/// Rows of the rollup pieces one cache keeps at most (28 bytes each: 112 MB), and pieces:
/// three years of months for a few metrics.
constexpr size_t kMaxCachedRollupRows = 4'000'000;
constexpr size_t kCachedRollupColumns = 160;

/// The first and last bucket of the day rollup at a ledger version.
struct DayRange {
  int64_t version = 0, first = 0, last = 0;
  bool empty = true;
};

/// What rollup queries keep in memory (see query_rollup), for one connection or shared by
/// the connections to one ledger file that were opened with it (serve's pool). Entries are
/// immutable once listed; the mutex guards the lists.
class RollupCache {
 public:
  std::mutex mutex;
  /// Attribute sets by group, by grouping and filters; most recently used first.
  std::vector<std::pair<std::string, std::shared_ptr<const AttributeGroups>>> groups;
  /// Rollup pieces in memory, most recently used first.
  std::vector<std::shared_ptr<const RollupColumn>> columns;
  std::optional<DayRange> day_range;
};

namespace {

/// The first and last bucket of the day rollup, each one step down the key (min and max in
/// one statement would scan the table).
Result<DayRange> read_day_range(sqlite3* db, int64_t version) {
  DayRange read{version, 0, 0, false};
  for (const char* order : {"", " DESC"}) {
    Statement bound;
    if (auto r = bound.prepare(db, std::string("SELECT bucket FROM rollup_day ORDER BY bucket") +
                                       order + " LIMIT 1");
        !r)
      return Unexpected{r.error()};
    auto found = bound.step();
    if (!found) return Unexpected{found.error()};
    read.empty = !*found;
    if (*found) (*order ? read.last : read.first) = bound.int_at(0);
  }
  return read;
}

}  // namespace

struct SqliteLedger::State {
  bool in_batch = false;
  int64_t batch_id = 0;
  int64_t first_record = 0, last_record = 0;
  /// A writer's statements, prepared at its first batch and kept with the connection: a
  /// file of a few thousand rows would otherwise spend a good part of its time preparing
  /// them (the 16-row insert has 464 parameters, a rollup upsert 41 columns).
  bool writer_prepared = false;
  Statement insert_batch, insert_record, insert_records, insert_attributes, find_attributes,
      insert_quarantine, update_batch;
  Statement upsert_rollup[2];  ///< into kRollupTables[0] and [1]
  int64_t pending[kRowsPerInsert][kRecordColumns];  // records not yet inserted
  size_t pending_count = 0;
  DayRollup day;
  std::shared_ptr<RollupCache> rollups;
};

SqliteLedger::SqliteLedger(sqlite3* db, std::string path, std::shared_ptr<RollupCache> rollups)
    : db_(db), path_(std::move(path)), state_(std::make_unique<State>()) {
  state_->rollups = rollups ? std::move(rollups) : new_rollup_cache();
}

std::shared_ptr<RollupCache> SqliteLedger::new_rollup_cache() {
  return std::make_shared<RollupCache>();
}


SqliteLedger::~SqliteLedger() {
  if (state_ && state_->in_batch) abort_batch();
  state_.reset();  // statements before the connection
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<SqliteLedger>> SqliteLedger::open(const std::string& path) {
  return open(path, nullptr);
}

Result<std::unique_ptr<SqliteLedger>> SqliteLedger::open(const std::string& path,
                                                         std::shared_ptr<RollupCache> rollups) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return make_error(ErrorCode::kIo, path + ": cannot open the ledger: " + m);
  }
  sqlite3_busy_timeout(db, 10'000);
  std::unique_ptr<SqliteLedger> ledger(new SqliteLedger(db, path, std::move(rollups)));
  // WAL: readers never block the writer. synchronous=NORMAL is durable in WAL mode except
  // for the last transactions on power loss, never corrupting.
  for (const char* pragma :
       {"PRAGMA page_size=16384", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA cache_size=-65536",
        "PRAGMA temp_store=MEMORY", "PRAGMA foreign_keys=OFF"}) {
    if (auto r = exec(db, pragma); !r)
      return make_error(ErrorCode::kIo, path + ": " + r.error().message +
                                            " (is it an aifinops ledger, and writable?)");
  }
  if (auto r = ledger->migrate(); !r) return Unexpected{r.error()};
  return ledger;
}

Result<void> SqliteLedger::migrate() {
  if (auto r = exec(db_, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)"); !r)
    return r;
  Statement st;
  if (auto r = st.prepare(db_, "SELECT max(version) FROM schema_version"); !r) return r;
  auto row = st.step();
  if (!row) return Unexpected{row.error()};
  int64_t version = st.null_at(0) ? 0 : st.int_at(0);
  st.reset();  // an active read blocks the DROP TABLE of a migration
  if (version > kSchemaVersion)
    return make_error(ErrorCode::kConflict,
                      path_ + ": the ledger has schema version " + std::to_string(version) +
                          ", newer than this aifinops (" + std::to_string(kSchemaVersion) +
                          "); upgrade aifinops");
  // Migrations run in order, each in its own transaction; add new ones at the end.
  const std::vector<std::string> migrations = {schema_v1(), schema_v2(), schema_v3()};
  for (int64_t v = version; v < (int64_t)migrations.size(); ++v) {
    std::string sql = "BEGIN IMMEDIATE;" + migrations[v] +
                      "INSERT INTO schema_version VALUES(" + std::to_string(v + 1) + ");COMMIT;";
    if (auto r = exec(db_, sql); !r) {
      rollback(db_);
      return r;
    }
  }
  return {};
}

Result<void> SqliteLedger::prepare_writer() {
  State& s = *state_;
  if (s.writer_prepared) return {};
  std::string insert = "INSERT INTO records(batch_id, line, attributes_id, charge_period_start, charge_period_end";
  std::string values = "?,?,?,?,?";
  for (const char* c : kFactColumns) {
    insert += std::string(", ") + c;
    values += ",?";
  }
  insert += ", price_version, flags, latency_ms, ttft_ms, gpu_memory_peak_mib) VALUES";
  std::string insert_one = insert + "(" + values + ",?,?,?,?,?)";
  std::string insert_many = insert;
  for (size_t r = 0; r < kRowsPerInsert; ++r) insert_many += (r ? ",(" : "(") + values + ",?,?,?,?,?)";
  std::string attrs_insert = "INSERT INTO attributes(fingerprint", attrs_values = "?";
  for (size_t i = 0; i < kAttrCount; ++i) {
    attrs_insert += ", " + std::string(attribute_name(static_cast<Attr>(i)));
    attrs_values += ",?";
  }
  attrs_insert += ") VALUES(" + attrs_values + ")";
  std::string columns, update, rollup_values = "?,?,?";
  rollup_columns(columns, update);
  for (size_t i = 0; i < 2 * kFactCount; ++i) rollup_values += ",?";
  auto upsert = [&](const char* table) {
    return std::string("INSERT INTO ") + table + "(" + columns + ") VALUES(" + rollup_values +
           ") ON CONFLICT(bucket, attributes_id) DO UPDATE SET " + update;
  };
  for (auto r : {s.insert_batch.prepare(db_,
                                        "INSERT INTO batches(source_path, source_kind, ingested_at, state) "
                                        "VALUES(?,?,?, 'open')"),
                 s.insert_record.prepare(db_, insert_one), s.insert_records.prepare(db_, insert_many),
                 s.insert_attributes.prepare(db_, attrs_insert),
                 s.find_attributes.prepare(db_, "SELECT id FROM attributes WHERE fingerprint = ?"),
                 s.insert_quarantine.prepare(db_,
                                             "INSERT INTO quarantine(batch_id, line, column_name, "
                                             "reason, raw) VALUES(?,?,?,?,?)"),
                 s.update_batch.prepare(db_,
                                        "UPDATE batches SET state='committed', fingerprint=?, first_record=?, "
                                        "last_record=?, rows_read=?, rows_ingested=?, rows_quarantined=?, "
                                        "billed_cost=?, effective_cost=? WHERE id=?"),
                 s.upsert_rollup[0].prepare(db_, upsert(kRollupTables[0])),
                 s.upsert_rollup[1].prepare(db_, upsert(kRollupTables[1]))}) {
    if (!r) return r;
  }
  s.writer_prepared = true;
  return {};
}

Result<int64_t> SqliteLedger::begin_batch(const BatchInfo& info) {
  if (state_->in_batch) return make_error(ErrorCode::kInternal, "ledger: a batch is already open");
  if (auto r = prepare_writer(); !r) return Unexpected{r.error()};
  if (auto r = exec(db_, "BEGIN IMMEDIATE"); !r) return Unexpected{r.error()};
  state_->in_batch = true;
  State& s = *state_;
  Statement& st = s.insert_batch;
  st.bind(1, std::string_view(info.source_path));
  st.bind(2, std::string_view(info.source_kind));
  std::string now = now_rfc3339();
  st.bind(3, std::string_view(now));
  if (auto r = st.run(); !r) {
    abort_batch();
    return Unexpected{r.error()};
  }
  s.batch_id = sqlite3_last_insert_rowid(db_);
  s.first_record = s.last_record = 0;
  s.pending_count = 0;
  return s.batch_id;
}

Result<int64_t> SqliteLedger::intern_attributes(const AttributeViews& attributes,
                                                const Fingerprint& fingerprint) {
  State& s = *state_;
  unsigned char blob[16];
  std::memcpy(blob, &fingerprint.high, 8);
  std::memcpy(blob + 8, &fingerprint.low, 8);
  s.find_attributes.reset();
  s.find_attributes.bind_blob(1, blob, 16);
  auto found = s.find_attributes.step();
  if (!found) return Unexpected{found.error()};
  if (*found) {
    int64_t id = s.find_attributes.int_at(0);
    s.find_attributes.reset();
    return id;
  }
  s.find_attributes.reset();
  s.insert_attributes.reset();
  s.insert_attributes.bind_blob(1, blob, 16);
  for (size_t i = 0; i < kAttrCount; ++i) s.insert_attributes.bind((int)i + 2, attributes[i]);
  if (auto r = s.insert_attributes.run(); !r) return Unexpected{r.error()};
  return sqlite3_last_insert_rowid(db_);
}

Result<void> SqliteLedger::append(int64_t attributes_id, const UsageFacts& f, const Lineage& lineage) {
  State& s = *state_;
  int64_t* row = s.pending[s.pending_count++];
  record_row(attributes_id, f, lineage, row);
  // Rollups: one hash update per row, by day; months are summed from days at flush.
  s.day.add(row);
  if (s.pending_count == kRowsPerInsert)
    if (auto r = flush_records(); !r) return r;
  if (s.day.full()) return flush_rollups();
  return {};
}

Result<void> SqliteLedger::flush_records() {
  State& s = *state_;
  if (s.pending_count == 0) return {};
  // A full block goes in one multi-row INSERT (one statement run for many rows); a
  // partial one row by row.
  bool full = s.pending_count == kRowsPerInsert;
  Statement& st = full ? s.insert_records : s.insert_record;
  for (size_t r = 0; r < s.pending_count; ++r) {
    int base = full ? (int)(r * kRecordColumns) : 0;
    for (size_t c = 0; c < kRecordColumns; ++c) st.bind(base + (int)c + 1, s.pending[r][c]);
    if (!full || r + 1 == s.pending_count) {
      if (sqlite3_step(st.get()) != SQLITE_DONE) {
        sqlite3_reset(st.get());
        return sql_error(db_, "appending records");
      }
      sqlite3_reset(st.get());
    }
  }
  int64_t last = sqlite3_last_insert_rowid(db_);
  if (s.first_record == 0) s.first_record = last - (int64_t)s.pending_count + 1;
  s.last_record = last;
  s.pending_count = 0;
  return {};
}

Result<void> SqliteLedger::flush_rollups() {
  // Sorted keys make the upserts walk the B-tree in order instead of at random.
  std::vector<RollupEntry> days = state_->day.take(), months;
  days_and_months(days, months);

  for (auto [entries, st] : {std::pair{&days, &state_->upsert_rollup[0]},
                             std::pair{&months, &state_->upsert_rollup[1]}}) {
    for (const auto& [key, sums] : *entries) {
      st->bind(1, key.bucket);
      st->bind(2, key.attributes_id);
      st->bind(3, sums.record_count);
      for (size_t i = 0; i < kFactCount; ++i) {
        const __int128 hi = sums.facts[i] / kNanosPerUnit, lo = sums.facts[i] % kNanosPerUnit;
        if (hi > INT64_MAX || hi < INT64_MIN)
          return make_error(ErrorCode::kInvalidArgument,
                            std::string("ledger: a rollup sum of ") + kFactColumns[i] + " passes 9.2e18 units");
        st->bind((int)(4 + 2 * i), (int64_t)hi);
        st->bind((int)(5 + 2 * i), (int64_t)lo);
      }
      if (auto r = st->run(); !r) return r;
    }
  }
  return {};
}

Result<void> SqliteLedger::quarantine(int64_t batch_id, const QuarantinedRow& row) {
  Statement& st = state_->insert_quarantine;
  st.reset();
  st.bind(1, batch_id);
  st.bind(2, row.line);
  st.bind(3, std::string_view(row.column));
  st.bind(4, std::string_view(row.reason));
  st.bind(5, std::string_view(row.raw));
  return st.run();
}

Result<void> SqliteLedger::commit_batch(const BatchSummary& summary) {
  State& s = *state_;
  if (!s.in_batch) return make_error(ErrorCode::kInternal, "ledger: commit without a batch");
  if (auto r = flush_records(); !r) {
    abort_batch();
    return r;
  }
  if (auto r = flush_rollups(); !r) {
    abort_batch();
    return r;
  }
  Statement& st = s.update_batch;
  std::string billed = format_int128(summary.billed_cost), effective = format_int128(summary.effective_cost);
  st.bind(1, std::string_view(summary.fingerprint_hex));
  st.bind(2, s.first_record);
  st.bind(3, s.last_record);
  st.bind(4, summary.rows_read);
  st.bind(5, summary.rows_ingested);
  st.bind(6, summary.rows_quarantined);
  st.bind(7, std::string_view(billed));
  st.bind(8, std::string_view(effective));
  st.bind(9, s.batch_id);
  if (auto r = st.run(); !r) {
    abort_batch();
    return r;
  }
  if (auto r = exec(db_, "COMMIT"); !r) {
    abort_batch();
    return r;
  }
  s.in_batch = false;
  return {};
}

void SqliteLedger::abort_batch() {
  if (!state_->in_batch) return;
  rollback(db_);
  state_->in_batch = false;
  state_->pending_count = 0;
  state_->day.take();
}

namespace {
const char* kBatchColumns =
    "id, source_path, source_kind, fingerprint, ingested_at, rows_read, rows_ingested, "
    "rows_quarantined, billed_cost, effective_cost";

BatchSummary read_batch(const Statement& st) {
  BatchSummary b;
  b.id = st.int_at(0);
  b.source_path = st.text_at(1);
  b.source_kind = st.text_at(2);
  b.fingerprint_hex = st.text_at(3);
  b.ingested_at = st.text_at(4);
  b.rows_read = st.int_at(5);
  b.rows_ingested = st.int_at(6);
  b.rows_quarantined = st.int_at(7);
  b.billed_cost = parse_int128_decimal(st.text_at(8));
  b.effective_cost = parse_int128_decimal(st.text_at(9));
  return b;
}
}  // namespace

Result<std::optional<BatchSummary>> SqliteLedger::find_batch_by_fingerprint(const Fingerprint& f) {
  Statement st;
  if (auto r = st.prepare(db_, std::string("SELECT ") + kBatchColumns +
                                   " FROM batches WHERE fingerprint = ? AND state = 'committed' LIMIT 1");
      !r)
    return Unexpected{r.error()};
  std::string hex = f.hex();
  st.bind(1, std::string_view(hex));
  auto row = st.step();
  if (!row) return Unexpected{row.error()};
  if (!*row) return std::optional<BatchSummary>();
  return std::optional<BatchSummary>(read_batch(st));
}

Result<std::vector<BatchSummary>> SqliteLedger::find_batches_by_path(const std::string& path) {
  Statement st;
  if (auto r = st.prepare(db_, std::string("SELECT ") + kBatchColumns +
                                   " FROM batches WHERE source_path = ? AND state = 'committed' "
                                   "ORDER BY id DESC");
      !r)
    return Unexpected{r.error()};
  st.bind(1, std::string_view(path));
  std::vector<BatchSummary> out;
  auto rows = st.each_row([&] {
    out.push_back(read_batch(st));
  });
  if (!rows) return Unexpected{rows.error()};
  return out;
}

Result<std::vector<BatchSummary>> SqliteLedger::batches() {
  Statement st;
  if (auto r = st.prepare(db_, std::string("SELECT ") + kBatchColumns +
                                   " FROM batches WHERE state = 'committed' ORDER BY id");
      !r)
    return Unexpected{r.error()};
  std::vector<BatchSummary> out;
  auto rows = st.each_row([&] {
    out.push_back(read_batch(st));
  });
  if (!rows) return Unexpected{rows.error()};
  return out;
}

Result<void> SqliteLedger::remove_batch(int64_t batch_id) {
  if (!state_->in_batch)
    return make_error(ErrorCode::kInternal, "ledger: remove_batch outside a batch");
  if (auto r = flush_records(); !r) return r;
  Statement range;
  if (auto r = range.prepare(db_, "SELECT first_record, last_record FROM batches WHERE id = ?"); !r) return r;
  range.bind(1, batch_id);
  auto row = range.step();
  if (!row) return Unexpected{row.error()};
  if (!*row) return make_error(ErrorCode::kNotFound, "ledger: no batch " + std::to_string(batch_id));
  int64_t first = range.int_at(0), last = range.int_at(1);
  std::string ids = std::to_string(first) + " AND " + std::to_string(last);
  // Subtract the batch's contribution from each rollup, then drop emptied groups.
  std::string columns, update;
  rollup_columns(columns, update);
  for (size_t t = 0; t < 2; ++t) {
    std::string select = std::string(kBucketSql[t]) + ", attributes_id, -count(*)";
    for (const char* c : kFactColumns)
      select += std::string(", -sum(") + c + " / 1000000000), -sum(" + c + " % 1000000000)";
    std::string sql = std::string("INSERT INTO ") + kRollupTables[t] + "(" + columns + ") SELECT " + select +
                      " FROM records WHERE id BETWEEN " + ids +
                      " GROUP BY 1, 2 ON CONFLICT(bucket, attributes_id) DO UPDATE SET " + update +
                      "; DELETE FROM " + kRollupTables[t] + " WHERE record_count = 0;";
    if (first > 0)
      if (auto r = exec(db_, sql); !r) return r;
  }
  std::string sql;
  if (first > 0) sql += "DELETE FROM records WHERE id BETWEEN " + ids + ";";
  sql += "DELETE FROM quarantine WHERE batch_id = " + std::to_string(batch_id) +
         "; UPDATE batches SET state = 'replaced' WHERE id = " + std::to_string(batch_id) + ";";
  return exec(db_, sql);
}

Result<std::vector<QuarantinedRow>> SqliteLedger::quarantined_rows(int64_t batch_id) {
  Statement st;
  if (auto r = st.prepare(db_, "SELECT line, column_name, reason, raw FROM quarantine WHERE batch_id = ? ORDER BY id"); !r)
    return Unexpected{r.error()};
  st.bind(1, batch_id);
  std::vector<QuarantinedRow> out;
  auto rows = st.each_row([&] {
    out.push_back({st.int_at(0), st.text_at(1), st.text_at(2), st.text_at(3)});
  });
  if (!rows) return Unexpected{rows.error()};
  return out;
}

Result<bool> SqliteLedger::note_once(std::string_view kind, std::string_view key, std::string_view detail) {
  if (auto r = write_note("INSERT OR IGNORE", kind, key, detail); !r) return Unexpected{r.error()};
  return sqlite3_changes(db_) > 0;
}

Result<void> SqliteLedger::note(std::string_view kind, std::string_view key, std::string_view detail) {
  return write_note("INSERT OR REPLACE", kind, key, detail);
}

Result<void> SqliteLedger::write_note(std::string_view verb, std::string_view kind, std::string_view key,
                                      std::string_view detail) {
  Statement st;
  std::string sql = std::string(verb) + " INTO notes(kind, key, detail, recorded_at) VALUES(?, ?, ?, ?)";
  if (auto r = st.prepare(db_, sql); !r) return r;
  std::string now = now_rfc3339();
  st.bind_text(1, std::string(kind));
  st.bind_text(2, std::string(key));
  st.bind_text(3, std::string(detail));
  st.bind_text(4, now);
  if (auto r = st.step(); !r) return Unexpected{r.error()};
  return {};
}

Result<std::vector<Note>> SqliteLedger::notes(std::string_view kind) {
  Statement st;
  if (auto r = st.prepare(db_, "SELECT kind, key, detail, recorded_at FROM notes WHERE kind = ? ORDER BY recorded_at, key"); !r)
    return Unexpected{r.error()};
  st.bind_text(1, std::string(kind));
  std::vector<Note> out;
  auto rows = st.each_row([&] { out.push_back({st.text_at(0), st.text_at(1), st.text_at(2), st.text_at(3)}); });
  if (!rows) return Unexpected{rows.error()};
  return out;
}

// ---------------------------------------------------------------------------------------
// Queries

namespace {

std::string time_bucket_sql(Grain grain, const std::string& column) {
  switch (grain) {
    case Grain::kHour: return "((" + column + " / 3600) * 3600)";
    case Grain::kDay: return "((" + column + " / 86400) * 86400)";
    case Grain::kWeek:
      return "((" + column + " / 86400 - ((" + column + " / 86400 + 3) % 7)) * 86400)";
    case Grain::kMonth:
      return "CAST(strftime('%s', " + column + ", 'unixepoch', 'start of month') AS INTEGER)";
    case Grain::kNone: break;
  }
  return column;
}

/// The sums of a metric's numerator in whole units (a / 10^9) and remainders, or its
/// maximum for a peak metric; the denominator of a ratio follows as dunits, drest.
std::string metric_select_sql(Metric metric, bool rollup, bool aggregate);

/// SQL summing a metric as whole units and remainders (value = units * 10^9 + rest), so
/// that no SQL sum passes int64; they are joined again in 128 bits.
/// With `aggregate` false the row's own values are taken (each row is already one group).
std::string metric_sums_sql(const std::vector<std::string>& columns, bool rollup, bool aggregate,
                            const std::string& prefix) {
  if (columns.empty()) return "0 AS " + prefix + "units, 0 AS " + prefix + "rest";
  std::string hi, lo;
  for (const std::string& c : columns) {
    hi += (hi.empty() ? "" : " + ") + (rollup ? c + "_hi" : "(" + c + " / 1000000000)");
    lo += (lo.empty() ? "" : " + ") + (rollup ? c + "_lo" : "(" + c + " % 1000000000)");
  }
  if (!aggregate) return hi + " AS " + prefix + "units, " + lo + " AS " + prefix + "rest";
  return "sum(" + hi + ") AS " + prefix + "units, sum(" + lo + ") AS " + prefix + "rest";
}

std::string metric_select_sql(Metric metric, bool rollup, bool aggregate) {
  if (metric_is_peak(metric)) {
    // Only in `records` (never a rollup): a maximum of whole numbers, carried whole in
    // `rest` (value = units * 10^9 + rest).
    const std::string c = metric_columns(metric).front();
    return "0 AS units, " + (aggregate ? "max(" + c + ")" : c) + " AS rest";
  }
  std::string sql = metric_sums_sql(metric_columns(metric), rollup, aggregate, "");
  if (metric_is_ratio(metric))
    sql += ", " + metric_sums_sql(metric_denominator_columns(metric), rollup, aggregate, "d");
  return sql;
}

/// The SQL for a tag dimension: its first key present in the raw tags. Appends the JSON
/// paths to bind, in order.
std::string tag_sql(const Dimension& d, std::vector<std::string>& binds) {
  std::string sql;
  for (const std::string& key : d.tag_keys) {
    sql += sql.empty() ? "" : ", ";
    sql += "json_extract(a.tags, ?)";  // tags are stored only when they are a valid JSON object
    std::string escaped;
    for (char c : key) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    binds.push_back("$.\"" + escaped + "\"");
  }
  // An empty value groups with a missing one: both are "(none)".
  return "nullif(" + (d.tag_keys.size() == 1 ? sql : "coalesce(" + sql + ")") + ", '')";
}

/// A rollup bucket in a coarser grain, as time_bucket_sql computes it in SQL.
int64_t bucket_in_grain(int64_t bucket, Grain grain, Grain native) {
  if (grain == native) return bucket;
  switch (grain) {
    case Grain::kHour:
      return (bucket / 3600) * 3600;
    case Grain::kDay:
      return (bucket / 86400) * 86400;
    case Grain::kWeek:
      return (bucket / 86400 - ((bucket / 86400 + 3) % 7)) * 86400;
    case Grain::kMonth:
      return floor_month(bucket);
    case Grain::kNone:
      break;
  }
  return bucket;
}

/// A grouped key's text: missing and empty values are "(none)".
std::string key_text(const Statement& st, int col) {
  if (st.null_at(col)) return "(none)";
  std::string v = st.text_at(col);
  return v.empty() ? "(none)" : v;
}

}  // namespace

Result<QueryResult> SqliteLedger::query(const QuerySpec& spec) {
  auto choice = choose_table(spec);
  if (!choice) return Unexpected{choice.error()};
  const std::string& table = choice->table;
  const std::string& time_column = choice->time_column;
  size_t time_dimensions = 0;
  for (const Dimension& d : spec.group_by) time_dimensions += d.kind == Dimension::Kind::kTime;
  bool in_memory = table != "records" && time_dimensions <= kRollupTimeKeys;
  if (in_memory) return query_rollup(spec, table);

  // Inner query: aggregate by attribute set (and time bucket) over integer keys only;
  // outer query: join the few distinct attribute sets and group by the requested columns.
  std::string inner_keys = "attributes_id";
  std::vector<std::string> outer_select;
  std::vector<std::string> binds;
  int time_index = 0;
  bool all_time_native = true;
  for (const Dimension& d : spec.group_by) {
    switch (d.kind) {
      case Dimension::Kind::kTime: {
        std::string alias = "t" + std::to_string(time_index++);
        // A rollup's own grain needs no conversion.
        bool native = (table == "rollup_month" && d.grain == Grain::kMonth) ||
                      (table == "rollup_day" && d.grain == Grain::kDay);
        all_time_native &= native;
        inner_keys += ", " + (native ? time_column : time_bucket_sql(d.grain, time_column)) + " AS " + alias;
        outer_select.push_back("r." + alias);
        break;
      }
      case Dimension::Kind::kAttribute:
        outer_select.push_back("a." + std::string(attribute_name(d.attribute)));
        break;
      case Dimension::Kind::kTag:
        outer_select.push_back(tag_sql(d, binds));
        break;
    }
  }
  std::string inner_where;
  if (spec.from) inner_where += " AND " + time_column + " >= " + std::to_string(*spec.from);
  if (spec.to) inner_where += " AND " + time_column + " < " + std::to_string(*spec.to);
  std::string sql = "SELECT ";
  for (const std::string& s : outer_select) sql += s + ", ";
  // Group by the aliases of the inner select.
  std::string group_list = "attributes_id";
  for (int i = 0; i < time_index; ++i) group_list += ", t" + std::to_string(i);
  // Sums are split into whole units and remainders so that no SQL sum can pass int64
  // (nano-unit totals of quantities can); they are joined again in 128 bits below.
  // Grouped by a rollup's own bucket, each rollup row (bucket, attributes_id) is already one
  // inner group: no GROUP BY (a third less time for `--by team,day` over millions of records).
  const bool rows_are_groups = time_index > 0 && all_time_native;
  const bool peak = metric_is_peak(spec.metric), ratio = metric_is_ratio(spec.metric);
  sql += peak ? "max(r.units), max(r.rest)" : "sum(r.units), sum(r.rest)";
  if (ratio) sql += ", sum(r.dunits), sum(r.drest)";
  sql += " FROM (SELECT " + inner_keys + ", " +
         metric_select_sql(spec.metric, table != "records", !rows_are_groups) + " FROM " + table +
         " WHERE 1" + inner_where + (rows_are_groups ? "" : " GROUP BY " + group_list) +
         ") r JOIN attributes a ON a.id = r.attributes_id WHERE 1";
  std::vector<std::string> filter_binds;
  for (const Filter& f : spec.filters) {
    std::string column = f.dimension.kind == Dimension::Kind::kTag
                             ? tag_sql(f.dimension, filter_binds)
                             : "a." + std::string(attribute_name(f.dimension.attribute));
    if (f.value == "(none)") {
      sql += " AND coalesce(" + column + ", '') = ''";
    } else {
      sql += " AND " + column + " = ?";
      filter_binds.push_back(f.value);
    }
  }
  if (!outer_select.empty()) {
    // Time columns first: SQLite's sorter groups (day, team) about 40% faster than (team,
    // day) on the day rollup, whose rows are stored by bucket.
    std::string group_by;
    for (int pass = 0; pass < 2; ++pass)
      for (size_t i = 0; i < spec.group_by.size(); ++i)
        if ((spec.group_by[i].kind == Dimension::Kind::kTime) == (pass == 0))
          group_by += (group_by.empty() ? "" : ", ") + std::to_string(i + 1);
    sql += " GROUP BY " + group_by;
  }
  Statement st;
  if (auto r = st.prepare(db_, sql); !r) return Unexpected{r.error()};
  int bind_index = 1;
  for (const std::string& b : binds) st.bind_text(bind_index++, b);
  for (const std::string& b : filter_binds) st.bind_text(bind_index++, b);

  ResultBuilder result(spec, table);
  auto rows = st.each_row([&] {
    int col = (int)spec.group_by.size();
    if (st.null_at(col)) return;  // no records at all: an ungrouped sum over nothing
    std::vector<std::string> keys;
    for (size_t i = 0; i < spec.group_by.size(); ++i) {
      const Dimension& d = spec.group_by[i];
      if (st.null_at((int)i)) {
        keys.push_back("(none)");
      } else if (d.kind == Dimension::Kind::kTime) {
        keys.push_back(format_bucket(d.grain, st.int_at((int)i)));
      } else {
        std::string v = st.text_at((int)i);
        keys.push_back(v.empty() ? "(none)" : v);
      }
    }
    const __int128 v = (__int128)st.int_at(col) * kNanosPerUnit + st.int_at(col + 1);
    const __int128 d = ratio ? (__int128)st.int_at(col + 2) * kNanosPerUnit + st.int_at(col + 3) : 0;
    result.add(std::move(keys), v, d);
  });
  if (!rows) return Unexpected{rows.error()};
  return result.finish();
}

Result<std::shared_ptr<const AttributeGroups>> SqliteLedger::attribute_groups(
    const QuerySpec& spec) {
  // The attribute and tag columns of the grouping, and the filters, over the attributes.
  std::string sql = "SELECT a.id";
  std::vector<std::string> binds;
  for (const Dimension& d : spec.group_by) {
    if (d.kind == Dimension::Kind::kAttribute)
      sql += ", a." + std::string(attribute_name(d.attribute));
    else if (d.kind == Dimension::Kind::kTag)
      sql += ", " + tag_sql(d, binds);
  }
  sql += " FROM attributes a WHERE 1";
  for (const Filter& f : spec.filters) {
    std::string column = f.dimension.kind == Dimension::Kind::kTag
                             ? tag_sql(f.dimension, binds)
                             : "a." + std::string(attribute_name(f.dimension.attribute));
    if (f.value == "(none)") {
      sql += " AND coalesce(" + column + ", '') = ''";
    } else {
      sql += " AND " + column + " = ?";
      binds.push_back(f.value);
    }
  }
  std::string cache_key = sql;
  for (const std::string& b : binds) cache_key += '\x1f' + b;

  Statement last;
  if (auto r = last.prepare(db_, "SELECT coalesce(max(id), 0) FROM attributes"); !r)
    return Unexpected{r.error()};
  auto row = last.step();
  if (!row) return Unexpected{row.error()};
  const int64_t max_id = last.int_at(0);
  // Inside a batch this connection sees its own attribute sets before they are committed
  // (and an abort gives their ids again): those groups are neither taken from nor kept in
  // the cache.
  const bool use_cache = !state_->in_batch;
  RollupCache& rollups = *state_->rollups;
  if (use_cache) {
    std::lock_guard lock(rollups.mutex);
    auto& cache = rollups.groups;
    for (size_t i = 0; i < cache.size(); ++i) {
      if (cache[i].first != cache_key || cache[i].second->max_id != max_id) continue;
      std::rotate(cache.begin(), cache.begin() + (ptrdiff_t)i, cache.begin() + (ptrdiff_t)i + 1);
      return cache.front().second;
    }
  }

  auto groups = std::make_shared<AttributeGroups>();
  groups->max_id = max_id;
  groups->group_of.assign((size_t)max_id + 1, -1);
  Statement st;
  if (auto r = st.prepare(db_, sql); !r) return Unexpected{r.error()};
  for (size_t i = 0; i < binds.size(); ++i) st.bind_text((int)i + 1, binds[i]);
  const int columns = sqlite3_column_count(st.get());
  // Groups by their values joined into one string (each value's length first, so that
  // no two lists join alike): one hash per attribute set, text copied once per group.
  std::unordered_map<std::string, int32_t> index;
  std::string joined;
  auto rows = st.each_row([&] {
    const int64_t id = st.int_at(0);
    if (id < 0 || id > max_id) return;  // written after max_id was read: not in this snapshot
    joined.clear();
    for (int c = 1; c < columns; ++c) {
      const unsigned char* text = sqlite3_column_text(st.get(), c);
      const size_t n = text == nullptr ? 0 : (size_t)sqlite3_column_bytes(st.get(), c);
      const uint32_t length = (uint32_t)n;
      joined.append(reinterpret_cast<const char*>(&length), sizeof length);
      if (n > 0) joined.append(reinterpret_cast<const char*>(text), n);
    }
    auto [it, added] = index.try_emplace(joined, (int32_t)groups->keys.size());
    if (added) {
      std::vector<std::string> keys;
      for (int c = 1; c < columns; ++c) keys.push_back(key_text(st, c));
      groups->keys.push_back(std::move(keys));
    }
    groups->group_of[(size_t)id] = it->second;
  });
  if (!rows) return Unexpected{rows.error()};
  if (use_cache) {
    std::lock_guard lock(rollups.mutex);
    auto& cache = rollups.groups;
    // An entry of another max_id, or one another connection made meanwhile, is replaced.
    std::erase_if(cache, [&](const auto& e) { return e.first == cache_key; });
    cache.insert(cache.begin(), {cache_key, groups});
    if (cache.size() > kCachedGroupings) cache.pop_back();
  }
  return std::shared_ptr<const AttributeGroups>(groups);
}

Result<std::vector<std::shared_ptr<const RollupColumn>>> SqliteLedger::rollup_pieces(
    const std::string& table, Metric metric, std::optional<EpochSeconds> from,
    std::optional<EpochSeconds> to, bool& cached) {
  cached = false;
  using Columns = std::vector<std::shared_ptr<const RollupColumn>>;
  // The ledger version: the last batch committed. Rollups change only when a batch commits
  // (a replaced batch is removed inside its replacement's batch), in this process or any
  // other, and the version is read in the same snapshot as the rows.
  Statement version;
  if (auto r = version.prepare(db_, "SELECT coalesce(max(id), 0) FROM batches"); !r)
    return Unexpected{r.error()};
  auto row = version.step();
  if (!row) return Unexpected{row.error()};
  const int64_t ledger_version = version.int_at(0);
  RollupCache& rollups = *state_->rollups;
  std::unique_lock lock(rollups.mutex);
  auto& cache = rollups.columns;
  std::erase_if(cache, [&](const auto& c) { return c->version != ledger_version; });

  // The pieces the range needs: the months of the day rollup it covers, or the month rollup.
  std::vector<int64_t> chunks;
  const bool by_month = table == "rollup_day";
  if (!by_month) {
    chunks.push_back(0);
  } else {
    // The first and last day, each one step down the key (min and max in one statement would
    // scan the table); kept with the data version they were read at.
    auto& days = rollups.day_range;
    if (!days || days->version != ledger_version) {
      auto read = read_day_range(db_, ledger_version);
      if (!read) return Unexpected{read.error()};
      days = *read;
    }
    if (days->empty) {
      cached = true;  // no rows at all: nothing to read
      return Columns{};
    }
    const int64_t first = std::max(days->first, from.value_or(INT64_MIN));
    const int64_t last = std::min(days->last, to ? *to - 1 : INT64_MAX);
    for (int64_t m = floor_month(first); first <= last && m <= last; m = next_month(m))
      chunks.push_back(m);
  }
  Columns out;
  size_t rows_needed = 0;
  for (int64_t chunk : chunks) {
    auto it = std::find_if(cache.begin(), cache.end(), [&](const auto& c) {
      return c->table == table && c->metric == metric && c->chunk == chunk;
    });
    if (it != cache.end()) {
      std::shared_ptr<const RollupColumn> hit = *it;
      cache.erase(it);
      cache.insert(cache.begin(), hit);  // most recently used first
      rows_needed += hit->buckets.size();
      out.push_back(std::move(hit));
      continue;
    }
    // Months of one table are alike in size: room for the largest read so far, so that the
    // arrays are not copied as they grow.
    size_t hint = 0;
    for (const auto& c : cache)
      if (c->table == table) hint = std::max(hint, c->buckets.size());
    // Read without the lock: other connections keep answering meanwhile (two reading the
    // same piece at once both read it; the second's copy replaces the first).
    lock.unlock();
    auto column = std::make_shared<RollupColumn>();
    hint = std::min(hint + hint / 8, kMaxCachedRollupRows);
    column->buckets.reserve(hint);
    column->attributes.reserve(hint);
    column->values.reserve(hint);
    column->table = table;
    column->metric = metric;
    column->chunk = chunk;
    column->version = ledger_version;
    std::string sql = "SELECT bucket, attributes_id, " + metric_select_sql(metric, true, false) +
                      " FROM " + table;
    if (by_month)
      sql += " WHERE bucket >= " + std::to_string(chunk) + " AND bucket < " +
             std::to_string(next_month(chunk));
    sql += " ORDER BY bucket, attributes_id";  // the table's own order (its key): no sort
    Statement st;
    if (auto r = st.prepare(db_, sql); !r) return Unexpected{r.error()};
    bool too_large = false;
    auto rows = st.each_row([&] {
      if (too_large) return;
      if (rows_needed + column->buckets.size() >= kMaxCachedRollupRows) {
        too_large = true;
        return;
      }
      const int64_t id = st.int_at(1);
      column->buckets.push_back(st.int_at(0));
      column->attributes.push_back(id >= 0 && id <= INT32_MAX ? (int32_t)id : -1);
      column->values.push_back((__int128)st.int_at(2) * kNanosPerUnit + st.int_at(3));
    });
    if (!rows) return Unexpected{rows.error()};
    if (too_large) return Columns{};  // the caller reads from SQLite
    rows_needed += column->buckets.size();
    lock.lock();
    std::erase_if(cache, [&](const auto& c) {
      return c->table == table && c->metric == metric && c->chunk == chunk;
    });
    cache.insert(cache.begin(), column);
    out.push_back(std::move(column));
  }
  // The least recently used pieces beyond the bounds go (the ones in `out` stay alive).
  size_t rows_cached = 0, kept = 0;
  for (const auto& c : cache) {
    if (kept > 0 &&
        (kept == kCachedRollupColumns || rows_cached + c->buckets.size() > kMaxCachedRollupRows))
      break;
    rows_cached += c->buckets.size();
    ++kept;
  }
  cache.resize(kept);
  cached = true;
  return out;
}

Result<size_t> SqliteLedger::preload_rollups(const std::vector<RollupPreload>& metrics) {
  if (state_->in_batch) return size_t{0};  // its own rows are not committed: nothing to share
  // One snapshot for the version, the day range and the rows, as query_rollup reads.
  if (auto r = exec(db_, "BEGIN"); !r) return Unexpected{r.error()};
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{db_};
  Statement version;
  if (auto r = version.prepare(db_, "SELECT coalesce(max(id), 0) FROM batches"); !r)
    return Unexpected{r.error()};
  if (auto row = version.step(); !row) return Unexpected{row.error()};
  auto days = read_day_range(db_, version.int_at(0));
  if (!days) return Unexpected{days.error()};
  constexpr size_t kPreloadRows = kMaxCachedRollupRows / 4 * 3;
  size_t rows = 0;
  bool cached = false;
  // The month rollup is small (a row per attribute set and month): all of it.
  for (const RollupPreload& p : metrics) {
    if (metric_is_ratio(p.metric)) continue;
    auto pieces = rollup_pieces("rollup_month", p.metric, std::nullopt, std::nullopt, cached);
    if (!pieces) return Unexpected{pieces.error()};
    for (const auto& piece : *pieces) rows += piece->buckets.size();
  }
  if (days->empty) return rows;
  // The day rollup newest month first: the dashboard's periods and the recommendations'
  // windows end there.
  for (const RollupPreload& p : metrics) {
    if (metric_is_ratio(p.metric)) continue;
    int months = 0;
    for (int64_t month = floor_month(days->last);
         month >= floor_month(days->first) && (p.day_months == 0 || months < p.day_months);
         month = floor_month(month - 1), ++months) {
      auto pieces = rollup_pieces("rollup_day", p.metric, month, next_month(month), cached);
      if (!pieces) return Unexpected{pieces.error()};
      if (!cached) return rows;  // past the bound: such queries read SQLite anyway
      for (const auto& piece : *pieces) rows += piece->buckets.size();
      if (rows >= kPreloadRows) return rows;
    }
  }
  return rows;
}

Result<QueryResult> SqliteLedger::query_rollup(const QuerySpec& spec, const std::string& table) {
  // A rollup row is (bucket, attribute set). Joining every row with its attribute set in SQL
  // costs a B-tree look-up per row (hundreds of thousands for a few months by day); here the
  // attribute sets are mapped to their groups once (cached), and the rows, read with integer
  // columns only, are summed by (time keys, group) in a hash table.
  // Both reads see one snapshot: a writer may commit between them.
  const bool own_transaction = !state_->in_batch;
  if (own_transaction)
    if (auto r = exec(db_, "BEGIN"); !r) return Unexpected{r.error()};
  struct EndRead {
    sqlite3* db;
    bool active;
    ~EndRead() {
      if (active) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    }
  } end_read{db_, own_transaction};

  auto groups = attribute_groups(spec);
  if (!groups) return Unexpected{groups.error()};
  const AttributeGroups& g = **groups;
  std::vector<std::shared_ptr<const RollupColumn>> columns;
  bool in_memory = false;
  if (!state_->in_batch && !metric_is_ratio(spec.metric)) {
    auto loaded = rollup_pieces(table, spec.metric, spec.from, spec.to, in_memory);
    if (!loaded) return Unexpected{loaded.error()};
    columns = std::move(*loaded);
  }

  const Grain native = table == "rollup_month" ? Grain::kMonth : Grain::kDay;
  std::vector<size_t> time_positions;
  std::string select, group_list;
  bool all_native = true;
  for (size_t i = 0; i < spec.group_by.size(); ++i) {
    const Dimension& d = spec.group_by[i];
    if (d.kind != Dimension::Kind::kTime) continue;
    const bool is_native = d.grain == native;
    all_native &= is_native;
    select += (is_native ? std::string("bucket") : time_bucket_sql(d.grain, "bucket")) + ", ";
    group_list += std::to_string(time_positions.size() + 1) + ", ";
    time_positions.push_back(i);
  }
  const size_t times = time_positions.size();
  // Grouped by its own bucket, each rollup row is one (time, attribute set) already.
  const bool aggregate = times == 0 || !all_native;
  const bool ratio = metric_is_ratio(spec.metric);
  select += "attributes_id, " + metric_select_sql(spec.metric, true, aggregate);
  std::string sql = "SELECT " + select + " FROM " + table + " WHERE 1";
  if (spec.from) sql += " AND bucket >= " + std::to_string(*spec.from);
  if (spec.to) sql += " AND bucket < " + std::to_string(*spec.to);
  if (aggregate) sql += " GROUP BY " + group_list + std::to_string(times + 1);

  struct Key {
    int64_t t[kRollupTimeKeys] = {};
    int32_t group = 0;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      uint64_t h = (uint64_t)k.group * 0x9E3779B97F4A7C15ull;
      for (int64_t t : k.t) h = (h ^ (uint64_t)t) * 0xC2B2AE3D27D4EB4Full;
      return (size_t)(h ^ (h >> 31));
    }
  };
  struct Sums {
    __int128 value = 0, denominator = 0;
  };
  std::unordered_map<Key, Sums, KeyHash> sums;
  if (in_memory) {
    // The pieces are in bucket order, and every time key is a non-decreasing function of the
    // bucket (day, week, month), so each key's rows are contiguous: they are summed by group
    // in a flat array and moved to `sums` when the key changes.
    std::vector<Grain> grains;
    for (size_t i : time_positions) grains.push_back(spec.group_by[i].grain);
    std::vector<__int128> by_group(g.keys.size(), 0);
    std::vector<char> seen(g.keys.size(), 0);  // a group whose rows add up to 0 is a row too
    std::vector<int32_t> touched;
    Key current;
    auto flush = [&] {
      for (int32_t group : touched) {
        current.group = group;
        sums[current].value += by_group[(size_t)group];
        by_group[(size_t)group] = 0;
        seen[(size_t)group] = 0;
      }
      touched.clear();
    };
    int64_t last_bucket = INT64_MIN;
    for (const auto& column : columns) {
      const auto first = std::lower_bound(column->buckets.begin(), column->buckets.end(),
                                          spec.from.value_or(INT64_MIN));
      const auto last = std::lower_bound(column->buckets.begin(), column->buckets.end(),
                                         spec.to.value_or(INT64_MAX));
      for (size_t i = (size_t)(first - column->buckets.begin()),
                  end = (size_t)(last - column->buckets.begin());
           i < end; ++i) {
        const int32_t id = column->attributes[i];
        const int32_t group = id >= 0 && id <= g.max_id ? g.group_of[(size_t)id] : -1;
        if (group < 0) continue;
        const int64_t bucket = column->buckets[i];
        if (bucket != last_bucket) {
          last_bucket = bucket;
          Key next;
          for (size_t t = 0; t < times; ++t) next.t[t] = bucket_in_grain(bucket, grains[t], native);
          if (!(next == current)) {
            flush();
            current = next;
          }
        }
        if (!seen[(size_t)group]) {
          seen[(size_t)group] = 1;
          touched.push_back(group);
        }
        by_group[(size_t)group] += column->values[i];
      }
    }
    flush();
  }
  Statement st;
  if (!in_memory)
    if (auto r = st.prepare(db_, sql); !r) return Unexpected{r.error()};
  const int id_column = (int)times;
  auto rows = !in_memory ? st.each_row([&] {
    const int64_t id = st.int_at(id_column);
    if (id < 0 || id > g.max_id) return;
    const int32_t group = g.group_of[(size_t)id];
    if (group < 0) return;  // filtered out
    Key key;
    for (size_t i = 0; i < times; ++i) key.t[i] = st.int_at((int)i);
    key.group = group;
    Sums& s = sums[key];
    s.value += (__int128)st.int_at(id_column + 1) * kNanosPerUnit + st.int_at(id_column + 2);
    if (ratio)
      s.denominator +=
          (__int128)st.int_at(id_column + 3) * kNanosPerUnit + st.int_at(id_column + 4);
  })
                         : Result<void>{};
  if (!rows) return Unexpected{rows.error()};

  ResultBuilder result(spec, table);
  for (const auto& [key, s] : sums) {
    std::vector<std::string> keys;
    keys.reserve(spec.group_by.size());
    size_t t = 0, k = 0;
    const std::vector<std::string>& group_keys = g.keys[(size_t)key.group];
    for (const Dimension& d : spec.group_by) {
      if (d.kind == Dimension::Kind::kTime)
        keys.push_back(format_bucket(d.grain, key.t[t++]));
      else
        keys.push_back(group_keys[k++]);
    }
    result.add(std::move(keys), s.value, s.denominator);
  }
  return result.finish();
}

// ---------------------------------------------------------------------------------------
// Prices

namespace {

void bind_optional(Statement& st, int i, const std::optional<Decimal>& d) {
  if (d)
    st.bind(i, d->nanos);
  else
    sqlite3_bind_null(st.get(), i);
}

std::optional<Decimal> optional_at(const Statement& st, int col) {
  if (st.null_at(col)) return std::nullopt;
  return Decimal{st.int_at(col)};
}

}  // namespace

Result<int64_t> SqliteLedger::store_prices(std::vector<pricing::ModelPrice>& models,
                                           std::vector<pricing::GpuInstancePrice>& gpus) {
  auto existing = load_catalog();
  if (!existing) return Unexpected{existing.error()};
  bool own_transaction = !state_->in_batch;
  if (own_transaction)
    if (auto r = exec(db_, "BEGIN IMMEDIATE"); !r) return Unexpected{r.error()};
  auto fail = [&](const Error& e) -> Result<int64_t> {
    if (own_transaction) rollback(db_);
    return Unexpected{e};
  };
  Statement model_insert, gpu_insert;
  if (auto r = model_insert.prepare(
          db_,
          "INSERT INTO model_prices(model, provider, mode, effective_from, currency, input, "
          "cached_input, cache_write, output, reasoning, batch_discount, max_output_tokens, tiers, "
          "source) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      !r)
    return fail(r.error());
  if (auto r = gpu_insert.prepare(
          db_,
          "INSERT INTO gpu_prices(sku, provider, gpu_type, gpus, effective_from, currency, on_demand, "
          "reserved, spot, source) VALUES(?,?,?,?,?,?,?,?,?,?)");
      !r)
    return fail(r.error());
  int64_t added = 0;
  for (pricing::ModelPrice& m : models) {
    if (model_price_known(*existing, m)) continue;
    model_insert.reset();
    model_insert.bind(1, std::string_view(m.model));
    model_insert.bind(2, std::string_view(m.provider));
    model_insert.bind(3, std::string_view(m.mode));
    model_insert.bind(4, m.effective_from);
    model_insert.bind(5, std::string_view(m.currency));
    bind_optional(model_insert, 6, m.prices.input);
    bind_optional(model_insert, 7, m.prices.cached_input);
    bind_optional(model_insert, 8, m.prices.cache_write);
    bind_optional(model_insert, 9, m.prices.output);
    bind_optional(model_insert, 10, m.prices.reasoning);
    bind_optional(model_insert, 11, m.batch_discount);
    model_insert.bind(12, m.max_output_tokens);
    std::string tiers = tiers_json(m.tiers);
    model_insert.bind(13, std::string_view(tiers));
    model_insert.bind(14, std::string_view(m.source));
    if (auto r = model_insert.run(); !r) return fail(r.error());
    m.version = sqlite3_last_insert_rowid(db_);
    ++added;
  }
  for (pricing::GpuInstancePrice& g : gpus) {
    if (gpu_price_known(*existing, g)) continue;
    gpu_insert.reset();
    gpu_insert.bind(1, std::string_view(g.sku));
    gpu_insert.bind(2, std::string_view(g.provider));
    gpu_insert.bind(3, std::string_view(g.gpu_type));
    gpu_insert.bind(4, (int64_t)g.gpus);
    gpu_insert.bind(5, g.effective_from);
    gpu_insert.bind(6, std::string_view(g.currency));
    bind_optional(gpu_insert, 7, g.on_demand);
    bind_optional(gpu_insert, 8, g.reserved);
    bind_optional(gpu_insert, 9, g.spot);
    gpu_insert.bind(10, std::string_view(g.source));
    if (auto r = gpu_insert.run(); !r) return fail(r.error());
    g.version = sqlite3_last_insert_rowid(db_);
    ++added;
  }
  if (own_transaction)
    if (auto r = exec(db_, "COMMIT"); !r) return fail(r.error());
  return added;
}

Result<pricing::Catalog> SqliteLedger::load_catalog() {
  pricing::Catalog catalog;
  Statement st;
  if (auto r = st.prepare(db_,
                          "SELECT id, model, provider, mode, effective_from, currency, input, "
                          "cached_input, cache_write, output, reasoning, batch_discount, "
                          "max_output_tokens, tiers, source FROM model_prices ORDER BY id");
      !r)
    return Unexpected{r.error()};
  auto rows = st.each_row([&] {
    pricing::ModelPrice m;
    m.version = st.int_at(0);
    m.model = st.text_at(1);
    m.provider = st.text_at(2);
    m.mode = st.text_at(3);
    m.effective_from = st.int_at(4);
    m.currency = st.text_at(5);
    m.prices.input = optional_at(st, 6);
    m.prices.cached_input = optional_at(st, 7);
    m.prices.cache_write = optional_at(st, 8);
    m.prices.output = optional_at(st, 9);
    m.prices.reasoning = optional_at(st, 10);
    m.batch_discount = optional_at(st, 11);
    m.max_output_tokens = st.int_at(12);
    m.tiers = parse_tiers(st.text_at(13));
    m.source = st.text_at(14);
    catalog.add(std::move(m));
  });
  if (!rows) return Unexpected{rows.error()};
  Statement gst;
  if (auto r = gst.prepare(db_,
                           "SELECT id, sku, provider, gpu_type, gpus, effective_from, currency, "
                           "on_demand, reserved, spot, source FROM gpu_prices ORDER BY id");
      !r)
    return Unexpected{r.error()};
  auto gpu_rows = gst.each_row([&] {
    pricing::GpuInstancePrice g;
    g.version = gst.int_at(0);
    g.sku = gst.text_at(1);
    g.provider = gst.text_at(2);
    g.gpu_type = gst.text_at(3);
    g.gpus = (int32_t)gst.int_at(4);
    g.effective_from = gst.int_at(5);
    g.currency = gst.text_at(6);
    g.on_demand = optional_at(gst, 7);
    g.reserved = optional_at(gst, 8);
    g.spot = optional_at(gst, 9);
    g.source = gst.text_at(10);
    catalog.add(std::move(g));
  });
  if (!gpu_rows) return Unexpected{gpu_rows.error()};
  return catalog;
}

}  // namespace aifinops::ledger
