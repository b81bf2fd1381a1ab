#include "optimize/rate_tables.h"

#include <algorithm>

#include "config/embedded_catalog.h"
#include "config/yaml_reader.h"
#include "optimize/embedded_rate_tables.h"
#include "pricing/catalog.h"

namespace aifinops::optimize {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  return out;
}

/// Replaces the row with the same key, else appends.
template <typename T, typename Key>
void upsert(std::vector<T>& rows, T row, Key key) {
  for (T& existing : rows)
    if (key(existing) == key(row)) {
      existing = std::move(row);
      return;
    }
  rows.push_back(std::move(row));
}

class RatesReader : public config::YamlReader {
 public:
  RatesReader(std::string_view file_name, RateTables& into) : YamlReader(file_name), into_(into) {}

  Result<void> read(const YAML::Node& root) {
    if (!root || root.IsNull()) return {};
    if (!root.IsMap())
      return fail_result(root, "(top level)",
                         "expected a mapping with commitments:, batch_discounts:, "
                         "provisioned_throughput: or model_scores:");
    if (!check_keys(root, "",
                    {"commitments", "batch_discounts", "provisioned_throughput", "model_scores"}))
      return *error_;
    bool ok = read_list(root, "commitments", [&](const YAML::Node& n, const std::string& p) {
      return read_commitment(n, p);
    });
    ok = ok && read_list(root, "batch_discounts", [&](const YAML::Node& n, const std::string& p) {
           return read_batch(n, p);
         });
    ok = ok && read_list(root, "provisioned_throughput",
                         [&](const YAML::Node& n, const std::string& p) { return read_offer(n, p); });
    ok = ok && read_list(root, "model_scores", [&](const YAML::Node& n, const std::string& p) {
           return read_score(n, p);
         });
    if (!ok) return *error_;
    return {};
  }

 private:
  bool required_string(const YAML::Node& n, const std::string& path, const char* key,
                       std::string& out) {
    if (!n[key]) return fail(n, path + "." + key, "missing");
    if (!read_string(n[key], path + "." + key, out)) return false;
    if (out.empty()) return fail(n[key], path + "." + key, "must not be empty");
    return true;
  }

  /// A fraction in [0, 1).
  bool read_fraction(const YAML::Node& n, const std::string& path, Decimal& out) {
    if (!n["discount"]) return fail(n, path + ".discount", "missing: a fraction like 0.37");
    std::optional<Decimal> d;
    if (!read_decimal(n["discount"], path + ".discount", d)) return false;
    if (!d || *d >= Decimal::from_units(1))
      return fail(n["discount"], path + ".discount", "must be a fraction from 0 to below 1 (0.37 = 37%)");
    out = *d;
    return true;
  }

  bool required_decimal(const YAML::Node& n, const std::string& path, const char* key,
                        Decimal& out) {
    if (!n[key]) return fail(n, path + "." + key, "missing");
    std::optional<Decimal> d;
    if (!read_decimal(n[key], path + "." + key, d)) return false;
    if (!d) return fail(n[key], path + "." + key, "needs a number");
    out = *d;
    return true;
  }

  bool read_commitment(const YAML::Node& n, const std::string& path) {
    if (!check_keys(n, path, {"provider", "type", "term", "discount", "basis", "source"})) return false;
    CommitmentRate r;
    if (!required_string(n, path, "provider", r.provider) ||
        !required_string(n, path, "type", r.type))
      return false;
    r.provider = lower(r.provider);
    if (r.type != "reserved_instance" && r.type != "savings_plan" && r.type != "committed_use")
      return fail(n["type"], path + ".type",
                  "\"" + r.type + "\" is not one of reserved_instance, savings_plan, committed_use");
    std::string term;
    if (!required_string(n, path, "term", term)) return false;
    if (term != "1y" && term != "3y") return fail(n["term"], path + ".term", "\"" + term + "\" is not 1y or 3y");
    r.term_years = term == "1y" ? 1 : 3;
    if (!read_fraction(n, path, r.discount)) return false;
    if (n["basis"] && !read_string(n["basis"], path + ".basis", r.basis)) return false;
    if (!required_string(n, path, "source", r.source)) return false;
    upsert(into_.commitments, std::move(r), [](const CommitmentRate& x) {
      return x.provider + "|" + x.type + "|" + std::to_string(x.term_years);
    });
    return true;
  }

  bool read_batch(const YAML::Node& n, const std::string& path) {
    if (!check_keys(n, path, {"provider", "discount", "source"})) return false;
    BatchDiscount b;
    if (!required_string(n, path, "provider", b.provider)) return false;
    b.provider = lower(b.provider);
    if (!read_fraction(n, path, b.discount)) return false;
    if (!required_string(n, path, "source", b.source)) return false;
    upsert(into_.batch_discounts, std::move(b), [](const BatchDiscount& x) { return x.provider; });
    return true;
  }

