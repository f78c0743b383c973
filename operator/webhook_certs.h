#pragma once
// The admission webhook's serving certificate without cert-manager
// (--webhook-cert-secret): the operator makes its own CA and serving certificate,
// keeps them in one Secret that every replica shares, and writes the CA into the
// ValidatingWebhookConfiguration's caBundle (controller-runtime users get the same
// from cert-controller; the semantics here follow it, the code is our own).
//
//   Secret <ns>/<name>, type kubernetes.io/tls:
//     ca.crt, ca.key   a self-signed CA (EC P-256), valid 10 years
//     tls.crt, tls.key the serving certificate it signs, valid 1 year, for the hosts
//
// Every replica runs Ensure() before it serves and then Run(): the first replica
// to find no usable Secret creates it (another creating it first wins: 409, re-read);
// a serving certificate within 30 days of its end, or not covering the hosts, is
// re-issued from the same CA (an Update with the resourceVersion read: a concurrent
// rotation wins, the loser re-reads), so the caBundle stays valid through rotations;
// each replica re-reads the Secret every period and serves what it holds. The CA
// itself is replaced only when it cannot sign (missing, unparsable, not a CA, a
// key that is not its own, or within 30 days of its own end), and then the
// caBundle is rewritten too. The caBundle is checked every period, so a
// configuration re-created or reset by a sync gets it back.
//
// Certificates are made with OpenSSL's C API (X509, EVP): no library in Debian does
// this for C++, and the code is small.
//
// Threading: Ensure() and Run() on one thread (main, then the runnable); Current()
// from any thread (the HTTPS server's, per connection).

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "common/time.h"
#include "operator/kube/client.h"

namespace cronlane::op {

// A certificate and its key, PEM.
using CertKey = TlsPem;

// A self-signed CA named `common_name`, valid from an hour before `now` for `days`.
Result<CertKey> MakeCa(const std::string& common_name, Instant now, int days);
// A serving certificate for `hosts` (DNS names, or IP addresses) signed by `ca`.
Result<CertKey> MakeServingCert(const CertKey& ca, const std::vector<std::string>& hosts, Instant now, int days);
// When a PEM certificate stops being valid.
Result<Instant> CertificateEnd(const std::string& cert_pem);
// Whether `cert` is signed by `ca`, its key matches, and it names every host.
bool ServesHosts(const CertKey& cert, const std::string& ca_pem, const std::vector<std::string>& hosts);

struct WebhookCertOptions {
  std::string ns;                  // the Secret's namespace (the operator's)
  std::string secret;              // the Secret's name
  std::vector<std::string> hosts;  // what the serving certificate names
  std::string configuration;       // ValidatingWebhookConfiguration to patch; "" = none
  std::chrono::seconds period{60};
  int ca_days = 3650;
  int cert_days = 365;
  std::chrono::hours renew_before{24 * 30};
};

class WebhookCertificates {
 public:
  WebhookCertificates(kube::KubeClient& client, Clock& clock, WebhookCertOptions options);

  // Reads (or makes) the Secret and loads its serving pair; then patches the
  // caBundle when a configuration is named (a failure there is logged and retried
  // by Run, not returned: the configuration may be applied after the operator).
  Status Ensure();
  // Ensure() every period until `cancel` fires; errors are logged and retried.
  Status Run(CancelToken& cancel);
  // The serving pair loaded last; empty before Ensure() succeeded.
  CertKey Current() const;
  // Current() as HttpServer takes it.
  TlsSource Source() const;

 private:
  // What the Secret holds once it is usable: the serving pair and the CA.
  struct Held {
    CertKey serving;
    std::string ca;
  };
  Result<Held> ReadOrCreate();
  Status PatchCaBundle(const std::string& ca_pem);

  kube::KubeClient& client_;
  Clock& clock_;
  WebhookCertOptions options_;
  mutable Mutex mu_;
  CertKey current_ GUARDED_BY(mu_);
};

}  // namespace cronlane::op
