// OTLP/JSON traces -> GenAI usage records. One pass with simdjson's On-Demand API: spans are
// read field by field in document order and only GenAI spans become records.
#include "ingest/otlp.h"

#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "core/json_text.h"
#include "ingest/formats.h"
#include "ingest/record_sink.h"
#include "ingest/usage_json.h"

namespace aifinops::ingest {
namespace {

using simdjson::SUCCESS;
using simdjson::ondemand::json_type;

constexpr std::string_view kExtensions[] = {".json", ".jsonl", ".json.gz", ".jsonl.gz"};
constexpr int64_t kMaxQuarantineRaw = 4096;

/// An attribute value as text: strings unescaped, numbers and booleans as written.
struct AnyValue {
  enum class Type : uint8_t { kNone, kString, kInt, kDouble, kBool, kOther } type = Type::kNone;
  std::string_view text;
};

struct KeyValue {
  std::string_view key;
  AnyValue value;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace((unsigned char)s.back())) s.remove_suffix(1);
  return s;
}

/// Reads {"key":..,"value":{"stringValue":..}}; false on malformed JSON.
bool read_key_value(simdjson::ondemand::value element, KeyValue& kv) {
  simdjson::ondemand::object object;
  if (element.get_object().get(object) != SUCCESS) return false;
  kv = KeyValue{};
  for (auto field : object) {
    std::string_view name;
    if (field.unescaped_key().get(name) != SUCCESS) return false;
    if (name == "key") {
      if (field.value().get_string().get(kv.key) != SUCCESS) return false;
    } else if (name == "value") {
      simdjson::ondemand::object any;
      if (field.value().get_object().get(any) != SUCCESS) return false;
      for (auto vf : any) {
        std::string_view type;
        simdjson::ondemand::value v;
        if (vf.unescaped_key().get(type) != SUCCESS || vf.value().get(v) != SUCCESS) return false;
        json_type jt;
        if (v.type().get(jt) != SUCCESS) return false;
        if (type == "stringValue") {
          if (v.get_string().get(kv.value.text) != SUCCESS) return false;
          kv.value.type = AnyValue::Type::kString;
        } else if (type == "intValue" || type == "doubleValue" || type == "boolValue") {
          kv.value.type = type == "intValue"    ? AnyValue::Type::kInt
                          : type == "doubleValue" ? AnyValue::Type::kDouble
                                                  : AnyValue::Type::kBool;
          if (jt == json_type::string) {
            if (v.get_string().get(kv.value.text) != SUCCESS) return false;
          } else if (jt == json_type::number || jt == json_type::boolean) {
            kv.value.text = trim(v.raw_json_token());
          } else {
            kv.value.type = AnyValue::Type::kOther;
          }
        } else {
          kv.value.type = AnyValue::Type::kOther;  // arrays, kvlists, bytes: not needed
        }
      }
    }
  }
  return true;
}

/// A whole count from an attribute: intValue, or a doubleValue with no fraction.
bool attribute_count(const AnyValue& v, int64_t& out) {
  std::string_view t = v.text;
  if (v.type == AnyValue::Type::kDouble) {
    size_t dot = t.find('.');
    if (dot != std::string_view::npos) {
      for (char c : t.substr(dot + 1))
        if (c != '0') return false;
      t = t.substr(0, dot);
    }
  } else if (v.type != AnyValue::Type::kInt) {
    return false;
  }
  if (t.empty() || t.size() > 13) return false;  // kMaxCount has 13 digits
  int64_t n = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (n > kMaxCount) return false;
  out = n;
  return true;
}

bool nanos_of(std::string_view text, int64_t& out) {
  if (text.empty() || text.size() > 19) return false;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, c - '0', &n)) return false;
  }
  out = n;
  return true;
}

/// Which usage attribute a key is.
enum class UsageKey : uint8_t { kNone, kInput, kOutput, kCacheRead, kCacheWrite, kReasoning };

