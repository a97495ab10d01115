// sslmode=verify-full against servers whose certificates a CA made by the test signed.
#include <catch2/catch.hpp>

#include "support/replication_setup.hpp"
#include "support/test_ca.hpp"
#include "support/wait_until.hpp"

namespace pgtandem::test {
namespace {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

const std::string kSchema = "CREATE TABLE accounts (id integer PRIMARY KEY, owner text);";

std::string ConfigTrusting(ReplicationSetup& setup, const TestCa& ca) {
  std::string config = setup.DefaultConfig();
  for (PgCluster* cluster : {&setup.Source(), &setup.Target(0)}) {
    const std::string dsn = cluster->Dsn(kDatabase);
    config.replace(config.find(dsn), dsn.size(),
                   dsn + " sslmode=verify-full sslrootcert=" + ca.CertFile().string());
  }
  return config;
}

}  // namespace

TEST_CASE("the daemon replicates over sslmode=verify-full, and a server its CA did not sign is refused by name",
          "[scenario]") {
  ReplicationSetup setup("tls", 1, kSchema, R"(["public.*"])");
  const TestCa ca(setup.Dir(), "test-ca");
  const TestCa other(setup.Dir(), "other-ca");
  const TestCa::ServerCert server = ca.IssueServerCert("127.0.0.1");
  setup.Source().EnableSsl(server.cert, server.key);
  setup.Target(0).EnableSsl(server.cert, server.key);

  setup.WriteConfig(ConfigTrusting(setup, ca));
  setup.Install();
  {
    ChildProcess daemon = setup.StartDaemon();
    setup.Source().Exec("INSERT INTO accounts SELECT g, 'o' FROM generate_series(1, 100) g", kDatabase);
    setup.WaitEqual(30s);
    for (PgCluster* cluster : {&setup.Source(), &setup.Target(0)}) {
      const std::string tls_sessions = cluster->Query1(
          "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
          "WHERE a.application_name LIKE 'pgtandem%' AND s.ssl", kDatabase);
      REQUIRE(std::stoi(tls_sessions) > 0);
    }
  }

  // The pg_dump command snapshot prints verifies the server too; no pg_dump comes, so it gives up (exit 7).
  RunResult snapshot = setup.Pgtandem({"snapshot", "--hold", "1"});
  INFO(snapshot.output);
  REQUIRE(snapshot.exit_code == 7);
  REQUIRE_THAT(snapshot.output, Contains("sslmode=verify-full sslrootcert=" + ca.CertFile().string()));

  setup.WriteConfig(ConfigTrusting(setup, other));
  RunResult refused = setup.Pgtandem({"install"});
  INFO(refused.output);
  REQUIRE(refused.exit_code == 4);
  REQUIRE_THAT(refused.output, Contains("source node 'source'") && Contains("certificate verify failed"));
  RunResult status = setup.Pgtandem({"status"});
  INFO(status.output);
  REQUIRE_THAT(status.output, Contains("certificate verify failed"));
}

}  // namespace pgtandem::test
