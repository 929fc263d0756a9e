//! The CLI over TLS: a rustls listener with a certificate made for the test (its own CA, so
//! nothing on the machine trusts it) stands in front of a test server, as an HTTPS proxy
//! would. With `--ca-cert` the commands reach it over `https://` (`flags list`) and `wss://`
//! (`tail`); without it they refuse the certificate and say so.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::{TempFile, assert_failure, assert_success, finish, stdout, switchyard};
use crate::support::{TestApp, spawn_app};

/// Terminates TLS on a free port and forwards each connection to `app`; returns the port and
/// the PEM certificate to trust.
async fn https_in_front_of(app: &TestApp) -> (u16, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = app.address;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to forward.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, made.cert.pem())
}

#[tokio::test]
async fn flags_list_reaches_an_https_server_trusting_the_ca_given() {
    let app = spawn_app().await;
    let (port, pem) = https_in_front_of(&app).await;
    let ca = TempFile::with(&pem);
    let url = format!("https://localhost:{port}");

    let output = finish(
        switchyard(
            &app,
            &[
                "flags",
                "list",
                "--json",
                "--url",
                &url,
                "--ca-cert",
                ca.path(),
            ],
            &[],
        ),
        None,
    )
    .await;
    assert_success(&output);
    assert!(
        stdout(&output).contains("broadcast.strategy"),
        "{}",
        stdout(&output)
    );

    // The same through the environment variable.
    let output = finish(
        switchyard(
            &app,
            &["flags", "list", "--json", "--url", &url],
            &[("SWITCHYARD_CA_CERT", ca.path())],
        ),
        None,
    )
    .await;
    assert_success(&output);

    // Not trusted without it: refused, saying why, not a panic.
    let output = finish(
        switchyard(&app, &["flags", "list", "--url", &url], &[]),
        None,
    )
    .await;
    let error = assert_failure(&output);
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

#[tokio::test]
async fn tail_subscribes_over_wss_trusting_the_ca_given() {
    let app = spawn_app().await;
    let (port, pem) = https_in_front_of(&app).await;
    let ca = TempFile::with(&pem);
    let url = format!("https://localhost:{port}");
    let tail = switchyard(
        &app,
        &[
            "tail",
            "--json",
            "--count",
            "1",
            "--url",
            &url,
            "--ca-cert",
            ca.path(),
        ],
        &[],
    );
    let running = tokio::spawn(finish(tail, None));
    // Publish until the subscriber has it (it may not have subscribed yet for the first ones).
    let output = loop {
        app.publish_ok(&crate::support::event("over_wss", "tls"))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if running.is_finished() {
            break running.await.unwrap();
        }
    };
    assert_success(&output);
    assert!(stdout(&output).contains("over_wss"), "{}", stdout(&output));
}
