// aifinops prices: import LiteLLM's price file or a catalog YAML into the ledger (or turn the
// LiteLLM file into catalog YAML), show the price of one model or instance at a date, and
// list the prices in effect.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/catalog_yaml.h"
#include "pricing/catalog.h"

namespace aifinops::cli {
namespace {

using pricing::Catalog;
using pricing::GpuInstancePrice;
using pricing::ModelPrice;

constexpr const char* kLitellmNotice =
    "LiteLLM model_prices_and_context_window.json (MIT, Copyright (c) 2023 Berri AI)";

EpochSeconds now_seconds() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

int usage_error(const std::string& message) {
  report_error(Error{ErrorCode::kInvalidArgument, message});
  return kExitUsage;
}

// --at / --effective: a date or RFC 3339 timestamp; empty means `fallback`.
bool parse_when(const std::string& text, EpochSeconds fallback, EpochSeconds& out) {
  if (text.empty()) {
    out = fallback;
    return true;
  }
  auto t = parse_timestamp(text);
  if (!t) return false;
  out = *t;
  return true;
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIo, path + ": cannot read");
  return buffer.str();
}

Result<void> write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::kIo, path + ": cannot open for writing");
  out << text;
  out.close();
  if (!out) return make_error(ErrorCode::kIo, path + ": cannot write");
  return {};
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  return out;
}

std::string price_text(const std::optional<Decimal>& d) { return d ? format_decimal(d->nanos) : "-"; }
std::string json_price(const std::optional<Decimal>& d) { return d ? format_decimal(d->nanos) : "null"; }
std::string json_string(std::string_view s) { return "\"" + json_escape(s) + "\""; }

// Effective dates are usually whole days: show them as dates unless they are not.
std::string when_text(EpochSeconds t) { return floor_day(t) == t ? format_date(t) : format_timestamp(t); }

// Stores prices and reports how many were new.
int store_and_report(const std::string& db_flag, std::vector<ModelPrice> models,
                     std::vector<GpuInstancePrice> gpus, const std::string& what) {
  auto opened = open_ledger_with_catalog(db_flag);
  if (!opened) return report_error(opened.error());
  std::unique_ptr<ledger::Ledger>& ledger = opened->ledger;
  size_t total = models.size() + gpus.size();
  auto added = ledger->store_prices(models, gpus);
  if (!added) return report_error(added.error());
  std::printf("%s: %zu prices, %lld new, %lld unchanged (ledger %s)\n", what.c_str(), total,
              (long long)*added, (long long)(total - (size_t)*added),
              ledger::redact_location(resolve_db_location(db_flag)).c_str());
  return kExitOk;
}

// --- prices import litellm -------------------------------------------------------------

struct ImportLitellmOptions {
  std::string file, db, effective, out, source;
  std::vector<std::string> modes;
};

int run_import_litellm(const ImportLitellmOptions& o) {
  EpochSeconds effective = 0;
  if (!parse_when(o.effective, floor_day(now_seconds()), effective))
    return usage_error("--effective: \"" + o.effective + "\" is not a date like 2026-07-24");
  auto json = read_text_file(o.file);
  if (!json) return report_error(json.error());
  std::string file_name = o.file.substr(o.file.find_last_of('/') + 1);
  std::string source = o.source.empty() ? std::string(kLitellmNotice) + ", file " + file_name +
                                              ", effective " + format_date(effective)
                                        : o.source;
  auto prices = pricing::parse_litellm_json(*json, effective, source);
  if (!prices) return report_error(Error{prices.error().code, o.file + ": " + prices.error().message});

  std::vector<ModelPrice> kept;
  std::set<std::string> modes(o.modes.begin(), o.modes.end());
  for (ModelPrice& p : *prices) {
    if (modes.empty() || modes.count(p.mode)) kept.push_back(std::move(p));
  }
  if (o.out.empty()) return store_and_report(o.db, std::move(kept), {}, o.file);

  Catalog catalog;
  size_t count = kept.size();
  for (ModelPrice& p : kept) catalog.add(std::move(p));
  std::string modes_text;
  for (const std::string& m : modes) modes_text += (modes_text.empty() ? "" : ",") + m;
  std::string header =
      "Model token prices per 1M tokens, generated from " + std::string(kLitellmNotice) +
      ".\nSnapshot effective " + format_date(effective) +
      (modes_text.empty() ? std::string() : "; modes " + modes_text) +
      ". Regenerate instead of editing by hand:\n"
      "  aifinops prices import litellm " + file_name + " --effective " + format_date(effective) +
      (modes_text.empty() ? std::string() : " --mode " + modes_text) +
      (o.source.empty() ? std::string() : " --source \"" + o.source + "\"") + " --out " + o.out +
      "\nSee config/README.md.";
  auto written = write_text_file(o.out, config::to_catalog_yaml(catalog, header));
  if (!written) return report_error(written.error());
  std::printf("wrote %zu model prices to %s\n", count, o.out.c_str());
  return kExitOk;
}

