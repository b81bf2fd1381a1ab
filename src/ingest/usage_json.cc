// Shared helpers of the JSON usage readers.
#include "ingest/usage_json.h"

#include <cctype>

#include "core/json_text.h"
#include "core/time.h"
#include "ingest/formats.h"

namespace aifinops::ingest {

using simdjson::SUCCESS;
using simdjson::ondemand::json_type;

PaddedJson::PaddedJson(std::string& text) {
  if (text.capacity() - text.size() >= simdjson::SIMDJSON_PADDING) {
    base_ = text.data();
    capacity_ = text.capacity();
  } else {
    copy_ = simdjson::padded_string(text);
    base_ = copy_.data();
    capacity_ = copy_.size() + simdjson::SIMDJSON_PADDING;
  }
  view_ = simdjson::padded_string_view(base_, text.size(), capacity_);
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace((unsigned char)s.back())) s.remove_suffix(1);
  while (!s.empty() && std::isspace((unsigned char)s.front())) s.remove_prefix(1);
  return s;
}

bool digits_to_count(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) return false;
  }
  out = v;
  return true;
}

}  // namespace

Record provider_report_record(std::string_view provider, std::string_view service,
                              std::string_view account_id, std::string_view api_key_id,
                              const BucketResult& result) {
  Record record;
  record[Attr::kProviderName] = provider;
  record[Attr::kInvoiceIssuerName] = provider;
  record[Attr::kServiceName] = service;
  record[Attr::kServiceCategory] = "AI and Machine Learning";
  record[Attr::kServiceSubcategory] = "Generative AI";
  record[Attr::kChargeCategory] = "Usage";
  record[Attr::kChargeFrequency] = "Usage-Based";
  record[Attr::kBillingCurrency] = "USD";
  record[Attr::kSubAccountId] = account_id;
  if (!api_key_id.empty()) {
    record[Attr::kResourceId] = api_key_id;
    record[Attr::kResourceType] = "API key";
  }
  record.facts.charge_period_start = result.start;
  record.facts.charge_period_end = result.end;
  record.lineage.line = result.line;
  return record;
}

bool json_count(simdjson::ondemand::value value, int64_t& out) {
  json_type type;
  if (value.type().get(type) != SUCCESS) return false;
  if (type == json_type::number) {
    std::string_view token = trim(value.raw_json_token());
    // "12.0" and "1e3" are whole in JSON's eyes but not counts a usage API sends.
    return digits_to_count(token, out) && out <= kMaxCount;
  }
  if (type == json_type::string) {
    std::string_view s;
    if (value.get_string().get(s) != SUCCESS) return false;
    return digits_to_count(s, out) && out <= kMaxCount;
  }
  return false;
}

bool json_decimal(simdjson::ondemand::value value, Decimal& out) {
  json_type type;
  if (value.type().get(type) != SUCCESS) return false;
  std::string_view text;
  if (type == json_type::number) {
    text = trim(value.raw_json_token());
  } else if (type == json_type::string) {
    if (value.get_string().get(text) != SUCCESS) return false;
  } else {
    return false;
  }
  // Amounts beyond nano precision are rounded half-to-even rather than refused: a cost API
  // may print a float's full expansion.
  return parse_decimal(text, out, nullptr, /*round=*/true);
}

bool json_scalar_text(simdjson::ondemand::value value, std::string& out) {
  json_type type;
  if (value.type().get(type) != SUCCESS) return false;
  switch (type) {
    case json_type::string: {
      std::string_view s;
      if (value.get_string().get(s) != SUCCESS) return false;
      out.assign(s);
      return true;
    }
    case json_type::number:
    case json_type::boolean:
      out.assign(trim(value.raw_json_token()));
      return true;
    case json_type::null:
      out.clear();
      return true;
    default:
      return false;
  }
}

namespace {

bool bucket_time(simdjson::ondemand::value value, EpochSeconds& out) {
  json_type type;
  if (value.type().get(type) != SUCCESS) return false;
  if (type == json_type::number) {
    int64_t seconds = 0;
    if (!json_count(value, seconds)) return false;
    out = seconds;
    return true;
  }
  std::string_view text;
  if (type != json_type::string || value.get_string().get(text) != SUCCESS) return false;
  auto t = parse_timestamp(text);
  if (!t) return false;
  out = *t;
  return true;
}

}  // namespace