UsageKey usage_key(std::string_view key) {
  if (key.substr(0, 13) != "gen_ai.usage.") {
    if (key == "llm.usage.prompt_tokens") return UsageKey::kInput;
    if (key == "llm.usage.completion_tokens") return UsageKey::kOutput;
    return UsageKey::kNone;
  }
  std::string_view k = key.substr(13);
  if (k == "input_tokens" || k == "prompt_tokens") return UsageKey::kInput;
  if (k == "output_tokens" || k == "completion_tokens") return UsageKey::kOutput;
  if (k == "cache_read.input_tokens" || k == "cache_read_input_tokens" || k == "cached_tokens" ||
      k == "input_tokens_details.cached_tokens" || k == "prompt_tokens_details.cached_tokens")
    return UsageKey::kCacheRead;
  if (k == "cache_creation.input_tokens" || k == "cache_creation_input_tokens")
    return UsageKey::kCacheWrite;
  if (k == "reasoning_tokens" || k == "output_tokens_details.reasoning_tokens" ||
      k == "completion_tokens_details.reasoning_tokens")
    return UsageKey::kReasoning;
  return UsageKey::kNone;
}

/// One span's GenAI facts, as read.
struct Span {
  std::string_view span_id, trace_id, name;
  std::string_view operation, provider, system, request_model, response_model;
  int64_t start_ns = 0, end_ns = 0;
  bool has_start = false, has_end = false;
  int64_t usage[6] = {0, 0, 0, 0, 0, 0};  // by UsageKey
  bool has_usage = false;
  std::string bad_usage;  // the first malformed usage attribute
  std::vector<KeyValue> tag_attributes;
  size_t begin = 0, end = 0;  // byte range in the buffer, for quarantine
  bool genai() const { return !operation.empty() || !provider.empty() || !system.empty(); }
};

/// Resource attributes that matter to records.
struct Resource {
  std::string_view service_name, environment, region;
  std::vector<KeyValue> tag_attributes;
};

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

/// Decides once per attribute key whether it feeds a dimension (a tag policy alias, a
/// custom dimension's alias, or a resource attribute this reader maps).
class TagKeys {
 public:
  explicit TagKeys(const allocate::TagPolicy* policy) : policy_(policy) {}
  bool wanted(std::string_view key) {
    if (policy_ == nullptr) return false;
    auto it = known_.find(key);
    if (it != known_.end()) return it->second;
    bool want = policy_->dimension_of(key) != Attr::kCount;
    for (const allocate::CustomDimension& d : policy_->custom_dimensions())
      for (const std::string& alias : d.aliases) want = want || alias == key;
    want = want || key == "deployment.environment" || key == "deployment.environment.name";
    if (known_.size() < 10'000) known_.emplace(std::string(key), want);
    return want;
  }

 private:
  const allocate::TagPolicy* policy_;
  std::unordered_map<std::string, bool, TransparentHash, std::equal_to<>> known_;
};

/// What a parse reports to its user (the ingest, or a counting scan).
class SpanVisitor {
 public:
  virtual ~SpanVisitor() = default;
  virtual Result<void> genai_span(const Span& span, const Resource& resource, int64_t line) = 0;
  virtual void skipped_span() = 0;
  /// A span, or a whole document, that cannot be read.
  virtual Result<void> malformed(int64_t line, std::string column, std::string reason,
                                 std::string_view raw) = 0;
};

/// Walks ExportTraceServiceRequest documents.
class OtlpParser {
 public:
  OtlpParser(std::string_view text, TagKeys& tags, SpanVisitor& visitor)
      : text_(text), lines_(text), tags_(tags), visitor_(visitor) {}