// --- prices import catalog -------------------------------------------------------------

struct ImportCatalogOptions {
  std::string file, db;
};

int run_import_catalog(const ImportCatalogOptions& o) {
  auto catalog = config::load_catalog_yaml_file(o.file);
  if (!catalog) return report_error(catalog.error());
  std::vector<ModelPrice> models;
  std::vector<GpuInstancePrice> gpus;
  for (const ModelPrice* p : catalog->model_prices()) models.push_back(*p);
  for (const GpuInstancePrice* p : catalog->gpu_instance_prices()) gpus.push_back(*p);
  return store_and_report(o.db, std::move(models), std::move(gpus), o.file);
}

// --- prices show -----------------------------------------------------------------------

struct ShowOptions {
  std::string name, at, db, format = "table";
};

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Up to 5 known names close to `asked`: names containing it (or its provider-less form) first,
// then by edit distance, ignoring names too far off to be a typo.
std::vector<std::string> similar_names(const Catalog& catalog, std::string_view asked) {
  std::string query = lower(asked);
  std::string bare = query.substr(query.find_last_of('/') + 1);
  std::set<std::string> names;
  for (const ModelPrice* p : catalog.model_prices()) names.insert(p->model);
  for (const GpuInstancePrice* p : catalog.gpu_instance_prices()) names.insert(p->sku);
  struct Candidate {
    bool contains;
    size_t distance;
    std::string name;
  };
  std::vector<Candidate> candidates;
  for (const std::string& name : names) {
    std::string l = lower(name);
    bool contains = !bare.empty() && l.find(bare) != std::string::npos;
    size_t distance = std::min(edit_distance(query, l), edit_distance(bare, l));
    if (contains || distance <= std::max<size_t>(2, bare.size() / 3))
      candidates.push_back(Candidate{contains, distance, name});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.contains != b.contains) return a.contains;
    if (a.distance != b.distance) return a.distance < b.distance;
    if (a.name.size() != b.name.size()) return a.name.size() < b.name.size();
    return a.name < b.name;
  });
  std::vector<std::string> out;
  for (size_t i = 0; i < candidates.size() && i < 5; ++i) out.push_back(candidates[i].name);
  return out;
}

