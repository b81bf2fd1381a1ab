#include "gateway/spool.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "allocate/tag_policy.h"
#include "core/json_text.h"

namespace aifinops::gateway {
namespace {

namespace fs = std::filesystem;

/// Room reserved and mapped for the current file: some ten thousand records. The drainer
/// hands the file over every second; one that fills up sooner (above about 10,000 requests
/// a second) is handed over by the writer. The pages written count in the process's RSS
/// until the file is handed over, so this bounds the spool's share of it (8 MiB made the
/// gateway pass 64 MB with 1,000 streams at 21,000 requests a second).
constexpr size_t kFileBytes = size_t{4} << 20;
/// The spool's thread keeps this much of the current file's mapping ahead of the last record
/// given its pages (written into once), and tops it up when less than half is left: about a
/// twentieth of a second of records at 20,000 requests a second. These pages count in the
/// process's RSS like the records.
constexpr size_t kAheadBytes = size_t{512} << 10;
/// A new file gets this much before it takes over (a multiple of the page size).
constexpr size_t kFirstPagesBytes = size_t{256} << 10;
/// Pages are given in steps of this many bytes (0.03-0.05 ms of the kernel's work each,
/// `perf trace`), the spool's thread yielding between them while the room ahead allows.
constexpr size_t kPopulateStepBytes = size_t{32} << 10;
/// While at least this much of the mapping ahead of the last record has its pages, the
/// spool's thread yields between steps; below it, it populates without yielding, so that
/// appends do not catch up with the pages.
constexpr size_t kYieldMarginBytes = kAheadBytes / 4;
/// A full file is unmapped in pieces of this many bytes, with a yield between them.
constexpr size_t kUnmapStepBytes = size_t{1} << 20;

/// The drainer lets other threads run after this many records, or bytes read or hashed
/// (see ingest_file).
constexpr int64_t kRecordsBetweenYields = 32;
constexpr size_t kBytesBetweenYields = size_t{256} << 10;

/// The figures' members, in the order to_json_line writes them. The drainer reads lines in
/// this order without a JSON parser (read_line_in_order); any other order is still read.
/// Members from kFirstOptionalFigure on were added later: lines spooled by an earlier
/// version lack them (a spool left by an upgraded gateway is still drained) and read as 0.
constexpr std::array<std::string_view, 16> kFigureKeys = {
    "t",   "status", "in",         "cached",  "cache_write", "out",       "reasoning", "cost",
    "price", "latency_ms", "ttft_ms", "cache_hit", "saving", "estimated", "partial", "repeat"};
constexpr size_t kFirstOptionalFigure = 15;
using FigureValues = std::array<int64_t, kFigureKeys.size()>;

RepeatMark repeat_mark(int64_t value) {
  // A value this version does not know (a later one's) is not counted rather than guessed.
  return value == 1 ? RepeatMark::kFirst : value == 2 ? RepeatMark::kRepeat : RepeatMark::kUntracked;
}

FigureValues values_of(const UsageFigures& f) {
  return {f.time_ms,           f.status,           f.tokens.input,     f.tokens.cached_input,
          f.tokens.cache_write, f.tokens.output,   f.tokens.reasoning, f.cost.nanos,
          f.price_version,     f.latency_ms,       f.ttft_ms,          f.cache_hit ? 1 : 0,
          f.cache_saving.nanos, f.estimated ? 1 : 0, f.partial ? 1 : 0,
          static_cast<int64_t>(f.repeat)};
}

void set_values(UsageFigures& f, const FigureValues& v) {
  f.time_ms = v[0];
  f.status = static_cast<int>(v[1]);
  f.tokens = {v[2], v[3], v[4], v[5], v[6]};
  f.cost = Money{v[7]};
  f.price_version = v[8];
  f.latency_ms = v[9];
  f.ttft_ms = v[10];
  f.cache_hit = v[11] != 0;
  f.cache_saving = Money{v[12]};
  f.estimated = v[13] != 0;
  f.partial = v[14] != 0;
  f.repeat = repeat_mark(v[15]);
}

/// A quoted JSON string; the escaping (and its allocation) only when a byte needs it.
void append_string(std::string& out, std::string_view s) {
  bool plain = std::none_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\';
  });
  if (!plain) {
    append_json_string(out, s);
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

void append_member(std::string& out, std::string_view key, std::string_view value) {
  append_string(out, key);
  out += ':';
  append_string(out, value);
}

/// Reads a line in the order to_json_line writes it: the figures, then the description (the
/// rest of the members, as text). False for any other shape, which from_json_line reads.
bool read_line_in_order(std::string_view line, UsageFigures& figures,
                        std::string_view& description) {
  if (line.size() < 2 || line.front() != '{' || line.back() != '}') return false;
  const char* p = line.data() + 1;
  const char* end = line.data() + line.size() - 1;  // at the closing brace
  auto take = [&](std::string_view text) {
    if (static_cast<size_t>(end - p) < text.size() || std::string_view(p, text.size()) != text)
      return false;
    p += text.size();
    return true;
  };
  FigureValues values{};
  for (size_t i = 0; i < kFigureKeys.size(); ++i) {
    const char* before = p;
    if ((i > 0 && !take(",")) || !take("\"") || !take(kFigureKeys[i]) || !take("\":")) {
      if (i < kFirstOptionalFigure) return false;
      p = before;  // a line of an earlier version: the description follows
      break;
    }
    auto [next, ec] = std::from_chars(p, end, values[i]);
    if (ec != std::errc()) return false;
    p = next;
  }
  if (!take(",")) return false;
  description = std::string_view(p, static_cast<size_t>(end - p));
  if (!description.starts_with("\"key\":")) return false;
  set_values(figures, values);
  return true;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

void append_usage_description(std::string& out, std::string_view key_id,
                              const std::map<std::string, std::string>& tags,
                              std::string_view model, std::string_view upstream,
                              std::string_view provider, std::string_view operation) {
  append_member(out, "key", key_id);
  out += ",\"tags\":{";
  bool first = true;
  for (const auto& [k, v] : tags) {
    if (!first) out += ',';
    first = false;
    append_member(out, k, v);
  }
  out += "},";
  append_member(out, "model", model);
  out += ',';
  append_member(out, "upstream", upstream);
  out += ',';
  append_member(out, "provider", provider);
  out += ',';
  append_member(out, "operation", operation);
}

namespace {

/// Room for the figures part of a line: the keys, their quotes and 20 digits for each value.
constexpr size_t kFiguresBytes = 512;

/// Writes `{"t":...,"partial":0,` (the start of a line, up to the description) into `out`;
/// returns its length. Plain stores and to_chars: it runs for every request.
size_t write_figures(const UsageFigures& figures, char (&out)[kFiguresBytes]) {
  const FigureValues values = values_of(figures);
  char* p = out;
  *p++ = '{';
  for (size_t i = 0; i < kFigureKeys.size(); ++i) {
    *p++ = '"';
    std::memcpy(p, kFigureKeys[i].data(), kFigureKeys[i].size());
    p += kFigureKeys[i].size();
    *p++ = '"';
    *p++ = ':';
    p = std::to_chars(p, p + 20, values[i]).ptr;
    *p++ = ',';
  }
  return static_cast<size_t>(p - out);
}

constexpr std::string_view kLineEnd = "}\n";

void append_line(std::string& out, const UsageFigures& figures, std::string_view description) {
  char figures_text[kFiguresBytes];
  out.append(figures_text, write_figures(figures, figures_text));
  out += description;
  out += kLineEnd;
}

}  // namespace

std::string to_json_line(const UsageFigures& figures, std::string_view description) {
  std::string out;
  out.reserve(320 + description.size());
  append_line(out, figures, description);
  return out;
}

std::string to_json_line(const UsageEvent& e) {
  std::string description;
  append_usage_description(description, e.key_id, e.tags, e.model, e.upstream, e.provider,
                           e.operation);
  return to_json_line(e, description);
}

bool from_json_line(std::string_view line, UsageEvent& e) {
  // One parser per thread: building one allocates, and the drainer parses every record.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(line.data(), line.size()).get(doc) != simdjson::SUCCESS) return false;
  simdjson::dom::object o;
  if (doc.get_object().get(o) != simdjson::SUCCESS) return false;
  auto text = [&](const char* k, std::string& out) {
    std::string_view v;
    if (o[k].get_string().get(v) != simdjson::SUCCESS) return false;
    out = std::string(v);
    return true;
  };
  FigureValues values{};
  for (size_t i = 0; i < kFigureKeys.size(); ++i) {
    auto member = o[kFigureKeys[i]];
    if (i >= kFirstOptionalFigure && member.error() == simdjson::NO_SUCH_FIELD) continue;
    if (member.get_int64().get(values[i]) != simdjson::SUCCESS) return false;
  }
  bool ok = text("key", e.key_id) && text("model", e.model) && text("upstream", e.upstream) &&
            text("provider", e.provider) && text("operation", e.operation);
  if (!ok) return false;
  set_values(e, values);
  e.tags.clear();
  simdjson::dom::object tags;
  if (o["tags"].get_object().get(tags) == simdjson::SUCCESS) {
    for (auto field : tags) {
      std::string_view v;
      if (field.value.get_string().get(v) == simdjson::SUCCESS)
        e.tags[std::string(field.key)] = std::string(v);
    }
  }
  return true;
}

void ask_for_short_time_slices() {
  if (::sched_getscheduler(0) != SCHED_OTHER) return;
  struct SchedAttr {  // the kernel's struct sched_attr (glibc 2.36 has no wrapper)
    uint32_t size;
    uint32_t policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime_ns;  ///< for SCHED_OTHER: the time slice
    uint64_t deadline_ns;
    uint64_t period_ns;
  };
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  if (nice == -1 && errno != 0) return;
  SchedAttr attr{};
  attr.size = sizeof attr;
  attr.policy = SCHED_OTHER;
  attr.nice = nice;  // sched_setattr sets the niceness too: the thread's own is kept
  attr.runtime_ns = 100'000;
  ::syscall(SYS_sched_setattr, 0, &attr, 0);
}

// --- Spool --------------------------------------------------------------------------------

namespace {

/// Whether a spool file holds records: files are written from their start, and the room
/// reserved after the records reads as zeros.
bool holds_records(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char first = 0;
  const bool some = ::pread(fd, &first, 1, 0) == 1 && first != '\0';
  ::close(fd);
  return some;
}

/// The whole value of `file`, leaving it empty (a moved-from File keeps its descriptor).
template <class T>
T take(T& value) {
  return std::exchange(value, T{});
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, dir + ": cannot create the spool directory: " + ec.message());
  std::unique_ptr<Spool> spool(new Spool());
  spool->dir_ = dir;
  // Files a previous run was writing: current.jsonl and spare.jsonl of earlier versions,
  // writing-<k>.jsonl of this one. Numbering continues after what is there.
  std::vector<std::pair<uint64_t, std::string>> left;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("ready-", 0) == 0) {
      uint64_t n = std::strtoull(name.c_str() + 6, nullptr, 10);
      spool->sequence_ = std::max(spool->sequence_, n);
    } else if (name.rfind("writing-", 0) == 0) {
      uint64_t k = std::strtoull(name.c_str() + 8, nullptr, 10);
      left.emplace_back(k + 1, entry.path().string());
      spool->last_file_ = std::max(spool->last_file_.load(), k);
    } else if (name == "current.jsonl" || name == "spare.jsonl") {
      left.emplace_back(name == "current.jsonl" ? 0 : 1, entry.path().string());
    }
  }
  // A process that did not stop cleanly (kill -9, a crash) left records it served, maybe
  // followed by the zeros of the unused room: handed over as they are, in the order they
  // were written (the drainer reads each up to its zeros). Files without records go.
  std::sort(left.begin(), left.end());
  for (const auto& [order, path] : left) {
    if (!holds_records(path)) {
      fs::remove(path, ec);
      continue;
    }
    std::string ready = dir + "/ready-" + std::to_string(++spool->sequence_) + ".jsonl";
    if (::rename(path.c_str(), ready.c_str()) != 0)
      return make_error(ErrorCode::kIo, path + ": cannot hand over: " + errno_text());
  }
  auto current = spool->make_file();
  if (!current) return Unexpected{current.error()};
  spool->file_ = take(*current);
  auto spare = spool->make_file();
  if (!spare) return Unexpected{spare.error()};
  spool->spare_ = take(*spare);
  spool->retired_.reserve(4);  // a file that fills up costs the appending thread no allocation
  spool->populate_current();
  // The thread blocks every signal (it inherits the mask): a SIGTERM meant for the
  // program's signal handling must not end the process on this thread.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  spool->preparer_ = std::thread([s = spool.get()] { s->prepare_loop(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return spool;
}

Spool::~Spool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  if (preparer_.joinable()) preparer_.join();
  name_ready(retired_);
  close_all(retired_);
  // The current file stays, trimmed to its records, for the next start to hand over.
  const bool empty = file_.bytes == 0;
  std::string current = file_.path;
  close(file_);
  if (empty && !current.empty()) ::unlink(current.c_str());
  if (spare_.fd >= 0) {
    std::string spare = spare_.path;
    close(spare_);
    ::unlink(spare.c_str());
  }
}

