#pragma once
// Structured JSON logs on stderr (one object per line: ts, level, logger, msg), as
// log pipelines expect from Kubernetes operators. `--log-format text` for humans.

#include <string>

#include "common/status.h"

namespace cronlane {

// level: trace, debug, info, warn, error; format: json or text.
Status SetupLogging(const std::string& level, const std::string& format, const std::string& component);

}  // namespace cronlane