void print_model_table(const ShowOptions& o, EpochSeconds at, const ModelPrice& p,
                       const std::vector<const ModelPrice*>& versions) {
  std::printf("Model             %s", p.model.c_str());
  if (lower(o.name) != lower(p.model)) std::printf("   (asked for %s)", o.name.c_str());
  std::printf("\nProvider          %s\n", p.provider.empty() ? "-" : p.provider.c_str());
  std::printf("Mode              %s\n", p.mode.empty() ? "-" : p.mode.c_str());
  std::printf("In effect at      %s\n", format_timestamp(at).c_str());
  std::printf("Effective from    %s (version %lld)\n", when_text(p.effective_from).c_str(),
              (long long)p.version);
  std::printf("Source            %s\n", p.source.empty() ? "-" : p.source.c_str());
  std::printf("\nPrice per 1M tokens (%s)\n", p.currency.c_str());
  auto row = [](const char* kind, const std::optional<Decimal>& value, const char* fallback) {
    if (value) std::printf("  %-16s%s\n", kind, format_decimal(value->nanos).c_str());
    else std::printf("  %-16s(as %s)\n", kind, fallback);
  };
  if (p.prices.input) row("input", p.prices.input, "");
  else std::printf("  %-16s-\n", "input");
  row("cached input", p.prices.cached_input, "input");
  row("cache write", p.prices.cache_write, "input");
  if (p.prices.output) row("output", p.prices.output, "");
  else std::printf("  %-16s-\n", "output");
  row("reasoning", p.prices.reasoning, "output");
  for (const pricing::PriceTier& t : p.tiers) {
    std::printf("  above %lld input tokens:", (long long)t.above_input_tokens);
    auto part = [](const char* kind, const std::optional<Decimal>& v) {
      if (v) std::printf(" %s %s", kind, format_decimal(v->nanos).c_str());
    };
    part("input", t.prices.input);
    part("cached_input", t.prices.cached_input);
    part("cache_write", t.prices.cache_write);
    part("output", t.prices.output);
    part("reasoning", t.prices.reasoning);
    std::printf("\n");
  }
  if (p.batch_discount)
    std::printf("Batch discount    %s (batch use pays %s of the price)\n",
                format_decimal(p.batch_discount->nanos).c_str(),
                format_decimal(kNanosPerUnit - p.batch_discount->nanos).c_str());
  if (p.max_output_tokens > 0) std::printf("Max output tokens %lld\n", (long long)p.max_output_tokens);
  std::printf("\nVersions of %s\n", p.model.c_str());
  std::printf("  %-20s %-9s %-12s %s\n", "EFFECTIVE FROM", "VERSION", "INPUT", "OUTPUT");
  for (const ModelPrice* v : versions) {
    std::printf("  %-20s %-9lld %-12s %s%s\n", when_text(v->effective_from).c_str(),
                (long long)v->version, price_text(v->prices.input).c_str(),
                price_text(v->prices.output).c_str(), v == &p ? "   <- in effect" : "");
  }
}

void print_model_json(const ShowOptions& o, EpochSeconds at, const ModelPrice& p,
                      const std::vector<const ModelPrice*>& versions) {
  auto prices_json = [](const pricing::TokenPrices& t) {
    return "{\"input\":" + json_price(t.input) + ",\"cached_input\":" + json_price(t.cached_input) +
           ",\"cache_write\":" + json_price(t.cache_write) + ",\"output\":" + json_price(t.output) +
           ",\"reasoning\":" + json_price(t.reasoning) + "}";
  };
  std::string out = "{\"kind\":\"model\",\"asked\":" + json_string(o.name) +
                    ",\"model\":" + json_string(p.model) + ",\"provider\":" + json_string(p.provider) +
                    ",\"mode\":" + json_string(p.mode) + ",\"at\":" + json_string(format_timestamp(at)) +
                    ",\"effective_from\":" + json_string(format_timestamp(p.effective_from)) +
                    ",\"version\":" + std::to_string(p.version) + ",\"source\":" + json_string(p.source) +
                    ",\"currency\":" + json_string(p.currency) + ",\"per\":\"1M tokens\"" +
                    ",\"prices\":" + prices_json(p.prices) + ",\"tiers\":[";
  for (size_t i = 0; i < p.tiers.size(); ++i) {
    out += std::string(i ? "," : "") + "{\"above_input_tokens\":" +
           std::to_string(p.tiers[i].above_input_tokens) + ",\"prices\":" + prices_json(p.tiers[i].prices) + "}";
  }
  out += "],\"batch_discount\":" + json_price(p.batch_discount) +
         ",\"max_output_tokens\":" + std::to_string(p.max_output_tokens) + ",\"versions\":[";
  for (size_t i = 0; i < versions.size(); ++i) {
    const ModelPrice* v = versions[i];
    out += std::string(i ? "," : "") + "{\"effective_from\":" + json_string(format_timestamp(v->effective_from)) +
           ",\"version\":" + std::to_string(v->version) + ",\"in_effect\":" + (v == &p ? "true" : "false") +
           ",\"source\":" + json_string(v->source) + ",\"prices\":" + prices_json(v->prices) + "}";
  }
  std::printf("%s]}\n", out.c_str());
}