  /// Parses one document (the whole buffer, or one line of it). A document that turns out
  /// not to be valid JSON is one malformed row from the fault on; the spans before the
  /// fault were complete and are kept, so rows read = ingested + quarantined still holds.
  Result<void> document(simdjson::ondemand::parser& parser, simdjson::padded_string_view json) {
    std::string_view doc_text(json.data(), json.size());
    size_t doc_begin = (size_t)(json.data() - text_.data());
    auto bad_document = [&](const std::string& why) {
      return visitor_.malformed(lines_.line_at(doc_begin), "", "not an OTLP/JSON trace export: " + why,
                                doc_text.substr(0, kMaxQuarantineRaw));
    };
    simdjson::ondemand::document doc;
    if (parser.iterate(json).get(doc) != SUCCESS) return bad_document("not JSON");
    doc_ = &doc;
    simdjson::ondemand::object top;
    if (doc.get_object().get(top) != SUCCESS) return bad_document("not a JSON object");
    bool found = false;
    for (auto field : top) {
      std::string_view key;
      if (field.unescaped_key().get(key) != SUCCESS) return bad_document("invalid JSON");
      if (key != "resourceSpans" && key != "resource_spans") continue;
      found = true;
      simdjson::ondemand::array resource_spans;
      if (field.value().get_array().get(resource_spans) != SUCCESS)
        return bad_document("resourceSpans is not an array");
      for (auto rs_result : resource_spans) {
        simdjson::ondemand::value rs;
        if (rs_result.get(rs) != SUCCESS) return bad_document("invalid JSON");
        auto r = resource_span(rs, json);
        if (!r) return r;
        if (!ok_) return bad_document(error_);
      }
    }
    if (!found) return bad_document("no resourceSpans");
    return {};
  }

 private:
  Result<void> resource_span(simdjson::ondemand::value rs, simdjson::padded_string_view json) {
    simdjson::ondemand::object object;
    if (rs.get_object().get(object) != SUCCESS) return fail("a resourceSpans entry is not an object");
    Resource resource;
    std::string_view deferred;  // scopeSpans seen before the resource: read after it
    for (auto field : object) {
      std::string_view key;
      if (field.unescaped_key().get(key) != SUCCESS) return fail("invalid JSON");
      if (key == "resource") {
        simdjson::ondemand::object res;
        if (field.value().get_object().get(res) != SUCCESS) return fail("resource is not an object");
        for (auto rf : res) {
          std::string_view rkey;
          if (rf.unescaped_key().get(rkey) != SUCCESS) return fail("invalid JSON");
          if (rkey != "attributes") continue;
          simdjson::ondemand::array attributes;
          if (rf.value().get_array().get(attributes) != SUCCESS) return fail("resource attributes is not an array");
          for (auto a : attributes) {
            KeyValue kv;
            simdjson::ondemand::value av;
            if (a.get(av) != SUCCESS || !read_key_value(av, kv)) return fail("a resource attribute is malformed");
            if (kv.value.type == AnyValue::Type::kOther || kv.value.type == AnyValue::Type::kNone) continue;
            if (kv.key == "service.name") resource.service_name = kv.value.text;
            else if (kv.key == "deployment.environment.name" ||
                     (kv.key == "deployment.environment" && resource.environment.empty()))
              resource.environment = kv.value.text;
            else if (kv.key == "cloud.region") resource.region = kv.value.text;
            if (tags_.wanted(kv.key)) resource.tag_attributes.push_back(kv);
          }
        }
        resource_seen_ = true;
      } else if (key == "scopeSpans" || key == "scope_spans" || key == "instrumentationLibrarySpans") {
        simdjson::ondemand::array scopes;
        if (field.value().get_array().get(scopes) != SUCCESS) return fail("scopeSpans is not an array");
        if (!resource_seen_) {
          // The resource may come later in the object: keep the text, read it afterwards.
          if (scopes.raw_json().get(deferred) != SUCCESS) return fail("invalid JSON");
          continue;
        }
        if (auto r = scope_spans(scopes, resource); !r || !ok_) return r;
      }
    }
    if (!deferred.empty()) {
      simdjson::ondemand::parser inner;
      simdjson::ondemand::document doc;
      size_t room = (size_t)(json.data() + json.capacity() - deferred.data());
      if (inner.iterate(simdjson::padded_string_view(deferred.data(), deferred.size(), room)).get(doc) != SUCCESS)
        return fail("invalid JSON");
      simdjson::ondemand::array scopes;
      if (doc.get_array().get(scopes) != SUCCESS) return fail("invalid JSON");
      if (auto r = scope_spans(scopes, resource); !r || !ok_) return r;
    }
    resource_seen_ = false;
    return {};
  }

