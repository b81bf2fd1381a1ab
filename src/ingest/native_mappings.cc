// The FOCUS mapping tables (embedded from config/focus-mappings/ at build time) and the
// model and GPU recognisers for provider usage types and meter names.
#include "ingest/native_mappings.h"

#include <strings.h>

#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/embedded_catalog.h"

namespace aifinops::ingest {
namespace {

constexpr std::string_view kOther = "Other";
constexpr std::array<std::string_view, 7> kTableNames = {
    "aws_category_mapping.csv",      "azure_category_mapping.csv", "gcp_category_mapping.csv",
    "oci_category_mapping.csv",      "ms_open_data_Services.csv",  "ms_open_data_Regions.csv",
    "ms_open_data_PricingUnits.csv"};

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace((unsigned char)s[b])) ++b;
  while (e > b && std::isspace((unsigned char)s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

bool is_alnum(char c) { return std::isalnum((unsigned char)c) != 0; }

bool ends_with_nocase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         strncasecmp(s.data() + s.size() - suffix.size(), suffix.data(), suffix.size()) == 0;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

/// Splits on spaces, '-' and '_' into lower-case words.
std::vector<std::string> words_of(std::string_view s) {
  std::vector<std::string> words;
  std::string current;
  for (char c : s) {
    if (c == ' ' || c == '-' || c == '_') {
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back((char)std::tolower((unsigned char)c));
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

std::string join(const std::vector<std::string>& words, char separator) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out.push_back(separator);
    out += w;
  }
  return out;
}

}  // namespace

bool contains_nocase(std::string_view hay, std::string_view needle) {
  if (needle.empty() || hay.size() < needle.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (strncasecmp(hay.data() + i, needle.data(), needle.size()) == 0) return true;
  return false;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (char)std::tolower((unsigned char)c);
  return out;
}

std::vector<std::vector<std::string>> split_csv_text(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field.push_back(c);
      any = true;
    }
  }
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<void> FocusMappings::load(std::string_view name, std::string_view text) {
  auto rows = split_csv_text(text);
  if (rows.empty()) return make_error(ErrorCode::kParse, std::string(name) + ": the table is empty");
  auto need = [&](size_t columns) -> Result<void> {
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i].size() < columns)
        return make_error(ErrorCode::kParse, std::string(name) + ":" + std::to_string(i + 1) +
                                                 ": expected " + std::to_string(columns) +
                                                 " columns, found " +
                                                 std::to_string(rows[i].size()));
    return {};
  };
  auto two_columns = [&](std::unordered_map<std::string, std::string>& out) -> Result<void> {
    if (auto ok = need(2); !ok) return ok;
    for (size_t i = 1; i < rows.size(); ++i) {
      std::string key = to_lower(trim(rows[i][0]));
      std::string value = trim(rows[i][1]);
      if (key.empty()) continue;
      if (&out == &aws_ && key.back() == '*') {
        key.pop_back();
        aws_prefixes_.emplace_back(key, value);
        continue;
      }
      out.emplace(key, value);  // first row wins, as in the converter's join
    }
    return {};
  };
  if (name == kTableNames[0]) return two_columns(aws_);
  if (name == kTableNames[1]) return two_columns(azure_category_);
  if (name == kTableNames[2]) return two_columns(gcp_);
  if (name == kTableNames[3]) return two_columns(oci_);
  if (name == kTableNames[4]) {
    // ConsumedService,ResourceType,ServiceName,ServiceCategory,ServiceSubcategory,...
    if (auto ok = need(5); !ok) return ok;
    for (size_t i = 1; i < rows.size(); ++i) {
      AzureService service{trim(rows[i][2]), trim(rows[i][3]), trim(rows[i][4])};
      std::string type = to_lower(trim(rows[i][1]));
      std::string consumed = to_lower(trim(rows[i][0]));
      if (!type.empty()) azure_by_type_.emplace(type, service);
      if (!consumed.empty()) azure_by_consumed_.emplace(consumed, service);
    }
    return {};
  }
  if (name == kTableNames[5]) {
    if (auto ok = need(3); !ok) return ok;
    for (size_t i = 1; i < rows.size(); ++i)
      azure_regions_.emplace(to_lower(trim(rows[i][0])),
                             std::make_pair(trim(rows[i][1]), trim(rows[i][2])));
    return {};
  }
  if (name == kTableNames[6]) {
    // UnitOfMeasure,AccountTypes,PricingBlockSize,DistinctUnits; the unit keeps its exact
    // spelling (trailing spaces included), as exports write it.
    if (auto ok = need(4); !ok) return ok;
    for (size_t i = 1; i < rows.size(); ++i) {
      AzurePricingUnit unit;
      std::string block = trim(rows[i][2]);
      unit.block_size = 0;
      for (char c : block) {
        if (!std::isdigit((unsigned char)c) || unit.block_size > 1'000'000'000'000'000) {
          unit.block_size = 0;
          break;
        }
        unit.block_size = unit.block_size * 10 + (c - '0');
      }
      if (unit.block_size <= 0)
        return make_error(ErrorCode::kParse, std::string(name) + ":" + std::to_string(i + 1) +
                                                 ": PricingBlockSize \"" + block +
                                                 "\" is not a positive whole number");
      unit.unit = trim(rows[i][3]);
      azure_units_.emplace(to_lower(rows[i][0]), unit);
    }
    return {};
  }
  return make_error(ErrorCode::kParse, std::string(name) + ": not a known mapping table");
}

Result<FocusMappings> FocusMappings::builtin() {
  FocusMappings mappings;
  for (size_t i = 0; i < config::kEmbeddedFocusMappingFileCount; ++i) {
    const config::EmbeddedFile& file = config::kEmbeddedFocusMappingFiles[i];
    std::string_view name = file.name;
    name = name.substr(name.rfind('/') + 1);
    if (auto ok = mappings.load(name, config::embedded_text(file)); !ok) return Unexpected{ok.error()};
  }
  return mappings;
}

Result<FocusMappings> FocusMappings::from_directory(const std::string& directory) {
  FocusMappings mappings;
  for (std::string_view name : kTableNames) {
    std::filesystem::path path = std::filesystem::path(directory) / name;
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return make_error(ErrorCode::kNotFound, path.string() + ": cannot open the mapping table");
    std::ostringstream text;
    text << in.rdbuf();
    if (auto ok = mappings.load(name, text.str()); !ok) return Unexpected{ok.error()};
  }
  return mappings;
}

std::string_view FocusMappings::aws_category(std::string_view product_code) const {
  std::string key = to_lower(product_code);
  if (auto it = aws_.find(key); it != aws_.end()) return it->second;
  for (const auto& [prefix, category] : aws_prefixes_)
    if (key.rfind(prefix, 0) == 0) return category;
  return kOther;
}

std::string_view FocusMappings::gcp_category(std::string_view service) const {
  if (auto it = gcp_.find(to_lower(service)); it != gcp_.end()) return it->second;
  return kOther;
}

std::string_view FocusMappings::oci_category(std::string_view service) const {
  if (auto it = oci_.find(to_lower(service)); it != oci_.end()) return it->second;
  return kOther;
}

const AzureService* FocusMappings::azure_service(std::string_view resource_type,
                                                 std::string_view consumed_service) const {
  if (!resource_type.empty())
    if (auto it = azure_by_type_.find(to_lower(resource_type)); it != azure_by_type_.end())
      return &it->second;
  if (!consumed_service.empty())
    if (auto it = azure_by_consumed_.find(to_lower(consumed_service)); it != azure_by_consumed_.end())
      return &it->second;
  return nullptr;
}

std::string_view FocusMappings::azure_category(std::string_view consumed_service) const {
  if (auto it = azure_category_.find(to_lower(consumed_service)); it != azure_category_.end())
    return it->second;
  return {};
}

bool FocusMappings::azure_region(std::string_view original, std::string& id, std::string& name) const {
  auto it = azure_regions_.find(to_lower(trim(original)));
  if (it == azure_regions_.end()) return false;
  id = it->second.first;
  name = it->second.second;
  return true;
}

const AzurePricingUnit* FocusMappings::azure_unit(std::string_view unit_of_measure) const {
  auto it = azure_units_.find(to_lower(unit_of_measure));
  if (it == azure_units_.end()) it = azure_units_.find(to_lower(trim(unit_of_measure)));
  return it == azure_units_.end() ? nullptr : &it->second;
}

std::string gpu_type_from_text(std::string_view text) {
  if (text.empty()) return {};
  // AWS instance families (EC2 and SageMaker's "ml." names), per AWS's instance type pages.
  static constexpr std::pair<std::string_view, std::string_view> kAwsFamilies[] = {
      {"p5en", "H200"}, {"p5e", "H200"},  {"p5", "H100"},   {"p4de", "A100"}, {"p4d", "A100"},
      {"p3dn", "V100"}, {"p3", "V100"},   {"p2", "K80"},    {"g6e", "L40S"},  {"g6", "L4"},
      {"gr6", "L4"},    {"g5g", "T4G"},   {"g5", "A10G"},   {"g4dn", "T4"},   {"g3s", "M60"},
      {"g3", "M60"},    {"p6-b200", "B200"}};
  std::string_view instance = text;
  for (std::string_view prefix : {"ml.", "db.", "ra3."})
    if (starts_with_nocase(instance, prefix)) instance.remove_prefix(prefix.size());
  if (size_t dot = instance.find('.'); dot != std::string_view::npos && dot <= 8) {
    std::string family = to_lower(instance.substr(0, dot));
    for (auto [name, gpu] : kAwsFamilies)
      if (family == name) return std::string(gpu);
  }
  // OCI shapes: BM.GPU4.8 (A100), BM.GPU3.8 (V100), VM.GPU2.1 (P100), else named (BM.GPU.H100.8).
  static constexpr std::pair<std::string_view, std::string_view> kOciShapes[] = {
      {".GPU4.", "A100"}, {".GPU3.", "V100"}, {".GPU2.", "P100"}};
  for (auto [shape, gpu] : kOciShapes)
    if (contains_nocase(text, shape)) return std::string(gpu);
  // GPU names written out, longest first so that "A10G" is not read as "A10" or "L40S" as "L4".
  static constexpr std::string_view kNames[] = {"GB200", "B200",  "H200", "H100", "A100",
                                                "A10G",  "A10",   "L40S", "L40",  "L4",
                                                "T4G",   "T4",    "V100", "P100", "P40",
                                                "P4",    "K80",   "M60",  "MI300X", "MI250X"};
  for (std::string_view name : kNames) {
    for (size_t at = 0; at + name.size() <= text.size(); ++at) {
      if (strncasecmp(text.data() + at, name.data(), name.size()) != 0) continue;
      size_t end = at + name.size();
      if (end < text.size() && is_alnum(text[end])) continue;
      // Before it: a separator, or (Azure's "NCasT4_v3", "NVadsA10_v5") a lower-case letter
      // joined to the name written in upper case.
      bool separated = at == 0 || !is_alnum(text[at - 1]);
      bool camel = at > 0 && std::islower((unsigned char)text[at - 1]) &&
                   text.compare(at, name.size(), name) == 0;
      if (separated || camel) return std::string(name);
    }
  }
  // Azure ND v4 (Standard_ND96asr_v4) carries A100s without naming them.
  if (contains_nocase(text, "ND96asr_v4") || contains_nocase(text, "ND96asr v4")) return "A100";
  return {};
}

namespace {

/// "Claude3.5Sonnet" → "claude-3.5-sonnet": dashes where a word of 3+ letters meets a digit,
/// where lower case meets upper case and where a number meets a capitalised word.
std::string model_from_camel(std::string_view name) {
  std::string out;
  size_t letters = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (i > 0 && out.back() != '-' && c != '-' && c != '.') {
      char p = name[i - 1];
      bool lower_upper = std::islower((unsigned char)p) && std::isupper((unsigned char)c);
      bool word_digit = std::isalpha((unsigned char)p) && std::isdigit((unsigned char)c) && letters >= 3;
      // "3.5Sonnet": a capitalised word after a number (but "70B" stays one word).
      bool digit_word = std::isdigit((unsigned char)p) && std::isupper((unsigned char)c) &&
                        i + 1 < name.size() && std::islower((unsigned char)name[i + 1]);
      if (lower_upper || word_digit || digit_word) out.push_back('-');
    }
    letters = std::isalpha((unsigned char)c) ? letters + 1 : 0;
    out.push_back((char)std::tolower((unsigned char)c));
  }
  return out;
}

}  // namespace