void print_gpu(const ShowOptions& o, EpochSeconds at, const GpuInstancePrice& p,
               const std::vector<const GpuInstancePrice*>& versions) {
  if (o.format == "json") {
    std::string out = "{\"kind\":\"gpu_instance\",\"sku\":" + json_string(p.sku) +
                      ",\"provider\":" + json_string(p.provider) + ",\"gpu_type\":" + json_string(p.gpu_type) +
                      ",\"gpus\":" + std::to_string(p.gpus) + ",\"at\":" + json_string(format_timestamp(at)) +
                      ",\"effective_from\":" + json_string(format_timestamp(p.effective_from)) +
                      ",\"version\":" + std::to_string(p.version) + ",\"source\":" + json_string(p.source) +
                      ",\"currency\":" + json_string(p.currency) + ",\"per\":\"hour\"" +
                      ",\"on_demand\":" + json_price(p.on_demand) + ",\"reserved\":" + json_price(p.reserved) +
                      ",\"spot\":" + json_price(p.spot) + ",\"versions\":[";
    for (size_t i = 0; i < versions.size(); ++i) {
      const GpuInstancePrice* v = versions[i];
      out += std::string(i ? "," : "") + "{\"effective_from\":" + json_string(format_timestamp(v->effective_from)) +
             ",\"version\":" + std::to_string(v->version) + ",\"in_effect\":" + (v == &p ? "true" : "false") +
             ",\"on_demand\":" + json_price(v->on_demand) + "}";
    }
    std::printf("%s]}\n", out.c_str());
    return;
  }
  std::printf("Instance          %s\n", p.sku.c_str());
  std::printf("Provider          %s\n", p.provider.empty() ? "-" : p.provider.c_str());
  std::printf("GPUs              %d%s%s\n", p.gpus, p.gpu_type.empty() ? "" : " x ", p.gpu_type.c_str());
  std::printf("In effect at      %s\n", format_timestamp(at).c_str());
  std::printf("Effective from    %s (version %lld)\n", when_text(p.effective_from).c_str(),
              (long long)p.version);
  std::printf("Source            %s\n", p.source.empty() ? "-" : p.source.c_str());
  std::printf("\nPrice per hour (%s)\n", p.currency.c_str());
  std::printf("  %-16s%s\n", "on demand", price_text(p.on_demand).c_str());
  std::printf("  %-16s%s\n", "reserved (1 yr)", price_text(p.reserved).c_str());
  std::printf("  %-16s%s\n", "spot", price_text(p.spot).c_str());
  std::printf("\nVersions of %s\n", p.sku.c_str());
  std::printf("  %-20s %-9s %s\n", "EFFECTIVE FROM", "VERSION", "ON DEMAND");
  for (const GpuInstancePrice* v : versions) {
    std::printf("  %-20s %-9lld %s%s\n", when_text(v->effective_from).c_str(),
                (long long)v->version, price_text(v->on_demand).c_str(), v == &p ? "   <- in effect" : "");
  }
}

