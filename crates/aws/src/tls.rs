//! Where the SDK clients find their TLS roots, chosen so that a Lambda's cold start reads them
//! once.
//!
//! The SDK's default HTTPS client reads the system's root certificates (rustls-native-certs)
//! when the first client is built. Without `SSL_CERT_FILE` or `SSL_CERT_DIR`, it reads the CA
//! bundle file *and* every file of the certificates folder, which on Debian and Amazon Linux
//! holds the same certificates again: about 1.5 ms of a 5 ms cold start on the bench machine
//! (docs/performance.md).

/// Points `SSL_CERT_FILE` at the system's CA bundle when neither `SSL_CERT_FILE` nor
/// `SSL_CERT_DIR` is set, so that the roots are read from that one file. The trust is the
/// same: it is the file the default probe finds first, and the folder it would also read
/// holds that bundle's certificates again.
///
/// # Safety
/// It sets an environment variable: call it before any other thread exists (first thing in
/// `main`, before the Tokio runtime is built).
pub unsafe fn use_one_root_bundle() {
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return;
    }
    if let Some(file) = openssl_probe::probe().cert_file {
        // SAFETY: the caller promises that no other thread exists yet.
        unsafe { std::env::set_var("SSL_CERT_FILE", file) };
    }
}
