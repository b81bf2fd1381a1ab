// OpenAI organisation Usage API and Costs API pages -> Records.
#include "ingest/openai_usage.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "core/json_text.h"
#include "ingest/formats.h"
#include "ingest/record_sink.h"
#include "ingest/usage_json.h"

namespace aifinops::ingest {
namespace {

using simdjson::SUCCESS;

constexpr std::string_view kPageExtensions[] = {".json", ".json.gz"};

enum class Api { kUsage, kCosts };

/// What a usage result's "object" says it counts.
struct UsageKind {
  std::string_view object;     ///< "organization.usage.<x>.result"
  std::string_view operation;  ///< record operation
  std::string_view unit;       ///< ConsumedUnit
  std::string_view quantity;   ///< the field that holds the quantity ("" for tokens)
  bool tokens;                 ///< priced from the catalog
};

constexpr UsageKind kUsageKinds[] = {
    {"organization.usage.completions.result", "chat", "Tokens", "", true},
    {"organization.usage.embeddings.result", "embedding", "Tokens", "", true},
    {"organization.usage.moderations.result", "moderation", "Tokens", "", true},
    {"organization.usage.images.result", "image", "Images", "images", false},
    {"organization.usage.audio_speeches.result", "audio", "Characters", "characters", false},
    {"organization.usage.audio_transcriptions.result", "audio", "Seconds", "seconds", false},
    {"organization.usage.vector_stores.result", "vector_store", "Bytes", "usage_bytes", false},
    {"organization.usage.code_interpreter_sessions.result", "code_interpreter", "Sessions",
     "num_sessions", false},
    {"organization.usage.file_searches.result", "file_search", "Requests", "num_requests", false},
    {"organization.usage.web_searches.result", "web_search", "Requests", "num_requests", false},
};

const UsageKind* find_kind(std::string_view object) {
  for (const UsageKind& k : kUsageKinds)
    if (k.object == object) return &k;
  return nullptr;
}

/// Dimension-like string fields kept in the record's tags as the API spells them.
constexpr std::string_view kTagFields[] = {"project_id",   "api_key_id",      "user_id",
                                           "service_tier", "vector_store_id", "size",
                                           "source",       "context_level"};

/// One result's fields, read once.
struct ResultFields {
  std::string object;
  std::string model, project_id, api_key_id, line_item, currency, quantity_unit;
  std::string tags = "{", extra = "{";
  bool batch = false;
  bool new_token_fields = false;  // input_tokens already includes audio and image tokens
  int64_t input = 0, output = 0, cached = 0, cache_write = 0, input_audio = 0, output_audio = 0;
  int64_t model_requests = -1, requests = -1, quantity_count = -1;
  bool has_amount = false, has_quantity = false;
  Decimal amount, quantity;
};

/// Reads a result object; on failure names the field and the problem.
bool read_fields(simdjson::ondemand::object& object, ResultFields& f, std::string& column,
                 std::string& reason) {
  for (auto field : object) {
    std::string_view key;
    simdjson::ondemand::value v;
    if (field.unescaped_key().get(key) != SUCCESS || field.value().get(v) != SUCCESS) {
      reason = "invalid JSON";
      return false;
    }
    auto count = [&](int64_t& out) {
      simdjson::ondemand::json_type type;
      if (v.type().get(type) == SUCCESS && type == simdjson::ondemand::json_type::null) return true;
      if (json_count(v, out)) return true;
      column = std::string(key);
      reason = std::string(key) + ": \"" + std::string(v.raw_json_token().substr(0, 40)) +
               "\" is not a whole non-negative number";
      return false;
    };
    auto text = [&](std::string& out) {
      if (json_scalar_text(v, out)) return true;
      column = std::string(key);
      reason = std::string(key) + ": not a string";
      return false;
    };
    if (key == "object") {
      if (!text(f.object)) return false;
    } else if (key == "model") {
      if (!text(f.model)) return false;
    } else if (key == "batch") {
      std::string b;
      if (!text(b)) return false;
      f.batch = b == "true";
      put_json_field(f.tags, "batch", b);
    } else if (key == "line_item") {
      if (!text(f.line_item)) return false;
    } else if (key == "input_tokens") {
      if (!count(f.input)) return false;
    } else if (key == "output_tokens") {
      if (!count(f.output)) return false;
    } else if (key == "input_cached_tokens") {
      if (!count(f.cached)) return false;
    } else if (key == "input_cache_write_tokens") {
      if (!count(f.cache_write)) return false;
    } else if (key == "input_audio_tokens" || key == "output_audio_tokens") {
      int64_t n = 0;
      if (!count(n)) return false;
      (key == "input_audio_tokens" ? f.input_audio : f.output_audio) = n;
      if (n > 0) put_json_field(f.extra, key, std::to_string(n));
    } else if (key == "num_model_requests") {
      if (!count(f.model_requests)) return false;
    } else if (key == "num_requests") {
      if (!count(f.requests)) return false;
    } else if (key == "amount") {
      simdjson::ondemand::object amount;
      if (v.get_object().get(amount) != SUCCESS) {
        column = "amount";
        reason = "amount: not an object with value and currency";
        return false;
      }
      for (auto af : amount) {
        std::string_view akey;
        simdjson::ondemand::value av;
        if (af.unescaped_key().get(akey) != SUCCESS || af.value().get(av) != SUCCESS) {
          reason = "invalid JSON";
          return false;
        }
        if (akey == "value") {
          if (!json_decimal(av, f.amount)) {
            column = "amount.value";
            reason = "amount.value: \"" + std::string(av.raw_json_token().substr(0, 40)) +
                     "\" is not a decimal number";
            return false;
          }
          f.has_amount = true;
        } else if (akey == "currency") {
          if (!json_scalar_text(av, f.currency)) {
            column = "amount.currency";
            reason = "amount.currency: not a string";
            return false;
          }
        }
      }
    } else if (key == "quantity") {
      simdjson::ondemand::json_type type;
      if (v.type().get(type) == SUCCESS && type != simdjson::ondemand::json_type::null) {
        if (!json_decimal(v, f.quantity)) {
          column = "quantity";
          reason = "quantity: not a decimal number";
          return false;
        }
        f.has_quantity = true;
      }
    } else if (key == "quantity_unit") {
      if (!text(f.quantity_unit)) return false;
    } else if (key == "input_uncached_tokens" || key == "input_text_tokens" ||
               key == "output_text_tokens" || key == "input_image_tokens" ||
               key == "output_image_tokens" || key == "input_cached_text_tokens" ||
               key == "input_cached_audio_tokens" || key == "input_cached_image_tokens") {
      // The newer breakdown: input_tokens then counts every modality. Kept in extra.
      f.new_token_fields = true;
      int64_t n = 0;
      if (!count(n)) return false;
      if (n > 0) put_json_field(f.extra, key, std::to_string(n));
    } else if (key == "images" || key == "characters" || key == "seconds" || key == "usage_bytes" ||
               key == "num_sessions") {
      if (!count(f.quantity_count)) return false;
    } else {
      bool tag = false;
      for (std::string_view t : kTagFields) tag = tag || key == t;
      if (tag) {
        std::string value;
        if (!text(value)) return false;
        if (key == "project_id") f.project_id = value;
        if (key == "api_key_id") f.api_key_id = value;
        put_json_field(f.tags, key, value);
      }
    }
  }
  return true;
}

std::string upper(std::string s) {
  for (char& c : s) c = (char)std::toupper((unsigned char)c);
  return s;
}

class OpenAiPages {
 public:
  OpenAiPages(const IngestContext& context, const std::string& path, const IngestOptions& options,
              Api api)
      : context_(context),
        path_(path),
        api_(api),
        sink_(context, path, api == Api::kUsage ? "openai-usage" : "openai-costs", options) {}

