// Anthropic Admin API usage report and cost report pages -> Records.
#include "ingest/anthropic_usage.h"

#include <map>

#include "ingest/formats.h"
#include "ingest/record_sink.h"
#include "ingest/usage_json.h"

namespace aifinops::ingest {
namespace {

using simdjson::SUCCESS;
using simdjson::ondemand::json_type;

constexpr std::string_view kPageExtensions[] = {".json", ".json.gz"};

enum class Report { kUsage, kCosts };

/// Dimension-like fields kept in tags as the API spells them.
constexpr std::string_view kTagFields[] = {"api_key_id",     "workspace_id",  "service_tier",
                                           "context_window", "inference_geo", "cost_type",
                                           "token_type"};

struct Fields {
  std::string model, api_key_id, workspace_id, service_tier, context_window, description, cost_type,
      token_type, currency;
  std::string tags = "{", extra = "{";
  int64_t uncached = 0, cache_read = 0, write_5m = 0, write_1h = 0, output = 0;
  int64_t web_searches = 0, requests = -1;
  bool has_tokens = false, has_amount = false;
  Decimal amount_cents;
};

class Reader {
 public:
  Reader(std::string_view key, simdjson::ondemand::value v, std::string& column,
         std::string& reason)
      : key_(key), v_(v), column_(column), reason_(reason) {}
  bool count(int64_t& out) {
    json_type type;
    if (v_.type().get(type) == SUCCESS && type == json_type::null) return true;
    if (json_count(v_, out)) return true;
    return fail("\"" + std::string(v_.raw_json_token().substr(0, 40)) +
                "\" is not a whole non-negative number");
  }
  bool text(std::string& out) {
    if (json_scalar_text(v_, out)) return true;
    return fail("not a string");
  }
  bool fail(const std::string& what) {
    column_ = std::string(key_);
    reason_ = std::string(key_) + ": " + what;
    return false;
  }

 private:
  std::string_view key_;
  simdjson::ondemand::value v_;
  std::string& column_;
  std::string& reason_;
};

bool read_fields(simdjson::ondemand::object& object, Fields& f, std::string& column,
                 std::string& reason) {
  for (auto field : object) {
    std::string_view key;
    simdjson::ondemand::value v;
    if (field.unescaped_key().get(key) != SUCCESS || field.value().get(v) != SUCCESS) {
      reason = "invalid JSON";
      return false;
    }
    Reader r(key, v, column, reason);
    if (key == "uncached_input_tokens") {
      f.has_tokens = true;
      if (!r.count(f.uncached)) return false;
    } else if (key == "cache_read_input_tokens") {
      f.has_tokens = true;
      if (!r.count(f.cache_read)) return false;
    } else if (key == "output_tokens") {
      f.has_tokens = true;
      if (!r.count(f.output)) return false;
    } else if (key == "cache_creation" || key == "server_tool_use") {
      json_type type;
      if (v.type().get(type) == SUCCESS && type == json_type::null) continue;
      simdjson::ondemand::object inner;
      if (v.get_object().get(inner) != SUCCESS) return r.fail("not an object");
      for (auto inner_field : inner) {
        std::string_view ikey;
        simdjson::ondemand::value iv;
        if (inner_field.unescaped_key().get(ikey) != SUCCESS ||
            inner_field.value().get(iv) != SUCCESS) {
          reason = "invalid JSON";
          return false;
        }
        std::string path = std::string(key) + "." + std::string(ikey);
        Reader ir(path, iv, column, reason);
        int64_t n = 0;
        if (!ir.count(n)) return false;
        if (ikey == "ephemeral_5m_input_tokens")
          f.write_5m = n;
        else if (ikey == "ephemeral_1h_input_tokens")
          f.write_1h = n;
        else if (ikey == "web_search_requests")
          f.web_searches = n;
        if (n > 0) put_json_field(f.extra, path, std::to_string(n));
      }
    } else if (key == "amount") {
      // Cents (minor units) as a decimal string: "123.45" USD is $1.2345.
      if (!json_decimal(v, f.amount_cents))
        return r.fail("\"" + std::string(v.raw_json_token().substr(0, 40)) +
                      "\" is not a decimal amount");
      f.has_amount = true;
    } else if (key == "currency") {
      if (!r.text(f.currency)) return false;
    } else if (key == "model") {
      if (!r.text(f.model)) return false;
    } else if (key == "description") {
      if (!r.text(f.description)) return false;
    } else if (key == "num_requests" || key == "requests") {
      if (!r.count(f.requests)) return false;
    } else {
      bool tag = false;
      for (std::string_view t : kTagFields) tag = tag || key == t;
      if (!tag) continue;
      std::string value;
      if (!r.text(value)) return false;
      if (key == "api_key_id") f.api_key_id = value;
      if (key == "workspace_id") f.workspace_id = value;
      if (key == "service_tier") f.service_tier = value;
      if (key == "context_window") f.context_window = value;
      if (key == "cost_type") f.cost_type = value;
      if (key == "token_type") f.token_type = value;
      put_json_field(f.tags, key, value);
    }
  }
  return true;
}

class AnthropicPages {
 public:
  AnthropicPages(const IngestContext& context, const std::string& path,
                 const IngestOptions& options, Report report)
      : context_(context),
        path_(path),
        report_(report),
        sink_(context, path, report == Report::kUsage ? "anthropic-usage" : "anthropic-costs",
              options) {}

