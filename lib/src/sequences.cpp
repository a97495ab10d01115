// Checking and setting a sync's sequences on its targets; see sequence_plan.cpp for the rules.
#include "pgtandem/sequences.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>

#include <fmt/format.h>

namespace pgtandem {
namespace {

// What `Inspect` read and decided, per source sequence (same order).
struct Inspection {
  std::vector<TargetSide> sides;
  std::vector<SequenceReport> reports;
};

// Privileges the connected role lacks, grouped so that one message lists
// every object and the GRANT that fixes each group.
class MissingGrants {
 public:
  explicit MissingGrants(std::string role) : role_(std::move(role)) {}

  // privilege "UPDATE", kind "sequence": "role r lacks UPDATE on sequence a, b, <why>: GRANT ...".
  void Add(std::string_view privilege, std::string_view kind, std::string_view why, std::string object,
           std::string quoted) {
    Group& group = groups_[fmt::format("{} on {}", privilege, kind)];
    group.privilege = privilege;
    group.kind = kind;
    group.why = why;
    if (std::find(group.objects.begin(), group.objects.end(), object) != group.objects.end()) return;
    group.objects.push_back(std::move(object));
    group.quoted.push_back(std::move(quoted));
  }
  void AddProblem(std::string text) { problems_.push_back(std::move(text)); }

  // Throws one Error of the node's kind listing everything, when anything is missing.
  void ThrowIfAny(const pg::Connection& node) const {
    std::vector<std::string> lines = problems_;
    for (const auto& [lacking, g] : groups_) {
      std::string kind = g.kind;
      std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char c) { return std::toupper(c); });
      lines.push_back(fmt::format("role {} lacks {} {}, {}: GRANT {} ON {} {} TO {}", QuoteIdent(role_), lacking,
                                  fmt::join(g.objects, ", "), g.why, g.privilege, kind, fmt::join(g.quoted, ", "),
                                  QuoteIdent(role_)));
    }
    if (!lines.empty()) throw node.Failure(fmt::format("{}", fmt::join(lines, "\n")));
  }

 private:
  struct Group {
    std::string privilege;  // SELECT, UPDATE, CREATE
    std::string kind;       // sequence, table, schema
    std::string why;
    std::vector<std::string> objects;  // as shown to the reader
    std::vector<std::string> quoted;   // as written in the GRANT
  };
  std::string role_;
  std::map<std::string, Group> groups_;
  std::vector<std::string> problems_;
};

// A schema name as TableName::Display shows it, quoted only where needed.
std::string SchemaDisplay(const std::string& schema) {
  std::string shown = TableName{schema, "x"}.Display();
  return shown.substr(0, shown.size() - 2);
}

bool Compared(const FedColumn& column, const SequenceOptions& options) {
  return column.integer && (column.indexed || options.scan_unindexed);
}

void CheckReadGrants(const pg::Connection& target, const std::vector<TargetSide>& sides, const SequenceOptions& options,
                     const std::string& role) {
  MissingGrants grants(role);
  for (const auto& side : sides) {
    if (side.sequence && !side.sequence->can_read) {
      grants.Add("SELECT", "sequence", "needed to read where they stand", side.sequence->name.Display(),
                 side.sequence->name.Quoted());
    }
    for (const auto& column : side.feeds) {
      if (Compared(column, options) && !column.readable) {
        grants.Add("SELECT", "table", "needed to find the furthest value already in the columns sequences feed",
                   column.table.Display(), column.table.Quoted());
      }
    }
  }
  grants.ThrowIfAny(target);
}

// One column to read the furthest value of: the largest, or the smallest for a descending sequence.
struct ColumnQuery {
  const FedColumn* column;
  bool largest;
};

// Statements read this many columns at once: few round trips, and statements of a sane length.
constexpr size_t kColumnsPerStatement = 100;