Result<Spool::File> Spool::make_file(bool yield_between_steps) {
  File file;
  // A name no other file has: O_EXCL never truncates a file that holds records.
  for (int attempt = 0; file.fd < 0 && attempt < 100; ++attempt) {
    file.path = dir_ + "/writing-" + std::to_string(++last_file_) + ".jsonl";
    file.fd = ::open(file.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (file.fd < 0 && errno != EEXIST) break;
  }
  if (file.fd < 0) return make_error(ErrorCode::kIo, file.path + ": cannot create: " + errno_text());
  // The room is allocated on disk before it is mapped, so that writing into the mapping
  // cannot fault (SIGBUS) for want of space. Without it, records go out with pwrite.
  if (::fallocate(file.fd, 0, 0, static_cast<off_t>(kFileBytes)) == 0) {
    void* p = ::mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd, 0);
    if (p != MAP_FAILED) {
      file.map = static_cast<char*>(p);
      file.capacity = kFileBytes;
      // No read-around: the first fault in a mapping otherwise brings in (zeroes, for the
      // reserved room) the whole read-ahead window at once, 1.2-1.7 ms of the kernel's work
      // on one page (`perf trace`, MADV_POPULATE_WRITE of 4 KiB); with it, each step below
      // and in populate_current() fills only its own pages. Advice only: failure is harmless.
      ::madvise(file.map, file.capacity, MADV_RANDOM);
    } else if (::ftruncate(file.fd, 0) != 0) {
      std::string error = errno_text();
      ::close(file.fd);
      ::unlink(file.path.c_str());
      return make_error(ErrorCode::kIo, file.path + ": cannot truncate: " + error);
    }
  }
  // The first pages before anyone writes: a new file takes over from a full one at once.
  // On the spool's thread in steps with a yield between them, as in populate_current(): no
  // one writes into this file yet, so the yields cost no append a page.
  if (file.map != nullptr && populate_works_.load(std::memory_order_relaxed)) {
    const size_t length = std::min(kFirstPagesBytes, file.capacity);
    for (size_t from = 0; from < length;) {
      const size_t step = yield_between_steps ? kPopulateStepBytes : length;
      if (::madvise(file.map + from, std::min(step, length - from), MADV_POPULATE_WRITE) != 0) {
        populate_works_.store(false, std::memory_order_relaxed);  // before Linux 5.14
        break;
      }
      from = std::min(length, from + step);
      file.populated = from;
      if (yield_between_steps && file.populated < length) {
        populate_yields_.fetch_add(1, std::memory_order_relaxed);
        ::sched_yield();
      }
    }
  }
  return file;
}