  Result<IngestSummary> run() {
    auto whole = read_whole_input(path_, kPageExtensions);
    if (!whole) return Unexpected{whole.error()};
    if (auto begun = sink_.begin(); !begun) return Unexpected{begun.error()};
    bool many = whole->pages.size() > 1 || whole->pages.front().path != path_;
    for (WholeInput::Page& page : whole->pages) {
      std::string where = many ? page.path + ": " : "";
      PaddedJson json(page.content);
      auto results = bucket_results(json, page.content);
      if (!results) {
        if (auto q = sink_.quarantine(
                1, "", where + "not an Anthropic report page: " + results.error().message,
                page.content);
            !q)
          return Unexpected{q.error()};
        continue;
      }
      for (const BucketResult& r : *results)
        if (auto done = read_result(json, r, where); !done) return Unexpected{done.error()};
    }
    if (web_searches_ > 0)
      sink_.summary().conformance.push_back(
          {"server_tool_use.web_search_requests",
           "web search requests kept without cost (the catalog has no price for them; the cost "
           "report has it)",
           web_searches_});
    std::string label =
        report_ == Report::kUsage ? "Anthropic usage report" : "Anthropic cost report";
    if (many) label += " (" + std::to_string(whole->pages.size()) + " pages)";
    return sink_.finish(whole->content, whole->bytes, label);
  }

