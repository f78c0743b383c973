#pragma once
// IANA time zones for any year a schedule can reach.
//
// date's tz (as Debian builds it) reads the system's TZif files, which list a
// zone's transitions explicitly only up to 2037; after the last one it keeps that
// offset forever, so noon in New York in July 2038 came out as 17:00Z instead of
// 16:00Z. Every TZif file (version 2 and later) ends with the POSIX TZ rule that
// continues its transitions ("EST5EDT,M3.2.0,M11.1.0"). A Zone answers from the
// file up to its last transition and from that rule after it, through date's own
// Posix::time_zone (ptz.h) — the way Go's time package and glibc read the same
// files.

#include <date/tz.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"

namespace Posix {
class time_zone;  // date/ptz.h, included by zone.cpp only
}  // namespace Posix

namespace cronlane {

class Zone {
 public:
  // The UTC offset in force at `t` and the span [begin, end) it holds over.
  date::sys_info Info(Instant t) const;
  const std::string& name() const { return name_; }
  // The POSIX TZ rule used after the last explicit transition ("" when the file
  // has none, or one ptz cannot read: the last offset then holds, as before).
  const std::string& rule() const { return rule_text_; }

  // Built by LocateZone(); public for std::make_unique.
  Zone(const date::time_zone* tz, std::string name, std::string rule_text);
  ~Zone();

 private:
  const date::time_zone* tz_;
  std::string name_;
  std::string rule_text_;
  std::unique_ptr<const Posix::time_zone> rule_;
  Instant rule_from_{};  // the last explicit transition; the rule answers from here on
};

// Resolves an IANA zone name from the system tzdata. "" and "UTC" (or "Etc/UTC")
// give nullptr, meaning UTC. InvalidArgument for "Local" and unknown names. Zones
// are made once per name and live as long as the process (as date's database does),
// so the pointer may be kept. Thread-safe.
Result<const Zone*> LocateZone(std::string_view name);

// Local time with its offset and abbreviation: 2026-03-09T09:00:00-04:00 (EDT);
// `zone` nullptr means UTC.
std::string FormatLocal(Instant t, const Zone* zone);

// The POSIX TZ rule at the end of a TZif file's contents ("" when there is none).
std::string TzifFooter(std::string_view tzif);

}  // namespace cronlane
