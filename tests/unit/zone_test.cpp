// Time zones for any year: the TZif file's transitions, continued by its POSIX
// rule after the last one (2037 in Debian's files), checked against Go's time
// package, which reads the same files independently (tests/zone/oracle.go).
#include "common/zone.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dispatcher/cron.h"

namespace cronlane {
namespace {

Instant T(const char* s) {
  return *ParseRfc3339(s);
}

TEST(Zone, LocalTimeShowsOffsetAndAbbreviation) {
  auto t = T("2026-03-09T13:00:00Z");
  EXPECT_EQ(FormatLocal(t, nullptr), "2026-03-09T13:00:00+00:00 (UTC)");
  EXPECT_EQ(FormatLocal(t, *LocateZone("America/New_York")), "2026-03-09T09:00:00-04:00 (EDT)");
  EXPECT_EQ(FormatLocal(T("2026-01-09T13:00:00Z"), *LocateZone("Asia/Kolkata")), "2026-01-09T18:30:00+05:30 (IST)");
  EXPECT_EQ(FormatLocal(T("2040-07-01T16:00:00Z"), *LocateZone("America/New_York")), "2040-07-01T12:00:00-04:00 (EDT)")
      << "after the file's last transition, from its rule";
}

TEST(Zone, NamesAndErrors) {
  EXPECT_EQ(*LocateZone(""), nullptr);
  EXPECT_EQ(*LocateZone("UTC"), nullptr);
  EXPECT_EQ(LocateZone("Local").status().message(),
            "\"Local\" is not allowed, use an IANA name such as \"Europe/Berlin\"");
  EXPECT_EQ(LocateZone("Mars/Olympus").status().message(),
            "unknown time zone \"Mars/Olympus\" (use an IANA name such as \"America/New_York\")");
  EXPECT_EQ(*LocateZone("Europe/Berlin"), *LocateZone("Europe/Berlin")) << "made once per name";
  EXPECT_EQ((*LocateZone("America/New_York"))->rule(), "EST5EDT,M3.2.0,M11.1.0");
}

TEST(Zone, TzifFooter) {
  EXPECT_EQ(TzifFooter(std::string("TZif2") + std::string(10, '\0') + "\nEST5EDT,M3.2.0,M11.1.0\n"),
            "EST5EDT,M3.2.0,M11.1.0");
  EXPECT_EQ(TzifFooter(std::string("TZif\0", 5) + "\nEST5\n"), "") << "version 1 has no footer";
  EXPECT_EQ(TzifFooter("not a zone file"), "");
}

TEST(Zone, SchedulesAfter2037FollowTheRule) {
  // The example from the report: noon EDT is 16:00Z, not 17:00Z.
  auto ny = dispatcher::Schedule::Parse("0 12 * * *", "America/New_York");
  ASSERT_TRUE(ny.ok());
  EXPECT_EQ(FormatRfc3339(*ny->Next(T("2038-07-01T00:00:00Z"))), "2038-07-01T16:00:00Z");
  EXPECT_EQ(FormatRfc3339(*ny->Next(T("2038-12-01T00:00:00Z"))), "2038-12-01T17:00:00Z");
  EXPECT_EQ(FormatRfc3339(*ny->Prev(T("2090-07-01T23:59:59Z"))), "2090-07-01T16:00:00Z");
  // Spring forward in 2045 (second Sunday of March): 02:30 local does not exist.
  auto gap = dispatcher::Schedule::Parse("30 2 12 3 *", "America/New_York");
  ASSERT_TRUE(gap.ok());
  EXPECT_EQ(FormatRfc3339(*gap->Next(T("2045-03-01T00:00:00Z"))), "2046-03-12T06:30:00Z")
      << "2045-03-12 (the second Sunday) 02:30 is in the gap; 2046-03-12 is the day after the change (EDT)";
  // Southern hemisphere: Sydney is on daylight time (+11) in January.
  auto syd = dispatcher::Schedule::Parse("0 12 * * *", "Australia/Sydney");
  ASSERT_TRUE(syd.ok());
  EXPECT_EQ(FormatRfc3339(*syd->Next(T("2050-01-14T12:00:00Z"))), "2050-01-15T01:00:00Z");
  EXPECT_EQ(FormatRfc3339(*syd->Next(T("2050-07-14T12:00:00Z"))), "2050-07-15T02:00:00Z");
}

// Every canonical zone of the system's tzdata (the "Z" lines of tzdata.zi), but
// "Factory" (a placeholder, not a place; date's tz does not list it).
std::vector<std::string> AllZones() {
  std::ifstream in("/usr/share/zoneinfo/tzdata.zi");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Z ", 0) != 0) continue;
    std::string name = line.substr(2, line.find(' ', 2) - 2);
    if (name != "Factory") out.push_back(name);
  }
  return out;
}

TEST(Zone, AgreesWithGoOnEveryZoneUntil2100) {
  std::vector<std::string> zones = AllZones();
  ASSERT_GT(zones.size(), 300U) << "tzdata.zi not found or not readable";
  std::string names = ::testing::TempDir() + "/zone-names.txt";
  {
    std::ofstream out(names);
    for (const auto& z : zones) out << z << "\n";
  }
  // GOTOOLCHAIN=local: never download a toolchain; GOFLAGS cleared (build-kube sets its own).
  std::string cmd = "cd " CRONLANE_SOURCE_DIR "/tests/zone && GOTOOLCHAIN=local GOFLAGS= go run oracle.go < " + names;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> spans;  // zone -> (start, offset)
  char buf[512];
  size_t lines = 0;
  while (fgets(buf, sizeof buf, p) != nullptr) {
    std::istringstream l(buf);
    std::string zone, start;
    int64_t offset = 0;
    l >> zone >> start;
    ASSERT_NE(start, "error") << buf;
    l >> offset;
    spans[zone].emplace_back(std::stoll(start), offset);
    ++lines;
  }
  ASSERT_EQ(pclose(p), 0) << "go run tests/zone/oracle.go failed";
  ASSERT_EQ(spans.size(), zones.size());
  const int64_t until = 4102444800;  // 2100-01-01
  // Greenland's rule, "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", has a negative transition
  // time (an extension RFC 8536 allows), which Debian's ptz.h cannot read: after
  // 2037 those two zones keep their last offset. Listed so that a change either way
  // shows here.
  const std::set<std::string> known = {"America/Nuuk", "America/Scoresbysund"};
  std::vector<std::string> wrong;
  std::set<std::string> wrong_zones;
  for (const auto& [name, s] : spans) {
    auto zone = LocateZone(name);
    ASSERT_TRUE(zone.ok()) << name;
    for (size_t i = 0; i < s.size(); ++i) {
      const int64_t begin = s[i].first;
      const int64_t last = (i + 1 < s.size() ? s[i + 1].first : until) - 1;
      for (int64_t t : {begin, last}) {
        const Zone* z = *zone;  // nullptr: UTC ("Etc/UTC")
        const int64_t got = z != nullptr ? z->Info(Instant{std::chrono::seconds{t}}).offset.count() : 0;
        if (got != s[i].second) {
          wrong.push_back(name + " at " + FormatRfc3339(Instant{std::chrono::seconds{t}}) + ": " + std::to_string(got) +
                          " s, Go says " + std::to_string(s[i].second) + " s (rule \"" +
                          (z != nullptr ? z->rule() : "") + "\")");
          wrong_zones.insert(name);
          break;
        }
      }
      if (!wrong.empty() && wrong.back().rfind(name + " ", 0) == 0) break;  // one line per zone
    }
  }
  std::string report;
  for (const auto& w : wrong) report += "\n  " + w;
  EXPECT_EQ(wrong_zones, known) << wrong.size() << " of " << zones.size() << " zones disagree with Go:" << report;
  std::printf("%zu zones, %zu offset spans 2030-2100 compared with Go\n", zones.size(), lines);
}

}  // namespace
}  // namespace cronlane
