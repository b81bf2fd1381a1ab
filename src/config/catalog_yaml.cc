#include "config/catalog_yaml.h"

#include "config/yaml_reader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

namespace aifinops::config {
namespace {

using pricing::Catalog;
using pricing::GpuInstancePrice;
using pricing::ModelPrice;
using pricing::PriceTier;
using pricing::TokenPrices;

// Top-level values that entries inherit when they do not set their own.
struct Defaults {
  std::string currency = "USD";
  std::optional<EpochSeconds> effective_from;
  std::string source;
};

// Walks the YAML tree and keeps the first error (see YamlReader).
class CatalogReader : public YamlReader {
 public:
  explicit CatalogReader(std::string_view file_name) : YamlReader(file_name) {}

  Result<Catalog> read(const YAML::Node& root) {
    Catalog catalog;
    if (!root || root.IsNull()) return catalog;  // an empty file is an empty catalog
    if (!root.IsMap()) return fail_result(root, "(top level)", "expected a mapping with models: and gpu_instances:");
    if (!check_keys(root, "", {"currency", "effective_from", "source", "models", "gpu_instances"}))
      return *error_;
    Defaults defaults;
    for (const auto& item : root) {
      std::string key = item.first.Scalar();
      const YAML::Node& value = item.second;
      if (key == "currency") {
        if (!read_currency(value, key, defaults.currency)) return *error_;
      } else if (key == "effective_from") {
        EpochSeconds t = 0;
        if (!read_time(value, key, t)) return *error_;
        defaults.effective_from = t;
      } else if (key == "source") {
        if (!read_string(value, key, defaults.source)) return *error_;
      }
    }
    for (const auto& item : root) {
      std::string key = item.first.Scalar();
      const YAML::Node& list = item.second;
      if (key != "models" && key != "gpu_instances") continue;
      if (list.IsNull()) continue;
      if (!list.IsSequence()) return fail_result(list, key, "expected a list, found " + node_kind(list));
      for (size_t i = 0; i < list.size(); ++i) {
        std::string path = key + "[" + std::to_string(i) + "]";
        bool ok = key == "models" ? read_model(list[i], path, defaults, catalog)
                                  : read_gpu(list[i], path, defaults, catalog);
        if (!ok) return *error_;
      }
    }
    return catalog;
  }

 private:
  bool read_currency(const YAML::Node& node, const std::string& path, std::string& out) {
    std::string text;
    if (!scalar_text(node, path, "an ISO 4217 currency code", text)) return false;
    bool ok = text.size() == 3 && std::all_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    if (!ok) return fail(node, path, "\"" + text + "\" is not an ISO 4217 currency code like USD");
    out = text;
    return true;
  }

  bool read_time(const YAML::Node& node, const std::string& path, EpochSeconds& out) {
    std::string text;
    if (!scalar_text(node, path, "a date", text)) return false;
    auto t = parse_timestamp(text);
    if (!t) return fail(node, path, "\"" + text + "\" is not a date like 2024-07-18 or an RFC 3339 timestamp");
    out = *t;
    return true;
  }

  // A price or fraction: the scalar's text, exactly, never negative. Null means unset.
  // input, cached_input, cache_write, output, reasoning: shared by models and tiers.
  bool read_token_price(const std::string& key, const YAML::Node& value, const std::string& path,
                        TokenPrices& prices, bool& matched) {
    matched = true;
    if (key == "input") return read_decimal(value, path, prices.input);
    if (key == "cached_input") return read_decimal(value, path, prices.cached_input);
    if (key == "cache_write") return read_decimal(value, path, prices.cache_write);
    if (key == "output") return read_decimal(value, path, prices.output);
    if (key == "reasoning") return read_decimal(value, path, prices.reasoning);
    matched = false;
    return true;
  }

