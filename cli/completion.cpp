#include "cli/completion.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <ostream>

namespace cronlane::cli {

std::vector<std::string> Complete(const CLI::App& app, const std::vector<std::string>& words) {
  std::vector<std::string> out;
  const std::string partial = words.empty() ? "" : words.back();
  auto starts = [&partial](const std::string& s) { return s.rfind(partial, 0) == 0; };
  if (words.size() <= 1) {
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (!sub->get_name().empty() && sub->get_name()[0] != '_' && starts(sub->get_name())) {
        out.push_back(sub->get_name());
      }
    }
  } else if (!partial.empty() && partial[0] == '-') {
    const CLI::App* sub = nullptr;
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (s->get_name() == words.front()) sub = s;
    }
    const CLI::App& of = sub != nullptr ? *sub : app;
    for (const CLI::Option* o : of.get_options()) {
      for (const std::string& name : o->get_lnames()) {
        if (starts("--" + name)) out.push_back("--" + name);
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void PrintCompletions(const CLI::App& app, const std::vector<std::string>& words, std::ostream& out) {
  const auto candidates = Complete(app, words);
  for (const auto& c : candidates) out << c << "\n";
  // Subcommand names and flags are all there is to offer; arguments (files, task
  // names) fall back to the shell's file names.
  const bool names_only = words.size() <= 1 || (!words.back().empty() && words.back()[0] == '-');
  out << ":" << (names_only ? 4 : 0) << "\n";
}

int RunCompletionScript(const std::string& shell, const std::string& program, std::ostream& out, std::ostream& err) {
  const std::string fn = "_" + program;  // program names here are [a-z-]
  if (shell == "bash") {
    out << "# bash completion for " << program << ": source <(" << program << " completion bash)\n"
        << fn << "() {\n"
        << "  local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\\n'\n"
        << "  local out\n"
        << "  out=$(\"${COMP_WORDS[0]}\" __complete \"${COMP_WORDS[@]:1:COMP_CWORD}\" 2>/dev/null)\n"
        << "  local directive=${out##*:}\n"
        << "  COMPREPLY=($(compgen -W \"$(printf '%s\\n' \"$out\" | grep -v '^:')\" -- \"$cur\"))\n"
        << "  if [[ ${#COMPREPLY[@]} -eq 0 && $directive != 4 ]]; then COMPREPLY=($(compgen -f -- \"$cur\")); fi\n"
        << "}\n"
        << "complete -o filenames -F " << fn << " " << program << "\n";
    return 0;
  }
  if (shell == "zsh") {
    out << "#compdef " << program << "\n"
        << "# zsh completion for " << program << ": " << program << " completion zsh > \"${fpath[1]}/_" << program
        << "\"\n"
        << fn << "() {\n"
        << "  local -a lines candidates\n"
        << "  lines=(\"${(@f)$(\"${words[1]}\" __complete \"${(@)words[2,CURRENT]}\" 2>/dev/null)}\")\n"
        << "  candidates=(${lines:#:*})\n"
        << "  if (( ${#candidates} )); then compadd -a candidates; else _files; fi\n"
        << "}\n"
        // Autoloaded from $fpath, the file's body runs on the first TAB: complete then.
        << "if [ \"$funcstack[1]\" = \"" << fn << "\" ]; then " << fn << " \"$@\"; else compdef " << fn << " "
        << program << "; fi\n";
    return 0;
  }
  err << program << " completion: the shell must be bash or zsh, got \"" << shell << "\"\n";
  return 2;
}

}  // namespace cronlane::cli
