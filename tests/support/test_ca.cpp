// A certificate authority of a test's own; see test_ca.hpp.
#include "support/test_ca.hpp"

#include <fstream>
#include <stdexcept>
#include <vector>

#include "support/child_process.hpp"

namespace pgtandem::test {
namespace {

namespace fs = std::filesystem;

void OpenSsl(std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  const RunResult result = Run(args, std::chrono::seconds(60));
  if (result.exit_code != 0) {
    throw std::runtime_error("openssl " + args.at(1) + " failed (exit " + std::to_string(result.exit_code) +
                             "):\n" + LastLines(result.output, 20));
  }
}

const std::vector<std::string> kNewKey = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TestCa::TestCa(fs::path dir, std::string name)
    : dir_(std::move(dir)), name_(std::move(name)), key_(dir_ / (name_ + ".key")), cert_(dir_ / (name_ + ".crt")) {
  OpenSsl(Concat({"req", "-x509", "-days", "2", "-subj", "/CN=" + name_, "-keyout", key_.string(), "-out",
                  cert_.string()},
                 kNewKey));
}

TestCa::ServerCert TestCa::IssueServerCert(const std::string& ip) const {
  const std::string stem = (dir_ / (name_ + "-server-" + ip)).string();
  ServerCert out{stem + ".crt", stem + ".key"};
  const std::string csr = stem + ".csr";
  const std::string extensions = stem + ".ext";
  std::ofstream(extensions) << "subjectAltName = IP:" << ip << "\n";
  OpenSsl(Concat({"req", "-new", "-subj", "/CN=" + ip, "-keyout", out.key.string(), "-out", csr}, kNewKey));
  OpenSsl({"x509", "-req", "-days", "2", "-in", csr, "-CA", cert_.string(), "-CAkey", key_.string(),
           "-CAcreateserial", "-out", out.cert.string(), "-extfile", extensions});
  return out;
}

}  // namespace pgtandem::test
