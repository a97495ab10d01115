// Strict option parsing: a typo is an error that names the option and the help to read.
#include "pgtandem/command_line.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

const OptionSpec* Find(const CommandSpec& spec, std::string_view name) {
  for (const auto& option : spec.options) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

Error UsageError(const CommandSpec& spec, const std::string& what) {
  return Error(ErrorKind::kUsage, fmt::format("pgtandem {}: {}; see \"pgtandem {} --help\"", spec.name, what, spec.name));
}

}  // namespace

std::optional<std::string> ParsedArgs::Value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::optional<long> ParsedArgs::Number(const std::string& name, long min, long max) const {
  auto text = Value(name);
  if (!text) return std::nullopt;
  long value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    throw Error(ErrorKind::kUsage,
                fmt::format("invalid value \"{}\" for {}: expected a whole number from {} to {}", *text, name, min, max));
  }
  return value;
}

ParsedArgs ParseArgs(const CommandSpec& spec, std::span<const std::string> args) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    const OptionSpec* option = Find(spec, arg);
    if (!option) throw UsageError(spec, fmt::format("unknown option \"{}\"", arg));
    if (option->value_name.empty()) {
      if (inline_value) throw UsageError(spec, fmt::format("option {} takes no value", arg));
      parsed.Set(arg, "");
      continue;
    }
    // "[SECONDS]": the value may be left out; then the next argument, if any, is another option.
    bool optional = option->value_name.front() == '[';
    if (!inline_value && optional && (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)) inline_value = "";
    if (!inline_value) {
      if (i + 1 >= args.size()) throw UsageError(spec, fmt::format("option {} needs a value ({})", arg, option->value_name));
      inline_value = args[++i];
    }
    parsed.Set(arg, *inline_value);
  }
  return parsed;
}

std::string HelpText(const CommandSpec& spec) {
  std::string text = fmt::format("Usage: pgtandem [--config FILE] {} [OPTIONS]\n\n{}\n\nOptions:\n", spec.name, spec.summary);
  size_t width = 6;
  for (const auto& o : spec.options) width = std::max(width, o.name.size() + 1 + o.value_name.size());
  for (const auto& o : spec.options) {
    std::string left = o.value_name.empty() ? o.name : o.name + " " + o.value_name;
    text += fmt::format("  {:<{}}  {}\n", left, width, o.help);
  }
  text += fmt::format("  {:<{}}  {}\n", "--help", width, "show this help and exit");
  if (!spec.details.empty()) text += "\n" + spec.details + "\n";
  return text;
}

}  // namespace pgtandem
