// OTLP/HTTP JSON trace exports with OpenTelemetry GenAI spans -> priced usage records: from
// files (`ingest --format otlp`) and from a receiver's request body (POST /v1/traces).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ingest/ingest.h"

namespace aifinops::ingest {

/// Ingests an OTLP/JSON trace export: one ExportTraceServiceRequest per file, or one per
/// line (the collector's file exporter), or a directory of such files; one batch. A span is
/// a GenAI call when it has gen_ai.operation.name, gen_ai.provider.name or gen_ai.system;
/// other spans are skipped (IngestSummary::rows_skipped). A GenAI span whose usage cannot
/// be read or priced is quarantined with its span id and the reason.
Result<IngestSummary> ingest_otlp(const IngestContext& context, const std::string& path,
                                  const IngestOptions& options);

/// Ingests one OTLP/HTTP JSON request body as one batch named `source_name` (e.g.
/// "otlp:serve"). Bodies are told apart by content: the same body sent twice (a client
/// retry) is a duplicate and is not counted again; different bodies under one name are
/// separate batches. A body that is not an ExportTraceServiceRequest is an error.
Result<IngestSummary> ingest_otlp_json(const IngestContext& context, std::string_view body,
                                       std::string_view source_name, const IngestOptions& options);

/// The HTTP answer of an OTLP/HTTP collector to an ingest result.
struct OtlpResponse {
  int status = 200;          ///< 200, or 400 for a body that cannot be read at all
  std::string content_type = "application/json";
  std::string body;          ///< "{}", {"partialSuccess":{...}}, or a google.rpc.Status
};
/// Success with nothing rejected is "{}"; quarantined spans are reported as
/// {"partialSuccess":{"rejectedSpans":N,"errorMessage":"..."}} (OTLP/HTTP spec, "Partial
/// Success"); an unreadable body is 400 with {"code":3,"message":"..."} (InvalidArgument).
OtlpResponse otlp_response(const Result<IngestSummary>& result);

/// Counts of a parse without a ledger, for benchmarks and fuzzing.
struct OtlpScan {
  int64_t spans = 0, genai_spans = 0, malformed = 0;
  int64_t input_tokens = 0, output_tokens = 0;
};
/// Parses an OTLP/JSON body (the same code path as ingest) and counts what it finds.
Result<OtlpScan> scan_otlp_json(std::string_view body);

/// Detector for --format auto: an ExportTraceServiceRequest ("resourceSpans").
bool looks_like_otlp_traces(std::string_view head);

}  // namespace aifinops::ingest