// The furthest value in each column, nullopt for an empty column.
pg::Awaitable<std::vector<std::optional<int64_t>>> ReadColumnExtremes(pg::Connection& node,
                                                                      const std::vector<ColumnQuery>& columns) {
  std::vector<std::optional<int64_t>> extremes(columns.size());
  for (size_t first = 0; first < columns.size(); first += kColumnsPerStatement) {
    std::string sql;
    size_t end = std::min(columns.size(), first + kColumnsPerStatement);
    for (size_t i = first; i < end; ++i) {
      const FedColumn& c = *columns[i].column;
      sql += fmt::format("{}(SELECT pg_catalog.{}({}) FROM {})::text", sql.empty() ? "SELECT " : ", ",
                         columns[i].largest ? "max" : "min", QuoteIdent(c.column), c.table.Quoted());
    }
    pg::Result row = co_await node.Exec(sql);
    for (size_t i = first; i < end; ++i) {
      int column = static_cast<int>(i - first);
      if (!row.IsNull(0, column)) extremes[i] = row.GetInt(0, column);
    }
  }
  co_return extremes;
}


// The furthest value present per sequence, over the columns it feeds.
pg::Awaitable<std::vector<std::optional<PresentValue>>> ReadPresent(pg::Connection& target, const SyncSequenceSet& set,
                                                                    const std::vector<TargetSide>& sides,
                                                                    const SequenceOptions& options) {
  std::vector<ColumnQuery> queries;
  std::vector<size_t> sequence_of;
  for (size_t i = 0; i < sides.size(); ++i) {
    for (const auto& column : sides[i].feeds) {
      if (!Compared(column, options)) continue;
      queries.push_back(ColumnQuery{&column, set.sequences[i].definition.Ascending()});
      sequence_of.push_back(i);
    }
  }
  std::vector<std::optional<int64_t>> extremes = co_await ReadColumnExtremes(target, queries);
  std::vector<std::optional<PresentValue>> present(sides.size());
  for (size_t q = 0; q < queries.size(); ++q) {
    auto& best = present[sequence_of[q]];
    if (extremes[q] && (!best || Further(queries[q].largest, *extremes[q], best->value))) {
      best = PresentValue{*extremes[q], queries[q].column->Display()};
    }
  }
  co_return present;
}

std::vector<std::string> Unchecked(const TargetSide& side, const SequenceOptions& options) {
  std::vector<std::string> out;
  for (const auto& column : side.feeds) {
    if (!column.integer) {
      out.push_back(column.Display() + " (not an integer column)");
    } else if (!Compared(column, options)) {
      out.push_back(column.Display() + " (no index leads with it; the daemon does not scan it)");
    }
  }
  return out;
}

pg::Awaitable<Inspection> Inspect(pg::Connection& target, const SyncSequenceSet& set, const SequenceOptions& options,
                                  const std::string& role) {
  Inspection inspection;
  inspection.sides = co_await LoadTargetSides(target, set.sequences);
  CheckReadGrants(target, inspection.sides, options, role);
  std::vector<std::optional<PresentValue>> present = co_await ReadPresent(target, set, inspection.sides, options);
  for (size_t i = 0; i < inspection.sides.size(); ++i) {
    SequenceReport report = PlanSequence(set.sequences[i], inspection.sides[i], present[i], options);
    report.unchecked_columns = Unchecked(inspection.sides[i], options);
    inspection.reports.push_back(std::move(report));
  }
  co_return inspection;
}

void CheckWriteGrants(const pg::Connection& target, const Inspection& inspection, const std::string& role) {
  MissingGrants grants(role);
  for (size_t i = 0; i < inspection.reports.size(); ++i) {
    const SequenceReport& r = inspection.reports[i];
    const TargetSide& side = inspection.sides[i];
    if (r.action == SequenceAction::kSet && !side.sequence->can_update) {
      grants.Add("UPDATE", "sequence", "needed to set them (setval)", side.sequence->name.Display(),
                 side.sequence->name.Quoted());
    } else if (r.action == SequenceAction::kRedefine && !side.sequence->owned) {
      grants.AddProblem(
          fmt::format("role {} does not own sequence {}, and only its owner may ALTER it "
                      "(--fix-definitions): run as its owner, or ALTER SEQUENCE {} OWNER TO {}",
                      QuoteIdent(role), side.sequence->name.Display(), side.sequence->name.Quoted(), QuoteIdent(role)));
    } else if (r.action == SequenceAction::kCreate && !side.schema_exists) {
      grants.AddProblem(
          fmt::format("schema {} does not exist, so the missing sequence {} cannot be created there: "
                      "CREATE SCHEMA {} first",
                      QuoteIdent(r.sequence.schema), r.sequence.Display(), QuoteIdent(r.sequence.schema)));
    } else if (r.action == SequenceAction::kCreate && !side.can_create) {
      grants.Add("CREATE", "schema", "needed to create the missing sequences (--create-missing)",
                 SchemaDisplay(r.sequence.schema), QuoteIdent(r.sequence.schema));
    }
  }
  grants.ThrowIfAny(target);
}

