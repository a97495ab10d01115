// A certificate authority of a test's own, made with openssl, for sslmode=verify-full.
#pragma once

#include <filesystem>
#include <string>

namespace pgtandem::test {

// A CA key and self-signed certificate in `dir`, and server certificates it
// signs. EC P-256 keys: quick to make, and every libpq build accepts them.
class TestCa {
 public:
  // Creates <dir>/<name>.key and <dir>/<name>.crt; throws with openssl's output if it fails.
  TestCa(std::filesystem::path dir, std::string name);

  // The CA certificate, what a client gives as sslrootcert.
  const std::filesystem::path& CertFile() const { return cert_; }

  struct ServerCert {
    std::filesystem::path cert;
    std::filesystem::path key;
  };
  // A key and a certificate for a server reached at IP address `ip`, with it
  // as the CN and the subjectAltName that verify-full checks.
  ServerCert IssueServerCert(const std::string& ip) const;

 private:
  std::filesystem::path dir_;
  std::string name_;
  std::filesystem::path key_;
  std::filesystem::path cert_;
};

}  // namespace pgtandem::test
