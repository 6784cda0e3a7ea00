//! The Postgres store, for several orchestrators against one database.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::Result;
use super::sql::db_err;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to and migrates the database at `url` (`postgres://…`).
    pub async fn open(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(db_err)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(db_err)?;
        Ok(PostgresStore { pool })
    }

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }
}

super::shared::impl_store!(PostgresStore, sqlx::Postgres, sqlx::PgConnection);
