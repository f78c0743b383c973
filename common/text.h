#pragma once
// Small text helpers for messages and names, in one place.

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace cronlane {

// `s` in double quotes, for error messages that name the value they refuse.
inline std::string Quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// ASCII case-insensitive equality (month and weekday names, "Local").
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace cronlane