  Result<void> scope_spans(simdjson::ondemand::array& scopes, const Resource& resource) {
    for (auto scope_value : scopes) {
      simdjson::ondemand::object scope;
      if (scope_value.get_object().get(scope) != SUCCESS) return fail("a scopeSpans entry is not an object");
      for (auto field : scope) {
        std::string_view key;
        if (field.unescaped_key().get(key) != SUCCESS) return fail("invalid JSON");
        if (key != "spans") continue;
        simdjson::ondemand::array spans;
        if (field.value().get_array().get(spans) != SUCCESS) return fail("spans is not an array");
        for (auto span_value : spans) {
          simdjson::ondemand::value sv;
          if (span_value.get(sv) != SUCCESS) return fail("invalid JSON");
          if (auto r = span(sv, resource); !r || !ok_) return r;
        }
      }
    }
    return {};
  }

  Result<void> span(simdjson::ondemand::value value, const Resource& resource) {
    const char* at = nullptr;
    if (value.current_location().get(at) != SUCCESS) return fail("invalid JSON");
    // Reset, keeping the buffers' capacity: this runs for every span.
    std::vector<KeyValue> keep = std::move(span_.tag_attributes);
    keep.clear();
    span_ = Span{};
    span_.tag_attributes = std::move(keep);
    span_.begin = (size_t)(at - text_.data());
    simdjson::ondemand::object object;
    if (value.get_object().get(object) != SUCCESS) return fail("a span is not an object");
    std::string_view start_text, end_text;
    for (auto field : object) {
      std::string_view key;
      if (field.unescaped_key().get(key) != SUCCESS) return fail("invalid JSON");
      simdjson::ondemand::value v;
      if (field.value().get(v) != SUCCESS) return fail("invalid JSON");
      if (key == "spanId" || key == "span_id") {
        if (v.get_string().get(span_.span_id) != SUCCESS) return fail("spanId is not a string");
      } else if (key == "traceId" || key == "trace_id") {
        if (v.get_string().get(span_.trace_id) != SUCCESS) return fail("traceId is not a string");
      } else if (key == "name") {
        if (v.get_string().get(span_.name) != SUCCESS) return fail("name is not a string");
      } else if (key == "startTimeUnixNano" || key == "start_time_unix_nano" ||
                 key == "endTimeUnixNano" || key == "end_time_unix_nano") {
        json_type jt;
        if (v.type().get(jt) != SUCCESS) return fail("invalid JSON");
        std::string_view t;
        if (jt == json_type::string) {
          if (v.get_string().get(t) != SUCCESS) return fail("invalid JSON");
        } else {
          t = trim(v.raw_json_token());
        }
        (key[0] == 's' ? start_text : end_text) = t;
      } else if (key == "attributes") {
        simdjson::ondemand::array attributes;
        if (v.get_array().get(attributes) != SUCCESS) return fail("span attributes is not an array");
        for (auto a : attributes) {
          KeyValue kv;
          simdjson::ondemand::value av;
          if (a.get(av) != SUCCESS || !read_key_value(av, kv)) return fail("a span attribute is malformed");
          attribute(kv);
        }
      }
    }
    const char* after = nullptr;
    // The span's end: where the document's iterator stands after the object.
    if (doc_->current_location().get(after) == SUCCESS && after != nullptr && after > at)
      span_.end = (size_t)(after - text_.data());
    else
      span_.end = std::min(text_.size(), span_.begin + 512);
    if (!span_.genai()) {
      visitor_.skipped_span();
      return {};
    }
    int64_t line = lines_.line_at(span_.begin);
    std::string_view raw = text_.substr(span_.begin, std::min<size_t>(span_.end - span_.begin, kMaxQuarantineRaw));
    auto id = [&] { return "span " + std::string(span_.span_id.empty() ? "(no spanId)" : span_.span_id) + ": "; };
    if (!span_.bad_usage.empty()) return visitor_.malformed(line, span_.bad_usage.substr(0, span_.bad_usage.find(':')), id() + span_.bad_usage, raw);
    span_.has_start = nanos_of(start_text, span_.start_ns);
    span_.has_end = nanos_of(end_text, span_.end_ns);
    if (!span_.has_start)
      return visitor_.malformed(line, "startTimeUnixNano",
                                id() + "startTimeUnixNano \"" + std::string(start_text.substr(0, 40)) +
                                    "\" is not a time in nanoseconds",
                                raw);
    if (!span_.has_end || span_.end_ns < span_.start_ns) span_.end_ns = span_.start_ns;
    if (!span_.has_usage) {
      // A GenAI span without token counts (an agent or tool span around the calls that
      // carry them): nothing to count, and not an error.
      visitor_.skipped_span();
      return {};
    }
    return visitor_.genai_span(span_, resource, line);
  }