  bool read_tiers(const YAML::Node& list, const std::string& path, std::vector<PriceTier>& out) {
    if (list.IsNull()) return true;
    if (!list.IsSequence()) return fail(list, path, "expected a list, found " + node_kind(list));
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node& node = list[i];
      std::string tier_path = path + "[" + std::to_string(i) + "]";
      if (!node.IsMap()) return fail(node, tier_path, "expected a mapping, found " + node_kind(node));
      if (!check_keys(node, tier_path,
                      {"above_input_tokens", "input", "cached_input", "cache_write", "output", "reasoning"}))
        return false;
      PriceTier tier;
      bool has_threshold = false;
      for (const auto& item : node) {
        std::string key = item.first.Scalar();
        std::string key_path = tier_path + "." + key;
        bool matched = false;
        if (!read_token_price(key, item.second, key_path, tier.prices, matched)) return false;
        if (key == "above_input_tokens") {
          if (!read_count(item.second, key_path, tier.above_input_tokens)) return false;
          has_threshold = true;
        }
      }
      if (!has_threshold) return fail(node, tier_path + ".above_input_tokens", "missing (the input size above which the tier applies)");
      for (const PriceTier& other : out) {
        if (other.above_input_tokens == tier.above_input_tokens)
          return fail(node, tier_path + ".above_input_tokens", "two tiers start above " + std::to_string(tier.above_input_tokens));
      }
      out.push_back(std::move(tier));
    }
    std::sort(out.begin(), out.end(), [](const PriceTier& a, const PriceTier& b) {
      return a.above_input_tokens < b.above_input_tokens;
    });
    return true;
  }

  bool read_model(const YAML::Node& node, const std::string& path, const Defaults& defaults,
                  Catalog& catalog) {
    if (!node.IsMap()) return fail(node, path, "expected a mapping, found " + node_kind(node));
    if (!check_keys(node, path,
                    {"model", "provider", "mode", "effective_from", "currency", "input", "cached_input",
                     "cache_write", "output", "reasoning", "batch_discount", "max_output_tokens",
                     "tiers", "source"}))
      return false;
    ModelPrice price;
    price.currency = defaults.currency;
    price.source = defaults.source;
    std::optional<EpochSeconds> effective_from = defaults.effective_from;
    for (const auto& item : node) {
      std::string key = item.first.Scalar();
      std::string key_path = path + "." + key;
      const YAML::Node& value = item.second;
      bool matched = false;
      if (!read_token_price(key, value, key_path, price.prices, matched)) return false;
      if (matched) continue;
      bool ok = true;
      if (key == "model") ok = read_string(value, key_path, price.model);
      if (key == "provider") ok = read_string(value, key_path, price.provider);
      if (key == "mode") ok = read_string(value, key_path, price.mode);
      if (key == "source") ok = read_string(value, key_path, price.source);
      if (key == "currency") ok = read_currency(value, key_path, price.currency);
      if (key == "max_output_tokens") ok = read_count(value, key_path, price.max_output_tokens);
      if (key == "tiers") ok = read_tiers(value, key_path, price.tiers);
      if (key == "effective_from") {
        EpochSeconds t = 0;
        ok = read_time(value, key_path, t);
        effective_from = t;
      }
      if (key == "batch_discount") {
        ok = read_decimal(value, key_path, price.batch_discount);
        if (ok && price.batch_discount && *price.batch_discount > Decimal::from_units(1))
          return fail(value, key_path, "\"" + value.Scalar() + "\" must be a fraction between 0 and 1");
      }
      if (!ok) return false;
    }
    if (price.model.empty()) return fail(node, path + ".model", "missing (the model name callers send)");
    if (!price.prices.input && !price.prices.output)
      return fail(node, path, "model " + price.model + " has neither an input nor an output price");
    if (!effective_from)
      return fail(node, path + ".effective_from", "missing (expected a date like 2024-07-18, here or at the top level)");
    price.effective_from = *effective_from;
    std::string id = price.model + "@" + std::to_string(price.effective_from);
    if (!seen_models_.insert(id).second)
      return fail(node, path, "model " + price.model + " is listed twice from " + format_timestamp(price.effective_from));
    catalog.add(std::move(price));
    return true;
  }