Result<std::vector<BucketResult>> bucket_results(const PaddedJson& page, std::string_view) {
  // Offsets are taken in the buffer simdjson reads (a copy when the text had no room for
  // padding), so lines are counted in that buffer too.
  std::string_view text(page.view().data(), page.view().size());
  auto fail = [](std::string what) -> Result<std::vector<BucketResult>> {
    return make_error(ErrorCode::kParse, std::move(what));
  };
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (parser.iterate(page.view()).get(doc) != SUCCESS) return fail("not JSON");
  simdjson::ondemand::object top;
  if (doc.get_object().get(top) != SUCCESS) return fail("not a JSON object (a report page is one)");
  LineCounter lines(text);
  std::vector<BucketResult> out;
  bool has_data = false;
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key) != SUCCESS) return fail("invalid JSON");
    if (key != "data") continue;  // On-Demand skips the unread value
    has_data = true;
    simdjson::ondemand::array buckets;
    if (field.value().get_array().get(buckets) != SUCCESS) return fail("\"data\" is not an array");
    for (auto bucket_value : buckets) {
      simdjson::ondemand::object bucket;
      if (bucket_value.get_object().get(bucket) != SUCCESS)
        return fail("a bucket in \"data\" is not an object");
      EpochSeconds start = 0, end = 0;
      bool has_start = false, has_end = false;
      std::string_view results_raw;
      for (auto bf : bucket) {
        std::string_view bkey;
        if (bf.unescaped_key().get(bkey) != SUCCESS) return fail("invalid JSON");
        simdjson::ondemand::value v;
        if (bf.value().get(v) != SUCCESS) return fail("invalid JSON");
        if (bkey == "start_time" || bkey == "starting_at") {
          if (!bucket_time(v, start))
            return fail("a bucket's " + std::string(bkey) + " is not a time");
          has_start = true;
        } else if (bkey == "end_time" || bkey == "ending_at") {
          if (!bucket_time(v, end))
            return fail("a bucket's " + std::string(bkey) + " is not a time");
          has_end = true;
        } else if (bkey == "results" || bkey == "result") {
          simdjson::ondemand::array results;
          if (v.get_array().get(results) != SUCCESS)
            return fail("a bucket's results is not an array");
          if (results.raw_json().get(results_raw) != SUCCESS) return fail("invalid JSON");
        }
      }
      if (!has_start) return fail("a bucket has no start_time/starting_at");
      if (!has_end) end = start;
      if (results_raw.empty()) continue;
      // The results again, now that the period is known (fields may come in any order).
      simdjson::ondemand::parser inner;
      simdjson::ondemand::document results_doc;
      if (inner.iterate(page.slice(results_raw)).get(results_doc) != SUCCESS)
        return fail("invalid JSON");
      simdjson::ondemand::array results;
      if (results_doc.get_array().get(results) != SUCCESS) return fail("invalid JSON");
      for (auto result_value : results) {
        BucketResult r;
        r.start = start;
        r.end = end;
        const char* at = nullptr;
        if (result_value.current_location().get(at) != SUCCESS) return fail("invalid JSON");
        r.line = lines.line_at((size_t)(at - text.data()));
        simdjson::ondemand::json_type type;
        if (result_value.type().get(type) != SUCCESS) return fail("invalid JSON");
        if (type == json_type::object) {
          simdjson::ondemand::object o;
          if (result_value.get_object().get(o) != SUCCESS || o.raw_json().get(r.raw) != SUCCESS)
            return fail("invalid JSON");
        } else {
          r.raw = result_value.raw_json_token();  // not an object: quarantined by the reader
        }
        out.push_back(r);
      }
    }
  }
  if (!has_data) return fail("no \"data\" array (not a report page)");
  return out;
}

