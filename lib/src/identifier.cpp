// Quoting for identifiers and literals; every name pgtandem puts in SQL goes through here.
#include "pgtandem/identifier.hpp"

#include <algorithm>

namespace pgtandem {
namespace {

std::string QuoteWith(std::string_view text, char quote) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back(quote);
  for (char c : text) {
    if (c == quote) out.push_back(quote);
    out.push_back(c);
  }
  out.push_back(quote);
  return out;
}

bool NeedsQuotesForDisplay(std::string_view name) {
  if (name.empty()) return true;
  return !std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string DisplayPart(std::string_view part) {
  return NeedsQuotesForDisplay(part) ? QuoteWith(part, '"') : std::string(part);
}

}  // namespace

std::string QuoteIdent(std::string_view name) { return QuoteWith(name, '"'); }

std::string QuoteLiteral(std::string_view text) { return QuoteWith(text, '\''); }

std::string TextArrayLiteral(const std::vector<std::optional<std::string>>& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out += ',';
    if (!item) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char c : *item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string TextArrayLiteral(const std::vector<std::string>& items) {
  return TextArrayLiteral(std::vector<std::optional<std::string>>(items.begin(), items.end()));
}

std::string TableName::Quoted() const { return QuoteIdent(schema) + "." + QuoteIdent(name); }

std::string TableName::Display() const { return DisplayPart(schema) + "." + DisplayPart(name); }

std::vector<std::string> ParseTextArray(std::string_view text) {
  std::vector<std::string> out;
  if (text.size() < 2) return out;
  text = text.substr(1, text.size() - 2);
  std::string item;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '\\' && i + 1 < text.size()) item += text[++i];
      else if (c == '"') quoted = false;
      else item += c;
    } else if (c == '"') {
      quoted = was_quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(item));
      item.clear();
      was_quoted = false;
    } else {
      item += c;
    }
  }
  if (!item.empty() || was_quoted) out.push_back(std::move(item));
  return out;
}

}  // namespace pgtandem
