// Declared options for each subcommand, parsed strictly, with generated --help.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pgtandem {

struct OptionSpec {
  std::string name;        // "--sync"
  std::string value_name;  // "NAME"; empty for a flag; "[SECONDS]" when the value may be left out (then "")
  std::string help;
};

struct CommandSpec {
  std::string name;     // "install"
  std::string summary;  // one line
  std::string details;  // paragraphs after the options; may be empty
  std::vector<OptionSpec> options;
};

class ParsedArgs {
 public:
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> Value(const std::string& name) const;
  // The value as a whole number in [min, max]; throws Error(kUsage) naming the option otherwise.
  std::optional<long> Number(const std::string& name, long min, long max) const;
  void Set(const std::string& name, std::string value) { values_[name] = std::move(value); }

 private:
  std::map<std::string, std::string> values_;
};

// Parses `args` (after the subcommand name). Accepts "--opt value" and
// "--opt=value". Throws Error(kUsage) for unknown options or missing values.
ParsedArgs ParseArgs(const CommandSpec& spec, std::span<const std::string> args);

// "Usage: pgtandem [--config FILE] install [OPTIONS]" and the options table.
std::string HelpText(const CommandSpec& spec);

}  // namespace pgtandem