  void attribute(const KeyValue& kv) {
    std::string_view key = kv.key;
    if (key.substr(0, 7) == "gen_ai.") {
      if (key == "gen_ai.operation.name") span_.operation = kv.value.text;
      else if (key == "gen_ai.provider.name") span_.provider = kv.value.text;
      else if (key == "gen_ai.system") span_.system = kv.value.text;
      else if (key == "gen_ai.request.model") span_.request_model = kv.value.text;
      else if (key == "gen_ai.response.model") span_.response_model = kv.value.text;
    }
    UsageKey u = usage_key(key);
    if (u != UsageKey::kNone) {
      span_.has_usage = true;
      int64_t n = 0;
      if (!attribute_count(kv.value, n)) {
        if (span_.bad_usage.empty())
          span_.bad_usage = std::string(key) + ": \"" + std::string(kv.value.text.substr(0, 40)) +
                            "\" is not a whole non-negative number";
      } else {
        span_.usage[(int)u] = n;
      }
      return;
    }
    if (kv.value.type != AnyValue::Type::kOther && kv.value.type != AnyValue::Type::kNone &&
        tags_.wanted(key))
      span_.tag_attributes.push_back(kv);
  }

  Result<void> fail(std::string why) {
    ok_ = false;
    error_ = std::move(why);
    return {};
  }

  std::string_view text_;
  LineCounter lines_;
  TagKeys& tags_;
  SpanVisitor& visitor_;
  Span span_;
  simdjson::ondemand::document* doc_ = nullptr;
  bool resource_seen_ = false;
  bool ok_ = true;
  std::string error_;

 public:
  /// After a structural failure inside a document: reset for the next one.
  void reset() {
    ok_ = true;
    error_.clear();
    resource_seen_ = false;
  }
};

/// The documents of a buffer: the whole buffer, or one per line when the first line is a
/// complete object on its own (JSON lines, as the collector's file exporter writes).
std::vector<std::string_view> documents(std::string_view text) {
  std::vector<std::string_view> out;
  size_t first_nl = text.find('\n');
  std::string_view first = trim(text.substr(0, first_nl));
  size_t lead = first.find_first_not_of(" \t\r");
  bool lines = first_nl != std::string_view::npos && lead != std::string_view::npos &&
               first[lead] == '{' && !first.empty() && first.back() == '}';
  if (!lines) {
    out.push_back(text);
    return out;
  }
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(at, nl - at);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) out.push_back(line);
    at = nl + 1;
  }
  return out;
}

bool same_ci(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return true;
}

std::string_view normalized_operation(std::string_view op) {
  if (op == "embeddings") return "embedding";
  if (op == "text_completion") return "completion";
  if (op == "generate_content") return "chat";
  return op;
}

/// Turns GenAI spans into records through a RecordSink.
class IngestVisitor : public SpanVisitor {
 public:
  IngestVisitor(const IngestContext& context, RecordSink& sink) : context_(context), sink_(sink) {}

