//! HTTP clients: every client of the process is built here, with the TLS crypto provider installed once.

use std::sync::Once;

/// A client builder with TLS ready (rustls on ring: no C build, no system OpenSSL) and Forgecast's User-Agent.
pub fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Fails only if another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder().user_agent(concat!("forgecast/", env!("CARGO_PKG_VERSION")))
}

/// A client with default settings.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("a default HTTP client builds")
}
