// Spool: the gateway's durable hand-off between serving a request and the ledger. Each
// usage record is appended (one JSON line, one write(2)) before the response's last byte
// goes out, so a crash after that loses nothing; a background SpoolDrainer moves closed
// spool files into the ledger as batches. A batch is fingerprinted by its content, so a
// file ingested just before a crash is not ingested twice after the restart.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "core/money.h"
#include "core/result.h"
#include "gateway/wire.h"
#include "ledger/ledger.h"

namespace aifinops::gateway {

/// One metered request, as spooled and then stored in the ledger.
struct UsageEvent {
  int64_t time_ms = 0;          ///< when the request arrived
  std::string key_id;
  std::map<std::string, std::string> tags;  ///< the key's tags
  std::string model;
  std::string upstream;         ///< upstream name
  std::string provider;         ///< OpenAI, Azure OpenAI, Anthropic
  std::string operation;        ///< chat, completion, embedding, responses, messages
  int status = 0;               ///< HTTP status returned to the client
  TokenCounts tokens;
  Money cost;
  int64_t price_version = 0;
  int64_t latency_ms = 0;       ///< until the last byte
  int64_t ttft_ms = 0;          ///< until the first byte of the body (streams)
  bool cache_hit = false;
  Money cache_saving;           ///< what the upstream call would have cost
  bool estimated = false;       ///< tokens or cost estimated (no usage reported)
  bool partial = false;         ///< the client went away mid-stream
};

std::string to_json_line(const UsageEvent& event);
/// Parses one spool line; false if it is not one (a torn last line after a crash).
bool from_json_line(std::string_view line, UsageEvent& event);

/// Appends events to `<dir>/current.jsonl`. Thread-safe.
class Spool {
 public:
  static Result<std::unique_ptr<Spool>> open(const std::string& dir);
  ~Spool();
  Result<void> append(const UsageEvent& event);
  /// Closes the current file as `<dir>/ready-<n>.jsonl` and starts a new one; returns
  /// false if the current file was empty (nothing to hand over).
  Result<bool> rotate();
  const std::string& dir() const { return dir_; }

 private:
  Spool() = default;
  std::mutex mutex_;
  std::string dir_;
  int fd_ = -1;
  int64_t bytes_ = 0;
  uint64_t sequence_ = 0;
};

/// Moves ready spool files into the ledger, on its own thread, every `interval_ms` and
/// once more at stop(). The ledger is opened and used only on that thread.
class SpoolDrainer {
 public:
  SpoolDrainer(Spool& spool, std::string ledger_location, int64_t interval_ms = 1000);
  ~SpoolDrainer();
  void start();
  /// Drains what is left and joins the thread.
  void stop();
  /// Drains once on the calling thread (start-up recovery and tests).
  Result<int64_t> drain_now();
  int64_t drained_records() const { return drained_.load(); }

 private:
  void loop();
  Result<int64_t> ingest_file(ledger::Ledger& ledger, const std::string& path);

  Spool& spool_;
  std::string ledger_location_;
  int64_t interval_ms_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<int64_t> drained_{0};
  std::mutex drain_mutex_;
};

}  // namespace aifinops::gateway
