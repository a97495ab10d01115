// Parsing and matching of `schema.table` patterns.
#include "pgtandem/table_pattern.hpp"

#include <fmt/format.h>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

constexpr std::string_view kExpected =
    "expected schema.table, e.g. public.*, Billing.Invoices or \"my.schema\".\"Tab*le\"";

[[noreturn]] void Fail(std::string_view text, std::string_view problem) {
  throw Error(ErrorKind::kConfig,
              fmt::format("table pattern '{}': {}; {}", text, problem, kExpected));
}

// `*` matches any run of characters; everything else matches itself. Iterative
// with one backtrack point, so it is linear-ish and cannot blow the stack.
bool Glob(std::string_view pattern, std::string_view value) {
  size_t p = 0;
  size_t v = 0;
  size_t star = std::string_view::npos;
  size_t resume = 0;
  while (v < value.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.size() && pattern[p] == value[v]) {
      ++p;
      ++v;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Reads a "quoted" part starting at pos (on the opening quote).
std::string ReadQuoted(std::string_view text, size_t& pos) {
  const size_t open = pos;
  std::string out;
  for (++pos; pos < text.size(); ++pos) {
    if (text[pos] != '"') {
      out.push_back(text[pos]);
    } else if (pos + 1 < text.size() && text[pos + 1] == '"') {
      out.push_back('"');
      ++pos;
    } else {
      ++pos;
      return out;
    }
  }
  Fail(text, fmt::format("the quote at position {} is never closed", open + 1));
}

// Reads an unquoted part up to the next dot (or the end).
std::string ReadUnquoted(std::string_view text, size_t& pos, std::string_view what) {
  const size_t start = pos;
  while (pos < text.size() && text[pos] != '.') {
    if (text[pos] == '"') {
      Fail(text, fmt::format("the {} part has a quote inside it; quote the whole part", what));
    }
    ++pos;
  }
  return std::string(text.substr(start, pos - start));
}

}  // namespace

TablePattern::TablePattern(std::string text, Part schema, Part name)
    : text_(std::move(text)), schema_(std::move(schema)), name_(std::move(name)) {}

TablePattern TablePattern::Parse(std::string_view text) {
  const auto read = [&](size_t& pos, std::string_view what) {
    Part part;
    part.literal = pos < text.size() && text[pos] == '"';
    part.text = part.literal ? ReadQuoted(text, pos) : ReadUnquoted(text, pos, what);
    if (part.text.empty()) Fail(text, fmt::format("the {} part is empty", what));
    return part;
  };
  if (text.empty()) Fail(text, "it is empty");
  size_t pos = 0;
  Part schema = read(pos, "schema");
  if (pos >= text.size()) Fail(text, "there is no dot between schema and table");
  if (text[pos] != '.') {
    Fail(text, fmt::format("unexpected '{}' after the schema", text.substr(pos)));
  }
  ++pos;
  Part name = read(pos, "table");
  if (pos < text.size()) {
    Fail(text, fmt::format("unexpected '{}' after the table; to match a name that holds a dot "
                           "or a *, put it in double quotes",
                           text.substr(pos)));
  }
  return TablePattern(std::string(text), std::move(schema), std::move(name));
}

bool TablePattern::MatchPart(const Part& part, std::string_view value) {
  return part.literal ? part.text == value : Glob(part.text, value);
}

bool TablePattern::Matches(std::string_view schema, std::string_view name) const {
  return MatchPart(schema_, schema) && MatchPart(name_, name);
}

bool TablePattern::Matches(const TableName& table) const {
  return Matches(table.schema, table.name);
}

bool TablePattern::IsExact() const {
  const auto exact = [](const Part& p) {
    return p.literal || p.text.find('*') == std::string::npos;
  };
  return exact(schema_) && exact(name_);
}

}  // namespace pgtandem
