// Connection-string validation and password redaction.
//
// Redaction scans the text itself, mirroring libpq's conninfo_parse and
// conninfo_uri_parse, because the redacted form must keep the user's layout
// and must also work on strings libpq rejected: their error messages quote
// pieces of the input, and those pieces may be the password. Where the user's
// intent and libpq's reading differ (a password with an unquoted space, an
// unencoded '@' or '&'), the mask covers both: showing too little is a nuisance,
// showing a password is an incident.
#include "pgtandem/dsn.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>
#include <set>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

using Options = std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)>;

constexpr std::string_view kMask = "***";
constexpr std::string_view kDocs =
    "see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING";

// A byte range [begin, end) of a connection string.
struct Span {
  size_t begin;
  size_t end;
};

// One `keyword = value` of the keyword form; value includes any quotes.
struct Setting {
  std::string_view keyword;
  Span value;
};

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool IsUri(std::string_view text) {
  return text.starts_with("postgresql://") || text.starts_with("postgres://");
}

// Whether a dbname value is itself a connection string (libpq expands one
// when a caller passes it with expand_dbname), which may hold a password.
bool LooksLikeConnInfo(std::string_view value) {
  return IsUri(value) || value.find('=') != std::string_view::npos;
}

size_t SkipSpaces(std::string_view text, size_t pos) {
  while (pos < text.size() && IsSpace(text[pos])) ++pos;
  return pos;
}

// End of a value as libpq reads it: single-quoted, or up to whitespace;
// a backslash escapes the next character in both.
size_t ValueEnd(std::string_view text, size_t pos) {
  const bool quoted = pos < text.size() && text[pos] == '\'';
  for (pos += quoted ? 1 : 0; pos < text.size(); ++pos) {
    if (text[pos] == '\\') {
      ++pos;
    } else if (quoted ? text[pos] == '\'' : IsSpace(text[pos])) {
      return quoted ? pos + 1 : pos;
    }
  }
  return text.size();
}

// The value without its quotes and escapes.
std::string DecodeValue(std::string_view raw) {
  if (raw.starts_with('\'')) {
    raw.remove_prefix(1);
    if (raw.ends_with('\'')) raw.remove_suffix(1);
  }
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
    out.push_back(raw[i]);
  }
  return out;
}

// Keyword-form settings up to the first malformed one (libpq reports that).
std::vector<Setting> ScanKeywords(std::string_view text) {
  std::vector<Setting> out;
  size_t pos = SkipSpaces(text, 0);
  while (pos < text.size()) {
    size_t key_end = pos;
    while (key_end < text.size() && text[key_end] != '=' && !IsSpace(text[key_end])) ++key_end;
    const size_t eq = SkipSpaces(text, key_end);
    if (eq >= text.size() || text[eq] != '=') break;
    const size_t value = SkipSpaces(text, eq + 1);
    const size_t end = ValueEnd(text, value);
    out.push_back({text.substr(pos, key_end - pos), {value, end}});
    pos = SkipSpaces(text, end);
  }
  return out;
}

// libpq's own keywords, asked of libpq so that a newer release's are known.
bool IsLibpqKeyword(std::string_view word) {
  static const std::set<std::string, std::less<>> kKeywords = [] {
    std::set<std::string, std::less<>> out{"ssl"};  // URI-only alias of sslmode=require
    const Options options{PQconninfoParse("", nullptr), PQconninfoFree};
    for (auto* o = options.get(); o != nullptr && o->keyword != nullptr; ++o) {
      out.emplace(o->keyword);
    }
    return out;
  }();
  return kKeywords.contains(word);
}

// `sslpassword` unlocks the client's key: as secret as `password`.
bool IsSecretKeyword(std::string_view keyword) { return keyword == "password" || keyword == "sslpassword"; }

