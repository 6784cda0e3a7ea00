//! Resolving a job's references to values: outputs of jobs of the same build, or of the
//! upstream product's build (the one that triggered this chain, else the last successful).

macro_rules! value_steps {
    ($store:ident, $conn:ty) => {
        impl $store {
            /// `(env, value)` for each reference, in order; a missing value is empty.
            async fn resolve_values(
                conn: &mut $conn,
                build_id: &str,
                refs: &[conveyor_core::model::Reference],
            ) -> $crate::Result<Vec<(String, String)>> {
                use conveyor_core::model::RefTarget;
                let mut out = Vec::with_capacity(refs.len());
                for r in refs {
                    let value = match &r.target {
                        RefTarget::Job { job, output } => {
                            Self::run_outputs(conn, build_id, job).await?.remove(output)
                        }
                        RefTarget::Product { target, output } => {
                            match Self::upstream_build(conn, build_id, &target.product, target.belt.as_deref()).await? {
                                Some(up) => match &target.job {
                                    Some(job) => Self::run_outputs(conn, &up, job).await?.remove(output),
                                    None => Self::any_output(conn, &up, output).await?,
                                },
                                None => None,
                            }
                        }
                    };
                    out.push((r.env.clone(), value.unwrap_or_default()));
                }
                Ok(out)
            }

            async fn run_outputs(
                conn: &mut $conn,
                build_id: &str,
                job: &str,
            ) -> $crate::Result<std::collections::BTreeMap<String, String>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let row = sqlx::query("SELECT outputs FROM job_runs WHERE build_id = $1 AND name = $2")
                    .bind(build_id)
                    .bind(job)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
                let json: Option<String> = match row {
                    Some(r) => r.try_get("outputs").map_err(db_err)?,
                    None => None,
                };
                $crate::sql::outputs_of(json)
            }

            /// The first job (in belt order) of the build that has `output`.
            async fn any_output(conn: &mut $conn, build_id: &str, output: &str) -> $crate::Result<Option<String>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let rows = sqlx::query("SELECT outputs FROM job_runs WHERE build_id = $1 AND outputs IS NOT NULL ORDER BY idx")
                    .bind(build_id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_err)?;
                for r in rows {
                    let mut outputs = $crate::sql::outputs_of(r.try_get("outputs").map_err(db_err)?)?;
                    if let Some(v) = outputs.remove(output) {
                        return Ok(Some(v));
                    }
                }
                Ok(None)
            }

            /// The `build:` selector of this build's product's `upstream-build` trigger on
            /// `product` (last successful when it has none).
            async fn selector_for(
                conn: &mut $conn,
                build_id: &str,
                product: &str,
            ) -> $crate::Result<conveyor_core::model::BuildSelector> {
                use sqlx::Row;
                use $crate::sql::{db_err, from_json};
                let row = sqlx::query("SELECT p.model FROM builds b JOIN products p ON p.name = b.product WHERE b.id = $1")
                    .bind(build_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
                let Some(row) = row else {
                    return Ok(conveyor_core::model::BuildSelector::LastSuccessful);
                };
                let model: conveyor_core::model::Product = from_json(&row.try_get::<String, _>("model").map_err(db_err)?)?;
                Ok(model
                    .triggers
                    .iter()
                    .find_map(|t| match t {
                        conveyor_core::model::Trigger::UpstreamBuild(u) if u.product == product => Some(u.build),
                        _ => None,
                    })
                    .unwrap_or(conveyor_core::model::BuildSelector::LastSuccessful))
            }

            /// The build of `product` whose outputs this build reads: the nearest in the
            /// chain of builds that triggered it, else that product's last successful one.
            async fn upstream_build(
                conn: &mut $conn,
                build_id: &str,
                product: &str,
                belt: Option<&str>,
            ) -> $crate::Result<Option<String>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let mut at = build_id.to_string();
                for _ in 0..conveyor_core::rules::MAX_CHAIN {
                    let Some(row) = sqlx::query("SELECT upstream_build_id FROM builds WHERE id = $1")
                        .bind(&at)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(db_err)?
                    else {
                        break;
                    };
                    let Some(up): Option<String> = row.try_get("upstream_build_id").map_err(db_err)? else {
                        break;
                    };
                    let r = sqlx::query("SELECT product, belt FROM builds WHERE id = $1")
                        .bind(&up)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(db_err)?;
                    let (p, b): (String, String) =
                        (r.try_get("product").map_err(db_err)?, r.try_get("belt").map_err(db_err)?);
                    if p == product && belt.is_none_or(|want| want == b) {
                        return Ok(Some(up));
                    }
                    at = up;
                }
                // Not in the chain (a manual build): the trigger's `build:` selector decides.
                let selector = Self::selector_for(conn, build_id, product).await?;
                let (status, number) = match selector {
                    conveyor_core::model::BuildSelector::Last => (None, None),
                    conveyor_core::model::BuildSelector::LastSuccessful => (Some("succeeded"), None),
                    conveyor_core::model::BuildSelector::LastFailure => (Some("failed"), None),
                    conveyor_core::model::BuildSelector::Number(n) => (None, Some(n as i64)),
                };
                let row = sqlx::query(
                    "SELECT id FROM builds WHERE product = $1 AND (CAST($2 AS TEXT) IS NULL OR belt = $2) \
                     AND (CAST($3 AS TEXT) IS NULL OR status = $3) AND (CAST($4 AS BIGINT) IS NULL OR number = $4) \
                     AND id <> $5 ORDER BY number DESC LIMIT 1",
                )
                .bind(product)
                .bind(belt)
                .bind(status)
                .bind(number)
                .bind(build_id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
                row.map(|r| r.try_get("id")).transpose().map_err(db_err)
            }
        }
    };
}

pub(crate) use value_steps;