void Spool::close(File& file, bool yield_between_steps) {
  if (file.map != nullptr) {
    std::lock_guard<std::mutex> pages(pages_mutex_);
    if (yield_between_steps) {
      // Unmapping 4 MiB of written pages takes about 0.5 ms of the kernel's work: in pieces
      // with a yield between them (see populate_current). No one writes into this file any
      // more, and pages_mutex_ keeps the spool's own populating out.
      for (size_t from = 0; from < file.capacity; from += kUnmapStepBytes) {
        ::munmap(file.map + from, std::min(kUnmapStepBytes, file.capacity - from));
        ::sched_yield();
      }
    } else {
      ::munmap(file.map, file.capacity);
    }
  }
  if (file.fd >= 0) {
    // The unused room goes; if it cannot, the drainer skips the zeros.
    if (file.capacity > 0 && ::ftruncate(file.fd, file.bytes) != 0) {
      std::fprintf(stderr, "aifinops gateway: %s: cannot trim a spool file: %s\n", dir_.c_str(),
                   errno_text().c_str());
    }
    ::close(file.fd);
  }
  file = File{};
}

void Spool::name_ready(std::vector<File>& files) {
  for (File& file : files) {
    // Renamed while still open and mapped; a file that cannot be renamed keeps its name,
    // and the next start hands it over.
    std::string ready = dir_ + "/ready-" + std::to_string(sequence_ + 1) + ".jsonl";
    if (::rename(file.path.c_str(), ready.c_str()) == 0)
      ++sequence_;
    else
      std::fprintf(stderr, "aifinops gateway: %s: cannot hand over: %s\n", file.path.c_str(),
                   errno_text().c_str());
  }
}