ModelMeter bedrock_model_meter(std::string_view usage_type) {
  ModelMeter meter;
  std::string_view rest = usage_type;
  // Region prefix: "USE1-", "EUC1-", "APS1-" (letters then a digit).
  if (size_t dash = rest.find('-'); dash != std::string_view::npos && dash >= 3 && dash <= 6 &&
                                    std::isdigit((unsigned char)rest[dash - 1])) {
    bool upper = true;
    for (size_t i = 0; i + 1 < dash; ++i) upper = upper && std::isupper((unsigned char)rest[i]);
    if (upper) rest.remove_prefix(dash + 1);
  }
  struct Suffix {
    std::string_view text;
    TokenMeter kind;
  };
  static constexpr Suffix kSuffixes[] = {
      {"-cache-read-input-token-count", TokenMeter::kCachedInput},
      {"-cache-write-input-token-count", TokenMeter::kCacheWrite},
      {"-cache-read-input-tokens", TokenMeter::kCachedInput},
      {"-cache-write-input-tokens", TokenMeter::kCacheWrite},
      {"-batch-input-tokens", TokenMeter::kInput},
      {"-batch-output-tokens", TokenMeter::kOutput},
      {"-input-tokens", TokenMeter::kInput},
      {"-output-tokens", TokenMeter::kOutput},
      {"-input-token-count", TokenMeter::kInput},
      {"-output-token-count", TokenMeter::kOutput},
  };
  for (const Suffix& s : kSuffixes) {
    if (ends_with_nocase(rest, s.text)) {
      meter.tokens = s.kind;
      rest.remove_suffix(s.text.size());
      break;
    }
  }
  if (meter.tokens == TokenMeter::kNone) return meter;  // not a token meter: no model claim
  if (rest.find(':') != std::string_view::npos && rest.find('.') == std::string_view::npos)
    return meter;  // Marketplace "MP:USE1_InputTokenCount": the model is not in the name
  bool is_id = rest.find('.') != std::string_view::npos && rest.find('-') != std::string_view::npos;
  meter.model = is_id ? to_lower(rest) : model_from_camel(rest);
  return meter;
}