  Result<IngestSummary> run() {
    auto whole = read_whole_input(path_, kPageExtensions);
    if (!whole) return Unexpected{whole.error()};
    if (auto begun = sink_.begin(); !begun) return Unexpected{begun.error()};
    bool many = whole->pages.size() > 1 || whole->pages.front().path != path_;
    for (WholeInput::Page& page : whole->pages)
      if (auto r = read_page(page, many); !r) return Unexpected{r.error()};
    for (auto& [kind, count] : unpriced_)
      sink_.summary().conformance.push_back(
          {kind,
           "usage kept without cost: the catalog has no price for it (the Costs API has "
           "the money: ingest it with --format openai-costs)",
           count});
    std::string label = api_ == Api::kUsage ? "OpenAI Usage API" : "OpenAI Costs API";
    if (many) label += " (" + std::to_string(whole->pages.size()) + " pages)";
    return sink_.finish(whole->content, whole->bytes, label);
  }

 private:
  Result<void> read_page(WholeInput::Page& page, bool many) {
    // Quarantine reasons name the page when the input is a directory.
    std::string where = many ? page.path + ": " : "";
    PaddedJson json(page.content);
    auto results = bucket_results(json, page.content);
    if (!results) {
      // A page that cannot be read as a whole is one quarantined row, so nothing of a torn
      // page is half-ingested and the count still adds up.
      return sink_.quarantine(
          1, "", where + "not an OpenAI usage or costs page: " + results.error().message,
          page.content);
    }
    for (const BucketResult& r : *results)
      if (auto done = read_result(json, r, where); !done) return done;
    return {};
  }