  Result<void> genai_span(const Span& span, const Resource& resource, int64_t line) override {
    UsageFacts& facts = record_.facts;
    facts = UsageFacts{};
    facts.charge_period_start = span.start_ns / 1'000'000'000;
    facts.charge_period_end = span.end_ns / 1'000'000'000;
    facts.latency_ms = (span.end_ns - span.start_ns) / 1'000'000;
    facts.requests = 1;
    facts.input_tokens = span.usage[(int)UsageKey::kInput];
    facts.output_tokens = span.usage[(int)UsageKey::kOutput];
    facts.cached_input_tokens = span.usage[(int)UsageKey::kCacheRead];
    facts.cache_write_tokens = span.usage[(int)UsageKey::kCacheWrite];
    facts.reasoning_tokens = span.usage[(int)UsageKey::kReasoning];
    // Built only for a quarantine: this runs for every GenAI span.
    auto id = [&] { return prefix_ + "span " + std::string(span.span_id.empty() ? "(no spanId)" : span.span_id) + ": "; };
    std::string_view raw = span_raw(span);
    // GenAI conventions count cached and cache-write tokens inside input_tokens.
    if (facts.cached_input_tokens + facts.cache_write_tokens > facts.input_tokens)
      return sink_.quarantine(line, "gen_ai.usage.input_tokens",
                              id() + "cache read and cache creation tokens exceed gen_ai.usage.input_tokens", raw);
    if (facts.reasoning_tokens > facts.output_tokens)
      return sink_.quarantine(line, "gen_ai.usage.output_tokens",
                              id() + "reasoning tokens exceed gen_ai.usage.output_tokens", raw);
    facts.consumed_quantity = facts.pricing_quantity = token_quantity(facts.input_tokens + facts.output_tokens);

    std::string_view model = !span.response_model.empty() ? span.response_model : span.request_model;
    const pricing::ModelPrice* price = find_price(model, facts.charge_period_start);
    if (price == nullptr && model != span.request_model && !span.request_model.empty()) {
      model = span.request_model;
      price = find_price(model, facts.charge_period_start);
    }
    if (price == nullptr) {
      std::string why = model.empty() ? "no gen_ai.response.model or gen_ai.request.model: the tokens cannot be priced"
                                       : "model \"" + std::string(model) + "\" has no price in the catalog at " +
                                             format_timestamp(facts.charge_period_start) +
                                             " (add it with `aifinops prices`)";
      return sink_.quarantine(line, model.empty() ? "gen_ai.request.model" : "gen_ai.response.model", id() + why, raw);
    }
    pricing::TokenUsage usage{facts.input_tokens, facts.cached_input_tokens, facts.cache_write_tokens,
                              facts.output_tokens, facts.reasoning_tokens, false};
    Money cost = pricing::token_cost(*price, usage);
    facts.list_cost = facts.contracted_cost = facts.billed_cost = facts.effective_cost = cost;
    facts.price_version = price->version;
    facts.flags |= kFlagPricedFromCatalog;

    std::string_view provider_id = !span.provider.empty() ? span.provider
                                   : !span.system.empty() ? span.system
                                                          : std::string_view(price->provider);
    for (std::string& a : record_.attributes) a.clear();
    record_[Attr::kProviderName] = provider_display_name(provider_id);
    record_[Attr::kServiceName] = provider_service_name(provider_id);
    record_[Attr::kServiceCategory] = "AI and Machine Learning";
    record_[Attr::kServiceSubcategory] = "Generative AI";
    record_[Attr::kChargeCategory] = "Usage";
    record_[Attr::kChargeFrequency] = "Usage-Based";
    record_[Attr::kBillingCurrency] = price->currency;
    record_[Attr::kConsumedUnit] = "Tokens";
    record_[Attr::kPricingUnit] = "Tokens";
    record_[Attr::kRegionId] = resource.region;
    record_[Attr::kModel] = price->model;
    record_[Attr::kOperation] = normalized_operation(span.operation.empty() ? "chat" : span.operation);
    // Raw attributes that feed dimensions: the span's first, so they win over the resource's.
    std::string& tags = record_[Attr::kTags];
    tags = "{";
    auto put = [&](const KeyValue& kv) {
      for (const KeyValue* seen : seen_keys_)
        if (seen->key == kv.key) return;
      seen_keys_.push_back(&kv);
      put_json_field(tags, kv.key, kv.value.text);
    };
    seen_keys_.clear();
    for (const KeyValue& kv : span.tag_attributes) put(kv);
    for (const KeyValue& kv : resource.tag_attributes) put(kv);
    tags = close_json_object(std::move(tags));
    if (!span.response_model.empty() && !same_ci(span.response_model, price->model)) {
      std::string& extra = record_[Attr::kExtra];
      extra = "{";
      put_json_field(extra, "reported_model", span.response_model);
      extra = close_json_object(std::move(extra));
    }
    record_.lineage.line = line;
    defaults_.clear();
    if (!resource.service_name.empty()) defaults_.emplace_back(Attr::kProject, std::string(resource.service_name));
    if (!resource.environment.empty()) defaults_.emplace_back(Attr::kEnvironment, std::string(resource.environment));
    return sink_.append(record_, defaults_);
  }