ModelMeter azure_openai_model_meter(std::string_view meter_name) {
  ModelMeter meter;
  std::vector<std::string> words = words_of(meter_name);
  std::vector<std::string> model;
  bool in_model = true, saw_direction = false, cached = false;
  for (const std::string& w : words) {
    TokenMeter direction = TokenMeter::kNone;
    if (w == "inp" || w == "input") direction = TokenMeter::kInput;
    else if (w == "outp" || w == "out" || w == "opt" || w == "output") direction = TokenMeter::kOutput;
    else if (w == "cd" || w == "cchd" || w == "ccchd" || w == "cached" || w == "cache") cached = true;
    bool noise = w == "glbl" || w == "regnl" || w == "gl" || w == "dz" || w == "rg" ||
                 w == "global" || w == "regional" || w == "datazone" || w == "batch" ||
                 w == "pp" || w == "tokens" || w == "token" || w == "1m" || w == "1k" ||
                 w == "dzone" || w == "prvsn";
    if (w == "1m") meter.tokens_per_unit = 1'000'000;
    if (w == "1k") meter.tokens_per_unit = 1'000;
    if (direction != TokenMeter::kNone) {
      meter.tokens = direction;
      saw_direction = true;
    }
    if (direction != TokenMeter::kNone || noise || cached) in_model = false;
    if (!in_model) continue;
    // Version codes such as "0806" or "2024" name a release, not the model.
    bool version = w.size() == 4 && std::isdigit((unsigned char)w[0]) &&
                   w.find_first_not_of("0123456789") == std::string::npos;
    if (!version) model.push_back(w);
  }
  if (!contains_nocase(meter_name, "token")) return ModelMeter{};
  if (cached) meter.tokens = TokenMeter::kCachedInput;
  else if (!saw_direction) meter.tokens = TokenMeter::kInput;  // embeddings meter input only
  if (!model.empty() && std::isdigit((unsigned char)model.front()[0])) model.insert(model.begin(), "gpt");
  meter.model = join(model, '-');
  return meter;
}