std::string DefinitionSql(const SequenceDefinition& d) {
  if (d.type != "bigint" && d.type != "integer" && d.type != "smallint") {
    throw Error(ErrorKind::kInternal, fmt::format("unexpected sequence type \"{}\" (please report it)", d.type));
  }
  return fmt::format("AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {}", d.type, d.increment,
                     d.min, d.max, d.start, d.cache, d.cycle ? "CYCLE" : "NO CYCLE");
}

pg::Awaitable<void> SetValue(pg::Connection& target, const TableName& name, const SequenceValue& value) {
  co_await target.Exec("SELECT pg_catalog.setval($1::pg_catalog.regclass, $2, $3)", name.Quoted(),
                       std::to_string(value.last_value), std::string(value.is_called ? "true" : "false"));
}

// OWNED BY the source's owner column, when the target has it. The sequence
// must belong to the table's owner first; a role that cannot arrange that
// leaves the link out and says how to make it.
pg::Awaitable<std::string> LinkOwner(pg::Connection& target, const SourceSequence& source, const TargetSide& side,
                                     const std::string& role) {
  if (!source.owner || !side.owner_table_owner) co_return std::string();
  std::string column = source.owner->table.Quoted() + "." + QuoteIdent(source.owner->column);
  std::string failure;
  co_await target.Exec("SAVEPOINT pgtandem_owned_by");
  try {
    if (*side.owner_table_owner != role) {
      co_await target.Exec(
          fmt::format("ALTER SEQUENCE {} OWNER TO {}", source.name.Quoted(), QuoteIdent(*side.owner_table_owner)));
    }
    co_await target.Exec(fmt::format("ALTER SEQUENCE {} OWNED BY {}", source.name.Quoted(), column));
  } catch (const Error& e) {
    failure = e.what();
  }
  if (failure.empty()) co_return "OWNED BY " + source.owner->Display();
  co_await target.Exec("ROLLBACK TO SAVEPOINT pgtandem_owned_by");
  std::string owner = QuoteIdent(*side.owner_table_owner);
  co_return fmt::format(
      "created without OWNED BY {} ({}); to link it, as a superuser or a member of role {} run: ALTER SEQUENCE {} "
      "OWNER TO {}; ALTER SEQUENCE {} OWNED BY {}",
      source.owner->Display(), failure, owner, source.name.Quoted(), owner, source.name.Quoted(), column);
}

pg::Awaitable<void> Apply(pg::Connection& target, const SourceSequence& source, const TargetSide& side,
                          SequenceReport& r, const std::string& role) {
  if (r.action == SequenceAction::kSet) {
    co_await SetValue(target, *r.target_sequence, r.write);
    co_return;
  }
  co_await target.Exec("BEGIN");
  if (r.action == SequenceAction::kCreate) {
    co_await target.Exec(fmt::format("CREATE SEQUENCE {} {}", source.name.Quoted(), DefinitionSql(source.definition)));
    r.target_sequence = source.name;
    co_await SetValue(target, source.name, r.write);
    r.detail = co_await LinkOwner(target, source, side, role);
  } else {
    int64_t restart = r.write.is_called ? r.write.last_value : r.desired_next;
    co_await target.Exec(fmt::format("ALTER SEQUENCE {} {} RESTART WITH {}", r.target_sequence->Quoted(),
                                     DefinitionSql(source.definition), restart));
    co_await SetValue(target, *r.target_sequence, r.write);
  }
  co_await target.Exec("COMMIT");
}

bool Writes(SequenceAction action) {
  return action == SequenceAction::kSet || action == SequenceAction::kCreate || action == SequenceAction::kRedefine;
}

}  // namespace

bool TargetSequencesReport::AtRisk() const {
  return std::any_of(sequences.begin(), sequences.end(), [](const SequenceReport& r) { return r.at_risk; });
}

bool SyncSequencesReport::AtRisk() const {
  return std::any_of(targets.begin(), targets.end(), [](const TargetSequencesReport& t) { return t.AtRisk(); });
}