  void skipped_span() override { ++sink_.summary().rows_skipped; }

  Result<void> malformed(int64_t line, std::string column, std::string reason, std::string_view raw) override {
    return sink_.quarantine(line, std::move(column), prefix_ + reason, raw);
  }

  void set_text(std::string_view text) { text_ = text; }
  /// Put before every reason (the file's name, when reading a directory).
  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }

 private:
  std::string_view span_raw(const Span& span) const {
    if (span.begin >= text_.size()) return {};
    return text_.substr(span.begin, std::min<size_t>(span.end - span.begin, kMaxQuarantineRaw));
  }

  /// The catalog's price of a model at a time, with the spelling look-up done once per name.
  const pricing::ModelPrice* find_price(std::string_view model, EpochSeconds at) {
    if (model.empty()) return nullptr;
    auto it = versions_.find(model);
    if (it == versions_.end()) {
      if (versions_.size() > 10'000) versions_.clear();
      it = versions_.emplace(std::string(model), context_.catalog.model_versions(model)).first;
    }
    const pricing::ModelPrice* found = nullptr;
    for (const pricing::ModelPrice* p : it->second)
      if (p->effective_from <= at) found = p;  // effective-date order: the last one in effect
    return found;
  }

  const IngestContext& context_;
  RecordSink& sink_;
  std::string_view text_;
  std::string prefix_;
  Record record_;
  std::vector<std::pair<Attr, std::string>> defaults_;
  std::vector<const KeyValue*> seen_keys_;
  std::unordered_map<std::string, std::vector<const pricing::ModelPrice*>, TransparentHash, std::equal_to<>>
      versions_;
};

/// Parses every document of a buffer; `visitor` sees each span.
Result<void> parse_buffer(const PaddedJson& json, TagKeys& tags, SpanVisitor& visitor) {
  // Offsets (lines, quarantine text) are taken in the buffer simdjson reads.
  std::string_view text(json.view().data(), json.view().size());
  OtlpParser parser(text, tags, visitor);
  simdjson::ondemand::parser json_parser;
  for (std::string_view doc : documents(text)) {
    auto r = parser.document(json_parser, json.slice(doc));
    if (!r) return r;
    parser.reset();
  }
  return {};
}

class IngestOtlp {
 public:
  IngestOtlp(const IngestContext& context, RecordSink& sink) : context_(context), sink_(sink), tags_(&context.tag_policy) {}

  Result<void> read(std::string& text, std::string prefix = {}) {
    PaddedJson json(text);
    IngestVisitor visitor(context_, sink_);
    visitor.set_text(std::string_view(json.view().data(), json.view().size()));
    visitor.set_prefix(std::move(prefix));
    return parse_buffer(json, tags_, visitor);
  }

 private:
  const IngestContext& context_;
  RecordSink& sink_;
  TagKeys tags_;
};

class CountingVisitor : public SpanVisitor {
 public:
  Result<void> genai_span(const Span& span, const Resource&, int64_t) override {
    ++scan.spans;
    ++scan.genai_spans;
    scan.input_tokens += span.usage[(int)UsageKey::kInput];
    scan.output_tokens += span.usage[(int)UsageKey::kOutput];
    return {};
  }
  void skipped_span() override { ++scan.spans; }
  Result<void> malformed(int64_t, std::string, std::string, std::string_view) override {
    ++scan.malformed;
    return {};
  }
  OtlpScan scan;
};

}  // namespace

