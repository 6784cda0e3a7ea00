//! `/`: products with their latest build, recent builds, and fleet health at a glance.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::PageResult;
use super::fleets::{FleetRow, fleet_rows};
use super::session::Reader;
use super::view::{Badge, Chrome, Link, badge, since, took, trigger_text, when};
use crate::services::Services;
use crate::store::{BuildFilter, BuildView};

/// A build as a table row.
pub struct BuildRow {
    pub id: String,
    pub product: String,
    pub belt: String,
    pub number: u64,
    pub badge: Badge,
    pub trigger: String,
    pub trigger_link: Option<Link>,
    pub git_ref: String,
    /// The first line of the commit's message, when its repository told.
    pub subject: String,
    pub created: String,
    pub took: String,
    /// While running: when it started, for a ticking timer.
    pub since: Option<i64>,
}

impl BuildRow {
    pub fn of(b: &BuildView) -> Self {
        let (trigger, trigger_link) = trigger_text(b);
        BuildRow {
            id: b.id.clone(),
            product: b.product.clone(),
            belt: b.belt.clone(),
            number: b.number,
            badge: badge(&b.status),
            trigger,
            trigger_link,
            git_ref: b.git_ref.clone().unwrap_or_default(),
            subject: b
                .context
                .as_ref()
                .and_then(|c| c.commit.as_ref())
                .map(|c| c.subject().to_string())
                .unwrap_or_default(),
            created: when(b.created_at),
            took: took(Some(b.created_at), b.finished_at),
            since: since(Some(b.created_at), b.finished_at),
        }
    }
}

pub struct ProductRow {
    pub name: String,
    pub belts: String,
    pub latest: Option<BuildRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub chrome: Chrome,
    pub products: Vec<ProductRow>,
    pub builds: Vec<BuildRow>,
    pub fleets: Vec<FleetRow>,
    /// Runners holding a running job run now.
    pub busy: u64,
}

pub async fn page(
    State(services): State<Arc<Services>>,
    Reader(viewer): Reader,
) -> PageResult<OverviewPage> {
    let recent = services
        .store
        .builds(&BuildFilter {
            limit: Some(20),
            ..Default::default()
        })
        .await?;
    let latest = services.store.latest_of_products().await?;
    let mut products = Vec::new();
    for p in services.store.products().await? {
        products.push(ProductRow {
            belts: p
                .model
                .belts
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            latest: latest
                .iter()
                .find(|b| b.product == p.name)
                .map(BuildRow::of),
            name: p.name,
        });
    }
    Ok(OverviewPage {
        chrome: Chrome::new("Overview", viewer),
        products,
        builds: recent.iter().map(BuildRow::of).collect(),
        fleets: fleet_rows(&services).await?,
        busy: services.store.run_counts().await?.1,
    })
}
