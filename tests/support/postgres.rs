//! The PostgreSQL the service tests use: `LINKGATE_POSTGRES`, default the local server's `test`
//! database.
#![allow(dead_code)]

use postgres::{Client, Config, NoTls};

pub fn conninfo() -> String {
    std::env::var("LINKGATE_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into())
}

/// A plain connection for the test's own SQL.
pub fn admin() -> Client {
    conninfo()
        .parse::<Config>()
        .unwrap()
        .connect(NoTls)
        .expect("PostgreSQL at LINKGATE_POSTGRES")
}