// Whether `keyword =` starts at pos, i.e. the next setting begins there. Only
// libpq's keywords count: in `password=a b=c`, "b=c" is more password.
bool KeywordStartsAt(std::string_view text, size_t pos) {
  size_t end = pos;
  while (end < text.size() &&
         (std::islower(static_cast<unsigned char>(text[end])) != 0 || text[end] == '_')) {
    ++end;
  }
  const size_t eq = SkipSpaces(text, end);
  return eq < text.size() && text[eq] == '=' && IsLibpqKeyword(text.substr(pos, end - pos));
}

// A value libpq cut short (`password=se cret`, `password='a'b`) is invalid,
// yet the rest is still the user's secret: extend it up to the next `keyword=`.
// In a valid string a `keyword=` always follows, so this changes nothing there.
size_t ExtendValue(std::string_view text, size_t end) {
  for (size_t next = SkipSpaces(text, end); next < text.size() && !KeywordStartsAt(text, next);
       next = SkipSpaces(text, end)) {
    end = ValueEnd(text, next);
  }
  return end;
}

std::vector<Span> SecretSpans(std::string_view text);

// Secrets inside `dbname=<connection string>`.
void AddNestedSecrets(std::string_view text, Span value, std::vector<Span>& out) {
  const std::string decoded = DecodeValue(text.substr(value.begin, value.end - value.begin));
  if (!LooksLikeConnInfo(decoded)) return;
  const std::vector<Span> nested = SecretSpans(decoded);
  if (nested.empty()) return;
  if (decoded.size() != value.end - value.begin) {  // quoted or escaped: offsets differ
    out.push_back(value);
    return;
  }
  for (const Span& s : nested) out.push_back({value.begin + s.begin, value.begin + s.end});
}

std::vector<Span> KeywordSecrets(std::string_view text) {
  std::vector<Span> out;
  for (const Setting& s : ScanKeywords(text)) {
    const Span value{s.value.begin, ExtendValue(text, s.value.end)};
    if (IsSecretKeyword(s.keyword)) {
      out.push_back(value);
    } else if (s.keyword == "dbname") {
      AddNestedSecrets(text, value, out);
    }
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '%' && i + 2 < raw.size() && HexValue(raw[i + 1]) >= 0 &&
        HexValue(raw[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(raw[i + 1]) * 16 + HexValue(raw[i + 2])));
      i += 2;
    } else {
      out.push_back(raw[i]);
    }
  }
  return out;
}

// `user:secret@`. libpq ends the user info at the first '@' before any '/';
// a password with an unencoded '@', '/' or '?' makes it misread the URI, but
// that text is still secret, so the span up to the last '@' is masked too.
std::vector<Span> UserInfoSecrets(std::string_view text, size_t start, size_t& rest) {
  std::vector<Span> out;
  const size_t colon = text.find(':', start);
  const size_t stop = text.find_first_of("@/", start);
  if (stop != std::string_view::npos && text[stop] == '@') {
    if (colon < stop) out.push_back({colon + 1, stop});
    rest = stop + 1;
  }
  const size_t last_at = text.rfind('@');
  if (last_at != std::string_view::npos && colon < last_at) out.push_back({colon + 1, last_at});
  return out;
}

// Whether a `key=` query parameter naming a libpq keyword starts at pos.
bool ParamStartsAt(std::string_view text, size_t pos) {
  const size_t end = text.find_first_of("=&", pos);
  return end != std::string_view::npos && text[end] == '=' &&
         IsLibpqKeyword(PercentDecode(text.substr(pos, end - pos)));
}

// Every `password=` query parameter; a value holding an unencoded '&' runs
// up to the next `&key=`.
void AddQuerySecrets(std::string_view text, size_t rest, std::vector<Span>& out) {
  for (size_t param = text.find('?', rest); param != std::string_view::npos;) {
    size_t amp = text.find('&', param + 1);
    const size_t eq = text.find('=', param + 1);
    const bool secret =
        eq < amp && IsSecretKeyword(PercentDecode(text.substr(param + 1, eq - param - 1)));
    while (secret && amp != std::string_view::npos && !ParamStartsAt(text, amp + 1)) {
      amp = text.find('&', amp + 1);
    }
    if (secret) out.push_back({eq + 1, amp == std::string_view::npos ? text.size() : amp});
    param = amp;
  }
}

