//! Scratch databases for the benchmarks that write: created for one run on the server under
//! test, dropped after it.

use anyhow::Context;
use fault_proxy::FaultProxy;
use sqlx::{Connection, PgConnection};

/// The run's own database on the server.
pub struct Scratch {
    admin: String,
    pub name: String,
    pub url: String,
}

impl Scratch {
    /// Starts the fault proxy in front of this database's server; returns it and the
    /// database's URL through it (the failover and migration drills' Realtime target).
    pub async fn behind_proxy(&self) -> anyhow::Result<(FaultProxy, String)> {
        let mut url = url::Url::parse(&self.url)?;
        let host = url.host_str().unwrap_or("127.0.0.1").to_string();
        let upstream = tokio::net::lookup_host((host.as_str(), url.port().unwrap_or(5432)))
            .await?
            .next()
            .context("the Postgres server has no address")?;
        let proxy = FaultProxy::start(upstream).await?;
        url.set_host(Some("127.0.0.1"))?;
        url.set_port(Some(proxy.address().port()))
            .map_err(|()| anyhow::anyhow!("cannot set the proxy port"))?;
        Ok((proxy, url.to_string()))
    }

    /// Creates `switchyard_bench_<what>_<uuid>` on the server `server_url` names.
    pub async fn create(server_url: &str, what: &str) -> anyhow::Result<Self> {
        let mut base = url::Url::parse(server_url)?;
        let name = format!("switchyard_bench_{what}_{}", uuid::Uuid::new_v4().simple());
        base.set_path("/postgres");
        let admin = base.to_string();
        base.set_path(&format!("/{name}"));
        let mut conn = PgConnection::connect(&admin).await?;
        switchyard::store::pool::create_database(&mut conn, &name).await?;
        conn.close().await?;
        Ok(Self {
            admin,
            name,
            url: base.to_string(),
        })
    }

    pub async fn drop_database(&self) {
        if let Ok(mut conn) = PgConnection::connect(&self.admin).await {
            let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}