void Spool::close_all(std::vector<File>& files) {
  // Unmapping and trimming take milliseconds (longer while the file system commits its
  // journal), so they happen outside every lock appends or the renaming need. The drainer
  // may read a ready file before it is trimmed: it stops at the zeros.
  // Called with no lock held, on a background thread: a yield before and after each close
  // (munmap of 4 MiB takes about 0.5 ms), so that an I/O thread waiting for the CPU gets it
  // between the steps instead of after all of them (see populate_current).
  for (File& file : files) {
    ::sched_yield();
    close(file, /*yield_between_steps=*/true);
    ::sched_yield();
    populate_current();
  }
  files.clear();
}

bool Spool::needs_pages() const {
  return populate_works_.load(std::memory_order_relaxed) && file_.map != nullptr &&
         file_.populated < file_.capacity &&
         file_.populated < static_cast<size_t>(file_.bytes) + kAheadBytes / 2;
}

void Spool::populate_current() {
  for (;;) {
    char* map = nullptr;
    size_t from = 0, to = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (file_.map == nullptr || !populate_works_.load(std::memory_order_relaxed)) return;
      const size_t wanted = std::min(file_.capacity, static_cast<size_t>(file_.bytes) + kAheadBytes);
      if (file_.populated >= wanted) return;
      map = file_.map;
      from = file_.populated;  // a multiple of the page size, as every `to` below
      to = std::min(file_.capacity, from + kPopulateStepBytes);
    }
    // Outside mutex_: appends go on meanwhile. The mapping stays (unmapping takes
    // pages_mutex_), even if appends have moved to the next file.
    {
      std::lock_guard<std::mutex> pages(pages_mutex_);
      if (::madvise(map + from, to - from, MADV_POPULATE_WRITE) != 0) {
        populate_works_.store(false, std::memory_order_relaxed);
        return;
      }
    }
    bool yield = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (file_.map == map) file_.populated = std::max(file_.populated, to);
      yield = file_.map == map &&
              file_.populated >= static_cast<size_t>(file_.bytes) + kYieldMarginBytes;
    }
    // A yield between steps while the room ahead allows. Why: the kernel here ticks every
    // 4 ms and preempts nothing between ticks, and an I/O thread kept busy by 16
    // connections rarely sleeps, so no wake-up preempts this thread either: once picked at
    // a tick it kept the CPU for its whole round (512 KiB, about 2 ms: `perf sched` showed
    // the I/O thread runnable and waiting for it), and every request in flight waited.
    // With a yield every step the wait is one step. The yield hands the CPU back for as
    // long as the scheduler's share for niceness 10 says (a tick or a few); with less than
    // kYieldMarginBytes left ahead the rest of the round runs without yields, so appends
    // still never reach pages without memory.
    if (yield) {
      populate_yields_.fetch_add(1, std::memory_order_relaxed);
      ::sched_yield();
    }
  }
}

void Spool::prepare_loop() {
  // Background work, below the I/O threads (as the drainer).
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10) != 0)
    std::fprintf(stderr, "aifinops gateway: spool: cannot lower the preparer's priority: %s\n",
                 errno_text().c_str());
  ask_for_short_time_slices();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_.wait(lock, [this] {
      return stopping_ || spare_.fd < 0 || !retired_.empty() || needs_pages();
    });
    if (stopping_) return;
    busy_ = true;
    lock.unlock();
    bool failed = false;
    populate_current();  // first: the pages appends reach next
    std::vector<File> old;
    bool need_spare;
    {
      std::lock_guard<std::mutex> files(files_mutex_);
      {
        std::lock_guard<std::mutex> relock(mutex_);
        old.swap(retired_);
        retired_.reserve(4);
        need_spare = spare_.fd < 0;
      }
      name_ready(old);
    }
    close_all(old);
    if (need_spare) {
      auto made = make_file(/*yield_between_steps=*/true);
      if (made) {
        std::lock_guard<std::mutex> relock(mutex_);
        spare_ = take(*made);  // only this thread makes spares: spare_ is still empty
      } else {
        std::fprintf(stderr, "aifinops gateway: spool: %s (will retry)\n",
                     made.error().message.c_str());
        failed = true;
      }
    }
    populate_current();
    lock.lock();
    busy_ = false;
    ready_.notify_all();
    // A file system that refuses a new file (a full disk): try again in a second, while
    // appends continue in the current file or with pwrite.
    if (failed) work_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

bool Spool::wait_until_prepared(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  return ready_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] {
    return !busy_ && spare_.fd >= 0 && retired_.empty() && !needs_pages();
  });
}