std::vector<Span> UriSecrets(std::string_view text) {
  const size_t start = text.find("://") + 3;
  size_t rest = start;
  std::vector<Span> out = UserInfoSecrets(text, start, rest);
  AddQuerySecrets(text, rest, out);
  return out;
}

std::vector<Span> SecretSpans(std::string_view text) {
  return IsUri(text) ? UriSecrets(text) : KeywordSecrets(text);
}

std::string Mask(std::string_view text, std::vector<Span> spans) {
  std::sort(spans.begin(), spans.end(), [](Span a, Span b) { return a.begin < b.begin; });
  std::string out;
  size_t pos = 0;
  for (const Span& s : spans) {
    if (s.begin < pos) {  // overlaps a span already masked
      pos = std::max(pos, s.end);
      continue;
    }
    out.append(text.substr(pos, s.begin - pos)).append(kMask);
    pos = s.end;
  }
  return out.append(text.substr(std::min(pos, text.size())));
}

// The raw secret texts, and their pieces between spaces and double quotes:
// libpq quotes single words, and its message is split at double quotes.
std::vector<std::string> SecretPieces(std::string_view text, const std::vector<Span>& spans) {
  std::vector<std::string> out;
  for (const Span& s : spans) {
    const std::string_view secret = text.substr(s.begin, s.end - s.begin);
    out.emplace_back(secret);
    out.emplace_back();
    for (char c : secret) {
      if (IsSpace(c) || c == '"') {
        out.emplace_back();
      } else {
        out.back().push_back(c);
      }
    }
  }
  std::erase_if(out, [](const std::string& p) { return p.empty(); });
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  return out;
}

// Whether a and b share a run of at least `length` characters.
bool ShareRun(std::string_view a, std::string_view b, size_t length) {
  for (size_t i = 0; i + length <= a.size(); ++i) {
    if (b.find(a.substr(i, length)) != std::string_view::npos) return true;
  }
  return false;
}

// Whether a fragment libpq quoted still holds a secret: is part of one, or
// shares 4 characters with one (libpq quotes pieces of values it split).
bool HoldsSecret(std::string_view fragment, const std::vector<std::string>& secrets) {
  return std::any_of(secrets.begin(), secrets.end(), [&](const std::string& secret) {
    return (!fragment.empty() && secret.find(fragment) != std::string::npos) ||
           ShareRun(secret, fragment, std::min<size_t>(4, secret.size()));
  });
}

// Whether libpq's own words (outside quotes) hold a secret: only when its
// quotes were misread. Short words ("a", "in") occur in any sentence.
bool ProseHoldsSecret(std::string_view prose, const std::vector<std::string>& secrets) {
  return std::any_of(secrets.begin(), secrets.end(), [&](const std::string& secret) {
    return secret.size() >= 3 && prose.find(secret) != std::string_view::npos;
  });
}

// A quoted fragment of a libpq message, e.g. a whole URI: every secret in it
// masked, or the whole fragment when a piece of a secret remains.
std::string ScrubFragment(std::string fragment, const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    for (size_t at = fragment.find(secret); at != std::string::npos;
         at = fragment.find(secret, at + kMask.size())) {
      fragment.replace(at, secret.size(), kMask);
    }
  }
  return HoldsSecret(fragment, secrets) ? std::string(kMask) : fragment;
}

// Even pieces are prose, odd ones what libpq put in double quotes.
std::vector<std::string> SplitAtQuotes(std::string_view message) {
  std::vector<std::string> pieces{""};
  for (char c : message) {
    if (c == '"') {
      pieces.emplace_back();
    } else {
      pieces.back().push_back(c);
    }
  }
  return pieces;
}

