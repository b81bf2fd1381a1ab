// aifinops serve: the REST API, the dashboard's static files and /metrics in one process.
// Every analysis endpoint runs the CLI command of the same name (its flags as query
// parameters, --format json), so the API answers exactly what the CLI prints.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <thread>
#include <unordered_map>

#include "allocate/shared_costs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_output.h"
#include "ingest/otlp.h"
#include "ledger/sqlite/sqlite_ledger.h"
#include "server/api_server.h"
#include "server/auth.h"
#include "server/ledger_metrics.h"
#include "server/openapi.h"

namespace aifinops::cli {
namespace {

struct ServeFlags {
  std::string db;
  std::string listen = "127.0.0.1:8080";
  std::string config;
  std::vector<std::string> business;
  std::string web_root;
  int threads = 4;
  int cache_ttl = 300;
  bool no_warm = false;
};

struct TokenFlags {
  std::string id;
  std::string scope = "viewer";
  std::vector<std::string> restrict;
};

/// An analysis endpoint and the CLI command it runs.
struct AnalysisEndpoint {
  const char* path;
  std::vector<std::string> command;
  void (*add)(CLI::App&, int&, const CommandEnv&);
  /// The command prints the ledger it read (recommend's inputs.ledger): it is given serve's
  /// --db, which the answer then names by its file name only (hide_server_paths).
  bool names_ledger = false;
};

const std::vector<AnalysisEndpoint>& analysis_endpoints() {
  static const std::vector<AnalysisEndpoint> kEndpoints = {
      {"report", {"report"}, add_report_command},
      {"kpi", {"kpi"}, add_kpi_command},
      {"budgets", {"budgets", "status"}, add_budgets_command},
      {"anomalies", {"anomalies"}, add_anomalies_command},
      {"forecast", {"forecast"}, add_forecast_command},
      {"tags/audit", {"tags", "audit"}, add_tags_command},
      {"maturity", {"maturity"}, add_maturity_command},
      {"recommendations", {"recommend"}, add_recommend_command, true},
      {"reconcile", {"reconcile"}, add_reconcile_command},
  };
  return kEndpoints;
}

/// Flags the server sets itself: the ledger, the policy and the business inputs are the
/// ones `serve` was started with, never a path a caller names (recommend's --rates too: a
/// caller naming a server file would read it back through the parse errors).
bool server_owned(const std::string& name) {
  return name == "db" || name == "config" || name == "business" || name == "rates" ||
         name == "help" || name == "h";
}

/// The parameter a command's message is about: its first "--flag", as "flag".
std::string parameter_of(const std::string& message) {
  static const std::regex kFlag("--([a-z][a-z0-9-]*)");
  std::smatch m;
  if (std::regex_search(message, m, kFlag)) return m[1].str();
  return "";
}

server::ApiResponse bad_request(const std::string& message, const std::string& parameter) {
  return {400, server::api_error_json(message, parameter)};
}

/// The server's files (the ledger, business inputs) named by their file name only: answers
/// name the files they read (recommend's inputs, the KPIs' business_files and sources), and
/// where they sit on the server is no caller's business.
std::string hide_server_paths(std::string body, const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    const std::string name = std::filesystem::path(path).filename().string();
    if (name.empty() || name == path) continue;
    std::string escaped;  // as a JSON string holds it, for paths with quotes or backslashes
    append_json_string(escaped, path);
    escaped = escaped.substr(1, escaped.size() - 2);
    for (const std::string& from : {path, escaped}) {
      for (size_t at = body.find(from); at != std::string::npos; at = body.find(from, at)) {
        body.replace(at, from.size(), name);
        at += name.size();
      }
    }
  }
  return body;
}

/// The command's subcommand object for an endpoint ("budgets status" -> the status app).
CLI::App* find_command(CLI::App& app, const std::vector<std::string>& command) {
  CLI::App* at = &app;
  for (const std::string& name : command) at = at->get_subcommand(name);
  return at;
}

/// Runs an analysis command for an API request: the query parameters become its flags,
/// its stdout becomes the response.
server::ApiResponse run_analysis(const AnalysisEndpoint& endpoint, const server::ApiRequest& req,
                                 const std::vector<std::string>& business, const std::string& db) {
  CLI::App app;
  int exit_code = kExitOk;
  char* buffer = nullptr;
  size_t length = 0;
  std::FILE* out = open_memstream(&buffer, &length);
  if (out == nullptr) return {500, server::api_error_json("cannot allocate an output buffer")};
  std::string error_message;
  ErrorCode error_code = ErrorCode::kInternal;
  CommandEnv env;
  env.out = out;
  env.business_from_working_directory = false;  // only serve's own --business files
  env.policy = [&req](const std::string&) -> Result<config::Policy> { return req.policy; };
  env.ledger = [&req](const std::string&) -> Result<ledger::Ledger*> { return &req.ledger; };
  env.usage_error = [&](const std::string& message) {
    error_message = message;
    error_code = ErrorCode::kInvalidArgument;
    return kExitUsage;
  };
  env.report_error = [&](const Error& error) {
    error_message = error.message;
    error_code = error.code;
    return kExitError;
  };
  endpoint.add(app, exit_code, env);
  CLI::App* command = find_command(app, endpoint.command);

  std::vector<std::string> args = {"aifinops"};
  args.insert(args.end(), endpoint.command.begin(), endpoint.command.end());
  bool format_given = false;
  for (const auto& [name, value] : req.params) {
    if (name == "access_token") continue;
    if (name == "rates") {
      std::fclose(out);
      std::free(buffer);
      return bad_request("parameter rates names a file on the server; the API uses the built-in "
                         "rate tables",
                         name);
    }
    if (server_owned(name)) {
      std::fclose(out);
      std::free(buffer);
      return bad_request("parameter " + name + " is set by the server (aifinops serve --" +
                             (name == "h" ? std::string("help") : name) + ")",
                         name);
    }
    const CLI::Option* option = command->get_option_no_throw("--" + name);
    if (option == nullptr) {
      std::string names;
      for (const CLI::Option* o : command->get_options()) {
        std::string long_name = o->get_name(false, true);
        if (long_name.rfind("--", 0) != 0) continue;
        long_name = long_name.substr(2);
        if (server_owned(long_name)) continue;
        names += (names.empty() ? "" : ", ") + long_name;
      }
      std::fclose(out);
      std::free(buffer);
      return bad_request("unknown parameter " + name + " for /api/v1/" + endpoint.path +
                             "; the parameters are " + names,
                         name);
    }
    if (name == "format") {
      format_given = true;
      if (value != "json" && value != "csv") {
        std::fclose(out);
        std::free(buffer);
        return bad_request("format " + value + ": the API answers json (default) or csv", name);
      }
    }
    if (option->get_type_size() == 0) {  // a flag: present, "true" or "1" turn it on
      if (value.empty() || value == "true" || value == "1") {
        args.push_back("--" + name);
      } else if (value != "false" && value != "0") {
        std::fclose(out);
        std::free(buffer);
        return bad_request(name + "=" + value + ": a flag takes true or false", name);
      }
      continue;
    }
    if (option->get_expected_max() > 1 && option->get_delimiter() == '\0') {
      // A repeatable flag (--filter): a comma list is the same as repeating the parameter.
      std::string_view rest = value;
      for (;;) {
        size_t comma = rest.find(',');
        args.push_back("--" + name + "=" + std::string(rest.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
      }
      continue;
    }
    args.push_back("--" + name + "=" + value);  // "=" keeps values such as -5 whole
  }
  if (!format_given) args.push_back("--format=json");
  if (endpoint.names_ledger) args.push_back("--db=" + db);
  // Business inputs name projects, GPU pools and workloads of every team, and some KPIs come
  // from them alone (time to value): a restricted viewer gets none.
  // TODO: keep the entries whose scope lies inside the restriction, as budgets do.
  if (command->get_option_no_throw("--business") != nullptr && !req.principal.restricted())
    for (const std::string& file : business) args.push_back("--business=" + file);

  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    std::fclose(out);
    std::free(buffer);
    std::string message = e.what();
    return bad_request(message, parameter_of(message));
  }
  std::fclose(out);
  std::vector<std::string> server_files = business;
  server_files.push_back(db);
  std::string body = hide_server_paths(std::string(buffer, length), server_files);
  std::free(buffer);
  if (exit_code == kExitUsage) return bad_request(error_message, parameter_of(error_message));
  if (exit_code != kExitOk) {
    int status = error_code == ErrorCode::kInvalidArgument ? 400 : 500;
    return {status, server::api_error_json(error_message, parameter_of(error_message))};
  }
  bool csv = false;
  for (const auto& [name, value] : req.params) csv |= name == "format" && value == "csv";
  return {200, std::move(body), csv ? "text/csv; charset=utf-8" : "application/json"};
}

/// The dimensions a filter picker offers, with their values and spend (largest first).
server::ApiResponse list_dimensions(const server::ApiRequest& req) {
  std::optional<EpochSeconds> from, to;
  std::string from_text, to_text, period;
  constexpr size_t kMaxValues = 500;
  for (const auto& [name, value] : req.params) {
    if (name == "access_token") continue;
    if (name == "from")
      from_text = value;
    else if (name == "to")
      to_text = value;
    else if (name == "period")
      period = value;
    else
      return bad_request("unknown parameter " + name +
                             " for /api/v1/dimensions; the parameters are from, to, period",
                         name);
  }
  if (auto r = read_time_flags(period, from_text, to_text, from, to); !r)
    return bad_request(r.error().message, parameter_of(r.error().message));
  std::vector<std::pair<std::string, std::string>> names = {{"provider", "billing"},
                                                            {"service", "billing"},
                                                            {"service_category", "billing"},
                                                            {"region", "billing"},
                                                            {"charge_category", "billing"},
                                                            {"billing_account", "billing"},
                                                            {"sub_account", "billing"},
                                                            {"resource_type", "billing"},
                                                            {"model", "ai"},
                                                            {"operation", "ai"},
                                                            {"gpu", "ai"}};
  for (const allocate::DimensionRule& rule : req.policy.tags.rules())
    names.emplace_back(std::string(attribute_name(rule.attribute)), "allocation");
  for (const allocate::CustomDimension& c : req.policy.tags.custom_dimensions())
    names.emplace_back(c.name, "custom");
  // One query grouped by every dimension at once (one pass over the rollup), summed per
  // dimension here: a query per dimension would read the rollup twenty times.
  ledger::QuerySpec spec;
  spec.from = from;
  spec.to = to;
  std::vector<std::pair<std::string, std::string>> listed;
  for (const auto& [name, kind] : names) {
    auto d = resolve_dimension(req.policy, name);
    if (!d) continue;
    spec.group_by.push_back(*d);
    listed.emplace_back(name, kind);
  }
  auto result = req.ledger.query(spec);
  if (!result) return {500, server::api_error_json(result.error().message)};
  std::string s = "{\"metric\":\"effective_cost\",\"dimensions\":[";
  for (size_t i = 0; i < listed.size(); ++i) {
    std::unordered_map<std::string_view, __int128> sums;  // views into result->rows
    for (const ledger::QueryRow& row : result->rows) sums[row.keys[i]] += row.value;
    std::vector<std::pair<std::string_view, __int128>> values(sums.begin(), sums.end());
    std::sort(values.begin(), values.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    s += i ? ",{\"name\":" : "{\"name\":";
    append_json_string(s, listed[i].first);
    s += ",\"kind\":\"" + listed[i].second + "\",\"values\":[";
    size_t shown = std::min(values.size(), kMaxValues);
    for (size_t j = 0; j < shown; ++j) {
      s += j ? ",{\"value\":" : "{\"value\":";
      append_json_string(s, values[j].first);
      s += ",\"effective_cost\":" + format_metric(spec.metric, values[j].second, false) + "}";
    }
    s += "],\"truncated\":" + std::string(shown < values.size() ? "true" : "false") + "}";
  }
  s += "]}\n";
  return {200, std::move(s)};
}

/// The OpenAPI document, its parameters read from the very CLI options the endpoints parse.
std::string openapi_document() {
  std::vector<server::OpenApiEndpoint> endpoints;
  for (const AnalysisEndpoint& e : analysis_endpoints()) {
    CLI::App app;
    int exit_code = 0;
    CommandEnv env;
    e.add(app, exit_code, env);
    CLI::App* command = find_command(app, e.command);
    server::OpenApiEndpoint doc;
    doc.path = e.path;
    doc.summary = command->get_description() + " (aifinops " + e.command[0] +
                  (e.command.size() > 1 ? " " + e.command[1] : "") + ")";
    doc.csv = true;
    for (const CLI::Option* o : command->get_options()) {
      std::string name = o->get_name(false, true);
      if (name.rfind("--", 0) != 0) continue;
      name = name.substr(2);
      if (server_owned(name)) continue;
      server::OpenApiParameter p;
      p.name = name;
      p.description = o->get_description();
      if (name == "format") p.description = "json (default) or csv";
      p.flag = o->get_type_size() == 0;
      p.array = !p.flag && o->get_expected_max() > 1;
      doc.parameters.push_back(std::move(p));
    }
    endpoints.push_back(std::move(doc));
  }
  endpoints.push_back(
      {"dimensions",
       "Dimensions and their values with effective cost, for filter pickers",
       {{"from", "Start, inclusive (2025-10-01)", false, false},
        {"to", "End, exclusive", false, false},
        {"period", "A year, quarter, month or day instead of from/to", false, false}},
       "application/json",
       false});
  endpoints.push_back({"/metrics",
                       "Prometheus text: spend this month by team, project, provider and model; "
                       "budget use; open anomalies",
                       {},
                       "text/plain",
                       false});
  return server::openapi_json(endpoints);
}

/// POST /v1/traces: OTLP/HTTP JSON spans into the served ledger. One writer connection,
/// opened at the first export; the mutex serialises ingests (one SQLite writer at a time;
/// the API's readers keep reading the WAL meanwhile).
class OtlpReceiver {
 public:
  OtlpReceiver(std::string db, allocate::TagPolicy tags) : db_(std::move(db)), tags_(std::move(tags)) {}

  server::ApiResponse ingest(std::string_view body) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!opened_) {
      auto opened = open_ledger_with_catalog(db_);
      if (!opened) {
        std::string s = "{\"code\":14,\"message\":";  // UNAVAILABLE: the client retries
        append_json_string(s, opened.error().message);
        return {503, s + "}"};
      }
      opened_ = std::make_unique<LedgerWithCatalog>(std::move(*opened));
    }
    ingest::IngestContext context{*opened_->ledger, opened_->catalog, tags_};
    ingest::IngestOptions options;
    options.format = "otlp";
    auto result = ingest::ingest_otlp_json(context, body, "otlp:serve", options);
    ingest::OtlpResponse response = ingest::otlp_response(result);
    return {response.status, std::move(response.body), response.content_type};
  }

 private:
  std::mutex mutex_;
  std::string db_;
  allocate::TagPolicy tags_;
  std::unique_ptr<LedgerWithCatalog> opened_;
};

std::string default_web_root() {
  if (const char* env = std::getenv("AIFINOPS_WEB_ROOT"); env != nullptr && *env != '\0')
    return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "web";
  return (exe.parent_path() / "web").string();
}

int run_serve(const ServeFlags& flags) {
  if (flags.threads < 1 || flags.threads > 64)
    return usage_error("--threads " + std::to_string(flags.threads) + ": expected 1 to 64");
  if (flags.cache_ttl < 0 || flags.cache_ttl > 86400)
    return usage_error("--cache-ttl " + std::to_string(flags.cache_ttl) +
                       ": expected 0 to 86400 seconds");
  auto policy = load_policy(flags.config);
  if (!policy) return report_error(policy.error());
  auto principals = server::principals_from_policy(*policy);
  if (!principals) return report_error(principals.error());
  if (principals->empty())
    std::fprintf(stderr,
                 "aifinops serve: warning: %s lists no api_tokens, so every API call is refused "
                 "(401); create one with 'aifinops serve tokens new --id NAME --scope viewer'\n",
                 policy->source.empty() ? "the built-in policy" : policy->source.c_str());
  const std::string db = resolve_db_location(flags.db);
  {
    auto probe = open_existing_ledger(flags.db);  // a mistyped --db fails now, not per call
    if (!probe) return report_error(probe.error());
  }
  for (const std::string& file : flags.business) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
      return report_error({ErrorCode::kNotFound, "--business " + file + ": no such file"});
  }