Result<void> Spool::write_record(std::string_view figures, std::string_view description) {
  const size_t size = figures.size() + description.size() + kLineEnd.size();
  if (file_.fd < 0) {
    // Making a file failed before (see below): try again.
    auto made = make_file();
    if (!made) return Unexpected{made.error()};
    file_ = take(*made);
  }
  if (file_.map != nullptr && static_cast<size_t>(file_.bytes) + size > file_.capacity &&
      file_.bytes > 0) {
    // Full: the prepared file takes over, with no system call; the spool's thread renames
    // and closes this one. Only when it has not made the next file yet is one made here.
    retired_.push_back(take(file_));
    if (spare_.fd >= 0) {
      file_ = take(spare_);
    } else {
      auto made = make_file();
      if (made) file_ = take(*made);
    }
    work_.notify_one();
    if (file_.fd < 0) return make_error(ErrorCode::kIo, dir_ + ": no spool file to write to");
  }
  if (file_.map != nullptr && static_cast<size_t>(file_.bytes) + size <= file_.capacity) {
    char* p = file_.map + file_.bytes;
    std::memcpy(p, figures.data(), figures.size());
    std::memcpy(p + figures.size(), description.data(), description.size());
    std::memcpy(p + figures.size() + description.size(), kLineEnd.data(), kLineEnd.size());
    file_.bytes += static_cast<int64_t>(size);
    // No system call unless the spool's thread waits (then it is woken once).
    if (needs_pages()) work_.notify_one();
    return {};
  }
  std::string record;
  record.reserve(size);
  record.append(figures).append(description).append(kLineEnd);
  const char* p = record.data();
  size_t left = record.size();
  while (left > 0) {
    ssize_t n = ::pwrite(file_.fd, p, left, file_.bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(ErrorCode::kIo, file_.path + ": write failed: " + errno_text());
    p += n;
    left -= static_cast<size_t>(n);
    file_.bytes += n;
  }
  return {};
}

Result<void> Spool::append(const UsageFigures& figures, std::string_view description) {
  char figures_text[kFiguresBytes];  // encoded before the lock
  const size_t length = write_figures(figures, figures_text);
  std::lock_guard<std::mutex> lock(mutex_);
  return write_record(std::string_view(figures_text, length), description);
}

Result<void> Spool::append(const UsageEvent& event) {
  std::string description;
  append_usage_description(description, event.key_id, event.tags, event.model, event.upstream,
                           event.provider, event.operation);
  return append(event, description);
}

Result<bool> Spool::rotate() {
  bool has_records, has_spare;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    has_records = file_.bytes > 0;
    has_spare = spare_.fd >= 0;
  }
  // The spool's thread normally has the next file ready; if not, it is made here, before
  // the lock, so that appends never wait for the file system.
  File fresh;
  Error failure;
  bool failed = false;
  if (has_records && !has_spare) {
    auto made = make_file();
    if (made) {
      fresh = take(*made);
    } else {
      failure = made.error();
      failed = true;
    }
  }
  std::vector<File> old;
  {
    std::lock_guard<std::mutex> files(files_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      old.swap(retired_);  // files that filled up since the spool's thread last looked
      retired_.reserve(4);
      if (file_.bytes > 0) {
        File next = spare_.fd >= 0 ? take(spare_) : take(fresh);
        if (next.fd >= 0) {
          old.push_back(take(file_));
          file_ = take(next);
        }
      }
    }
    name_ready(old);
  }
  work_.notify_one();  // the next spare, and pages for the new current file
  if (fresh.fd >= 0) {  // not needed after all
    std::string path = fresh.path;
    close(fresh);
    ::unlink(path.c_str());
  }
  const bool handed_over = !old.empty();
  close_all(old);  // unmapped and trimmed here, while appends go on
  if (failed) return Unexpected{failure};
  return handed_over;
}

// --- SpoolDrainer ---------------------------------------------------------------------------

namespace {

/// The niceness of the spool's background threads between the drainer's ledger writes.
constexpr int kBackgroundNice = 10;
/// How long the drainer writes into the ledger at idle priority before it is given its
/// niceness-10 share again: the bound on how far the ledger falls behind on a CPU that the
/// I/O threads keep busy (the records are safe in the spool meanwhile).
constexpr auto kIdleIngestLimit = std::chrono::milliseconds(2000);

/// Sets the scheduling policy of thread `tid`: SCHED_IDLE, or SCHED_OTHER at the background
/// niceness with the short time slice of ask_for_short_time_slices(). False if refused.
bool set_background_policy(pid_t tid, bool idle) {
  struct SchedAttr {  // as in ask_for_short_time_slices()
    uint32_t size;
    uint32_t policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime_ns;
    uint64_t deadline_ns;
    uint64_t period_ns;
  };
  SchedAttr attr{};
  attr.size = sizeof attr;
  attr.policy = idle ? SCHED_IDLE : SCHED_OTHER;
  attr.nice = kBackgroundNice;
  attr.runtime_ns = idle ? 0 : 100'000;
  if (::syscall(SYS_sched_setattr, tid, &attr, 0) == 0) return true;
  // Kernels before 6.12 refuse a time slice (runtime) for SCHED_OTHER: without it.
  attr.runtime_ns = 0;
  return ::syscall(SYS_sched_setattr, tid, &attr, 0) == 0;
}

/// Whether this process may take a thread out of SCHED_IDLE again. Linux allows it only
/// with CAP_SYS_NICE or an RLIMIT_NICE that permits the thread's niceness (systemd's
/// LimitNICE=10); otherwise a thread that went idle would stay idle for good.
bool may_leave_idle_policy() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NICE, &limit) == 0 &&
      (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= rlim_t{20 - kBackgroundNice}))
    return true;
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
  if (::syscall(SYS_capget, &header, data.data()) != 0) return false;
  return (data[CAP_SYS_NICE / 32].effective & (1u << (CAP_SYS_NICE % 32))) != 0;
}

