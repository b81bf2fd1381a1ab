// ApiServer: the HTTP side of `aifinops serve`: bearer-token authentication, the REST
// endpoints under /api/v1/ (handlers supplied by the caller), an answer cache per ledger
// version, /metrics and the dashboard's static files. Boost.Beast stays in api_server.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/policy_yaml.h"
#include "core/result.h"
#include "ledger/ledger.h"
#include "server/auth.h"

namespace aifinops::server {

/// Query parameters in the order given, percent-decoded ("+" is a space).
using QueryParams = std::vector<std::pair<std::string, std::string>>;

/// One authenticated API call as a handler sees it.
struct ApiRequest {
  std::string endpoint;  ///< the path after /api/v1/: "report", "tags/audit"
  const QueryParams& params;
  const Principal& principal;
  ledger::Ledger& ledger;        ///< read-only; restricted to what the principal may see
  const config::Policy& policy;  ///< restrict_policy() for the principal
};

struct ApiResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

using ApiHandler = std::function<ApiResponse(const ApiRequest&)>;

/// Everything the server needs, built by the caller (cli/serve_command.cc).
struct ApiServerOptions {
  std::string listen = "127.0.0.1:8080";
  /// The dashboard's built files; "/" and unknown non-API paths answer index.html.
  std::string web_root;
  int threads = 4;
  /// How long a cached answer stays valid while the ledger does not change (analyses
  /// that default to "now", such as budgets, move on with the clock).
  int64_t cache_ttl_s = 300;
  /// Opens one more connection to the ledger; called lazily, once per concurrent request.
  std::function<Result<std::unique_ptr<ledger::Ledger>>()> open_ledger;
  /// Run by start() before the port is bound, on the first of the `threads` connections it
  /// opens ahead of the first calls: what every process pays once (serve reads the rollup
  /// sums into the cache its connections share), paid before anyone waits for an answer.
  /// An error stops start().
  std::function<Result<void>(ledger::Ledger&)> prepare;
  /// A text that changes whenever the ledger changes (for SQLite: the database and WAL
  /// files' modification times and sizes). When unset, the batches' count and last id.
  std::function<std::string()> ledger_version;
  config::Policy policy;
  std::vector<Principal> principals;  ///< in policy.api_tokens order
  /// Endpoint path under /api/v1/ -> handler (GET).
  std::map<std::string, ApiHandler> endpoints;
  /// GET /metrics (authenticated like the API).
  ApiHandler metrics;
  /// GET /api/v1/openapi.json (served without a token: it holds no data).
  std::string openapi_json;
  /// Answers computed in the background at start, for each distinct restriction, and again
  /// after each ledger change and before they expire, so that the dashboard's first page
  /// does not wait for them: "report?grain=month", "metrics".
  std::vector<std::string> warm;
  /// start() computes the warm answers once before the port opens (after `prepare`), so that
  /// no call can arrive before they are ready; the background refresher then keeps them.
  bool warm_before_listen = false;
  /// Endpoints whose last answer keeps being served, marked x-aifinops-cache: stale, while
  /// the background refresher computes the new one after a ledger change or expiry: a call
  /// never waits for a slow analysis (recommendations) or a scrape for /metrics. An answer
  /// from before a change is served until the new one is ready (at most
  /// `refresh_min_gap_ms` plus the computation). Only answers already cached are served
  /// stale; a first call computes (and concurrent first calls share one computation).
  std::vector<std::string> background;
  /// Ledger query answers kept per ledger version and shared by every request (QueryMemo),
  /// in cells (a row's keys and value): an analysis repeating another's query over an
  /// unchanged ledger (the recommendation kinds' window sums, another window or kind) does
  /// not sum it again. 0: off.
  size_t query_memo_cells = 0;
  /// How often the refresher checks the ledger version (a stat of the files for SQLite).
  int64_t refresh_interval_ms = 1'000;
  /// Successive refresh rounds triggered by ledger changes start at least this far apart,
  /// so that a ledger written every second (a busy gateway) does not keep a core busy.
  int64_t refresh_min_gap_ms = 5'000;
  /// POST /v1/traces, the OTLP/HTTP trace receiver (docs/sources.md): called with a JSON
  /// body from an admin token; unset, the path is 404. Other content types get 415 without
  /// a call (only OTLP/JSON is read).
  std::function<ApiResponse(std::string_view body)> otlp_traces;
  /// The largest body /v1/traces reads; the API itself takes no bodies (64 KiB cap).
  size_t otlp_body_limit = 16 * 1024 * 1024;
};

/// The server. start() binds, run() serves on `threads` threads until stop(). Handlers run
/// on those threads, one ledger connection each (a small pool), so a slow analysis does not
/// hold up cached answers or static files on the other threads.
class ApiServer {
 public:
  explicit ApiServer(ApiServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  /// Opens the ledger connections and runs `prepare`, then binds and listens: a caller that
  /// can connect gets answers that do not wait for start-up work.
  Result<void> start();
  int port() const;
  void run();
  /// Stops accepting and returns from run() once in-flight requests end (up to grace_ms).
  void stop(int64_t grace_ms = 5'000);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// {"error":{"message":"...","parameter":"by"}}; parameter null when empty.
std::string api_error_json(std::string_view message, std::string_view parameter = {});

/// Splits and percent-decodes a query string ("a=1&b=x%2Cy").
QueryParams parse_query(std::string_view query);

/// The Content-Type for a static file by its extension.
std::string_view content_type_for(std::string_view path);

}  // namespace aifinops::server
