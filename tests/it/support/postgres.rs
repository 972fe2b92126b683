//! The test PostgreSQL that `scripts/test` starts (`scripts/postgres`), and a fresh database on
//! it for each test.

/// The server's URL from `AUGER_TEST_DATABASE_URL`; without it the test fails saying how to
/// get one.
pub fn server_url() -> String {
    match std::env::var("AUGER_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "AUGER_TEST_DATABASE_URL is not set: this test needs PostgreSQL. Run the tests with \
             scripts/test, which starts a throwaway server (scripts/postgres) and sets it, or set \
             it to a database of your own"
        ),
    }
}

/// A new, empty database on the test server, for one test: its URL.
pub async fn fresh_database() -> String {
    let url = server_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to AUGER_TEST_DATABASE_URL: {e}"));
    let driver = tokio::spawn(connection);
    let name = format!("auger_test_{:016x}", fastrand::u64(..));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
    with_database(&url, &name)
}

/// A new database, from a test that is not async.
pub fn fresh_database_blocking() -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fresh_database())
}

/// The database a URL names.
pub fn database_name(url: &str) -> &str {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    base.rsplit('/').next().unwrap_or(base)
}

/// `url` with its query (`sslmode=…`) replaced by `query`.
pub fn with_query(url: &str, query: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    format!("{base}?{query}")
}

/// The test server's CA (`scripts/postgres` makes it and a certificate for 127.0.0.1).
pub fn server_ca() -> std::path::PathBuf {
    match std::env::var("AUGER_TEST_PG_CA") {
        Ok(path) if !path.trim().is_empty() => path.into(),
        _ => panic!(
            "AUGER_TEST_PG_CA is not set: the TLS tests need the CA of a server that speaks TLS. \
             scripts/test starts one (scripts/postgres) and sets it"
        ),
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_and_path = &base[scheme_end..];
    let host = host_and_path.split('/').next().unwrap_or(host_and_path);
    let mut out = format!("{}{host}/{name}", &base[..scheme_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// One query's first column as text, on a fresh connection (for assertions).
pub async fn query_strings(url: &str, sql: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    let rows = client.simple_query(sql).await.unwrap();
    drop(client);
    let _ = driver.await;
    rows.into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect()
}

#[test]
fn the_database_name_is_replaced_and_the_rest_kept() {
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:5432/auger", "t1"),
        "postgres://u:p@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u@h/auger?sslmode=disable", "t1"),
        "postgres://u@h/t1?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://h:1", "t1"), "postgresql://h:1/t1");
}