  bool read_offer(const YAML::Node& n, const std::string& path) {
    if (!check_keys(n, path,
                    {"provider", "model", "input_tpm_per_unit", "output_token_weight",
                     "minimum_units", "increment", "monthly_per_unit", "annual_per_unit_month",
                     "source"}))
      return false;
    ThroughputOffer o;
    if (!required_string(n, path, "provider", o.provider) ||
        !required_string(n, path, "model", o.model))
      return false;
    o.provider = lower(o.provider);
    if (!n["input_tpm_per_unit"])
      return fail(n, path + ".input_tpm_per_unit", "missing: input tokens per minute per unit");
    if (!read_count(n["input_tpm_per_unit"], path + ".input_tpm_per_unit", o.input_tpm_per_unit))
      return false;
    if (o.input_tpm_per_unit <= 0)
      return fail(n["input_tpm_per_unit"], path + ".input_tpm_per_unit", "must be more than 0");
    if (n["output_token_weight"] &&
        !read_count(n["output_token_weight"], path + ".output_token_weight", o.output_token_weight))
      return false;
    if (n["minimum_units"] && !read_count(n["minimum_units"], path + ".minimum_units", o.minimum_units))
      return false;
    if (n["increment"] && !read_count(n["increment"], path + ".increment", o.increment)) return false;
    if (o.increment <= 0) return fail(n["increment"], path + ".increment", "must be more than 0");
    if (o.minimum_units <= 0)
      return fail(n["minimum_units"], path + ".minimum_units", "must be more than 0");
    if (!required_decimal(n, path, "monthly_per_unit", o.monthly_per_unit) ||
        !required_decimal(n, path, "annual_per_unit_month", o.annual_per_unit_month) ||
        !required_string(n, path, "source", o.source))
      return false;
    upsert(into_.throughput_offers, std::move(o), [](const ThroughputOffer& x) { return lower(x.model); });
    return true;
  }

  bool read_score(const YAML::Node& n, const std::string& path) {
    if (!check_keys(n, path, {"model", "aliases", "benchmark", "score", "date", "source"})) return false;
    ModelScore s;
    if (!required_string(n, path, "model", s.model) ||
        !required_string(n, path, "benchmark", s.benchmark))
      return false;
    if (n["aliases"] && !read_string_list(n["aliases"], path + ".aliases", s.aliases)) return false;
    if (!required_decimal(n, path, "score", s.score)) return false;
    if (s.score > Decimal::from_units(100))
      return fail(n["score"], path + ".score", "is a score out of 100");
    if (n["date"] && !read_string(n["date"], path + ".date", s.date)) return false;
    if (!required_string(n, path, "source", s.source)) return false;
    upsert(into_.model_scores, std::move(s),
           [](const ModelScore& x) { return lower(x.model) + "|" + lower(x.benchmark); });
    return true;
  }

  RateTables& into_;
};

bool name_matches(std::string_view wanted, std::string_view name) {
  std::vector<std::string> a = pricing::model_name_candidates(wanted);
  std::vector<std::string> b = pricing::model_name_candidates(name);
  for (const std::string& x : a)
    if (std::find(b.begin(), b.end(), x) != b.end()) return true;
  return false;
}

}  // namespace

const CommitmentRate* RateTables::find_commitment(std::string_view provider, std::string_view type,
                                                  int term_years) const {
  for (const CommitmentRate& r : commitments)
    if (r.provider == provider && r.type == type && r.term_years == term_years) return &r;
  return nullptr;
}

const BatchDiscount* RateTables::find_batch_discount(std::string_view provider) const {
  for (const BatchDiscount& b : batch_discounts)
    if (b.provider == provider) return &b;
  return nullptr;
}

const ThroughputOffer* RateTables::find_throughput_offer(std::string_view model) const {
  // Exact spellings first, so that "gpt-4o-mini" never takes gpt-4o's offer.
  for (const ThroughputOffer& o : throughput_offers)
    if (lower(o.model) == lower(model)) return &o;
  for (const ThroughputOffer& o : throughput_offers)
    if (name_matches(model, o.model)) return &o;
  return nullptr;
}

const ModelScore* RateTables::find_score(std::string_view model, std::string_view benchmark) const {
  for (int pass = 0; pass < 2; ++pass)
    for (const ModelScore& s : model_scores) {
      if (lower(s.benchmark) != lower(benchmark)) continue;
      auto same = [&](std::string_view name) {
        return pass == 0 ? lower(name) == lower(model) : name_matches(model, name);
      };
      if (same(s.model)) return &s;
      for (const std::string& a : s.aliases)
        if (same(a)) return &s;
    }
  return nullptr;
}

Result<void> parse_rate_tables_yaml(std::string_view text, std::string_view file_name,
                                    RateTables& into) {
  auto root = config::load_yaml(text, file_name);
  if (!root) return Unexpected{root.error()};
  try {
    if (auto r = RatesReader(file_name, into).read(*root); !r) return r;
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kParse, std::string(file_name) + ": " + e.msg);
  }
  into.files.emplace_back(file_name);
  return {};
}

Result<RateTables> builtin_rate_tables() {
  RateTables tables;
  for (size_t i = 0; i < config::kEmbeddedRateTableFileCount; ++i) {
    const config::EmbeddedFile& file = config::kEmbeddedRateTableFiles[i];
    if (auto r = parse_rate_tables_yaml(config::embedded_text(file), file.name, tables); !r)
      return Unexpected{r.error()};
  }
  // A user's rates file replaces these rows; until then they rank below the catalog's own
  // figures (a reserved price, a batch discount), which are specific to the model or SKU.
  for (CommitmentRate& r : tables.commitments) r.shipped = true;
  for (BatchDiscount& b : tables.batch_discounts) b.shipped = true;
  return tables;
}

}  // namespace aifinops::optimize
