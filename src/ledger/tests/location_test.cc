#include "ledger/location.h"

#include <gtest/gtest.h>

#include "ledger/ledger.h"
#include "tests/testing/temp_dir.h"

namespace aifinops::ledger {
namespace {

TEST(LocationTest, PostgresUrlsAreToldApartFromPathsByTheirScheme) {
  EXPECT_TRUE(is_postgres_url("postgresql://u@127.0.0.1:5432/db"));
  EXPECT_TRUE(is_postgres_url("postgres://127.0.0.1/db"));
  EXPECT_FALSE(is_postgres_url("aifinops.db"));
  EXPECT_FALSE(is_postgres_url("./postgresql:/x.db"));
}

TEST(LocationTest, RedactionHidesEveryPasswordAndKeepsTheRest) {
  EXPECT_EQ(redact_location("postgresql://ann:s3cret@db.internal:5432/ledger"),
            "postgresql://ann:***@db.internal:5432/ledger");
  EXPECT_EQ(redact_location("postgres://ann:p%40ss@h/l?sslmode=require&password=two&x=1"),
            "postgres://ann:***@h/l?sslmode=require&password=***&x=1");
  EXPECT_EQ(redact_location("postgresql://ann@h/l?PASSWORD=x"),
            "postgresql://ann@h/l?PASSWORD=***");
  EXPECT_EQ(redact_location("postgresql://h:5432/l"),
            "postgresql://h:5432/l");  // a port, no password
  EXPECT_EQ(redact_location("/var/lib/aifinops:with:colons@x.db"),
            "/var/lib/aifinops:with:colons@x.db");
}

TEST(LocationTest, TheSqliteChangeTokenMovesWhenTheFileIsWritten) {
  testing::TempDir dir;
  std::string path = dir.file("l.db");
  auto probe = make_change_probe(path);
  std::string missing = probe->version();
  {
    auto ledger = open_ledger(path);
    ASSERT_TRUE(ledger.has_value());
    ASSERT_TRUE((*ledger)->note("k", "v", "d").has_value());
  }
  EXPECT_NE(probe->version(), missing);
}

TEST(LocationTest, AnUnreachableDatabaseGivesAFreshTokenEachTime) {
  auto probe = make_change_probe("postgresql://ann:pw@127.0.0.1:1/x?connect_timeout=2");
  std::string a = probe->version(), b = probe->version();
  EXPECT_NE(a, b);  // nothing may be served from a cache that cannot be checked
  EXPECT_EQ(a.find("pw"), std::string::npos);
}

}  // namespace
}  // namespace aifinops::ledger
