// ingest_file for FOCUS CSV: header-driven column mapping, per-row parsing into
// UsageFacts, attribute interning with a bounded cache, quarantine and conformance counts.
#include <strings.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include "core/json_text.h"
#include "core/time.h"
#include "ingest/csv_reader.h"
#include "ingest/focus_columns.h"
#include "ingest/focus_ingest.h"
#include "ingest/record_sink.h"

namespace aifinops::ingest {
namespace {

// Distinct attribute sets kept in memory before the cache is cleared; bounds memory on
// files where every row is unique (e.g. a per-row Id column).
constexpr size_t kMaxCachedAttributeSets = 200'000;

enum class TokenKind : uint8_t { kNone, kInput, kCachedInput, kCacheWrite, kOutput };

/// What we learned about an attribute set when it was first seen.
struct AttributeInfo {
  int64_t id = 0;
  TokenKind token_kind = TokenKind::kNone;
  bool hourly = false;        // ConsumedUnit is hours
  bool ai_requests = false;   // an AI service billed per request
  int32_t gpus = 0;           // GPUs per instance, when the SKU is a known GPU instance
  bool bad_tags = false;      // Tags is not a JSON object: kept in `extra` instead
  const char* model = nullptr;  // points into model_names_ (stable)
};

struct FingerprintHash {
  size_t operator()(const ledger::Fingerprint& f) const { return (size_t)f.low; }
};

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.empty() || hay.size() < needle.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (strncasecmp(hay.data() + i, needle.data(), needle.size()) == 0) return true;
  return false;
}

bool is_null(std::string_view v) {
  return v.empty() || v == "NULL" || v == "null" || v == "Null";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (char)std::tolower((unsigned char)c);
  return out;
}

/// How one CSV column is handled.
struct ColumnPlan {
  std::string name;
  const FocusColumn* focus = nullptr;
  Attr attribute = Attr::kCount;
  FactColumn fact = FactColumn::kNone;
  bool extra = false;        // goes to the `extra` JSON
  bool model_hint = false;   // an x_ column naming the model
  bool operation_hint = false;  // an x_ column naming the operation (chat, embedding, ...)
  // conformance counters
  int64_t literal_nulls = 0;
  int64_t non_rfc3339 = 0;
  int64_t rounded = 0;
  int64_t invalid_values = 0;
};

class FocusIngest {
 public:
  FocusIngest(const IngestContext& context, const std::string& path, const IngestOptions& options)
      : context_(context), path_(path), options_(options), sink_(context, path, "focus", options),
        // A short digest of the policy: the same raw attributes under another policy map
        // to other dimension values, so they must not share an attribute set.
        policy_fingerprint_(sink_.policy_fingerprint()) {}

  Result<IngestSummary> run();

 private:
  Result<void> plan_columns(const CsvRecord& header);
  /// Parses one record; returns false and fills the quarantine row if it cannot be read.
  bool process(const CsvRecord& record, UsageFacts& facts, ledger::QuarantinedRow& bad);
  Result<const AttributeInfo*> intern(const UsageFacts& facts);
  AttributeInfo describe(const AttributeViews& views, std::string_view model_hint);
  bool parse_money_column(ColumnPlan& column, std::string_view value, Money& out,
                          ledger::QuarantinedRow& bad);
  void finish_conformance(IngestSummary& summary);

  const IngestContext& context_;
  std::string path_;         // as the user gave it, for messages
  const IngestOptions& options_;
  RecordSink sink_;
  std::vector<ColumnPlan> columns_;
  std::vector<std::string> missing_mandatory_;
  std::string focus_version_ = "1.0";
  size_t money_columns_present_ = 0;

  // Per-row scratch, reused.
  AttributeViews views_{};
  std::vector<std::pair<size_t, std::string_view>> extra_values_;
  std::string_view model_hint_;
  std::string key_;
  std::string policy_fingerprint_;

