#pragma once
// An occurrence's id (its CloudEvent's ce_id) begins with its task's UID, up to the
// first ':' (dispatcher/dispatcher.h builds the rest). The one place that reads the
// UID back: fired tasks, results and the dispatcher's parser use it.

#include <string_view>

namespace cronlane {

// The task's UID within an occurrence's id (the whole id if it has no ':').
inline std::string_view TaskIdOf(std::string_view occurrence_id) {
  return occurrence_id.substr(0, occurrence_id.find(':'));
}

}  // namespace cronlane
