// Posting JSON to a webhook (a Slack incoming webhook, or anything that takes its shape)
// over HTTP or HTTPS, with one deadline for the whole exchange and errors that say which
// step failed. Webhook paths are secrets, so messages name only scheme, host and port.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.h"

namespace aifinops::analyze {

/// A webhook address split for the client.
struct WebhookUrl {
  bool tls = false;
  std::string host;
  std::string port;    ///< "443" / "80" unless given
  std::string target;  ///< path and query, "/" when empty
  /// "https://hooks.slack.com:443": what messages may show.
  std::string origin() const;
};

/// Reads http://HOST[:PORT][/PATH] or https://...; the error says what is wrong.
Result<WebhookUrl> parse_webhook_url(std::string_view url);

/// POSTs `json` (Content-Type: application/json) and succeeds on a 2xx answer. HTTPS checks
/// the certificate against the system's CA store and the host name. Fails after `timeout`
/// with the step that was waiting (resolve, connect, TLS handshake, send, answer).
/// Blocking; thread-safe (each call has its own I/O context).
Result<void> post_webhook(const WebhookUrl& url, const std::string& json,
                          std::chrono::milliseconds timeout);

}  // namespace aifinops::analyze