 private:
  Result<void> read_result(const PaddedJson& json, const BucketResult& r,
                           const std::string& where) {
    std::string column, reason;
    Fields f;
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (parser_.iterate(json.slice(r.raw)).get(doc) != SUCCESS ||
        doc.get_object().get(object) != SUCCESS)
      return sink_.quarantine(r.line, "", where + "a result is not a JSON object", r.raw);
    if (!read_fields(object, f, column, reason))
      return sink_.quarantine(r.line, column, where + reason, r.raw);

    Record record =
        provider_report_record("Anthropic", "Anthropic API", f.workspace_id, f.api_key_id, r);
    UsageFacts& facts = record.facts;

    if (report_ == Report::kUsage) {
      if (!f.has_tokens)
        return sink_.quarantine(
            r.line, "",
            where + "no token counts (uncached_input_tokens, output_tokens)" +
                (f.has_amount ? ": a cost report result? ingest it with --format anthropic-costs"
                              : ""),
            r.raw);
      record[Attr::kOperation] = "chat";
      record[Attr::kConsumedUnit] = record[Attr::kPricingUnit] = "Tokens";
      int64_t writes = f.write_5m + f.write_1h;
      facts.input_tokens = f.uncached + writes + f.cache_read;
      facts.cached_input_tokens = f.cache_read;
      facts.cache_write_tokens = writes;
      facts.output_tokens = f.output;
      if (f.requests >= 0) facts.requests = f.requests;
      facts.consumed_quantity = facts.pricing_quantity =
          token_quantity(facts.input_tokens + facts.output_tokens);
      web_searches_ += f.web_searches > 0 ? 1 : 0;
      // token_cost charges cache writes at the 5-minute price; the 1-hour ones are billed at
      // twice the input price, so they go in as plain input and get a second input price below.
      facts.cache_write_tokens = f.write_5m;
      int64_t size_class = f.context_window == "200k-1M" ? 200'001 : 0;
      TokenPricing priced =
          price_tokens(context_.catalog, f.model, f.service_tier == "batch", facts, size_class);
      facts.cache_write_tokens = writes;
      if (priced.price == nullptr)
        return sink_.quarantine(
            r.line, "model",
            where + priced.reason +
                (f.model.empty() ? " (query the report with group_by[]=model)" : ""),
            r.raw);
      if (f.write_1h > 0) {
        // Input price of the size class (the tier's, when above 200k).
        std::optional<Decimal> input = priced.price->prices.input;
        for (const pricing::PriceTier& tier : priced.price->tiers)
          if (size_class > tier.above_input_tokens && tier.prices.input) input = tier.prices.input;
        if (input) {
          __int128 extra = mul_div_round((__int128)f.write_1h, input->nanos, 1'000'000);
          if (f.service_tier == "batch" && priced.price->batch_discount)
            extra -= mul_div_round(extra, priced.price->batch_discount->nanos, kNanosPerUnit);
          Money add{(int64_t)extra};
          facts.list_cost += add;
          facts.contracted_cost += add;
          facts.billed_cost += add;
          facts.effective_cost += add;
        }
      }
      record[Attr::kModel] = priced.price->model;
      if (priced.price->model != f.model) put_json_field(f.extra, "reported_model", f.model);
    } else {
      if (!f.has_amount)
        return sink_.quarantine(
            r.line, "amount",
            where + "no amount: the cost is unknown" +
                (f.has_tokens ? " (a usage report result? ingest it with --format anthropic-usage)"
                              : ""),
            r.raw);
      // Cents to currency units, rounded half-to-even at the nano.
      __int128 nanos = f.amount_cents.nanos;
      __int128 units = nanos / 100, rest = nanos % 100;
      if (rest < 0) rest = -rest;
      if (rest > 50 || (rest == 50 && (units % 2) != 0)) units += nanos < 0 ? -1 : 1;
      Money cost{(int64_t)units};
      facts.list_cost = facts.contracted_cost = facts.billed_cost = facts.effective_cost = cost;
      if (!f.currency.empty()) record[Attr::kBillingCurrency] = f.currency;
      // Never empty: a charge description marks a row as billed (not metered) for reconcile.
      record[Attr::kChargeDescription] =
          f.description.empty() ? "Anthropic API costs" : f.description;
      record[Attr::kSkuMeter] = f.token_type;
      record[Attr::kOperation] =
          f.cost_type == "tokens" || f.cost_type.empty() ? "chat" : f.cost_type;
      record[Attr::kModel] = f.model;
    }
    record[Attr::kTags] = close_json_object(std::move(f.tags));
    record[Attr::kExtra] = close_json_object(std::move(f.extra));
    // The workspace is Anthropic's project, unless a policy alias in the tags says otherwise.
    if (!f.workspace_id.empty()) {
      std::pair<Attr, std::string> fallback{Attr::kProject, f.workspace_id};
      return sink_.append(record, std::span(&fallback, 1));
    }
    return sink_.append(record);
  }

  const IngestContext& context_;
  std::string path_;
  Report report_;
  RecordSink sink_;
  simdjson::ondemand::parser parser_;
  int64_t web_searches_ = 0;
};

bool has(std::string_view head, std::string_view needle) {
  return head.find(needle) != std::string_view::npos;
}

}  // namespace

Result<IngestSummary> ingest_anthropic_usage(const IngestContext& context, const std::string& path,
                                             const IngestOptions& options) {
  AnthropicPages pages(context, path, options, Report::kUsage);
  return pages.run();
}

Result<IngestSummary> ingest_anthropic_costs(const IngestContext& context, const std::string& path,
                                             const IngestOptions& options) {
  AnthropicPages pages(context, path, options, Report::kCosts);
  return pages.run();
}

bool looks_like_anthropic_usage(std::string_view head) {
  // Cost report results name token types ("uncached_input_tokens") as values and carry an
  // amount; usage report results have the counts as keys and no amount.
  return has(head, "\"starting_at\"") && !has(head, "\"amount\"") &&
         (has(head, "\"uncached_input_tokens\"") || has(head, "\"cache_read_input_tokens\""));
}

bool looks_like_anthropic_costs(std::string_view head) {
  return has(head, "\"starting_at\"") && has(head, "\"amount\"") &&
         !has(head, "\"organization.costs.result\"");
}

}  // namespace aifinops::ingest
