#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>

#include "allocate/shared_costs.h"
#include "allocate/tag_policy.h"

namespace aifinops::server {
namespace {

std::string sha256_raw(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool same_dimension(const ledger::Dimension& a, const ledger::Dimension& b) {
  return a.kind == b.kind && a.attribute == b.attribute && a.tag_keys == b.tag_keys &&
         a.grain == b.grain;
}

}  // namespace

std::string sha256_hex(std::string_view text) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : sha256_raw(text)) {
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  }
  return out;
}

std::string new_api_token() {
  static const char* kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string token = "aif_";
  while (token.size() < 4 + 43) {  // 43 base62 characters carry 256 bits
    unsigned char byte;
    if (RAND_bytes(&byte, 1) != 1) std::abort();  // no randomness: never hand out a weak token
    if (byte >= 248) continue;                    // 248 = 4 * 62: no modulo bias
    token += kAlphabet[byte % 62];
  }
  return token;
}

Result<std::vector<Principal>> principals_from_policy(const config::Policy& policy) {
  std::vector<Principal> out;
  for (const config::ApiToken& token : policy.api_tokens) {
    Principal p;
    p.id = token.id;
    p.scope = token.scope;
    for (const auto& [name, values] : token.restrict) {
      auto d = allocate::resolve_dimension(policy.tags, name);
      if (!d)
        return make_error(ErrorCode::kInvalidArgument,
                          policy.source + ":" + std::to_string(token.line) + ": api_tokens " +
                              token.id + ": restrict." + name + ": " + d.error().message);
      std::vector<std::string> sorted = values;
      std::sort(sorted.begin(), sorted.end());
      sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
      p.restrict.emplace_back(*d, sorted);
    }
    std::sort(p.restrict.begin(), p.restrict.end(),
              [](const auto& a, const auto& b) { return a.first.label < b.first.label; });
    for (const auto& [d, values] : p.restrict) {
      p.restriction_key += d.label + "=";
      for (size_t i = 0; i < values.size(); ++i) p.restriction_key += (i ? "|" : "") + values[i];
      p.restriction_key += ";";
    }
    out.push_back(std::move(p));
  }
  return out;
}

TokenTable::TokenTable(const config::Policy& policy, std::vector<Principal> principals) {
  for (size_t i = 0; i < policy.api_tokens.size() && i < principals.size(); ++i) {
    const std::string& hex = policy.api_tokens[i].token_sha256;
    std::string raw;
    for (size_t j = 0; j + 1 < hex.size(); j += 2)
      raw += static_cast<char>(hex_value(hex[j]) * 16 + hex_value(hex[j + 1]));
    entries_.push_back({std::move(raw), std::move(principals[i])});
  }
}

const Principal* TokenTable::find(std::string_view token) const {
  if (token.empty()) return nullptr;
  const std::string presented = sha256_raw(token);
  const Principal* found = nullptr;
  for (const Entry& e : entries_) {
    bool equal = e.sha256.size() == presented.size() &&
                 CRYPTO_memcmp(e.sha256.data(), presented.data(), presented.size()) == 0;
    if (equal && found == nullptr) found = &e.principal;  // keep comparing: constant time
  }
  return found;
}

config::Policy restrict_policy(const config::Policy& policy, const Principal& principal) {
  if (!principal.restricted()) return policy;
  config::Policy out = policy;
  out.shared_costs.clear();
  // Allowed values name other teams: keep the wildcard patterns and the viewer's own values.
  for (const allocate::DimensionRule& rule : policy.tags.rules()) {
    if (rule.allowed.empty()) continue;
    for (const auto& [dimension, values] : principal.restrict) {
      if (dimension.kind != ledger::Dimension::Kind::kAttribute ||
          dimension.attribute != rule.attribute)
        continue;
      std::vector<std::string> visible;
      for (const std::string& a : rule.allowed) {
        bool pattern = a.find('*') != std::string::npos;
        if (pattern || std::find(values.begin(), values.end(), a) != values.end())
          visible.push_back(a);
      }
      // None of the viewer's values is allowed: a value no record has keeps them invalid.
      if (visible.empty()) visible.push_back("\x01not-allowed");
      out.tags.extend(attribute_name(rule.attribute), {}, visible, rule.required);
    }
  }
  std::erase_if(out.budgets, [&](const BudgetRule& b) {
    for (const auto& [dimension, values] : principal.restrict) {
      // Inside the restriction: the budget's scope pins this dimension to an allowed value.
      bool inside = false;
      for (const auto& [name, value] : b.scope) {
        auto d = allocate::resolve_dimension(policy.tags, name);
        if (d && same_dimension(*d, dimension) &&
            std::find(values.begin(), values.end(), value) != values.end())
          inside = true;
      }
      if (!inside) return true;
    }
    return false;
  });
  return out;
}

}  // namespace aifinops::server