  server::ApiServerOptions options;
  options.listen = flags.listen;
  options.web_root = flags.web_root.empty() ? default_web_root() : flags.web_root;
  options.threads = flags.threads;
  options.cache_ttl_s = flags.cache_ttl;
  // The pool's SQLite connections share one cache of rollup sums: each month of the ledger
  // is read into memory once for the process, not once per connection.
  auto rollups = ledger::SqliteLedger::new_rollup_cache();
  options.open_ledger = [db, rollups]() -> Result<std::unique_ptr<ledger::Ledger>> {
    if (ledger::is_postgres_url(db)) return ledger::open_ledger(db);
    auto opened = ledger::SqliteLedger::open(db, rollups);
    if (!opened) return Unexpected{opened.error()};
    return std::unique_ptr<ledger::Ledger>(std::move(*opened));
  };
  // What a process's first calls would each pay, paid once before the port opens: the rollup
  // sums of the metrics the dashboard's reports, KPIs and recommendations read (effective
  // cost first: nearly every answer sums it), read into the cache the connections share.
  options.prepare = [db](ledger::Ledger& connection) -> Result<void> {
    auto* sqlite = dynamic_cast<ledger::SqliteLedger*>(&connection);
    if (sqlite == nullptr) return {};  // PostgreSQL: the server keeps its own caches
    const auto started = std::chrono::steady_clock::now();
    // Effective cost for every period (reports, budgets, anomalies, forecasts); the others
    // for the KPIs' month and the recommendations' 30-day and GPU windows (two months cover
    // any window ending in the last one).
    using M = ledger::Metric;
    auto rows = sqlite->preload_rollups({{M::kEffectiveCost, 0},
                                         {M::kQuantity, 2},
                                         {M::kTokens, 2},
                                         {M::kInputTokens, 2},
                                         {M::kOutputTokens, 2},
                                         {M::kRequests, 2},
                                         {M::kGpuHours, 2},
                                         {M::kGpuObservedHours, 2},
                                         {M::kCachedTokens, 2}});
    if (!rows) return Unexpected{rows.error()};
    std::fprintf(stderr, "aifinops serve: read %zu rollup rows of %s into memory in %lld ms\n",
                 *rows, std::filesystem::path(db).filename().c_str(),
                 (long long)std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count());
    return {};
  };
  // Any write (an ingest, a gateway flush, a note such as a scheduled anomaly run) moves
  // the ledger's change token: an SQLite file's stat, a PostgreSQL ledger's change counter.
  std::shared_ptr<ledger::ChangeProbe> changes = ledger::make_change_probe(db);
  options.ledger_version = [changes] { return changes->version(); };
  options.policy = *policy;
  options.principals = std::move(*principals);
  const std::vector<std::string> business = flags.business;
  for (const AnalysisEndpoint& e : analysis_endpoints())
    options.endpoints[e.path] = [&e, business, db](const server::ApiRequest& req) {
      return run_analysis(e, req, business, db);
    };
  options.endpoints["dimensions"] = list_dimensions;
  options.metrics = [](const server::ApiRequest& req) -> server::ApiResponse {
    auto text = server::render_ledger_metrics(req.ledger, req.policy,
                                              static_cast<EpochSeconds>(std::time(nullptr)));
    if (!text) return {500, server::api_error_json(text.error().message)};
    return {200, std::move(*text), "text/plain; version=0.0.4; charset=utf-8"};
  };
  auto receiver = std::make_shared<OtlpReceiver>(db, policy->tags);
  options.otlp_traces = [receiver](std::string_view body) { return receiver->ingest(body); };
  options.openapi_json = openapi_document();
  if (!flags.no_warm && flags.cache_ttl > 0)
    // The dashboard's first page and the pickers; docs/dashboard.md lists its calls.
    options.warm = {
        "dimensions",      "report?grain=month", "report?grain=day", "forecast?horizon=30d",
        "recommendations", "maturity",           "tags/audit",       "kpi",
        "metrics"};
  // Query answers shared between requests per ledger version (a million key cells, about
  // 40 MB at most): the recommendation kinds and the KPIs ask many of the same sums.
  options.query_memo_cells = 1'000'000;
  // Computed before the port opens: a dashboard opened as serve starts finds them ready.
  options.warm_before_listen = true;
  // A scrape or the recommendations page never waits for their analysis: the last answer is
  // served while a new one is computed after a ledger change (docs/api.md, "Answer cache").
  if (flags.cache_ttl > 0) options.background = {"metrics", "recommendations"};

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::ApiServer server(std::move(options));
  if (auto started = server.start(); !started) return report_error(started.error());
  std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
  std::fprintf(stderr, "aifinops serve: listening on http://%s:%d/ (ledger %s, web %s)\n",
               host.c_str(), server.port(), db.c_str(),
               (flags.web_root.empty() ? default_web_root() : flags.web_root).c_str());
  std::fflush(stderr);
  std::atomic<bool> finished{false};
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    if (finished) return;  // woken below after run() returned
    std::fprintf(stderr, "aifinops serve: stopping\n");
    server.stop();
  });
  server.run();
  finished = true;
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  std::fprintf(stderr, "aifinops serve: stopped\n");
  return kExitOk;
}