/// Runs the drainer's ledger writes at idle priority (SCHED_IDLE), within a bound.
///
/// Why: at niceness 10 the drainer still takes a tenth of a CPU the I/O threads want, and
/// the kernel enforces a time slice only at its tick (4 ms at HZ=250): a drainer picked
/// while an I/O thread is runnable keeps the CPU until the next tick, a stall that every
/// request in flight shares (it showed as the gateway's p99 at 16 connections). A SCHED_IDLE
/// thread runs only while the CPU has nothing else to do and is preempted as soon as an I/O
/// thread wakes. The bound: when a round of writes has run for kIdleIngestLimit, a guard
/// thread (asleep otherwise) gives the drainer its niceness-10 share back until the round
/// ends, so that on a CPU that is never idle the ledger lags by seconds, not without end.
///
/// Only the ledger writes run idle: handing files over (Spool::rotate) takes the lock that
/// appends take, and an idle thread holding it could hold up an I/O thread. Used only when
/// the process may leave SCHED_IDLE again (may_leave_idle_policy). Owned by the drainer's
/// thread (begin/end from there); the guard thread is joined by the destructor.
class IdleIngest {
 public:
  IdleIngest() : tid_(static_cast<pid_t>(::gettid())) {
    guard_ = std::thread([this] { guard_loop(); });
  }
  ~IdleIngest() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    guard_.join();
  }

  /// On the drainer's thread, after the files were handed over.
  void begin() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ingesting_ = true;
      since_ = std::chrono::steady_clock::now();
      ++round_;
    }
    wake_.notify_all();
    set_background_policy(tid_, true);  // after the mark: the guard bounds it from here on
  }
  /// On the drainer's thread, when the round's writes are done (or failed).
  void end() {
    set_background_policy(tid_, false);
    std::lock_guard<std::mutex> lock(mutex_);
    ingesting_ = false;
  }
  int64_t raises() const { return raises_.load(); }

 private:
  void guard_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || ingesting_; });
      if (stopping_) return;
      const uint64_t round = round_;
      // Once the limit has passed the drainer is raised, and raised again every limit
      // while the round lasts (one system call each): a begin() that raced with the raise
      // cannot leave it idle for longer.
      for (auto due = since_ + kIdleIngestLimit;; due += kIdleIngestLimit) {
        if (wake_.wait_until(lock, due, [&] { return stopping_ || !ingesting_ || round_ != round; }))
          break;
        set_background_policy(tid_, false);
        raises_.fetch_add(1);
      }
    }
  }

  const pid_t tid_;
  std::mutex mutex_;  ///< never held across a policy change of the drainer to idle
  std::condition_variable wake_;
  bool stopping_ = false;
  bool ingesting_ = false;
  uint64_t round_ = 0;
  std::chrono::steady_clock::time_point since_;
  std::atomic<int64_t> raises_{0};
  std::thread guard_;
};

/// The drainer thread's IdleIngest, if its loop runs one: drain_now() on other threads
/// (start-up recovery, tests) keeps the caller's scheduling.
thread_local IdleIngest* t_idle_ingest = nullptr;

}  // namespace

SpoolDrainer::SpoolDrainer(Spool& spool, std::string ledger_location, int64_t interval_ms)
    : spool_(spool), ledger_location_(std::move(ledger_location)), interval_ms_(interval_ms) {}

SpoolDrainer::~SpoolDrainer() { stop(); }

void SpoolDrainer::start() { thread_ = std::thread([this] { loop(); }); }

void SpoolDrainer::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SpoolDrainer::loop() {
  // Background work: below the I/O threads, so that writing a batch into the ledger does
  // not hold up requests on a busy CPU. At full load it needs a few percent of a CPU, and at
  // niceness 10 it still gets about a tenth of one when it competes with an I/O thread.
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10) != 0)
    std::fprintf(stderr, "aifinops gateway: spool: cannot lower the writer's priority: %s\n",
                 errno_text().c_str());
  ask_for_short_time_slices();  // picked while an I/O thread waits, it yields in 0.1 ms
  // The ledger writes themselves at idle priority, where the process may return from it.
  std::optional<IdleIngest> idle_ingest;
  if (may_leave_idle_policy()) {
    idle_ingest.emplace();
    t_idle_ingest = &*idle_ingest;
  }
  // While the ledger cannot be written (a PostgreSQL restart, a full disk), records stay in
  // the spool and the writer retries with a growing pause, logging the first failure, one
  // line every half minute while it lasts, and the recovery. A batch whose commit reached
  // the ledger although the answer was lost is recognised by its fingerprint on the retry
  // (ingest_file), so every record is written exactly once.
  constexpr int64_t kMaxPauseMs = 5'000;
  constexpr auto kLogEvery = std::chrono::seconds(30);
  int64_t failures = 0;
  int64_t pause_ms = interval_ms_;
  auto last_log = std::chrono::steady_clock::now();
  for (;;) {
    bool last;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(pause_ms), [this] { return stopping_; });
      last = stopping_;
    }
    // The last round, at stop, writes at the background niceness: stopping waits for it.
    if (last) t_idle_ingest = nullptr;
    auto drained = drain_now();
    const auto now = std::chrono::steady_clock::now();
    if (!drained) {
      ++failures;
      pause_ms = std::min(kMaxPauseMs, interval_ms_ << std::min<int64_t>(failures, 6));
      if (failures == 1 || now - last_log >= kLogEvery || last) {
        last_log = now;
        std::fprintf(stderr,
                     "aifinops gateway: spool: %s (%lld attempts; the records stay in %s%s)\n",
                     drained.error().message.c_str(), (long long)failures, spool_.dir().c_str(),
                     last ? " and are written at the next start" : ", retrying");
      }
    } else {
      if (failures > 0)
        std::fprintf(stderr,
                     "aifinops gateway: spool: the ledger is writable again after %lld failed "
                     "attempts; %lld records written\n",
                     (long long)failures, (long long)*drained);
      failures = 0;
      pause_ms = interval_ms_;
    }
    if (last) return;
  }
}

