#pragma once
// A structural OpenAPI v3 validator for CRD schemas, over yaml-cpp documents, with
// the rules kube-apiserver applies to custom resources at admission (types with
// YAML 1.1 scalar resolution as kubectl reads manifests, required, enum, bounds,
// lengths, patterns, property counts, unknown fields). CEL rules are not evaluated
// here; cronlane's semantic checks cover what its CEL rules express.

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace cronlane::cli {

struct SchemaProblem {
  std::string field;    // "spec.catchUpPolicy"
  int line = 0;         // 1-based line in the manifest
  std::string message;  // "Unsupported value \"x\": supported values: ..."
};

// Validates `value` against the OpenAPI schema `schema` (a CRD version's
// openAPIV3Schema), appending problems. `path` is the field path of `value`.
void ValidateAgainstSchema(const YAML::Node& schema, const YAML::Node& value, const std::string& path,
                           std::vector<SchemaProblem>& problems);

// n[key] when n is a map holding key, else an Undefined node. (yaml-cpp's own
// operator[] on a missing key returns a node whose IsMap()/IsScalar() throw.)
YAML::Node At(const YAML::Node& n, const std::string& key);

// The JSON type kubectl would send for a YAML scalar: "string", "integer",
// "number", "boolean" or "null".
std::string ScalarJsonType(const YAML::Node& scalar);

}  // namespace cronlane::cli
