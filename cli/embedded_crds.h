#pragma once
// The CRDs of crds/*.yaml, embedded at build time so `cronlane validate` checks
// manifests against exactly the schema the apiserver will enforce.

#include <string_view>
#include <vector>

namespace cronlane::cli {

// Each element is the text of one crds/*.yaml file.
const std::vector<std::string_view>& EmbeddedCrds();

}  // namespace cronlane::cli
