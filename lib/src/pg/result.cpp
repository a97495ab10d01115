// Typed access to libpq result values.
#include "pgtandem/pg/result.hpp"

#include <charconv>

#include <fmt/format.h>

#include "pgtandem/error.hpp"

namespace pgtandem::pg {

std::string_view Result::Get(int row, int column) const {
  const char* value = PQgetvalue(result_.get(), row, column);
  return std::string_view(value, PQgetlength(result_.get(), row, column));
}

std::optional<std::string> Result::GetOptional(int row, int column) const {
  if (IsNull(row, column)) return std::nullopt;
  return std::string(Get(row, column));
}

int64_t Result::GetInt(int row, int column) const {
  std::string_view text = Get(row, column);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw Error(ErrorKind::kInternal, fmt::format("expected an integer in column {} of a result, got \"{}\"",
                                                  PQfname(result_.get(), column), text));
  }
  return value;
}

int64_t Result::AffectedRows() const {
  const char* text = PQcmdTuples(result_.get());
  return text && *text ? std::stoll(text) : 0;
}

}  // namespace pgtandem::pg