  Result<void> read_result(const PaddedJson& json, const BucketResult& r,
                           const std::string& where) {
    std::string column, reason;
    ResultFields f;
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (parser_.iterate(json.slice(r.raw)).get(doc) != SUCCESS ||
        doc.get_object().get(object) != SUCCESS) {
      return sink_.quarantine(r.line, "", where + "a result is not a JSON object", r.raw);
    }
    if (!read_fields(object, f, column, reason))
      return sink_.quarantine(r.line, column, where + reason, r.raw);

    Record record = provider_report_record("OpenAI", "OpenAI API", f.project_id, f.api_key_id, r);
    UsageFacts& facts = record.facts;

    if (api_ == Api::kCosts) {
      if (f.object != "organization.costs.result")
        return sink_.quarantine(r.line, "object",
                                where + "\"" + f.object +
                                    "\" is not a Costs API result (ingest usage "
                                    "pages with --format openai-usage)",
                                r.raw);
      if (!f.has_amount)
        return sink_.quarantine(r.line, "amount", where + "no amount.value: the cost is unknown",
                                r.raw);
      if (!f.currency.empty()) record[Attr::kBillingCurrency] = upper(f.currency);
      facts.list_cost = facts.contracted_cost = facts.billed_cost = facts.effective_cost = f.amount;
      // Never empty: a charge description is what marks a row as billed (not metered) for
      // reconcile, and a cost page without group_by=line_item has none.
      record[Attr::kChargeDescription] = f.line_item.empty() ? "OpenAI API costs" : f.line_item;
      record[Attr::kSkuId] = f.line_item;
      // "gpt-4o-2024-08-06, input": the model is the part before the comma, when the catalog
      // knows it, so that costs reconcile with usage by model.
      std::string head = f.line_item.substr(0, f.line_item.find(','));
      if (!head.empty() && context_.catalog.find_model(head, r.start) != nullptr)
        record[Attr::kModel] = head;
      if (f.has_quantity) facts.consumed_quantity = facts.pricing_quantity = f.quantity;
      record[Attr::kConsumedUnit] = f.quantity_unit;
      record[Attr::kPricingUnit] = f.quantity_unit;
    } else {
      const UsageKind* kind = find_kind(f.object);
      if (kind == nullptr)
        return sink_.quarantine(r.line, "object",
                                where + "\"" + f.object +
                                    "\" is not a Usage API result this reader knows" +
                                    (f.object == "organization.costs.result"
                                         ? " (ingest cost pages with --format openai-costs)"
                                         : ""),
                                r.raw);
      record[Attr::kOperation] = kind->operation;
      record[Attr::kConsumedUnit] = kind->unit;
      facts.requests = f.model_requests >= 0 ? f.model_requests : std::max<int64_t>(f.requests, 0);
      if (kind->tokens) {
        // Before the per-modality breakdown, input_tokens and output_tokens counted text
        // only and audio came on top; after it, they count every modality.
        facts.input_tokens = f.input + (f.new_token_fields ? 0 : f.input_audio);
        facts.output_tokens = f.output + (f.new_token_fields ? 0 : f.output_audio);
        facts.cached_input_tokens = f.cached;
        facts.cache_write_tokens = f.cache_write;
        if (f.cached + f.cache_write > facts.input_tokens)
          return sink_.quarantine(r.line, "input_cached_tokens",
                                  where + "cached and cache-write tokens exceed input_tokens",
                                  r.raw);
        facts.consumed_quantity = token_quantity(facts.input_tokens + facts.output_tokens);
        TokenPricing priced =
            price_tokens(context_.catalog, f.model, f.batch, facts, /*aggregate=*/0);
        if (priced.price == nullptr)
          return sink_.quarantine(
              r.line, "model",
              where + priced.reason +
                  (f.model.empty() ? " (query the Usage API with group_by=model)" : ""),
              r.raw);
        record[Attr::kModel] = priced.price->model;
        if (priced.price->model != f.model) put_json_field(f.extra, "reported_model", f.model);
      } else {
        record[Attr::kModel] = f.model;
        int64_t quantity = kind->quantity == "num_requests" ? f.requests : f.quantity_count;
        facts.consumed_quantity = token_quantity(std::max<int64_t>(quantity, 0));
        ++unpriced_[std::string(kind->operation)];
      }
    }
    if (api_ == Api::kUsage) facts.pricing_quantity = facts.consumed_quantity;
    record[Attr::kPricingUnit] = record[Attr::kPricingUnit].empty() ? record[Attr::kConsumedUnit]
                                                                    : record[Attr::kPricingUnit];
    record[Attr::kTags] = close_json_object(std::move(f.tags));
    record[Attr::kExtra] = close_json_object(std::move(f.extra));
    // project_id is the natural project; a policy alias in the tags may say otherwise.
    if (!f.project_id.empty()) {
      std::pair<Attr, std::string> fallback{Attr::kProject, f.project_id};
      return sink_.append(record, std::span(&fallback, 1));
    }
    return sink_.append(record);
  }

  const IngestContext& context_;
  std::string path_;
  Api api_;
  RecordSink sink_;
  simdjson::ondemand::parser parser_;
  std::map<std::string, int64_t> unpriced_;
};

bool has(std::string_view head, std::string_view needle) {
  return head.find(needle) != std::string_view::npos;
}

}  // namespace

Result<IngestSummary> ingest_openai_usage(const IngestContext& context, const std::string& path,
                                          const IngestOptions& options) {
  OpenAiPages pages(context, path, options, Api::kUsage);
  return pages.run();
}

Result<IngestSummary> ingest_openai_costs(const IngestContext& context, const std::string& path,
                                          const IngestOptions& options) {
  OpenAiPages pages(context, path, options, Api::kCosts);
  return pages.run();
}

bool looks_like_openai_usage(std::string_view head) {
  return has(head, "\"organization.usage.") && !has(head, "\"organization.costs.result\"");
}

bool looks_like_openai_costs(std::string_view head) {
  return has(head, "\"organization.costs.result\"") && !has(head, "\"organization.usage.");
}

}  // namespace aifinops::ingest
