// API tokens for `aifinops serve`: who a bearer token belongs to, looked up by its SHA-256
// and compared in constant time, and the records a restricted viewer may see.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/policy_yaml.h"
#include "core/result.h"
#include "ledger/ledger.h"

namespace aifinops::server {

/// The caller of an API request, built once from an api_tokens entry. A restricted viewer
/// sees only records whose `restrict` dimensions take one of the listed values.
struct Principal {
  std::string id;
  config::ApiScope scope = config::ApiScope::kViewer;
  /// Resolved dimensions with their allowed values; empty for an unrestricted token.
  std::vector<std::pair<ledger::Dimension, std::vector<std::string>>> restrict;
  /// "team=team-a|team-c;project=x": equal for tokens that see the same records, so that
  /// cached answers are shared between them and never across them.
  std::string restriction_key;

  bool restricted() const { return !restrict.empty(); }
};

/// The tokens of a policy file as principals; an unknown dimension in `restrict` is an
/// error naming the token and the policy line.
Result<std::vector<Principal>> principals_from_policy(const config::Policy& policy);

/// Finds the principal of a presented token. Immutable after construction, so safe to
/// share between threads.
class TokenTable {
 public:
  TokenTable(const config::Policy& policy, std::vector<Principal> principals);

  /// The token's principal, or nullptr. Every entry is compared (CRYPTO_memcmp on the
  /// SHA-256), so the time taken says nothing about which entry came close.
  const Principal* find(std::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string sha256;  ///< 32 raw bytes
    Principal principal;
  };
  std::vector<Entry> entries_;
};

/// SHA-256 of text as 64 lower-case hex digits (what api_tokens stores).
std::string sha256_hex(std::string_view text);

/// A new random token: "aif_" + 43 base62 characters (256 bits) from the system CSPRNG.
std::string new_api_token();

/// The policy as a restricted viewer may see it: only budgets whose scope lies inside the
/// restriction, no shared-cost rules (their weights and receivers name other teams; the
/// viewer's --allocated report shows its own records' cost), and a restricted dimension's
/// allowed values cut to the viewer's own (wildcard patterns stay).
config::Policy restrict_policy(const config::Policy& policy, const Principal& principal);

}  // namespace aifinops::server
