//! An ordinary HTTPS client, trusting the system's certificate authorities: for Slack (webhook,
//! response_url) and the nbfleet API. Jupyter itself is reached through [`crate::Jupyter`].

use std::time::Duration;

pub fn web_client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .build()
        .expect("an HTTP client with a TLS configuration builds")
}
