#include "common/zone.h"

#include <fmt/format.h>

// date/ptz.h (Debian's version) names `hh_mm_ss` inside a function that has both
// `using namespace date` and `using namespace std::chrono`, which is ambiguous in
// C++20 (std::chrono::hh_mm_ss). Its uses are renamed to an alias that only date
// declares, for this one include.
namespace date {
template <class Duration>
using hh_mm_ss_for_ptz = hh_mm_ss<Duration>;
}  // namespace date
#define hh_mm_ss hh_mm_ss_for_ptz
#include <date/ptz.h>
#undef hh_mm_ss

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "common/text.h"

namespace cronlane {
namespace {

// Where date's tz reads the TZif files from (TZDIR, as glibc honours it too).
std::string ZoneDir() {
  const char* dir = std::getenv("TZDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/usr/share/zoneinfo";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::string TzifFooter(std::string_view tzif) {
  // Version 2+ files end with "\n<rule>\n"; version 1 files have no footer.
  if (tzif.size() < 5 || tzif.substr(0, 4) != "TZif" || tzif[4] == '\0') return "";
  if (tzif.back() != '\n') return "";
  size_t start = tzif.rfind('\n', tzif.size() - 2);
  if (start == std::string_view::npos) return "";
  return std::string(tzif.substr(start + 1, tzif.size() - start - 2));
}

Zone::Zone(const date::time_zone* tz, std::string name, std::string rule_text)
    : tz_(tz), name_(std::move(name)), rule_text_(std::move(rule_text)) {
  if (rule_text_.empty()) return;
  try {
    rule_ = std::make_unique<const Posix::time_zone>(rule_text_);
  } catch (const std::exception&) {
    rule_text_.clear();  // a rule ptz cannot read: keep the file's last offset
    return;
  }
  // The last explicit transition: the span that holds forever per the file.
  const date::sys_info last = tz_->get_info(date::sys_days{date::year{2200} / 1 / 1});
  rule_from_ = std::chrono::floor<std::chrono::seconds>(last.begin);
}

Zone::~Zone() = default;

date::sys_info Zone::Info(Instant t) const {
  if (rule_ && t >= rule_from_) {
    date::sys_info i = rule_->get_info(t);
    if (i.begin < rule_from_) i.begin = rule_from_;
    return i;
  }
  date::sys_info i = tz_->get_info(t);
  if (rule_ && i.end > rule_from_) i.end = rule_from_;
  return i;
}

std::string FormatLocal(Instant t, const Zone* zone) {
  if (zone == nullptr) return date::format("%FT%T+00:00 (UTC)", t);
  const date::sys_info info = zone->Info(t);
  const auto off = std::chrono::duration_cast<std::chrono::minutes>(info.offset).count();
  const auto a = off < 0 ? -off : off;
  return date::format("%FT%T", date::local_seconds{t.time_since_epoch() + info.offset}) +
         fmt::format("{}{:02}:{:02} ({})", off < 0 ? '-' : '+', a / 60, a % 60, info.abbrev);
}

Result<const Zone*> LocateZone(std::string_view name) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC") return static_cast<const Zone*>(nullptr);
  if (EqualsIgnoreCase(name, "Local")) {
    return InvalidArgument("\"Local\" is not allowed, use an IANA name such as \"Europe/Berlin\"");
  }
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Zone>, std::less<>> zones;
  std::lock_guard lock(mu);
  if (auto it = zones.find(name); it != zones.end()) return static_cast<const Zone*>(it->second.get());
  const date::time_zone* tz = nullptr;
  try {
    tz = date::locate_zone(name);
  } catch (const std::runtime_error&) {
    return InvalidArgument("unknown time zone " + Quote(name) + " (use an IANA name such as \"America/New_York\")");
  }
  // date found the name, so it names a file under the zone directory.
  std::string rule = TzifFooter(ReadFile(ZoneDir() + "/" + std::string(tz->name())));
  auto zone = std::make_unique<Zone>(tz, std::string(name), std::move(rule));
  const Zone* out = zone.get();
  zones.emplace(std::string(name), std::move(zone));
  return out;
}

}  // namespace cronlane