  bool read_gpu(const YAML::Node& node, const std::string& path, const Defaults& defaults,
                Catalog& catalog) {
    if (!node.IsMap()) return fail(node, path, "expected a mapping, found " + node_kind(node));
    if (!check_keys(node, path,
                    {"sku", "provider", "gpu_type", "gpus", "effective_from", "currency",
                     "on_demand", "reserved", "spot", "source"}))
      return false;
    GpuInstancePrice price;
    price.currency = defaults.currency;
    price.source = defaults.source;
    std::optional<EpochSeconds> effective_from = defaults.effective_from;
    for (const auto& item : node) {
      std::string key = item.first.Scalar();
      std::string key_path = path + "." + key;
      const YAML::Node& value = item.second;
      bool ok = true;
      if (key == "sku") ok = read_string(value, key_path, price.sku);
      if (key == "provider") ok = read_string(value, key_path, price.provider);
      if (key == "gpu_type") ok = read_string(value, key_path, price.gpu_type);
      if (key == "source") ok = read_string(value, key_path, price.source);
      if (key == "currency") ok = read_currency(value, key_path, price.currency);
      if (key == "on_demand") ok = read_decimal(value, key_path, price.on_demand);
      if (key == "reserved") ok = read_decimal(value, key_path, price.reserved);
      if (key == "spot") ok = read_decimal(value, key_path, price.spot);
      if (key == "gpus") {
        int64_t gpus = 0;
        ok = read_count(value, key_path, gpus);
        if (ok && gpus > 1024) return fail(value, key_path, "\"" + value.Scalar() + "\" is more GPUs than one instance has");
        price.gpus = (int32_t)gpus;
      }
      if (key == "effective_from") {
        EpochSeconds t = 0;
        ok = read_time(value, key_path, t);
        effective_from = t;
      }
      if (!ok) return false;
    }
    if (price.sku.empty()) return fail(node, path + ".sku", "missing (the instance SKU, e.g. p5.48xlarge)");
    if (!price.on_demand && !price.reserved && !price.spot)
      return fail(node, path, "instance " + price.sku + " has none of on_demand, reserved, spot");
    if (!effective_from)
      return fail(node, path + ".effective_from", "missing (expected a date like 2024-07-18, here or at the top level)");
    price.effective_from = *effective_from;
    std::string id = price.sku + "@" + std::to_string(price.effective_from);
    if (!seen_gpus_.insert(id).second)
      return fail(node, path, "instance " + price.sku + " is listed twice from " + format_timestamp(price.effective_from));
    catalog.add(std::move(price));
    return true;
  }

  std::set<std::string> seen_models_, seen_gpus_;
};

// --- writing -------------------------------------------------------------------------

// Plain when it cannot be read as anything but this text; double-quoted otherwise.
std::string scalar(std::string_view s) {
  static constexpr std::string_view kLooksTyped[] = {"true", "false", "yes", "no", "on", "off",
                                                     "y", "n", "null", "~"};
  bool plain = !s.empty();
  if (plain) {
    char first = s[0];
    plain = (first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z') || first == '_';
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '/' || c == '@' || c == '+' || c == '-';
    plain = plain && ok;
  }
  if (plain) {
    std::string lower(s);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    for (std::string_view typed : kLooksTyped) plain = plain && lower != typed;
  }
  if (plain) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if ((unsigned char)c < 0x20) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(c >> 4) & 0xF];
      out += kHex[c & 0xF];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Midnight is written as a plain date, anything else as an RFC 3339 timestamp.
std::string time_text(EpochSeconds t) {
  return floor_day(t) == t ? format_date(t) : format_timestamp(t);
}

// The value every item shares, if any (and there is at least one item).
template <typename T>
std::optional<T> common_value(const std::vector<T>& values) {
  if (values.empty()) return std::nullopt;
  for (const T& v : values) {
    if (v != values.front()) return std::nullopt;
  }
  return values.front();
}

void write_token_prices(std::string& out, const TokenPrices& p, std::string_view indent) {
  auto line = [&](std::string_view key, const std::optional<Decimal>& value) {
    if (value) out += std::string(indent) + std::string(key) + ": " + format_decimal(value->nanos) + "\n";
  };
  line("input", p.input);
  line("cached_input", p.cached_input);
  line("cache_write", p.cache_write);
  line("output", p.output);
  line("reasoning", p.reasoning);
}

std::string tier_text(const PriceTier& tier) {
  std::string out = "{above_input_tokens: " + std::to_string(tier.above_input_tokens);
  auto field = [&](std::string_view key, const std::optional<Decimal>& value) {
    if (value) out += ", " + std::string(key) + ": " + format_decimal(value->nanos);
  };
  field("input", tier.prices.input);
  field("cached_input", tier.prices.cached_input);
  field("cache_write", tier.prices.cache_write);
  field("output", tier.prices.output);
  field("reasoning", tier.prices.reasoning);
  return out + "}";
}

}  // namespace

Result<pricing::Catalog> parse_catalog_yaml(std::string_view text, std::string_view file_name) {
  auto root = load_yaml(text, file_name);
  if (!root) return Unexpected{root.error()};
  try {
    return CatalogReader(file_name).read(*root);
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::kParse, std::string(file_name) + ": " + e.msg);
  }
}