const Error* SyncSequencesReport::Failure() const {
  for (const auto& t : targets) {
    if (t.failure) return &*t.failure;
  }
  return nullptr;
}

pg::Awaitable<TargetSequencesReport> CheckTargetSequences(pg::Connection& target, const SyncSequenceSet& source,
                                                          const SequenceOptions& options) {
  std::string role = co_await CurrentRole(target);
  Inspection inspection = co_await Inspect(target, source, options, role);
  TargetSequencesReport report;
  report.target = target.Node();
  for (auto& r : inspection.reports) {
    r.at_risk = r.RiskFound();
    report.sequences.push_back(std::move(r));
  }
  co_return report;
}

pg::Awaitable<TargetSequencesReport> SyncTargetSequences(pg::Connection& target, const SyncSequenceSet& source,
                                                         const SequenceOptions& options) {
  std::string role = co_await CurrentRole(target);
  Inspection inspection = co_await Inspect(target, source, options, role);
  CheckWriteGrants(target, inspection, role);
  TargetSequencesReport report;
  report.target = target.Node();
  for (size_t i = 0; i < inspection.reports.size(); ++i) {
    SequenceReport& r = inspection.reports[i];
    if (Writes(r.action)) {
      std::exception_ptr failure;
      try {
        co_await Apply(target, source.sequences[i], inspection.sides[i], r, role);
        r.target_next_after = NextValue(source.sequences[i].definition, r.write);
      } catch (const Error& e) {
        r.failed = true;
        r.detail = e.what();
        failure = std::current_exception();
      }
      // A server that went away fails every sequence after this one too: stop here.
      if (failure && !target.Connected()) std::rethrow_exception(failure);
      if (failure && r.action != SequenceAction::kSet) co_await target.Exec("ROLLBACK");
    }
    r.at_risk = r.RiskRemains();
    report.sequences.push_back(std::move(r));
  }
  co_return report;
}

pg::Awaitable<SyncSequencesReport> RunSequences(boost::asio::any_io_executor executor, const Config& config,
                                                const SyncConfig& sync, const std::optional<std::string>& only_target,
                                                SequenceMode mode, const SequenceOptions& options) {
  auto timeout = std::chrono::seconds(config.daemon.connect_timeout_s);
  pg::Connection source(executor, sync.source, pg::Side::kSource, config.Node(sync.source).dsn, timeout);
  co_await source.Connect();
  SyncSequenceSet set = co_await LoadSyncSequences(source, sync);
  source.Close();
  SyncSequencesReport report;
  report.sync = sync.name;
  report.source = sync.source;
  report.unmatched_patterns = set.unmatched;
  for (const auto& name : sync.targets) {
    if (only_target && *only_target != name) continue;
    pg::Connection target(executor, name, pg::Side::kTarget, config.Node(name).dsn, timeout);
    TargetSequencesReport result;
    try {
      co_await target.Connect();
      if (mode == SequenceMode::kCheck) {
        result = co_await CheckTargetSequences(target, set, options);
      } else {
        result = co_await SyncTargetSequences(target, set, options);
      }
    } catch (const Error& e) {
      result.target = name;
      result.failure = e;
    }
    report.targets.push_back(std::move(result));
  }
  co_return report;
}

pg::Awaitable<SyncSequencesReport> FinalSequenceSync(boost::asio::any_io_executor executor, const Config& config,
                                                     const SyncConfig& sync, int64_t margin,
                                                     const std::optional<std::string>& only_target) {
  SequenceOptions options;
  options.margin = margin;
  SyncSequencesReport report =
      co_await RunSequences(executor, config, sync, only_target, SequenceMode::kSync, options);
  if (const Error* failure = report.Failure()) throw *failure;
  std::vector<std::string> risks;
  for (const auto& target : report.targets) {
    for (const auto& r : target.sequences) {
      if (r.at_risk) {
        risks.push_back(fmt::format("target '{}': {}", target.target, DescribeRisk(r, sync.name, target.target)));
      }
    }
  }
  if (!risks.empty()) {
    throw Error(ErrorKind::kState,
                fmt::format("sync '{}': {} sequence(s) still at risk after the final sequence sync:\n{}", sync.name,
                            risks.size(), fmt::join(risks, "\n")));
  }
  co_return report;
}

}  // namespace pgtandem