// libpq's message with every quoted fragment that may hold the password masked.
// When the quoting is ambiguous, keep only the prose before the first quote.
std::string ScrubLibpqMessage(std::string_view message, std::string_view text) {
  const std::vector<std::string> secrets = SecretPieces(text, SecretSpans(text));
  if (secrets.empty()) return std::string(message);
  const std::vector<std::string> pieces = SplitAtQuotes(message);
  for (size_t i = 0; i < pieces.size(); i += 2) {
    if (ProseHoldsSecret(pieces[i], secrets)) return "(details hidden: they may hold the password)";
  }
  if (pieces.size() % 2 == 0) {  // an odd number of quotes: fragments cannot be told apart
    return pieces.front() + "... (details hidden: they may hold the password)";
  }
  std::string out;
  for (size_t i = 0; i < pieces.size(); ++i) {
    out += i % 2 == 0 ? pieces[i] : "\"" + ScrubFragment(pieces[i], secrets) + "\"";
  }
  return out == message ? out : out + " (parts that may hold the password are shown as ***)";
}

std::string TrimNewline(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Throws libpq's reason, scrubbed, when it rejects the string.
void Validate(const std::string& text) {
  char* raw_error = nullptr;
  const Options options{PQconninfoParse(text.c_str(), &raw_error), PQconninfoFree};
  if (options != nullptr) return;
  const std::string reason =
      raw_error != nullptr ? TrimNewline(raw_error) : std::string("out of memory");
  PQfreemem(raw_error);
  throw Error(ErrorKind::kConfig, "invalid connection string: " + ScrubLibpqMessage(reason, text) +
                                      "; " + std::string(kDocs));
}

// A value for Describe(): quoted the libpq way only when it must be.
std::string DescribeValue(const std::string& value) {
  const bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
    return IsSpace(c) || c == '\'' || c == '\\';
  });
  if (plain) return value;
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  return quoted + "'";
}

// Describes the redacted text, not the original: where a password with an
// unencoded '@' or '/' made libpq misread a URI, its host or dbname would
// hold pieces of that password.
std::string DescribeRedacted(const std::string& redacted) {
  constexpr std::array<std::string_view, 5> kShown = {"service", "host", "port", "dbname", "user"};
  const Options options{PQconninfoParse(redacted.c_str(), nullptr), PQconninfoFree};
  if (options == nullptr) return redacted;
  std::string out;
  for (std::string_view key : kShown) {
    for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
      if (o->keyword != key || o->val == nullptr) continue;
      out += (out.empty() ? "" : " ") + std::string(key) + "=" + DescribeValue(o->val);
    }
  }
  return out.empty() ? "(libpq defaults and PG* environment)" : out;
}

// The settings the string holds, as libpq reads them (URI form decoded).
Options ParseOptions(const std::string& conninfo) {
  Options options{PQconninfoParse(conninfo.c_str(), nullptr), PQconninfoFree};
  if (options == nullptr) throw Error(ErrorKind::kInternal, "a validated connection string no longer parses");
  return options;
}

}  // namespace

std::string Dsn::WithoutPassword() const {
  const Options options = ParseOptions(conninfo_);
  std::string out;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string_view(o->keyword) == "password") continue;
    if (std::string_view(o->keyword) == "sslpassword") {
      throw Error(ErrorKind::kConfig, fmt::format("the dsn {} holds sslpassword, which pg_dump could only be given "
                                                  "on its command line, visible to every local user; use a client "
                                                  "key without a passphrase (mode 0600)", redacted_));
    }
    out += (out.empty() ? "" : " ") + std::string(o->keyword) + "=" + DescribeValue(o->val);
  }
  return out;
}

std::string Dsn::Password() const {
  const Options options = ParseOptions(conninfo_);
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr && std::string_view(o->keyword) == "password") return o->val;
  }
  return {};
}

Dsn::Dsn() : Dsn(std::string()) {}

Dsn::Dsn(std::string conninfo) : conninfo_(std::move(conninfo)) {
  Validate(conninfo_);
  redacted_ = Mask(conninfo_, SecretSpans(conninfo_));
  description_ = DescribeRedacted(redacted_);
}

}  // namespace pgtandem
