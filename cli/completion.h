#pragma once
// Shell completion from the command line's own definition (CLI11), so the scripts
// never drift from the flags: `cronlane __complete WORD...` (and, invoked as
// kubectl_complete-cronlane, kubectl's plugin completion, kubectl >= 1.26) prints
// the candidates for the last word, one per line, then ":<directive>" as cobra
// does (kubectl reads it: 0 = also complete file names, 4 = no file names).
// `cronlane completion bash|zsh` prints the script that calls it.

#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace cronlane::cli {

// Candidates for the last of `words` (the words after the program name; the last
// may be empty: the word being typed): subcommand names at the first position,
// else the long flags of that subcommand when the word starts with '-'. Sorted.
std::vector<std::string> Complete(const CLI::App& app, const std::vector<std::string>& words);

// Prints Complete() and the directive.
void PrintCompletions(const CLI::App& app, const std::vector<std::string>& words, std::ostream& out);

// The completion script for `shell` ("bash" or "zsh") of the program `program`;
// returns 2 with a message on `err` for another shell.
int RunCompletionScript(const std::string& shell, const std::string& program, std::ostream& out, std::ostream& err);

}  // namespace cronlane::cli
