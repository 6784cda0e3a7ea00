//! Postgres over TLS, against the local server (it has SSL on, with a self-signed
//! certificate): `sslmode` in the URL is honoured.

use conveyor_store::testing::{fresh_pg_url, product};
use sqlx::Connection;

#[tokio::test]
async fn with_sslmode_require_the_store_opens_migrates_and_talks_over_tls() {
    let url = format!("{}?sslmode=require", fresh_pg_url().await);
    let store = conveyor_store::open(&url).await.expect("opens over TLS");
    let yaml =
        "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n";
    store.put_product(&product(yaml), 1).await.unwrap();
    assert_eq!(store.products().await.unwrap()[0].name, "p");
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(ssl, "the connection is not encrypted");
}

#[tokio::test]
async fn with_sslmode_verify_full_and_no_ca_for_the_servers_certificate_opening_fails_clearly() {
    let url = format!("{}?sslmode=verify-full", fresh_pg_url().await);
    let err = match conveyor_store::open(&url).await {
        Ok(_) => panic!("a self-signed certificate was trusted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with("database error: TLS with the database failed: ")
            && err.contains("invalid peer certificate")
            && err.ends_with("check the URL's sslmode, and name the CA that signed the server's certificate with sslrootcert=FILE (or --ca-cert)"),
        "{err}"
    );
}
