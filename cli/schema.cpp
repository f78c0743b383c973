#include "cli/schema.h"

#include <cstdint>
#include <regex>
#include <set>
#include <sstream>

namespace cronlane::cli {
namespace {

int Line(const YAML::Node& n) {
  return n.Mark().line >= 0 ? n.Mark().line + 1 : 0;
}

bool IsPlain(const YAML::Node& n) {
  return n.Tag() == "?" || n.Tag().empty();
}

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string TypeOf(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "null";
  if (n.IsMap()) return "object";
  if (n.IsSequence()) return "array";
  return ScalarJsonType(n);
}

std::string Quoted(const std::string& s) {
  return "\"" + s + "\"";
}

}  // namespace

YAML::Node At(const YAML::Node& n, const std::string& key) {
  if (n.IsDefined() && n.IsMap()) {
    for (const auto& kv : n) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string ScalarJsonType(const YAML::Node& n) {
  if (n.IsNull()) return "null";
  if (!n.IsScalar()) return TypeOf(n);
  if (!IsPlain(n)) return "string";  // quoted, or an explicit tag
  static const std::set<std::string> kBool = {"y",  "Y",  "yes",  "Yes",  "YES",  "n",     "N",     "no",
                                              "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
                                              "on", "On", "ON",   "off",  "Off",  "OFF"};
  static const std::regex kInt(R"([-+]?(0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0[0-7_]+))");
  static const std::regex kFloat(
      R"([-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))");
  const std::string& s = n.Scalar();
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return "null";
  if (kBool.count(s) != 0) return "boolean";
  if (std::regex_match(s, kInt)) return "integer";
  if (std::regex_match(s, kFloat)) return "number";
  return "string";
}

void ValidateAgainstSchema(const YAML::Node& schema, const YAML::Node& value, const std::string& path,
                           std::vector<SchemaProblem>& problems) {
  auto add = [&](const std::string& field, const YAML::Node& at, const std::string& msg) {
    problems.push_back({field, Line(at), msg});
  };
  if (!schema.IsMap()) return;
  if (At(schema, "x-kubernetes-preserve-unknown-fields").IsDefined() &&
      At(schema, "x-kubernetes-preserve-unknown-fields").as<bool>(false) && !At(schema, "type").IsDefined()) {
    return;  // any value
  }
  const std::string want = At(schema, "type").IsDefined() ? At(schema, "type").as<std::string>() : "";
  std::string got = TypeOf(value);
  if (got == "null") {
    if (At(schema, "nullable").IsDefined() && At(schema, "nullable").as<bool>(false)) return;
    if (!want.empty()) add(path, value, "must be of type " + want + ", got null");
    return;
  }
  bool type_ok = want.empty() || want == got || (want == "number" && got == "integer");
  if (!type_ok) {
    std::string shown = value.IsScalar() ? " " + Quoted(value.Scalar()) : "";
    add(path, value, "must be of type " + want + ", got " + got + shown);
    return;
  }

  if (got == "object") {
    const YAML::Node props = At(schema, "properties");
    const YAML::Node additional = At(schema, "additionalProperties");
    const bool preserve = At(schema, "x-kubernetes-preserve-unknown-fields").IsDefined() &&
                          At(schema, "x-kubernetes-preserve-unknown-fields").as<bool>(false);
    if (At(schema, "required").IsSequence()) {
      for (const auto& r : At(schema, "required")) {
        std::string key = r.as<std::string>();
        if (!At(value, key).IsDefined()) add(Join(path, key), value, "Required value");
      }
    }
    size_t count = 0;
    for (const auto& kv : value) {
      ++count;
      const std::string key = kv.first.as<std::string>();
      const std::string field = Join(path, key);
      if (props.IsMap() && At(props, key).IsDefined()) {
        if (path.empty() && key == "metadata") continue;  // the apiserver checks metadata itself
        ValidateAgainstSchema(At(props, key), kv.second, field, problems);
      } else if (additional.IsMap()) {
        ValidateAgainstSchema(additional, kv.second, field, problems);
      } else if (additional.IsScalar() && additional.as<bool>(false)) {
        continue;
      } else if (!preserve) {
        add(field, kv.first, "unknown field " + Quoted(field));
      }
    }
    if (At(schema, "maxProperties").IsDefined() && count > At(schema, "maxProperties").as<size_t>()) {
      add(path, value, "must have at most " + At(schema, "maxProperties").as<std::string>() + " properties");
    }
    if (At(schema, "minProperties").IsDefined() && count < At(schema, "minProperties").as<size_t>()) {
      add(path, value, "must have at least " + At(schema, "minProperties").as<std::string>() + " properties");
    }
    return;
  }

  if (got == "array") {
    if (At(schema, "maxItems").IsDefined() && value.size() > At(schema, "maxItems").as<size_t>()) {
      add(path, value, "must have at most " + At(schema, "maxItems").as<std::string>() + " items");
    }
    if (At(schema, "minItems").IsDefined() && value.size() < At(schema, "minItems").as<size_t>()) {
      add(path, value, "must have at least " + At(schema, "minItems").as<std::string>() + " items");
    }
    if (At(schema, "items").IsMap()) {
      for (size_t i = 0; i < value.size(); ++i) {
        ValidateAgainstSchema(At(schema, "items"), value[i], path + "[" + std::to_string(i) + "]", problems);
      }
    }
    return;
  }

  const std::string& s = value.Scalar();
  if (At(schema, "enum").IsSequence()) {
    bool found = false;
    std::string options;
    for (const auto& e : At(schema, "enum")) {
      if (!options.empty()) options += ", ";
      options += Quoted(e.Scalar());
      found = found || e.Scalar() == s;
    }
    if (!found) add(path, value, "Unsupported value " + Quoted(s) + ": supported values: " + options);
  }
  if (got == "integer" || got == "number") {
    long double v = 0;
    try {
      v = std::stold(s, nullptr);
      if (s.find("0x") != std::string::npos) v = static_cast<long double>(std::stoll(s, nullptr, 16));
    } catch (...) {
      add(path, value, Quoted(s) + " is not a valid number");
      return;
    }
    const std::string format = At(schema, "format").IsDefined() ? At(schema, "format").as<std::string>() : "";
    if (format == "int32" && (v < INT32_MIN || v > INT32_MAX)) add(path, value, s + " does not fit in int32");
    if (At(schema, "minimum").IsDefined() && v < At(schema, "minimum").as<long double>()) {
      add(path, value, s + " should be greater than or equal to " + At(schema, "minimum").as<std::string>());
    }
    if (At(schema, "maximum").IsDefined() && v > At(schema, "maximum").as<long double>()) {
      add(path, value, s + " should be less than or equal to " + At(schema, "maximum").as<std::string>());
    }
  }
  if (got == "string") {
    // Lengths count Unicode code points, as the apiserver does.
    size_t chars = 0;
    for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
    if (At(schema, "maxLength").IsDefined() && chars > At(schema, "maxLength").as<size_t>()) {
      add(path, value, "may not be longer than " + At(schema, "maxLength").as<std::string>() + " characters");
    }
    if (At(schema, "minLength").IsDefined() && chars < At(schema, "minLength").as<size_t>()) {
      add(path, value, "should be at least " + At(schema, "minLength").as<std::string>() + " characters long");
    }
    if (At(schema, "pattern").IsDefined()) {
      try {
        std::regex re(At(schema, "pattern").as<std::string>(), std::regex::ECMAScript);
        if (!std::regex_search(s, re)) {
          add(path, value, Quoted(s) + " should match '" + At(schema, "pattern").as<std::string>() + "'");
        }
      } catch (const std::regex_error&) {
        // A pattern std::regex cannot compile is the CRD's problem; the apiserver checks it.
      }
    }
    if (At(schema, "format").IsDefined() && At(schema, "format").as<std::string>() == "date-time") {
      static const std::regex kDateTime(R"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[-+]\d{2}:\d{2}))");
      if (!std::regex_match(s, kDateTime)) add(path, value, Quoted(s) + " is not an RFC 3339 date-time");
    }
  }
}

}  // namespace cronlane::cli