ModelMeter vertex_model_meter(std::string_view sku_description) {
  ModelMeter meter;
  std::vector<std::string> words;
  {
    std::string current;
    for (char c : sku_description) {
      if (c == ' ' || c == '-' || c == '(' || c == ')' || c == ',') {
        if (!current.empty()) words.push_back(std::move(current));
        current.clear();
      } else {
        current.push_back((char)std::tolower((unsigned char)c));
      }
    }
    if (!current.empty()) words.push_back(std::move(current));
  }
  static constexpr std::string_view kFamilies[] = {"gemini", "claude", "llama", "mistral", "gemma",
                                                   "imagen", "palm", "codey", "chirp", "veo"};
  size_t start = words.size();
  for (size_t i = 0; i < words.size() && start == words.size(); ++i)
    for (std::string_view f : kFamilies)
      if (words[i] == f) start = i;
  if (start == words.size()) return meter;
  std::vector<std::string> model;
  for (size_t i = start; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "input" || w == "output" || w == "cached" || w == "cache" || w == "text" ||
        w == "image" || w == "audio" || w == "video" || w == "tokens" || w == "token" ||
        w == "characters" || w == "character" || w == "predictions" || w == "for" ||
        w == "batch" || w == "long" || w == "short" || w == "context")
      break;
    model.push_back(w);
  }
  meter.model = join(model, '-');
  bool tokenish = contains_nocase(sku_description, "token") || contains_nocase(sku_description, "input") ||
                  contains_nocase(sku_description, "output");
  if (tokenish) {
    if (contains_nocase(sku_description, "cache")) meter.tokens = TokenMeter::kCachedInput;
    else if (contains_nocase(sku_description, "output")) meter.tokens = TokenMeter::kOutput;
    else meter.tokens = TokenMeter::kInput;
  }
  return meter;
}

}  // namespace aifinops::ingest