Result<int64_t> SpoolDrainer::drain_now() {
  std::lock_guard<std::mutex> guard(drain_mutex_);
  auto rotated = spool_.rotate();
  if (!rotated) return Unexpected{rotated.error()};
  std::vector<std::pair<uint64_t, std::string>> ready;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(spool_.dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("ready-", 0) == 0)
      ready.emplace_back(std::strtoull(name.c_str() + 6, nullptr, 10), entry.path().string());
  }
  if (ready.empty()) return 0;
  std::sort(ready.begin(), ready.end());
  // From here on no lock that appends take is held: the writes may run at idle priority.
  struct IdleRound {
    IdleIngest* idle = t_idle_ingest;
    IdleRound() {
      if (idle != nullptr) idle->begin();
    }
    ~IdleRound() {
      if (idle != nullptr) idle->end();
    }
  } idle_round;
  auto ledger = ledger::open_ledger(ledger_location_);
  if (!ledger) return Unexpected{ledger.error()};
  int64_t total = 0;
  for (const auto& [n, path] : ready) {
    auto count = ingest_file(**ledger, path);
    if (!count) return Unexpected{count.error()};
    total += *count;
    fs::remove(path, ec);  // only after the batch committed (or was already there)
  }
  drained_ += total;
  return total;
}

namespace {

struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

/// Ledger attributes already interned in this batch for one description, by the other
/// members that are attributes (the status, the cache flag and the repeat mark, kept in
/// `extra`).
struct KnownAttributes {
  struct Entry {
    int status;
    bool cache_hit;
    RepeatMark repeat;
    int64_t id;
  };
  std::vector<Entry> entries;  // a handful of statuses at most

  int64_t find(const UsageFigures& f) const {
    for (const Entry& e : entries)
      if (e.status == f.status && e.cache_hit == f.cache_hit && e.repeat == f.repeat) return e.id;
    return -1;
  }
};

}  // namespace