int run_tokens_new(const TokenFlags& flags) {
  if (flags.id.empty()) return usage_error("--id: give the token a name, e.g. --id finance");
  for (char c : flags.id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return usage_error("--id " + flags.id + ": use letters, digits, '-', '_' and '.'");
  std::vector<std::pair<std::string, std::vector<std::string>>> restrict;
  for (const std::string& r : flags.restrict) {
    size_t eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == r.size())
      return usage_error("--restrict " + r + ": expected DIMENSION=VALUE, e.g. team=team-a");
    if (flags.scope == "admin")
      return usage_error("--restrict: an admin token sees everything; use --scope viewer");
    std::string dimension = r.substr(0, eq), value = r.substr(eq + 1);
    if (auto d = ledger::parse_dimension(dimension);
        !d && dimension.find(':') == std::string::npos) {
      // Custom dimensions are checked when serve reads the policy.
      bool plain = std::all_of(dimension.begin(), dimension.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
      if (!plain) return usage_error("--restrict " + r + ": " + d.error().message);
    }
    auto it = std::find_if(restrict.begin(), restrict.end(),
                           [&](const auto& e) { return e.first == dimension; });
    if (it == restrict.end()) {
      restrict.push_back({dimension, {value}});
    } else {
      it->second.push_back(value);
    }
  }
  const std::string token = server::new_api_token();
  std::string line = "  - {id: " + flags.id + ", token_sha256: \"" + server::sha256_hex(token) +
                     "\", scope: " + flags.scope;
  if (!restrict.empty()) {
    line += ", restrict: {";
    for (size_t i = 0; i < restrict.size(); ++i) {
      line += (i ? ", " : "") + restrict[i].first + ": [";
      for (size_t j = 0; j < restrict[i].second.size(); ++j)
        line += (j ? ", " : "") + restrict[i].second[j];
      line += "]";
    }
    line += "}";
  }
  line += "}";
  std::printf("token: %s\n%s\n", token.c_str(), line.c_str());
  std::fprintf(stderr,
               "aifinops: the token is shown once; only its SHA-256 goes into the policy file. "
               "Add the line above under api_tokens: and restart serve.\n");
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve the REST API, the web dashboard and Prometheus /metrics over the ledger, and "
      "receive OTLP/HTTP JSON GenAI spans on POST /v1/traces.");
  cmd->add_option("--db", flags->db, "Ledger path or PostgreSQL URL (default: $AIFINOPS_DB or ./aifinops.db; docs/postgresql.md)");
  cmd->add_option("--listen", flags->listen, "Address and port to listen on")
      ->capture_default_str();
  cmd->add_option("--config", flags->config,
                  "Policy file: api_tokens, dimensions, budgets, shared_costs (default: "
                  "$AIFINOPS_CONFIG, or ./policy.yaml if present)");
  cmd->add_option("--business", flags->business,
                  "Business inputs for /api/v1/kpi and /api/v1/maturity (business.yaml); "
                  "repeat for more");
  cmd->add_option("--web-root", flags->web_root,
                  "The built dashboard (default: $AIFINOPS_WEB_ROOT, else the web folder next to "
                  "the aifinops binary)");
  cmd->add_option("--threads", flags->threads, "Threads serving requests (1 to 64)")
      ->capture_default_str();
  cmd->add_option("--cache-ttl", flags->cache_ttl,
                  "Seconds an API answer is reused while the ledger is unchanged (0: never)")
      ->capture_default_str();
  cmd->add_flag("--no-warm", flags->no_warm,
                "Do not compute the dashboard's first answers (at start, before the port "
                "opens, and in the background after each ledger change)");

  auto token_flags = std::make_shared<TokenFlags>();
  CLI::App* tokens = cmd->add_subcommand("tokens", "Manage API tokens.");
  tokens->require_subcommand(1);
  CLI::App* create = tokens->add_subcommand(
      "new", "Print a new random API token once, and the line to add under api_tokens:.");
  create
      ->add_option("--id", token_flags->id,
                   "The token's name, as api_tokens lists it and errors name it")
      ->required();
  create->add_option("--scope", token_flags->scope, "admin (all, and OTLP spans on POST /v1/traces) or viewer (read)")
      ->check(CLI::IsMember({"admin", "viewer"}))
      ->capture_default_str();
  create->add_option("--restrict", token_flags->restrict,
                     "DIMENSION=VALUE: the viewer sees only these records; repeat for more "
                     "values or dimensions (--restrict team=team-a --restrict team=team-b)");
  create->footer(
      "Examples:\n"
      "  aifinops serve tokens new --id finance --scope viewer\n"
      "  aifinops serve tokens new --id team-a-lead --restrict team=team-a --restrict team=team-b\n"
      "Prints \"token: ...\" (shown once) and the api_tokens line with its SHA-256.");
  create->callback([token_flags, &exit_code] { exit_code = run_tokens_new(*token_flags); });
  cmd->footer(
      "Examples:\n"
      "  aifinops serve --db aifinops.db --config policy.yaml\n"
      "  aifinops serve --listen 127.0.0.1:9090 --business business.yaml\n"
      "  aifinops serve tokens new --id finance --scope viewer\n"
      "  aifinops serve tokens new --id team-a-lead --scope viewer --restrict team=team-a\n"
      "  curl -H 'Authorization: Bearer TOKEN' 'http://127.0.0.1:8080/api/v1/report?by=team'\n"
      "OTLP/HTTP JSON traces (http/json exporters, admin token): POST /v1/traces, "
      "docs/sources.md\n"
      "Endpoints, parameters and auth: docs/api.md\n"
      "Exit codes: 0 stopped cleanly, 1 bad config or start-up error, 2 bad flags.");
  cmd->callback([flags, tokens, &exit_code] {
    if (tokens->parsed()) return;  // `serve tokens new` ran its own callback
    exit_code = run_serve(*flags);
  });
}

}  // namespace aifinops::cli
