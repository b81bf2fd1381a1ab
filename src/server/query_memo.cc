#include "server/query_memo.h"

namespace aifinops::server {

std::string QueryMemo::key_of(const ledger::QuerySpec& spec) {
  // Fields joined with separators no dimension name or value holds (0x1e, 0x1f), each
  // length-prefixed where it is free text.
  std::string key;
  auto text = [&key](const std::string& s) {
    key += std::to_string(s.size());
    key += ':';
    key += s;
  };
  auto dimension = [&](const ledger::Dimension& d) {
    key += std::to_string((int)d.kind) + "," + std::to_string((int)d.attribute) + "," +
           std::to_string((int)d.grain) + ",";
    text(d.label);
    for (const std::string& tag : d.tag_keys) text(tag);
    key += '\x1f';
  };
  key += spec.from ? std::to_string(*spec.from) : "-";
  key += '\x1e';
  key += spec.to ? std::to_string(*spec.to) : "-";
  key += '\x1e';
  key += std::to_string((int)spec.metric);
  key += '\x1e';
  for (const ledger::Dimension& d : spec.group_by) dimension(d);
  key += '\x1e';
  for (const ledger::Filter& f : spec.filters) {
    dimension(f.dimension);
    text(f.value);
    key += '\x1f';
  }
  return key;
}

std::shared_ptr<const ledger::QueryResult> QueryMemo::find(const std::string& version,
                                                           const std::string& key) {
  std::lock_guard lock(mutex_);
  if (version != version_) return nullptr;
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, it->second);
  return it->second->answer;
}

namespace {

size_t cells_of(const ledger::QueryResult& answer) {
  const size_t width = answer.rows.empty() ? 0 : answer.rows.front().keys.size() + 1;
  return answer.rows.size() * width + 1;  // an empty answer still takes room
}

}  // namespace

void QueryMemo::keep(const std::string& version, const std::string& key,
                     std::shared_ptr<const ledger::QueryResult> answer) {
  const size_t cells = cells_of(*answer);
  if (cells > max_cells_ / 4) return;
  std::lock_guard lock(mutex_);
  if (version != version_) {
    // Answers of another version are never asked again by the requests of this one. (A
    // request that read the version just before a change and keeps an answer after one of
    // the new version did empties the memo once more: rare, and never a wrong answer.)
    entries_.clear();
    index_.clear();
    cells_ = 0;
    version_ = version;
  }
  if (auto it = index_.find(key); it != index_.end()) {
    cells_ -= cells_of(*it->second->answer);
    entries_.erase(it->second);
    index_.erase(it);
  }
  entries_.push_front(Entry{key, std::move(answer)});
  index_[key] = entries_.begin();
  cells_ += cells;
  while (cells_ > max_cells_ && !entries_.empty()) {
    cells_ -= cells_of(*entries_.back().answer);
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
}

size_t QueryMemo::cells() const {
  std::lock_guard lock(mutex_);
  return cells_;
}

Result<ledger::QueryResult> MemoLedger::query(const ledger::QuerySpec& spec) {
  const std::string key = QueryMemo::key_of(spec);
  if (auto kept = memo_.find(version_, key)) return *kept;
  auto answer = inner_.query(spec);
  if (!answer || cells_of(*answer) > memo_.max_cells() / 4) return answer;
  memo_.keep(version_, key, std::make_shared<const ledger::QueryResult>(*answer));
  return answer;
}

}  // namespace aifinops::server