  std::unordered_map<ledger::Fingerprint, AttributeInfo, FingerprintHash> cache_;
  std::vector<std::unique_ptr<std::string>> model_names_;
  std::unordered_map<std::string, const char*> model_name_index_;
  std::map<std::string, int64_t> invalid_charge_categories_;
  int64_t empty_charge_category_ = 0;
  int64_t bad_tags_rows_ = 0;
};

Result<void> FocusIngest::plan_columns(const CsvRecord& header) {
  std::vector<bool> seen_focus(focus_columns_end() - focus_columns_begin(), false);
  bool has_start = false;
  for (std::string_view name : header.fields) {
    ColumnPlan plan;
    plan.name = std::string(name);
    // Header cells sometimes carry stray spaces.
    while (!plan.name.empty() && plan.name.back() == ' ') plan.name.pop_back();
    plan.focus = find_focus_column(plan.name);
    if (plan.focus != nullptr) {
      seen_focus[plan.focus - focus_columns_begin()] = true;
      plan.attribute = plan.focus->attribute;
      plan.fact = plan.focus->fact;
      plan.extra = plan.attribute == Attr::kCount && plan.fact == FactColumn::kNone;
      if (plan.fact == FactColumn::kChargePeriodStart) has_start = true;
      if (plan.fact >= FactColumn::kListCost) ++money_columns_present_;
      if (std::string_view(plan.focus->since) > focus_version_) focus_version_ = plan.focus->since;
    } else {
      plan.extra = true;
      std::string l = lower(plan.name);
      plan.model_hint = l.rfind("x_", 0) == 0 && l.find("model") != std::string::npos;
      plan.operation_hint = l.rfind("x_", 0) == 0 && l.find("operation") != std::string::npos;
    }
    columns_.push_back(std::move(plan));
  }
  if (!has_start || money_columns_present_ == 0) {
    std::string missing;
    if (!has_start) missing = "ChargePeriodStart";
    if (money_columns_present_ == 0)
      missing += std::string(missing.empty() ? "" : " and ") +
                 "a cost column (one of BilledCost, EffectiveCost, ListCost, ContractedCost)";
    return make_error(ErrorCode::kParse,
                      path_ + ": line 1: the header has no " + missing +
                          ", so rows cannot be placed in time and costed; is this a FOCUS "
                          "export? (nothing was ingested)");
  }
  for (const FocusColumn* c = focus_columns_begin(); c != focus_columns_end(); ++c)
    if (c->mandatory && !seen_focus[c - focus_columns_begin()])
      missing_mandatory_.emplace_back(c->name);
  return {};
}

bool FocusIngest::parse_money_column(ColumnPlan& column, std::string_view value, Money& out,
                                     ledger::QuarantinedRow& bad) {
  DecimalError err;
  if (parse_decimal(value, out, &err)) return true;
  if (err == DecimalError::kTooPrecise && parse_decimal(value, out, &err, /*round=*/true)) {
    ++column.rounded;
    return true;
  }
  bad.column = column.name;
  bad.reason = "column " + column.name + ": \"" + std::string(value.substr(0, 80)) + "\" " +
               decimal_error_text(err);
  return false;
}

bool FocusIngest::process(const CsvRecord& record, UsageFacts& facts,
                          ledger::QuarantinedRow& bad) {
  if (record.malformed) {
    bad.reason = record.malformed_reason;
    return false;
  }
  if (record.fields.size() != columns_.size()) {
    bad.reason = "has " + std::to_string(record.fields.size()) + " fields, the header has " +
                 std::to_string(columns_.size());
    return false;
  }
  facts = UsageFacts{};
  views_.fill(std::string_view());
  extra_values_.clear();
  model_hint_ = {};
  bool has_start = false, has_end = false, any_cost = false;
  for (size_t i = 0; i < columns_.size(); ++i) {
    ColumnPlan& column = columns_[i];
    std::string_view value = record.fields[i];
    if (is_null(value)) {
      if (!value.empty()) ++column.literal_nulls;
      continue;
    }
    if (column.attribute != Attr::kCount) {
      views_[(size_t)column.attribute] = value;
      continue;
    }
    if (column.extra) {
      extra_values_.emplace_back(i, value);
      if (column.model_hint) model_hint_ = value;
      if (column.operation_hint) views_[(size_t)Attr::kOperation] = value;
      continue;
    }
    switch (column.fact) {
      case FactColumn::kChargePeriodStart:
      case FactColumn::kChargePeriodEnd: {
        TimestampStyle style;
        auto t = parse_timestamp(value, &style);
        if (!t && column.fact == FactColumn::kChargePeriodEnd) {
          // The end is not needed to place or cost the row: keep it, report the column.
          ++column.invalid_values;
          break;
        }
        if (!t) {
          bad.column = column.name;
          bad.reason = "column " + column.name + ": \"" + std::string(value.substr(0, 80)) +
                       "\" is not an ISO 8601 date-time";
          return false;
        }
        if (style != TimestampStyle::kRfc3339) ++column.non_rfc3339;
        if (column.fact == FactColumn::kChargePeriodStart) {
          facts.charge_period_start = *t;
          has_start = true;
        } else {
          facts.charge_period_end = *t;
          has_end = true;
        }
        break;
      }
      case FactColumn::kConsumedQuantity:
      case FactColumn::kPricingQuantity: {
        Decimal q;
        if (!parse_money_column(column, value, q, bad)) return false;
        (column.fact == FactColumn::kConsumedQuantity ? facts.consumed_quantity
                                                       : facts.pricing_quantity) = q;
        break;
      }
      case FactColumn::kListCost:
        if (!parse_money_column(column, value, facts.list_cost, bad)) return false;
        any_cost = true;
        break;
      case FactColumn::kContractedCost:
        if (!parse_money_column(column, value, facts.contracted_cost, bad)) return false;
        any_cost = true;
        break;
      case FactColumn::kBilledCost:
        if (!parse_money_column(column, value, facts.billed_cost, bad)) return false;
        any_cost = true;
        break;
      case FactColumn::kEffectiveCost:
        if (!parse_money_column(column, value, facts.effective_cost, bad)) return false;
        any_cost = true;
        break;
      case FactColumn::kNone:
        break;
    }
  }
  if (!has_start) {
    bad.column = "ChargePeriodStart";
    bad.reason = "no ChargePeriodStart: the row cannot be placed in time";
    return false;
  }
  if (!has_end) facts.charge_period_end = facts.charge_period_start;
  std::string_view category = views_[(size_t)Attr::kChargeCategory];
  if (category.empty()) {
    ++empty_charge_category_;
  } else if (category != "Usage" && category != "Purchase" && category != "Tax" &&
             category != "Credit" && category != "Adjustment") {
    ++invalid_charge_categories_[std::string(category.substr(0, 40))];
  }
  if (!any_cost) facts.flags |= kFlagPricedFromCatalog;  // resolved after interning
  return true;
}

AttributeInfo FocusIngest::describe(const AttributeViews& v, std::string_view model_hint) {
  AttributeInfo info;
  std::string_view unit = v[(size_t)Attr::kConsumedUnit];
  std::string_view pricing_unit = v[(size_t)Attr::kPricingUnit];
  bool tokens = contains_ci(unit, "token") || contains_ci(pricing_unit, "token");
  info.hourly = strcasecmp(std::string(unit).c_str(), "hours") == 0 ||
                strcasecmp(std::string(unit).c_str(), "hour") == 0 ||
                strcasecmp(std::string(unit).c_str(), "hrs") == 0;
  std::string_view category = v[(size_t)Attr::kServiceCategory];
  info.ai_requests = contains_ci(category, "AI and Machine Learning") &&
                     (contains_ci(unit, "request") || contains_ci(unit, "call"));

  // The text that usually names the meter: SkuMeter, the description, the SKU id.
  const std::string_view texts[] = {v[(size_t)Attr::kSkuMeter], v[(size_t)Attr::kChargeDescription],
                                    v[(size_t)Attr::kSkuId], v[(size_t)Attr::kSkuPriceId]};
  if (tokens) {
    info.token_kind = TokenKind::kInput;
    for (std::string_view t : texts) {
      if (contains_ci(t, "cache write") || contains_ci(t, "cache-write") ||
          contains_ci(t, "cache creation") || contains_ci(t, "cache_creation")) {
        info.token_kind = TokenKind::kCacheWrite;
        break;
      }
      if (contains_ci(t, "cached") || contains_ci(t, "cache read") || contains_ci(t, "cache-read")) {
        info.token_kind = TokenKind::kCachedInput;
        break;
      }
      if (contains_ci(t, "output") || contains_ci(t, "completion")) {
        info.token_kind = TokenKind::kOutput;
        break;
      }
      if (contains_ci(t, "input") || contains_ci(t, "prompt")) break;
    }
  }
  // The model: an x_ model column, else a word of the meter text the catalog knows.
  std::string model(model_hint);
  if (model.empty() && tokens) {
    EpochSeconds now = 4102444800;  // any time: we only ask whether the name is known
    for (std::string_view t : texts) {
      size_t i = 0;
      while (i < t.size() && model.empty()) {
        size_t j = t.find_first_of(" ,;()", i);
        if (j == std::string_view::npos) j = t.size();
        std::string_view word = t.substr(i, j - i);
        if (word.size() > 2 && context_.catalog.find_model(word, now) != nullptr)
          model = std::string(word);
        // SKU ids like "gpt-4o-2024-08-06-input-tokens": try without the meter suffix.
        for (std::string_view suffix : {"-input-tokens", "-output-tokens", "-cached-input-tokens"}) {
          if (model.empty() && word.size() > suffix.size() &&
              word.substr(word.size() - suffix.size()) == suffix) {
            std::string_view base = word.substr(0, word.size() - suffix.size());
            if (context_.catalog.find_model(base, now) != nullptr) model = std::string(base);
          }
        }
        i = j + 1;
      }
      if (!model.empty()) break;
    }
  }
  if (!model.empty()) {
    auto it = model_name_index_.find(model);
    if (it == model_name_index_.end()) {
      model_names_.push_back(std::make_unique<std::string>(model));
      it = model_name_index_.emplace(model, model_names_.back()->c_str()).first;
    }
    info.model = it->second;
  }
  // GPU instances: a catalog SKU named in the SKU, description or resource type.
  if (info.hourly) {
    EpochSeconds now = 4102444800;
    for (const pricing::GpuInstancePrice* gpu : context_.catalog.gpu_instance_prices()) {
      if (gpu->gpus <= 0) continue;
      for (std::string_view t : {texts[2], texts[1], v[(size_t)Attr::kResourceType]}) {
        if (contains_ci(t, gpu->sku)) {
          const pricing::GpuInstancePrice* current = context_.catalog.find_gpu_instance(gpu->sku, now);
          info.gpus = current != nullptr ? current->gpus : gpu->gpus;
          break;
        }
      }
      if (info.gpus > 0) break;
    }
  }
  return info;
}

Result<const AttributeInfo*> FocusIngest::intern(const UsageFacts&) {
  // The fingerprint covers every attribute and extra column value, with separators. Written
  // with raw copies into a buffer sized once per record: this runs for every row.
  size_t need = kAttrCount + 12 * extra_values_.size() + policy_fingerprint_.size();
  for (std::string_view v : views_) need += v.size();
  for (auto& [index, value] : extra_values_) need += value.size();
  if (key_.size() < need) key_.resize(need * 2);
  char* out = key_.data();
  std::memcpy(out, policy_fingerprint_.data(), policy_fingerprint_.size());
  out += policy_fingerprint_.size();
  for (std::string_view v : views_) {
    if (!v.empty()) std::memcpy(out, v.data(), v.size());  // an empty view may be null
    out += v.size();
    *out++ = '\x1f';
  }
  for (auto& [index, value] : extra_values_) {
    std::memcpy(out, &index, sizeof index);
    out += sizeof index;
    std::memcpy(out, value.data(), value.size());  // never empty: nulls are not extras
    out += value.size();
    *out++ = '\x1f';
  }
  XXH128_hash_t h = XXH3_128bits(key_.data(), (size_t)(out - key_.data()));
  ledger::Fingerprint fp{h.high64, h.low64};
  auto it = cache_.find(fp);
  if (it != cache_.end()) return &it->second;

  if (cache_.size() >= kMaxCachedAttributeSets) cache_.clear();
  AttributeInfo info = describe(views_, model_hint_);
  // Complete the attribute set: derived AI fields, canonical dimensions, extra JSON.
  AttributeViews full = views_;
  std::array<std::string, kAttrCount> storage;
  if (info.model != nullptr) full[(size_t)Attr::kModel] = info.model;
  if (info.gpus > 0) {
    for (const pricing::GpuInstancePrice* gpu : context_.catalog.gpu_instance_prices()) {
      if (gpu->gpus == info.gpus && !gpu->gpu_type.empty() &&
          (contains_ci(views_[(size_t)Attr::kSkuId], gpu->sku) ||
           contains_ci(views_[(size_t)Attr::kChargeDescription], gpu->sku) ||
           contains_ci(views_[(size_t)Attr::kResourceType], gpu->sku))) {
        storage[(size_t)Attr::kGpuType] = gpu->gpu_type;
        full[(size_t)Attr::kGpuType] = storage[(size_t)Attr::kGpuType];
        break;
      }
    }
  }
  std::string_view tags = views_[(size_t)Attr::kTags];
  if (!context_.tag_policy.apply(tags, storage, full)) {
    // Not a JSON object: the text is kept in `extra`, and queries never see invalid JSON.
    info.bad_tags = true;
    full[(size_t)Attr::kTags] = {};
  }
  if (!extra_values_.empty() || info.bad_tags) {
    std::string& json = storage[(size_t)Attr::kExtra];
    json.push_back('{');
    for (size_t k = 0; k < extra_values_.size(); ++k) {
      if (k > 0) json.push_back(',');
      append_json_string(json, columns_[extra_values_[k].first].name);
      json.push_back(':');
      append_json_string(json, extra_values_[k].second);
    }
    if (info.bad_tags) {
      if (!extra_values_.empty()) json.push_back(',');
      append_json_string(json, "Tags");
      json.push_back(':');
      append_json_string(json, tags);
    }
    json.push_back('}');
    full[(size_t)Attr::kExtra] = json;
  }
  auto id = sink_.intern_views(full, fp);
  if (!id) return Unexpected{id.error()};
  info.id = *id;
  return &cache_.emplace(fp, info).first->second;
}

void FocusIngest::finish_conformance(IngestSummary& summary) {
  for (const std::string& name : missing_mandatory_)
    summary.conformance.push_back({name, "mandatory FOCUS column is missing", 0});
  for (const ColumnPlan& c : columns_) {
    if (c.focus == nullptr && c.name.rfind("x_", 0) != 0)
      summary.conformance.push_back({c.name, "custom column without the x_ prefix (kept)", 0});
    if (c.focus != nullptr && c.name != c.focus->name)
      summary.conformance.push_back(
          {c.name, "column name differs from FOCUS's " + std::string(c.focus->name), 0});
    if (c.literal_nulls > 0)
      summary.conformance.push_back({c.name, "literal NULL used for an empty value", c.literal_nulls});
    if (c.non_rfc3339 > 0)
      summary.conformance.push_back(
          {c.name, "date-time without a time zone or 'T' (read as UTC)", c.non_rfc3339});
    if (c.invalid_values > 0)
      summary.conformance.push_back(
          {c.name, "not a valid date-time (row kept; its end is taken as its start)", c.invalid_values});
    if (c.rounded > 0)
      summary.conformance.push_back(
          {c.name, "more than 9 decimal places (rounded half-to-even)", c.rounded});
  }
  if (bad_tags_rows_ > 0)
    summary.conformance.push_back(
        {"Tags", "not a JSON object (kept in extra; no dimensions from it)", bad_tags_rows_});
  if (empty_charge_category_ > 0)
    summary.conformance.push_back({"ChargeCategory", "empty value", empty_charge_category_});
  for (auto& [value, count] : invalid_charge_categories_)
    summary.conformance.push_back(
        {"ChargeCategory", "\"" + value + "\" is not one of Usage, Purchase, Tax, Credit, Adjustment",
         count});
}

Result<IngestSummary> FocusIngest::run() {
  auto opened = FileInput::open(path_);
  if (!opened) return Unexpected{opened.error()};
  CsvReader reader{std::unique_ptr<FileInput>(*opened)};
  CsvRecord record;
  auto got = reader.next(record);
  if (!got) return Unexpected{got.error()};
  if (!*got) return make_error(ErrorCode::kParse, path_ + ": the file is empty (no header row)");
  if (auto planned = plan_columns(record); !planned) return Unexpected{planned.error()};
  if (auto begun = sink_.begin(); !begun) return Unexpected{begun.error()};
  IngestSummary& summary = sink_.summary();

  UsageFacts facts;
  ledger::QuarantinedRow bad;
  int64_t next_progress = 0;
  for (;;) {
    got = reader.next(record);
    if (!got) {
      sink_.abort();
      return Unexpected{got.error()};
    }
    if (!*got) break;
    bad = ledger::QuarantinedRow{};
    bool ok = process(record, facts, bad);
    const AttributeInfo* attrs = nullptr;
    if (ok) {
      auto interned = intern(facts);
      if (!interned) return Unexpected{interned.error()};
      attrs = *interned;
      if (attrs->bad_tags) ++bad_tags_rows_;
      // Usage facts derived from the meter.
      switch (attrs->token_kind) {
        case TokenKind::kNone: break;
        case TokenKind::kInput: facts.input_tokens = facts.consumed_quantity.nanos / kNanosPerUnit; break;
        case TokenKind::kCachedInput:
          facts.input_tokens = facts.cached_input_tokens = facts.consumed_quantity.nanos / kNanosPerUnit;
          break;
        case TokenKind::kCacheWrite:
          facts.input_tokens = facts.cache_write_tokens = facts.consumed_quantity.nanos / kNanosPerUnit;
          break;
        case TokenKind::kOutput: facts.output_tokens = facts.consumed_quantity.nanos / kNanosPerUnit; break;
      }
      if (attrs->ai_requests) facts.requests = facts.consumed_quantity.nanos / kNanosPerUnit;
      if (attrs->hourly && attrs->gpus > 0)
        facts.gpu_milliseconds =
            (int64_t)mul_div_round(facts.consumed_quantity.nanos, (__int128)attrs->gpus * 3'600'000,
                                   kNanosPerUnit);
      if (facts.flags & kFlagPricedFromCatalog) {
        // No cost given: price the usage from the catalog, or quarantine the row.
        const pricing::ModelPrice* price =
            attrs->model != nullptr ? context_.catalog.find_model(attrs->model, facts.charge_period_start)
                                    : nullptr;
        if (price == nullptr || attrs->token_kind == TokenKind::kNone) {
          ok = false;
          bad.reason =
              "no cost: BilledCost, EffectiveCost, ListCost and ContractedCost are all empty, and "
              "the usage cannot be priced from the catalog";
        } else {
          pricing::TokenUsage usage{facts.input_tokens, facts.cached_input_tokens,
                                    facts.cache_write_tokens, facts.output_tokens, 0, false};
          Money cost = pricing::token_cost(*price, usage);
          facts.list_cost = facts.contracted_cost = facts.billed_cost = facts.effective_cost = cost;
          facts.price_version = price->version;
        }
      }
    }
    if (ok) {
      if (auto appended = sink_.append_views(attrs->id, facts, record.line); !appended)
        return Unexpected{appended.error()};
    } else {
      bad.line = record.line;
      bad.raw = std::string(record.raw.substr(0, 64 * 1024));
      if (auto q = sink_.quarantine(std::move(bad)); !q) return Unexpected{q.error()};
    }
    if (options_.progress && summary.rows_read >= next_progress) {
      options_.progress(reader.input().position(), reader.input().file_size(), summary.rows_read);
      next_progress = summary.rows_read + 50'000;
    }
  }
  finish_conformance(summary);
  ledger::Fingerprint content;
  reader.input().fingerprint(content.high, content.low);
  return sink_.finish(content, reader.input().file_size(), "FOCUS " + focus_version_);
}

}  // namespace

bool looks_like_focus(std::string_view head) {
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);  // UTF-8 byte order mark
  std::string_view header = head.substr(0, head.find('\n'));
  if (!contains_ci(header, "ChargePeriodStart")) return false;
  for (std::string_view cost : {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost"})
    if (contains_ci(header, cost)) return true;
  return false;
}

Result<IngestSummary> ingest_focus(const IngestContext& context, const std::string& path,
                                   const IngestOptions& options) {
  FocusIngest ingest(context, path, options);
  return ingest.run();
}

}  // namespace aifinops::ingest
