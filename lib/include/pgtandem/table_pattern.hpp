// A `schema.table` pattern from the config, with `*` wildcards.
#pragma once

#include <string>
#include <string_view>

#include "pgtandem/identifier.hpp"

namespace pgtandem {

// Selects tables (or sequences) by schema and name, matched exactly and
// case-sensitively against the catalog spelling: `Billing.Invoices` matches
// only that table, never billing.invoices. In an unquoted part `*` matches any
// run of characters, including none. A part in double quotes is literal, so it
// may hold a dot or a `*` (`""` is a quote): `"my.schema"."Tab*le"`.
class TablePattern {
 public:
  // Throws Error(kConfig) naming the text, what is wrong and the expected form.
  static TablePattern Parse(std::string_view text);

  bool Matches(const TableName& table) const;
  bool Matches(std::string_view schema, std::string_view name) const;
  // True when the pattern has no wildcard and so names exactly one table;
  // callers report such a pattern that matches nothing as a likely typo.
  bool IsExact() const;
  // The pattern as written in the config, for messages.
  const std::string& Text() const { return text_; }

 private:
  // One side of the dot. Quoted parts are literal; in others `*` is a wildcard.
  struct Part {
    std::string text;
    bool literal = false;
  };

  TablePattern(std::string text, Part schema, Part name);
  static bool MatchPart(const Part& part, std::string_view value);

  std::string text_;
  Part schema_;
  Part name_;
};

}  // namespace pgtandem
