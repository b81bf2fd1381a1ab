#include "gateway/response_cache.h"

#include <gtest/gtest.h>

namespace aifinops::gateway {
namespace {

CachedResponse response(size_t bytes) {
  return CachedResponse{"application/json", std::string(bytes, 'x'), {10, 0, 0, 5, 0}, Money{1000}};
}

TEST(ResponseCacheTest, ReturnsWhatWasStoredUntilTheTtlPasses) {
  ManualClock clock;
  MemoryResponseCache cache(1 << 20, 60'000, clock);
  cache.insert("k", response(10));
  ASSERT_TRUE(cache.find("k").has_value());
  EXPECT_EQ(cache.find("k")->cost, Money{1000});
  clock.advance_ms(60'001);
  EXPECT_FALSE(cache.find("k").has_value());
  EXPECT_EQ(cache.bytes(), 0);
}

TEST(ResponseCacheTest, EvictsTheLeastRecentlyUsedToStayWithinItsBytes) {
  ManualClock clock;
  MemoryResponseCache cache(3 * (1000 + 128 + 1 + 16), 60'000, clock);
  cache.insert("a", response(1000));
  cache.insert("b", response(1000));
  cache.insert("c", response(1000));
  ASSERT_TRUE(cache.find("a").has_value());  // a is now the most recent
  cache.insert("d", response(1000));         // evicts b
  EXPECT_TRUE(cache.find("a").has_value());
  EXPECT_FALSE(cache.find("b").has_value());
  EXPECT_TRUE(cache.find("d").has_value());
  EXPECT_LE(cache.bytes(), 3 * (1000 + 128 + 1 + 16));
  cache.insert("huge", response(1 << 20));  // larger than the whole cache: not stored
  EXPECT_FALSE(cache.find("huge").has_value());
}

TEST(ResponseCacheTest, KeysIgnoreWhiteSpaceButNotScopeStreamOrContent) {
  std::string a = response_cache_key("team=a", "/v1/chat/completions", false, R"({"model": "m", "temperature": 0})");
  EXPECT_EQ(a, response_cache_key("team=a", "/v1/chat/completions", false, R"({"model":"m","temperature":0})"));
  EXPECT_NE(a, response_cache_key("team=b", "/v1/chat/completions", false, R"({"model":"m","temperature":0})"));
  EXPECT_NE(a, response_cache_key("team=a", "/v1/chat/completions", true, R"({"model":"m","temperature":0})"));
  EXPECT_NE(a, response_cache_key("team=a", "/v1/chat/completions", false, R"({"model":"m","temperature":1})"));
  EXPECT_EQ(response_cache_key("team=a", "/v1/chat/completions", false, "not json"), "");
}

TEST(ResponseCacheTest, KeysFromADigestAreTheKeysOfTheBody) {
  const char* body = R"({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "hi"}]})";
  std::optional<RequestDigest> digest = request_digest(body);
  ASSERT_TRUE(digest.has_value());
  EXPECT_EQ(response_cache_key("team=a", "/v1/chat/completions", false, *digest),
            response_cache_key("team=a", "/v1/chat/completions", false, body));
  EXPECT_FALSE(request_digest("[1,2]").has_value());  // not an object
  EXPECT_FALSE(request_digest("{\"a\":").has_value());
}

TEST(ResponseCacheTest, TheRequestParseGivesTheDigestOfItsOwnParse) {
  // The server hashes the canonical form parse_request leaves, without a parse of its own:
  // it must be the digest request_digest makes of the same body, for every body that parses.
  for (std::string_view body :
       {std::string_view(R"({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "h\u0069"}]})"),
        std::string_view(R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"n":1.50,"x":[null,false,{}]})"),
        std::string_view(R"({"model":"m"})")}) {
    std::string canonical = "left over from an earlier request";
    auto info = parse_request(WireFormat::kOpenAiChat, body, true, &canonical);
    ASSERT_TRUE(info.has_value()) << body;
    std::optional<RequestDigest> expected = request_digest(body);
    ASSERT_TRUE(expected.has_value()) << body;
    RequestDigest digest = digest_of_canonical(canonical);
    EXPECT_EQ(digest.high, expected->high) << body;
    EXPECT_EQ(digest.low, expected->low) << body;
    std::string alone;
    ASSERT_TRUE(canonical_json(body, alone));
    EXPECT_EQ(alone, canonical) << body;
  }
  // Bodies that differ as JSON values differ in the canonical form parse_request leaves.
  std::string a, b;
  ASSERT_TRUE(parse_request(WireFormat::kOpenAiChat, R"({"model":"m","temperature":0})", true, &a));
  ASSERT_TRUE(parse_request(WireFormat::kOpenAiChat, R"({"model":"m","temperature":1})", true, &b));
  EXPECT_NE(a, b);
  std::string not_object = "kept";
  EXPECT_FALSE(canonical_json("[1,2]", not_object));
  EXPECT_FALSE(canonical_json("{\"a\":", not_object));
}

TEST(ResponseCacheTest, TheDigestIsOfTheJsonValueNotItsSpelling) {
  auto same = [](std::string_view a, std::string_view b) {
    auto da = request_digest(a), db = request_digest(b);
    EXPECT_TRUE(da && db) << a << " / " << b;
    return da && db && da->high == db->high && da->low == db->low;
  };
  EXPECT_TRUE(same(R"({"t": 1.0, "s": "A"})", R"({"t":1.00,"s":"\u0041"})"));
  EXPECT_TRUE(same(R"({"n": null, "b": [true, false], "o": {}})", R"({"n":null,"b":[true,false],"o":{}})"));
  EXPECT_FALSE(same(R"({"a":1,"b":2})", R"({"b":2,"a":1})"));  // member order counts
  EXPECT_FALSE(same(R"({"a":[1,2]})", R"({"a":[2,1]})"));
  EXPECT_FALSE(same(R"({"a":"bc"})", R"({"ab":"c"})"));        // lengths keep keys and values apart
  EXPECT_FALSE(same(R"({"a":["b"]})", R"({"a":"b"})"));
  EXPECT_FALSE(same(R"({"a":[[1],2]})", R"({"a":[[1,2]]})"));  // containers are closed
  EXPECT_FALSE(same(R"({"a":1})", R"({"a":1.5})"));
  EXPECT_FALSE(same(R"({"a":1})", R"({"a":"1"})"));
  EXPECT_FALSE(same(R"({"a":true})", R"({"a":false})"));
  EXPECT_FALSE(same(R"({"a":null})", R"({"a":0})"));
}

TEST(ResponseCacheTest, RepeatFingerprintsIgnoreWhiteSpaceButNotScopeRouteStreamOrContent) {
  auto fingerprint = [](std::string_view scope, std::string_view route, bool stream, std::string_view body) {
    return repeat_fingerprint(scope, route, stream, *request_digest(body));
  };
  const uint64_t a = fingerprint("team=a", "/v1/chat/completions", false, R"({"model": "m", "temperature": 0.7})");
  EXPECT_EQ(a, fingerprint("team=a", "/v1/chat/completions", false, R"({"model":"m","temperature":0.7})"));
  EXPECT_NE(a, fingerprint("team=b", "/v1/chat/completions", false, R"({"model":"m","temperature":0.7})"));
  EXPECT_NE(a, fingerprint("team=a", "/v1/completions", false, R"({"model":"m","temperature":0.7})"));
  EXPECT_NE(a, fingerprint("team=a", "/v1/chat/completions", true, R"({"model":"m","temperature":0.7})"));
  EXPECT_NE(a, fingerprint("team=a", "/v1/chat/completions", false, R"({"model":"m","temperature":0.8})"));
  // Scope and route are kept apart: "ab" + "c" is not "a" + "bc".
  EXPECT_NE(fingerprint("ab", "c", false, "{}"), fingerprint("a", "bc", false, "{}"));
  // A scope longer than the stack buffer takes the other path to the same kind of answer.
  const std::string long_scope(600, 's');
  EXPECT_EQ(fingerprint(long_scope, "/r", false, "{}"), fingerprint(long_scope, "/r", false, "{ }"));
  EXPECT_NE(fingerprint(long_scope, "/r", false, "{}"), fingerprint(long_scope + "t", "/r", false, "{}"));
}

}  // namespace
}  // namespace aifinops::gateway