int run_show(const ShowOptions& o) {
  EpochSeconds at = 0;
  if (!parse_when(o.at, now_seconds(), at))
    return usage_error("--at: \"" + o.at + "\" is not a date like 2026-07-24");
  auto opened = open_ledger_with_catalog(o.db);
  if (!opened) return report_error(opened.error());
  const pricing::Catalog* catalog = &opened->catalog;

  auto model_versions = catalog->model_versions(o.name);
  if (!model_versions.empty()) {
    const ModelPrice* p = catalog->find_model(o.name, at);
    if (p == nullptr)
      return report_error(Error{ErrorCode::kNotFound,
                                model_versions.front()->model + " has no price in effect at " +
                                    format_timestamp(at) + "; its first price starts " +
                                    format_timestamp(model_versions.front()->effective_from)});
    if (o.format == "json") print_model_json(o, at, *p, model_versions);
    else print_model_table(o, at, *p, model_versions);
    return kExitOk;
  }
  auto gpu_versions = catalog->gpu_instance_versions(o.name);
  if (!gpu_versions.empty()) {
    const GpuInstancePrice* p = catalog->find_gpu_instance(o.name, at);
    if (p == nullptr)
      return report_error(Error{ErrorCode::kNotFound,
                                gpu_versions.front()->sku + " has no price in effect at " +
                                    format_timestamp(at) + "; its first price starts " +
                                    format_timestamp(gpu_versions.front()->effective_from)});
    print_gpu(o, at, *p, gpu_versions);
    return kExitOk;
  }
  std::string message = "no model or instance SKU named \"" + o.name + "\" in the price catalog";
  std::vector<std::string> similar = similar_names(*catalog, o.name);
  if (!similar.empty()) {
    message += "; did you mean: ";
    for (size_t i = 0; i < similar.size(); ++i) message += (i ? ", " : "") + similar[i];
  }
  return report_error(Error{ErrorCode::kNotFound, message});
}

// --- prices list -----------------------------------------------------------------------

struct ListOptions {
  std::string provider, at, db, format = "table";
};

// Rows of text cells printed as aligned columns, CSV or JSON objects.
void print_rows(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                const std::string& format, std::string_view title, size_t numeric_from) {
  if (format == "csv") {
    for (size_t i = 0; i < header.size(); ++i) std::printf("%s%s", i ? "," : "", csv_escape(header[i]).c_str());
    std::printf("\n");
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) std::printf("%s%s", i ? "," : "", csv_escape(row[i]).c_str());
      std::printf("\n");
    }
    return;
  }
  if (format == "json") {
    std::printf("\"%s\":[", json_escape(title).c_str());
    for (size_t r = 0; r < rows.size(); ++r) {
      std::printf("%s{", r ? "," : "");
      for (size_t i = 0; i < header.size(); ++i) {
        const std::string& cell = rows[r][i];
        bool number = i >= numeric_from && cell != "-";
        std::printf("%s\"%s\":%s", i ? "," : "", json_escape(lower(header[i])).c_str(),
                    number ? cell.c_str() : cell == "-" ? "null" : json_string(cell).c_str());
      }
      std::printf("}");
    }
    std::printf("]");
    return;
  }
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      std::string pad(width[i] - cells[i].size(), ' ');
      out += i >= numeric_from ? pad + cells[i] : cells[i] + pad;
      if (i + 1 < cells.size()) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::printf("%s\n", out.c_str());
  };
  line(header);
  for (const auto& row : rows) line(row);
}