Result<int64_t> SpoolDrainer::ingest_file(ledger::Ledger& ledger, const std::string& path) {
  std::string content;
  {
    std::error_code size_error;
    const uintmax_t size = fs::file_size(path, size_error);
    std::ifstream in(path, std::ios::binary);
    if (size_error || !in)
      return make_error(ErrorCode::kIo, path + ": cannot read: " +
                                            (size_error ? size_error.message() : errno_text()));
    // Read and hashed in pieces with a yield between them, like the records below: a file
    // is megabytes, and copying or hashing it in one go would hold the CPU for as long.
    content.resize(static_cast<size_t>(size));
    size_t got = 0;
    while (got < content.size()) {
      const size_t piece = std::min(kBytesBetweenYields, content.size() - got);
      in.read(content.data() + got, static_cast<std::streamsize>(piece));
      if (in.gcount() <= 0) break;
      got += static_cast<size_t>(in.gcount());
      ::sched_yield();
    }
    content.resize(got);
  }
  // A file from a process that did not stop cleanly ends in the zeros of its unused room
  // (and holds nothing else when that process served nothing: no batch then).
  while (!content.empty() && content.back() == '\0') content.pop_back();
  if (content.empty()) return 0;
  XXH3_state_t* hash_state = XXH3_createState();
  if (hash_state == nullptr) return make_error(ErrorCode::kIo, path + ": out of memory");
  XXH3_128bits_reset(hash_state);
  for (size_t at = 0; at < content.size(); at += kBytesBetweenYields) {
    XXH3_128bits_update(hash_state, content.data() + at,
                        std::min(kBytesBetweenYields, content.size() - at));
    ::sched_yield();
  }
  XXH128_hash_t h = XXH3_128bits_digest(hash_state);  // the same as XXH3_128bits in one go
  XXH3_freeState(hash_state);
  ledger::Fingerprint fingerprint{h.high64, h.low64};
  // Ingested before a crash that came ahead of the file's removal: nothing to do.
  auto previous = ledger.find_batch_by_fingerprint(fingerprint);
  if (!previous) return Unexpected{previous.error()};
  if (previous->has_value()) return 0;

  ledger::BatchInfo info;
  info.source_path = path;
  info.source_kind = "gateway";
  auto batch = ledger.begin_batch(info);
  if (!batch) return Unexpected{batch.error()};
  static const allocate::TagPolicy policy = allocate::TagPolicy::defaults();
  ledger::BatchSummary summary;
  summary.id = *batch;
  summary.source_kind = "gateway";
  summary.source_path = path;
  summary.fingerprint_hex = fingerprint.hex();

  // The descriptive part of a gateway record has few distinct values. Interned in the
  // ledger by its full text (as always, so the same attributes keep the same fingerprint),
  // and remembered here by the description's text, so that a line written in the usual
  // order costs no JSON parse and no string building.
  std::unordered_map<std::string, int64_t> attribute_ids;
  std::unordered_map<std::string, KnownAttributes, TextHash, std::equal_to<>> by_description;
  auto last = by_description.end();  // the previous line's; set again after each insertion
  auto intern = [&](const UsageEvent& e) -> Result<int64_t> {
    std::string tags_json = "{";
    for (const auto& [k, v] : e.tags) {
      append_member(tags_json, k, v);
      tags_json += ',';
    }
    if (tags_json.size() > 1) tags_json.pop_back();  // the last ','
    tags_json += "}";
    std::string status = std::to_string(e.status);
    // Extra: {"upstream":..,"status":..,"cache_hit":..,"repeat":..}; "repeat" only where the
    // gateway counted repeats, so that recommendations tell a measured "false" from data
    // that has no count (optimize/cache.cc).
    std::string extra = "{\"upstream\":\"" + e.upstream + "\",\"status\":\"" + status +
                        "\",\"cache_hit\":\"" + (e.cache_hit ? "true" : "false") + "\"";
    if (e.repeat != RepeatMark::kUntracked)
      extra += e.repeat == RepeatMark::kRepeat ? ",\"repeat\":\"true\"" : ",\"repeat\":\"false\"";
    extra += "}";
    std::string key_text = e.key_id + '\x1f' + e.model + '\x1f' + e.provider + '\x1f' +
                           e.operation + '\x1f' + tags_json + '\x1f' + extra;
    auto it = attribute_ids.find(key_text);
    if (it != attribute_ids.end()) return it->second;
    std::array<std::string, kAttrCount> storage;
    AttributeViews views{};
    views[(size_t)Attr::kProviderName] = e.provider;
    std::string service = e.provider + " API";  // the views below must outlive the insert
    views[(size_t)Attr::kServiceName] = service;
    views[(size_t)Attr::kServiceCategory] = "AI and Machine Learning";
    views[(size_t)Attr::kChargeCategory] = "Usage";
    views[(size_t)Attr::kBillingCurrency] = "USD";
    views[(size_t)Attr::kResourceId] = e.key_id;
    views[(size_t)Attr::kResourceType] = kVirtualKeyResourceType;
    views[(size_t)Attr::kConsumedUnit] = "Tokens";
    views[(size_t)Attr::kModel] = e.model;
    views[(size_t)Attr::kOperation] = e.operation;
    views[(size_t)Attr::kTags] = tags_json;
    views[(size_t)Attr::kExtra] = extra;
    policy.apply(tags_json, storage, views);
    XXH128_hash_t kh = XXH3_128bits(key_text.data(), key_text.size());
    auto id = ledger.intern_attributes(views, ledger::Fingerprint{kh.high64, kh.low64});
    if (!id) return Unexpected{id.error()};
    attribute_ids.emplace(std::move(key_text), *id);
    return *id;
  };

  size_t pos = 0;
  int64_t line_number = 0;
  UsageEvent e;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();  // a torn last line: skipped below
    std::string_view line(content.data() + pos, end - pos);
    pos = end + 1;
    ++line_number;
    // A second's records take the writer tens of milliseconds. On a CPU shared with an I/O
    // thread that is never idle, the scheduler hands that time out in slices of a few
    // milliseconds, each of which stalls the requests in flight (the 99th percentile saw
    // it). Yielding every few dozen records keeps each stall to some tens of microseconds.
    if (line_number % kRecordsBetweenYields == 0) ::sched_yield();
    ++summary.rows_read;
    UsageFigures f;
    std::string_view description;
    const bool in_order = read_line_in_order(line, f, description);
    int64_t attribute = -1;
    // Most lines repeat the line before's description: compared before it is hashed.
    auto known = !in_order                                   ? by_description.end()
                 : last != by_description.end() && last->first == description ? last
                                                              : by_description.find(description);
    if (known != by_description.end()) attribute = known->second.find(f);
    last = known;
    if (attribute < 0) {
      if (!from_json_line(line, e)) {
        ledger::QuarantinedRow bad{line_number, "", "not a complete spool record (torn write?)",
                                   std::string(line.substr(0, 4096))};
        if (auto q = ledger.quarantine(*batch, bad); !q) {
          ledger.abort_batch();
          return Unexpected{q.error()};
        }
        ++summary.rows_quarantined;
        continue;
      }
      f = e;
      auto id = intern(e);
      if (!id) {
        ledger.abort_batch();
        return Unexpected{id.error()};
      }
      attribute = *id;
      if (in_order) {
        if (known == by_description.end())
          known = by_description.emplace(std::string(description), KnownAttributes{}).first;
        known->second.entries.push_back({f.status, f.cache_hit, f.repeat, attribute});
        last = known;
      }
    }
    UsageFacts facts;
    facts.charge_period_start = f.time_ms / 1000;
    facts.charge_period_end = (f.time_ms + f.latency_ms) / 1000;
    facts.input_tokens = f.tokens.input;
    facts.cached_input_tokens = f.tokens.cached_input;
    facts.cache_write_tokens = f.tokens.cache_write;
    facts.output_tokens = f.tokens.output;
    facts.reasoning_tokens = f.tokens.reasoning;
    facts.consumed_quantity = Decimal::from_units(f.tokens.input + f.tokens.output);
    facts.requests = 1;
    facts.list_cost = facts.contracted_cost = facts.billed_cost = facts.effective_cost = f.cost;
    facts.price_version = f.price_version;
    facts.flags = kFlagPricedFromCatalog;
    if (f.estimated) facts.flags |= kFlagEstimated;
    if (f.partial) facts.flags |= kFlagPartial;
    if (f.cache_hit) facts.flags |= kFlagCacheHit;
    if (f.repeat == RepeatMark::kRepeat) facts.flags |= kFlagRepeat;
    facts.latency_ms = f.latency_ms;
    facts.ttft_ms = f.ttft_ms;
    facts.cache_saving = f.cache_saving;
    if (auto a = ledger.append(attribute, facts, Lineage{*batch, line_number}); !a) {
      ledger.abort_batch();
      return Unexpected{a.error()};
    }
    ++summary.rows_ingested;
    summary.billed_cost += f.cost.nanos;
    summary.effective_cost += f.cost.nanos;
  }
  if (auto c = ledger.commit_batch(summary); !c) return Unexpected{c.error()};
  return summary.rows_ingested;
}

}  // namespace aifinops::gateway