Result<IngestSummary> ingest_otlp(const IngestContext& context, const std::string& path,
                                  const IngestOptions& options) {
  auto whole = read_whole_input(path, kExtensions);
  if (!whole) return Unexpected{whole.error()};
  RecordSink sink(context, path, "otlp", options);
  if (auto begun = sink.begin(); !begun) return Unexpected{begun.error()};
  IngestOtlp reader(context, sink);
  bool many = whole->pages.size() > 1 || whole->pages.front().path != path;
  for (WholeInput::Page& page : whole->pages)  // in a directory, reasons name the file
    if (auto r = reader.read(page.content, many ? page.path + ": " : ""); !r) return Unexpected{r.error()};
  std::string label = "OTLP/JSON traces";
  if (many) label += " (" + std::to_string(whole->pages.size()) + " files)";
  return sink.finish(whole->content, whole->bytes, label);
}

Result<IngestSummary> ingest_otlp_json(const IngestContext& context, std::string_view body,
                                       std::string_view source_name, const IngestOptions& options) {
  std::string text;
  text.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  text.assign(body);
  // A body that is not an export at all is refused as a whole (the client's error), rather
  // than stored as one quarantined row.
  {
    simdjson::ondemand::parser probe;
    simdjson::ondemand::document doc;
    simdjson::ondemand::object top;
    PaddedJson json(text);
    bool ok = probe.iterate(json.view()).get(doc) == SUCCESS && doc.get_object().get(top) == SUCCESS;
    if (ok) {
      bool has = false;
      for (auto field : top) {
        std::string_view key;
        if (field.unescaped_key().get(key) != SUCCESS) {
          ok = false;
          break;
        }
        has = has || key == "resourceSpans" || key == "resource_spans";
      }
      ok = ok && has;
    }
    if (!ok)
      return make_error(ErrorCode::kParse, std::string(source_name) +
                                               ": the body is not an OTLP/JSON ExportTraceServiceRequest "
                                               "(a JSON object with resourceSpans); nothing was ingested");
  }
  RecordSink sink(context, std::string(source_name), "otlp", options);
  sink.set_stream(true);
  if (auto begun = sink.begin(); !begun) return Unexpected{begun.error()};
  IngestOtlp reader(context, sink);
  if (auto r = reader.read(text); !r) return Unexpected{r.error()};
  XXH128_hash_t h = XXH3_128bits(body.data(), body.size());
  return sink.finish(ledger::Fingerprint{h.high64, h.low64}, (int64_t)body.size(), "OTLP/JSON traces");
}

OtlpResponse otlp_response(const Result<IngestSummary>& result) {
  OtlpResponse response;
  if (!result) {
    response.status = 400;
    response.body = "{\"code\":3,\"message\":";  // google.rpc.Code INVALID_ARGUMENT
    append_json_string(response.body, result.error().message);
    response.body += "}";
    return response;
  }
  const IngestSummary& s = *result;
  int64_t rejected = s.batch_id == 0 && !s.duplicate ? s.rows_read : s.rows_quarantined;
  if (rejected == 0) {
    response.body = "{}";
    return response;
  }
  std::string message = std::to_string(rejected) + (rejected == 1 ? " span" : " spans") + " not accepted";
  if (!s.quarantined_sample.empty()) message += "; first: " + s.quarantined_sample.front().reason;
  response.body = "{\"partialSuccess\":{\"rejectedSpans\":" + std::to_string(rejected) + ",\"errorMessage\":";
  append_json_string(response.body, message);
  response.body += "}}";
  return response;
}

Result<OtlpScan> scan_otlp_json(std::string_view body) {
  std::string text;
  text.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  text.assign(body);
  PaddedJson json(text);
  allocate::TagPolicy policy = allocate::TagPolicy::defaults();
  TagKeys tags(&policy);
  CountingVisitor visitor;
  if (auto r = parse_buffer(json, tags, visitor); !r) return Unexpected{r.error()};
  return visitor.scan;
}

bool looks_like_otlp_traces(std::string_view head) {
  return head.find("\"resourceSpans\"") != std::string_view::npos ||
         head.find("\"resource_spans\"") != std::string_view::npos;
}

}  // namespace aifinops::ingest