std::string to_catalog_yaml(const pricing::Catalog& catalog, std::string_view header_comment) {
  std::vector<const ModelPrice*> models = catalog.model_prices();
  std::vector<const GpuInstancePrice*> gpus = catalog.gpu_instance_prices();

  // Hoist what every entry shares, so a generated file does not repeat one source 2,000 times.
  std::vector<std::string> currencies, sources;
  std::vector<EpochSeconds> dates;
  for (const ModelPrice* p : models) {
    currencies.push_back(p->currency);
    sources.push_back(p->source);
    dates.push_back(p->effective_from);
  }
  for (const GpuInstancePrice* p : gpus) {
    currencies.push_back(p->currency);
    sources.push_back(p->source);
    dates.push_back(p->effective_from);
  }
  std::string currency = common_value<std::string>(currencies).value_or("USD");
  std::optional<std::string> source = common_value<std::string>(sources);
  std::optional<EpochSeconds> date = common_value<EpochSeconds>(dates);

  std::string out;
  std::string_view rest = header_comment;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    out += line.empty() ? "#\n" : "# " + std::string(line) + "\n";
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  out += "currency: " + currency + "\n";
  if (date) out += "effective_from: " + time_text(*date) + "\n";
  if (source && !source->empty()) out += "source: " + scalar(*source) + "\n";

  auto common_fields = [&](std::string& o, EpochSeconds from, const std::string& cur) {
    if (!date) o += "    effective_from: " + time_text(from) + "\n";
    if (cur != currency) o += "    currency: " + cur + "\n";
  };
  auto source_field = [&](std::string& o, const std::string& src) {
    if ((!source || *source != src) && !src.empty()) o += "    source: " + scalar(src) + "\n";
  };

  if (!models.empty()) out += "models:\n";
  for (const ModelPrice* p : models) {
    out += "  - model: " + scalar(p->model) + "\n";
    if (!p->provider.empty()) out += "    provider: " + scalar(p->provider) + "\n";
    if (!p->mode.empty()) out += "    mode: " + scalar(p->mode) + "\n";
    common_fields(out, p->effective_from, p->currency);
    write_token_prices(out, p->prices, "    ");
    if (p->batch_discount) out += "    batch_discount: " + format_decimal(p->batch_discount->nanos) + "\n";
    if (p->max_output_tokens > 0) out += "    max_output_tokens: " + std::to_string(p->max_output_tokens) + "\n";
    if (!p->tiers.empty()) {
      out += "    tiers: [";
      for (size_t i = 0; i < p->tiers.size(); ++i) out += (i ? ", " : "") + tier_text(p->tiers[i]);
      out += "]\n";
    }
    source_field(out, p->source);
  }
  if (!gpus.empty()) out += "gpu_instances:\n";
  for (const GpuInstancePrice* p : gpus) {
    out += "  - sku: " + scalar(p->sku) + "\n";
    if (!p->provider.empty()) out += "    provider: " + scalar(p->provider) + "\n";
    if (!p->gpu_type.empty()) out += "    gpu_type: " + scalar(p->gpu_type) + "\n";
    out += "    gpus: " + std::to_string(p->gpus) + "\n";
    common_fields(out, p->effective_from, p->currency);
    if (p->on_demand) out += "    on_demand: " + format_decimal(p->on_demand->nanos) + "\n";
    if (p->reserved) out += "    reserved: " + format_decimal(p->reserved->nanos) + "\n";
    if (p->spot) out += "    spot: " + format_decimal(p->spot->nanos) + "\n";
    source_field(out, p->source);
  }
  return out;
}

Result<pricing::Catalog> load_catalog_yaml_file(const std::string& path) {
  auto text = read_text_file(path, "price catalog file");
  if (!text) return Unexpected{text.error()};
  return parse_catalog_yaml(*text, path);
}

}  // namespace aifinops::config