TokenPricing price_tokens(const pricing::Catalog& catalog, std::string_view model, bool batch,
                          UsageFacts& facts, std::optional<int64_t> aggregate_request_input) {
  TokenPricing result;
  if (model.empty()) {
    result.reason = "no model: token usage cannot be priced without one";
    return result;
  }
  const pricing::ModelPrice* price = catalog.find_model(model, facts.charge_period_start);
  if (price == nullptr) {
    result.reason = catalog.model_versions(model).empty()
                        ? "model \"" + std::string(model) +
                              "\" is not in the price catalog (add it with `aifinops prices`), so "
                              "its tokens cannot be priced"
                        : "model \"" + std::string(model) +
                              "\" has no catalog price in effect on " +
                              format_timestamp(facts.charge_period_start);
    return result;
  }
  pricing::TokenUsage usage{facts.input_tokens,       facts.cached_input_tokens,
                            facts.cache_write_tokens, facts.output_tokens,
                            facts.reasoning_tokens,   batch};
  Money cost;
  if (!aggregate_request_input || price->tiers.empty()) {
    cost = pricing::token_cost(*price, usage);
  } else {
    // The tier of the request size class, folded into the base prices, and no tiers left
    // for token_cost to pick by the row's summed input.
    pricing::ModelPrice flat = *price;
    flat.tiers.clear();
    for (const pricing::PriceTier& tier : price->tiers) {
      if (*aggregate_request_input <= tier.above_input_tokens) break;
      if (tier.prices.input) flat.prices.input = tier.prices.input;
      if (tier.prices.cached_input) flat.prices.cached_input = tier.prices.cached_input;
      if (tier.prices.cache_write) flat.prices.cache_write = tier.prices.cache_write;
      if (tier.prices.output) flat.prices.output = tier.prices.output;
      if (tier.prices.reasoning) flat.prices.reasoning = tier.prices.reasoning;
    }
    cost = pricing::token_cost(flat, usage);
  }
  facts.list_cost = facts.contracted_cost = facts.billed_cost = facts.effective_cost = cost;
  facts.price_version = price->version;
  facts.flags |= kFlagPricedFromCatalog;
  result.price = price;
  return result;
}

namespace {

struct ProviderNames {
  std::string_view id, display, service;
};

// OpenTelemetry's gen_ai.provider.name values (and older gen_ai.system ones), plus the
// catalog's provider ids. Cloud-hosted models bill under the cloud's name, so that usage
// reconciles against that cloud's FOCUS rows.
constexpr ProviderNames kProviders[] = {
    {"openai", "OpenAI", "OpenAI API"},
    {"anthropic", "Anthropic", "Anthropic API"},
    {"azure.ai.openai", "Azure OpenAI", "Azure OpenAI API"},
    {"az.ai.openai", "Azure OpenAI", "Azure OpenAI API"},
    {"azure", "Azure OpenAI", "Azure OpenAI API"},
    {"azure.ai.inference", "Microsoft", "Azure AI Foundry"},
    {"az.ai.inference", "Microsoft", "Azure AI Foundry"},
    {"azure_ai", "Microsoft", "Azure AI Foundry"},
    {"aws.bedrock", "AWS", "Amazon Bedrock"},
    {"bedrock", "AWS", "Amazon Bedrock"},
    {"bedrock_converse", "AWS", "Amazon Bedrock"},
    {"gcp.vertex_ai", "Google Cloud", "Vertex AI"},
    {"vertex_ai", "Google Cloud", "Vertex AI"},
    {"gcp.gemini", "Google", "Gemini API"},
    {"gcp.gen_ai", "Google", "Gemini API"},
    {"gemini", "Google", "Gemini API"},
    {"cohere", "Cohere", "Cohere API"},
    {"mistral_ai", "Mistral AI", "Mistral API"},
    {"mistral", "Mistral AI", "Mistral API"},
    {"deepseek", "DeepSeek", "DeepSeek API"},
    {"groq", "Groq", "Groq API"},
    {"x_ai", "xAI", "xAI API"},
    {"xai", "xAI", "xAI API"},
    {"perplexity", "Perplexity", "Perplexity API"},
    {"ibm.watsonx.ai", "IBM", "watsonx.ai"},
    {"watsonx", "IBM", "watsonx.ai"},
};

const ProviderNames* find_provider(std::string_view id) {
  for (const ProviderNames& p : kProviders) {
    if (p.id.size() != id.size()) continue;
    bool same = true;
    for (size_t i = 0; i < id.size() && same; ++i)
      same = std::tolower((unsigned char)id[i]) == p.id[i];
    if (same) return &p;
  }
  return nullptr;
}

}  // namespace

std::string_view provider_display_name(std::string_view id) {
  const ProviderNames* p = find_provider(id);
  return p != nullptr ? p->display : id;
}

std::string_view provider_service_name(std::string_view id) {
  const ProviderNames* p = find_provider(id);
  return p != nullptr ? p->service : std::string_view();
}

void put_json_field(std::string& out, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  if (out.size() > 1) out.push_back(',');
  append_json_string(out, key);
  out.push_back(':');
  append_json_string(out, value);
}

std::string close_json_object(std::string out) {
  if (out.size() <= 1) return std::string();
  out.push_back('}');
  return out;
}

}  // namespace aifinops::ingest