int run_list(const ListOptions& o) {
  EpochSeconds at = 0;
  if (!parse_when(o.at, now_seconds(), at))
    return usage_error("--at: \"" + o.at + "\" is not a date like 2026-07-24");
  auto opened = open_ledger_with_catalog(o.db);
  if (!opened) return report_error(opened.error());
  const pricing::Catalog* catalog = &opened->catalog;
  std::string provider = lower(o.provider);
  auto wanted = [&](const std::string& p) { return provider.empty() || lower(p) == provider; };

  // model_prices() is grouped by name in date order: the last one not after `at` per name wins.
  std::map<std::string, const ModelPrice*> models;
  for (const ModelPrice* p : catalog->model_prices()) {
    if (p->effective_from <= at && wanted(p->provider)) models[p->model] = p;
  }
  std::map<std::string, const GpuInstancePrice*> gpus;
  for (const GpuInstancePrice* p : catalog->gpu_instance_prices()) {
    if (p->effective_from <= at && wanted(p->provider)) gpus[p->sku] = p;
  }
  std::vector<std::vector<std::string>> model_rows, gpu_rows;
  for (const auto& [name, p] : models) {
    model_rows.push_back({p->model, p->provider, p->mode, format_date(p->effective_from), p->currency,
                          price_text(p->prices.input), price_text(p->prices.cached_input),
                          price_text(p->prices.output)});
  }
  for (const auto& [sku, p] : gpus) {
    gpu_rows.push_back({p->sku, p->provider, p->gpu_type.empty() ? "-" : p->gpu_type,
                        format_date(p->effective_from), p->currency, std::to_string(p->gpus),
                        price_text(p->on_demand), price_text(p->reserved), price_text(p->spot)});
  }
  std::vector<std::string> model_header = {"MODEL", "PROVIDER", "MODE", "EFFECTIVE", "CURRENCY",
                                           "INPUT", "CACHED_INPUT", "OUTPUT"};
  std::vector<std::string> gpu_header = {"SKU", "PROVIDER", "GPU_TYPE", "EFFECTIVE", "CURRENCY",
                                         "GPUS", "ON_DEMAND", "RESERVED", "SPOT"};
  if (o.format == "json") {
    std::printf("{");
    print_rows(model_header, model_rows, o.format, "models", 5);
    std::printf(",");
    print_rows(gpu_header, gpu_rows, o.format, "gpu_instances", 5);
    std::printf("}\n");
    return kExitOk;
  }
  if (o.format == "csv") {
    // One CSV per kind would need two files; models are what people list, so CSV lists models
    // unless only instances match.
    if (!model_rows.empty() || gpu_rows.empty()) print_rows(model_header, model_rows, o.format, "", 5);
    else print_rows(gpu_header, gpu_rows, o.format, "", 5);
    return kExitOk;
  }
  if (!model_rows.empty()) {
    std::printf("Model prices per 1M tokens in effect at %s (%zu)\n", format_date(at).c_str(), model_rows.size());
    print_rows(model_header, model_rows, o.format, "", 5);
  }
  if (!gpu_rows.empty()) {
    if (!model_rows.empty()) std::printf("\n");
    std::printf("Instance prices per hour in effect at %s (%zu)\n", format_date(at).c_str(), gpu_rows.size());
    print_rows(gpu_header, gpu_rows, o.format, "", 5);
  }
  if (model_rows.empty() && gpu_rows.empty())
    std::printf("no prices%s in effect at %s\n",
                provider.empty() ? "" : (" for provider " + o.provider).c_str(), format_date(at).c_str());
  return kExitOk;
}

}  // namespace

