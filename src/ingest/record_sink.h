// RecordSink: the source-independent half of an ingest. A reader parses its format into
// Records (or attribute views + facts) and hands them here; the sink interns attributes,
// applies the tag policy, quarantines, and commits the batch with the idempotency rules.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/record.h"
#include "core/result.h"
#include "ingest/ingest.h"
#include "ledger/ledger.h"

namespace aifinops::ingest {

/// One ingest batch being written: begin(), then append/quarantine per row, then finish().
/// Destroying a sink that was begun but not finished aborts the batch (nothing written).
/// Counts rows: every append and quarantine is a row read, so that
/// rows read = ingested + quarantined holds by construction.
/// Lifetime: copies the context (references to the ledger, catalog and policy, which must
/// outlive it) and the options; one per input. Not thread-safe.
class RecordSink {
 public:
  /// `source_path` is the file as given (made absolute for the same-path rule) or, for a
  /// stream such as an OTLP receiver, a name; `source_kind` is stored with the batch
  /// ("focus", "openai-usage", "otlp", ...).
  RecordSink(const IngestContext& context, std::string source_path, std::string source_kind,
             const IngestOptions& options);
  ~RecordSink();
  RecordSink(const RecordSink&) = delete;
  RecordSink& operator=(const RecordSink&) = delete;

  /// A stream has no file whose later versions replace earlier ones: every distinct body is
  /// its own batch, so finish() skips the same-path rule (identical bodies are still
  /// recognised by their content fingerprint). Call before begin().
  void set_stream(bool stream) { stream_ = stream; }

  /// Starts the batch (a ledger transaction).
  Result<void> begin();

  /// Appends one record: fills the canonical dimensions from record[Attr::kTags] through
  /// the tag policy (dimensions the reader set already are kept), interns the attributes
  /// (cached by content) and appends the facts with lineage line record.lineage.line.
  /// Tags that are not a JSON object move to `extra` under "Tags". `defaults` are dimension
  /// values used when neither the reader nor the policy set the dimension (e.g. an OpenAI
  /// project_id as the project unless a tag alias says otherwise).
  Result<void> append(Record& record,
                      std::span<const std::pair<Attr, std::string>> defaults = {});

  /// The attribute set id of a record (the first half of append): cached by the record's
  /// attributes as built, so the policy runs once per distinct set.
  Result<int64_t> intern_record(Record& record,
                                std::span<const std::pair<Attr, std::string>> defaults = {});

  /// The hot path for readers that intern by their own fingerprint (FOCUS): the id of an
  /// attribute set, stored the first time. `fingerprint` must cover every view and the
  /// policy (see policy_fingerprint()).
  Result<int64_t> intern_views(const AttributeViews& views, const ledger::Fingerprint& fingerprint);
  /// Appends facts for an interned attribute set and counts the row.
  Result<void> append_views(int64_t attributes_id, const UsageFacts& facts, int64_t line);

  /// Quarantines one row with its place, column (may be empty) and reason; the raw text is
  /// kept up to 64 KiB.
  Result<void> quarantine(int64_t line, std::string column, std::string reason, std::string_view raw);
  /// Same, from a filled row (its line, column, reason and raw are used as they are).
  Result<void> quarantine(ledger::QuarantinedRow row);

  /// Ends the batch: with --strict and quarantined rows nothing is written (batch_id 0);
  /// content ingested before is a duplicate (nothing written); an earlier batch from the
  /// same path is an error unless --replace, which removes it in the same transaction.
  Result<IngestSummary> finish(const ledger::Fingerprint& content, int64_t bytes,
                               std::string format_label);

  /// Abandons the batch (nothing written). Safe to call at any time.
  void abort();

  IngestSummary& summary() { return summary_; }
  /// The path batches are stored under (absolute for files).
  const std::string& source_path() const { return source_path_; }
  /// A digest of the tag policy; readers that fingerprint attributes themselves mix it in,
  /// because the same raw tags under another policy yield other dimension values.
  const std::string& policy_fingerprint() const { return policy_fingerprint_; }
  const IngestContext& context() const { return context_; }

 private:
  struct FingerprintHash {
    size_t operator()(const ledger::Fingerprint& f) const { return (size_t)f.low; }
  };

  IngestContext context_;  // three references: copied, so a temporary context is fine
  std::string path_;         // as given, for messages
  std::string source_path_;  // absolute, for the same-path rule
  std::string source_kind_;
  IngestOptions options_;
  bool stream_ = false;
  bool active_ = false;
  std::string policy_fingerprint_;
  IngestSummary summary_;
  std::unordered_map<ledger::Fingerprint, int64_t, FingerprintHash> ids_;  // append(Record&)
  std::string key_;  // scratch for fingerprints
};

}  // namespace aifinops::ingest
