#include "server/api_server.h"

#include <gtest/gtest.h>

namespace aifinops::server {
namespace {

TEST(ApiServerTest, ParsesAndPercentDecodesQueryParametersInOrder) {
  QueryParams p = parse_query("by=team%2Cmodel&filter=team=a+b&&flag&by=x&empty=&bad=%zz%4");
  ASSERT_EQ(p.size(), 6u);
  EXPECT_EQ(p[0], (std::pair<std::string, std::string>{"by", "team,model"}));
  EXPECT_EQ(p[1], (std::pair<std::string, std::string>{"filter", "team=a b"}));
  EXPECT_EQ(p[2], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ(p[3], (std::pair<std::string, std::string>{"by", "x"}));
  EXPECT_EQ(p[4], (std::pair<std::string, std::string>{"empty", ""}));
  EXPECT_EQ(p[5].second, "%zz%4");  // malformed escapes stay as they are
  EXPECT_TRUE(parse_query("").empty());
}

TEST(ApiServerTest, ErrorsAreJsonNamingTheParameter) {
  EXPECT_EQ(api_error_json("bad \"by\"", "by"),
            "{\"error\":{\"message\":\"bad \\\"by\\\"\",\"parameter\":\"by\"}}\n");
  EXPECT_EQ(api_error_json("no token"),
            "{\"error\":{\"message\":\"no token\",\"parameter\":null}}\n");
}

TEST(ApiServerTest, StaticFilesGetTheirContentType) {
  EXPECT_EQ(content_type_for("/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("assets/app-1a2b.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("logo.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("blob"), "application/octet-stream");
}

}  // namespace
}  // namespace aifinops::server