void add_prices_command(CLI::App& app, int& exit_code) {
  CLI::App* prices = app.add_subcommand(
      "prices", "Import, show and list model token prices and GPU instance prices");
  prices->footer(
      "The price catalog holds token prices per model and hourly prices per GPU instance, each\n"
      "with the date it takes effect. The ledger starts with a built-in catalog (LiteLLM's\n"
      "prices and common instance SKUs); import newer prices or your negotiated ones, and look\n"
      "up what was in effect when. Format of catalog files: docs/configuration.md.");
  prices->require_subcommand(1);

  CLI::App* import = prices->add_subcommand(
      "import", "Import prices into the ledger from LiteLLM's JSON file or a catalog YAML file");
  import->footer("Importing the same prices again changes nothing; a changed price is stored as a new\n"
                 "version from its effective date, and older records keep the version they used.");
  import->require_subcommand(1);

  auto litellm_options = std::make_shared<ImportLitellmOptions>();
  CLI::App* litellm = import->add_subcommand(
      "litellm", "Import LiteLLM's model_prices_and_context_window.json");
  litellm->footer(
      "Every model with token prices is imported, converted exactly to prices per 1M tokens.\n"
      "Prices already stored with the same content and date are left alone. With --out, catalog\n"
      "YAML is written instead and the ledger is not touched (config/prices.yaml is made this\n"
      "way; see config/README.md).");
  litellm->add_option("FILE", litellm_options->file, "the LiteLLM JSON file")->required()->check(CLI::ExistingFile);
  litellm->add_option("--db", litellm_options->db, "ledger path or PostgreSQL URL (default: $AIFINOPS_DB, else ./aifinops.db; docs/postgresql.md)");
  litellm->add_option("--effective", litellm_options->effective,
                      "date the prices take effect, e.g. the file's snapshot date (default: today, UTC)");
  litellm->add_option("--out", litellm_options->out, "write catalog YAML to this file instead of the ledger");
  litellm->add_option("--mode", litellm_options->modes,
                      "keep only models of these modes, comma-separated (e.g. chat,embedding); default: all")
      ->delimiter(',');
  litellm->add_option("--source", litellm_options->source,
                      "provenance text stored with each price (default: names LiteLLM, the file and date)");
  litellm->callback([litellm_options, &exit_code] { exit_code = run_import_litellm(*litellm_options); });

  auto catalog_options = std::make_shared<ImportCatalogOptions>();
  CLI::App* catalog = import->add_subcommand(
      "catalog", "Import a price catalog YAML file, e.g. your negotiated prices");
  catalog->footer(
      "The file lists models (per 1M tokens) and GPU instances (per hour) with effective dates;\n"
      "its format is in docs/configuration.md, section 'Price catalog'.");
  catalog->add_option("FILE", catalog_options->file, "the catalog YAML file")->required()->check(CLI::ExistingFile);
  catalog->add_option("--db", catalog_options->db, "ledger path or PostgreSQL URL (default: $AIFINOPS_DB, else ./aifinops.db; docs/postgresql.md)");
  catalog->callback([catalog_options, &exit_code] { exit_code = run_import_catalog(*catalog_options); });

  auto show_options = std::make_shared<ShowOptions>();
  CLI::App* show = prices->add_subcommand(
      "show", "Show the price of a model or GPU instance SKU in effect at a date");
  show->footer(
      "Shows each token kind per 1M tokens (or an instance's hourly prices), the price's\n"
      "effective date, version and source, and the other versions of the same name. Model names\n"
      "are matched like priced records: case-insensitive, without a provider prefix\n"
      "(openai/gpt-4o) or a dated snapshot suffix (gpt-4o-2024-08-06). An unknown name exits\n"
      "with status 1 and suggests similar ones.");
  show->add_option("NAME", show_options->name, "model name or instance SKU")->required();
  show->add_option("--at", show_options->at, "date or RFC 3339 timestamp (default: now)");
  show->add_option("--db", show_options->db, "ledger path or PostgreSQL URL (default: $AIFINOPS_DB, else ./aifinops.db; docs/postgresql.md)");
  show->add_option("--format", show_options->format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  show->callback([show_options, &exit_code] { exit_code = run_show(*show_options); });

  auto list_options = std::make_shared<ListOptions>();
  CLI::App* list = prices->add_subcommand(
      "list", "List the model and instance prices in effect at a date");
  list->footer("For each name, the latest version in effect at --at (default: now) is listed. Token\n"
               "prices are per 1M tokens, instance prices per hour. CSV lists the models, or the\n"
               "instances when no model matches.");
  list->add_option("--provider", list_options->provider, "only this provider (openai, anthropic, aws, ...)");
  list->add_option("--at", list_options->at, "date or RFC 3339 timestamp (default: now)");
  list->add_option("--db", list_options->db, "ledger path or PostgreSQL URL (default: $AIFINOPS_DB, else ./aifinops.db; docs/postgresql.md)");
  list->add_option("--format", list_options->format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  list->callback([list_options, &exit_code] { exit_code = run_list(*list_options); });
}

}  // namespace aifinops::cli
