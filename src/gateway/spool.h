// Spool: the gateway's durable hand-off between serving a request and the ledger. Each
// usage record is one JSON line, copied into a memory-mapped spool file before the
// response's last byte goes out: the page cache keeps it through a crash of the process,
// as it would keep a write(2), without a system call per record. A background SpoolDrainer
// moves closed spool files into the ledger as batches. A batch is fingerprinted by its
// content, so a file ingested just before a crash is not ingested twice after the restart.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/money.h"
#include "core/result.h"
#include "gateway/wire.h"
#include "ledger/ledger.h"

namespace aifinops::gateway {

/// The resource type of every record the gateway writes: what tells gateway-metered spend
/// from a provider's bill in the ledger (budgets are seeded from it at start).
inline constexpr std::string_view kVirtualKeyResourceType = "Virtual key";

/// The numbers of a usage record: what one metered request used and cost.
struct UsageFigures {
  int64_t time_ms = 0;          ///< when the request arrived
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

/// One metered request, as spooled and then stored in the ledger: its figures and who made
/// it, with which model, through which upstream.
struct UsageEvent : UsageFigures {
  std::string key_id;
  std::map<std::string, std::string> tags;  ///< the key's tags
  std::string model;
  std::string upstream;         ///< upstream name
  std::string provider;         ///< OpenAI, Azure OpenAI, Anthropic
  std::string operation;        ///< chat, completion, embedding, responses, messages
};

/// Appends the descriptive members of a spool line (key, tags, model, upstream, provider,
/// operation) to `out`: the part that many records share, which the drainer matches as text.
void append_usage_description(std::string& out, std::string_view key_id,
                              const std::map<std::string, std::string>& tags,
                              std::string_view model, std::string_view upstream,
                              std::string_view provider, std::string_view operation);

/// One spool line (with its "\n"): the figures first, in a fixed order, then `description`.
std::string to_json_line(const UsageFigures& figures, std::string_view description);
std::string to_json_line(const UsageEvent& event);
/// Parses one spool line, with its members in any order; false if it is not one (a torn
/// last line after a crash).
bool from_json_line(std::string_view line, UsageEvent& event);

/// Appends records to `<dir>/current.jsonl`. Thread-safe.
///
/// The file is given its room in advance (fallocate) and mapped, and a record is one memcpy
/// under the lock. A full file is handed over as a ready file and a new one started. Where
/// the room cannot be reserved (a file system without fallocate, a full disk), records are
/// written with pwrite instead: never into a mapping that could fault for want of space.
class Spool {
 public:
  /// Opens the spool directory. A current.jsonl left by a process that did not stop
  /// cleanly is handed over as a ready file first.
  static Result<std::unique_ptr<Spool>> open(const std::string& dir);
  ~Spool();
  Result<void> append(const UsageFigures& figures, std::string_view description);
  Result<void> append(const UsageEvent& event);
  /// Closes the current file as `<dir>/ready-<n>.jsonl` and starts a new one; returns
  /// false if the current file was empty (nothing to hand over).
  Result<bool> rotate();
  const std::string& dir() const { return dir_; }

 private:
  Spool() = default;

  /// One spool file as the writer holds it.
  struct File {
    int fd = -1;
    char* map = nullptr;  ///< the mapped room, or nullptr when records go out with pwrite
    size_t capacity = 0;  ///< bytes mapped
    size_t populated = 0; ///< bytes of the mapping already given pages (see write_record)
    int64_t bytes = 0;    ///< bytes of records in it
  };
  /// A new, empty spool file at `path`, with its room reserved and mapped where possible.
  Result<File> make_file(const std::string& path);
  /// Under mutex_ (or before the spool is shared): a new, empty current.jsonl.
  Result<void> start_file();
  /// Without mutex_, from the drainer only: makes spare.jsonl, the next current file, unless
  /// there is one.
  Result<void> prepare_spare();
  /// Under mutex_: current.jsonl becomes ready-<n>.jsonl and the spare (or else a new file)
  /// takes its place. Returns the old file, for close() after the lock is released:
  /// unmapping and trimming it take far longer than the renaming and appends should not
  /// wait for them.
  Result<File> hand_over();
  /// Unmaps a file, trims its unused room and closes it.
  void close(File& file);
  /// Under mutex_: one line, the figures' text, then the description and the line's end. A
  /// full file is handed over first and left in retired_, which the drainer closes.
  Result<void> write_record(std::string_view figures, std::string_view description);

  std::mutex mutex_;
  std::string dir_;
  File file_;
  File spare_;                 ///< the next current file, prepared by the drainer
  std::vector<File> retired_;  ///< files that filled up, for the drainer to close
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
