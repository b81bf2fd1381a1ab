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

/// Whether a request repeats one the gateway answered shortly before (RepeatTracker).
/// Spooled as a number; lines of earlier versions have none and read as kUntracked.
enum class RepeatMark : uint8_t {
  kUntracked = 0,  ///< not counted: an earlier gateway, counting off, or a body not JSON
  kFirst = 1,      ///< counted, and not seen within the window
  kRepeat = 2,     ///< the same request (scope, route, stream, body) was seen within it
};

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
  RepeatMark repeat = RepeatMark::kUntracked;
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

/// Asks the scheduler to let the calling thread take the CPU soon after it wakes, and to
/// hold it briefly. The gateway's threads share CPUs: the I/O threads serve every request,
/// and the background threads (the spool's, the drainer) run at niceness 10 (the drainer's
/// ledger writes at SCHED_IDLE when the process may leave it again, see spool.cc). Under Linux's
/// EEVDF scheduler a thread that has the CPU keeps it for its time slice (1.4 ms on a
/// 2-CPU machine) even when an I/O thread wakes with a request, a stall that every request
/// in flight shares. With a 0.1 ms slice (the least allowed; Linux 6.12 and later, ignored
/// before) an I/O thread takes the CPU when it wakes and a background thread that has it
/// gives it up sooner; the shares of CPU time stay as niceness sets them. Best effort, for
/// the calling thread only; a policy other than SCHED_OTHER (set with chrt) is kept.
void ask_for_short_time_slices();

/// Appends records to a memory-mapped spool file in `<dir>`. Thread-safe.
///
/// The file is given its room in advance (fallocate) and mapped, and a record is one memcpy
/// under the lock: appending makes no system call and takes no page fault. Everything else
/// happens on a thread of the spool's own, at a lower priority: it keeps the next file
/// made (created, reserved, mapped), gives the pages ahead of the last record their memory
/// before a record reaches them (a first write to a page of a shared mapping enters the
/// file system, which on ext4 can wait for its journal), and renames and closes the files
/// that filled up. A file being written is `writing-<k>.jsonl`; a full or rotated one is
/// `ready-<n>.jsonl`, for the drainer. Where the room cannot be reserved (a file system
/// without fallocate, a full disk), records are written with pwrite instead: never into a
/// mapping that could fault for want of space.
class Spool {
 public:
  /// Opens the spool directory. Files a process that did not stop cleanly was writing
  /// (`writing-<k>.jsonl`, or `current.jsonl` of earlier versions) are handed over as ready
  /// files first.
  static Result<std::unique_ptr<Spool>> open(const std::string& dir);
  ~Spool();
  Result<void> append(const UsageFigures& figures, std::string_view description);
  Result<void> append(const UsageEvent& event);
  /// Hands the current file over as `<dir>/ready-<n>.jsonl`, with any that filled up since
  /// the last call, and continues in the next one; returns false if there was nothing to
  /// hand over. Called by the drainer.
  Result<bool> rotate();
  const std::string& dir() const { return dir_; }
  /// Waits up to `timeout_ms` for the spool's thread to have the next file and the pages
  /// ahead of the last record ready; false on timeout. For tests.
  bool wait_until_prepared(int64_t timeout_ms);
  /// How often the spool's thread yielded the CPU between steps of giving pages their
  /// memory (see populate_current). For tests.
  int64_t populate_yields() const { return populate_yields_.load(std::memory_order_relaxed); }

 private:
  Spool() = default;

  /// One spool file as the spool holds it.
  struct File {
    int fd = -1;
    char* map = nullptr;  ///< the mapped room, or nullptr when records go out with pwrite
    size_t capacity = 0;  ///< bytes mapped
    size_t populated = 0; ///< bytes from the start of the mapping that already have pages
    int64_t bytes = 0;    ///< bytes of records in it
    std::string path;
  };
  /// A new, empty `writing-<k>.jsonl` with its room reserved and mapped where possible.
  /// `yield_between_steps` only on the spool's thread, which holds no lock appends take.
  Result<File> make_file(bool yield_between_steps = false);
  /// Unmaps a file, trims its unused room and closes it; `yield_between_steps` with no
  /// lock held that appends take.
  void close(File& file, bool yield_between_steps = false);
  /// Under files_mutex_: renames files that filled up or were rotated to ready-<n>.jsonl,
  /// in the order they were written.
  void name_ready(std::vector<File>& files);
  /// Closes files that name_ready() renamed, giving the current file pages in between.
  void close_all(std::vector<File>& files);
  /// Under mutex_: whether the current file needs pages ahead of its last record.
  bool needs_pages() const;
  /// Without mutex_: gives the current file's pages ahead of its last record their memory,
  /// a step at a time.
  void populate_current();
  /// The spool's thread: waits for work, then prepares, populates and retires.
  void prepare_loop();
  /// Under mutex_: one line, the figures' text, then the description and the line's end. A
  /// full file is replaced by the prepared one and left in retired_.
  Result<void> write_record(std::string_view figures, std::string_view description);

  /// Held by appends, and briefly by the spool's thread and rotate(); never across a system
  /// call other than the rare fallbacks (no prepared file, no mapping).
  std::mutex mutex_;
  /// Held from taking files to hand over until they are renamed to ready-<n>: once
  /// rotate() has it, every file that filled up before is named ready, for the drainer.
  std::mutex files_mutex_;
  /// Held for each step of populating and for each munmap, so that a file is never
  /// unmapped while its pages are being populated. Never held by appends.
  std::mutex pages_mutex_;
  std::condition_variable work_;  ///< wakes the spool's thread (with mutex_)
  std::condition_variable ready_; ///< the spool's thread finished a round (with mutex_)
  bool stopping_ = false;
  bool busy_ = false;             ///< the spool's thread is working (with mutex_)
  /// Whether the kernel gives pages on request (MADV_POPULATE_WRITE, Linux 5.14); without,
  /// records take their pages with a page fault each.
  std::atomic<bool> populate_works_{true};
  std::atomic<int64_t> populate_yields_{0};  ///< yields between populating steps
  std::string dir_;
  File file_;                  ///< the file appends go to
  File spare_;                 ///< the next one, made by the spool's thread
  std::vector<File> retired_;  ///< files that filled up, to be renamed and closed
  uint64_t sequence_ = 0;      ///< the last ready-<n>, under files_mutex_
  std::atomic<uint64_t> last_file_{0};  ///< the last writing-<k>
  std::thread preparer_;
};

/// Moves ready spool files into the ledger, on its own thread, every `interval_ms` and
/// once more at stop(). The ledger is opened and used only on that thread, and closed after
/// each round: kept open, SQLite's page cache (up to 64 MB) stays resident between rounds,
/// which took the gateway past its memory target with 1,000 streams.
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
