//! `/products/{name}`: a product's belts, triggers, build history, and the graph of the
//! products upstream and downstream of it.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use conveyor_core::model::{Product, ScmEventType, Trigger};

use super::PageResult;
use super::dag::{Dag, NodeIn, layout};
use super::overview::BuildRow;
use super::secrets::{self, SecretRow};
use super::session::Reader;
use super::view::{Chrome, Link, badge, urlencode};
use crate::http::error::AppError;
use crate::services::{Services, history, input};
use crate::store::{BuildFilter, TRIGGER_KIND};
use conveyor_core::rules::downstream_targets;

pub struct BeltRow {
    pub name: String,
    pub jobs: usize,
    pub latest: Option<BuildRow>,
    /// The belt's latest build in each state it has one in, newest first.
    pub by_state: Vec<BuildRow>,
}

/// A page of the history, filtered: `before` is the cursor of the last build of the page
/// before; an empty field (as a form sends it) filters nothing.
#[derive(serde::Deserialize, Default)]
pub struct Paging {
    before: Option<String>,
    belt: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    status: Option<String>,
    trigger: Option<String>,
}

/// The history's filter as the page shows it in its form: empty strings for "any".
#[derive(Default)]
pub struct Filters {
    pub belt: String,
    pub git_ref: String,
    pub status: String,
    pub trigger: String,
    /// The filter as a query (`belt=…&status=…`), for links to other pages of it.
    pub query: String,
}

/// A form's field: `None` when empty.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl Paging {
    /// The store's filter for product `name`, and the form's values.
    fn filter(&self, name: &str) -> (BuildFilter, Filters) {
        let f = BuildFilter {
            product: Some(name.to_string()),
            belt: given(&self.belt),
            git_ref: given(&self.git_ref),
            status: given(&self.status),
            trigger: given(&self.trigger),
            before: given(&self.before),
            limit: None,
        };
        let pairs = [
            ("belt", &f.belt),
            ("ref", &f.git_ref),
            ("status", &f.status),
            ("trigger", &f.trigger),
        ];
        let query = pairs
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v))))
            .collect::<Vec<_>>()
            .join("&");
        let shown = |v: &Option<String>| v.clone().unwrap_or_default();
        let forms = Filters {
            belt: shown(&f.belt),
            git_ref: shown(&f.git_ref),
            status: shown(&f.status),
            trigger: shown(&f.trigger),
            query,
        };
        (f, forms)
    }
}

pub struct TriggerRow {
    pub text: String,
    pub link: Option<Link>,
}

#[derive(Template, WebTemplate)]
#[template(path = "product.html")]
pub struct ProductPage {
    pub chrome: Chrome,
    pub name: String,
    pub description: String,
    pub repo: String,
    pub belts: Vec<BeltRow>,
    pub triggers: Vec<TriggerRow>,
    pub builds: Vec<BuildRow>,
    /// The link to the next (older) page of the history, and whether this is not the first.
    pub older: Option<String>,
    pub paged: bool,
    /// The history's filter, and whether it filters anything.
    pub filters: Filters,
    pub filtered: bool,
    /// The values the filter's state and trigger lists offer.
    pub statuses: &'static [&'static str],
    pub triggers_kinds: &'static [&'static str],
    pub graph: Dag,
    pub graph_label: String,
    /// For a signed-in viewer: the product's secrets, and whether pull requests get them.
    pub secrets: Vec<SecretRow>,
    pub pr_secrets: bool,
}

pub async fn page(
    State(services): State<Arc<Services>>,
    Reader(viewer): Reader,
    Path(name): Path<String>,
    Query(paging): Query<Paging>,
) -> PageResult<ProductPage> {
    input::name("product", &name)?;
    let record = services
        .store
        .product(&name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no product `{name}`.")))?;
    let (filter, filters) = paging.filter(&name);
    let (history, next) = history::page(&services, &filter).await?;
    let belts = belt_rows(&services, &name, &record.model).await?;
    let registered: Vec<Product> = services
        .store
        .products()
        .await?
        .into_iter()
        .map(|p| p.model)
        .collect();
    let last_status = last_statuses(&services, &registered).await?;
    let graph = neighbours(&record.model, &registered, &last_status);
    let (secrets, pr_secrets) = secrets::rows(&services, &name, viewer.signed_in).await?;
    Ok(ProductPage {
        secrets,
        pr_secrets,
        chrome: Chrome::new(format!("Product {name}"), viewer),
        description: record.model.description.clone().unwrap_or_default(),
        repo: record.repo.unwrap_or_default(),
        belts,
        triggers: record.model.triggers.iter().map(trigger_row).collect(),
        builds: history.iter().map(BuildRow::of).collect(),
        older: next.map(|c| format!("/products/{name}?before={c}&{}", filters.query)),
        paged: filter.before.is_some(),
        filtered: !filters.query.is_empty(),
        filters,
        statuses: &input::BUILD_STATUSES,
        triggers_kinds: &TRIGGER_KIND,
        graph_label: format!("Products upstream and downstream of {name}"),
        graph,
        name,
    })
}

/// Each belt with its latest build per state (one statement, however long the history).
async fn belt_rows(services: &Services, name: &str, model: &Product) -> PageResult<Vec<BeltRow>> {
    let names: Vec<String> = model.belts.iter().map(|b| b.name.clone()).collect();
    let mut latest = services.store.latest_by_state(name, &names).await?;
    latest.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    Ok(model
        .belts
        .iter()
        .map(|b| {
            let by_state: Vec<BuildRow> = latest
                .iter()
                .filter(|h| h.belt == b.name)
                .map(BuildRow::of)
                .collect();
            BeltRow {
                name: b.name.clone(),
                jobs: b.jobs.len(),
                latest: latest.iter().find(|h| h.belt == b.name).map(BuildRow::of),
                by_state,
            }
        })
        .collect())
}

/// Each product's latest build status (`pending` when it has none), from one statement.
async fn last_statuses(
    services: &Services,
    products: &[Product],
) -> PageResult<Vec<(String, String)>> {
    let latest = services.store.latest_of_products().await?;
    Ok(products
        .iter()
        .map(|p| {
            let status = latest.iter().find(|b| b.product == p.name);
            let status = status.map_or_else(|| "pending".into(), |b| b.status.clone());
            (p.name.clone(), status)
        })
        .collect())
}

fn trigger_row(t: &Trigger) -> TriggerRow {
    let belts = |b: &Option<Vec<String>>| match b {
        Some(list) => format!("belts {}", list.join(", ")),
        None => "every belt".to_string(),
    };
    match t {
        Trigger::ScmEvent(s) => {
            let event = match s.event {
                ScmEventType::PullRequest => "a pull request",
                ScmEventType::Merge => "a merge",
                ScmEventType::Push => "a push",
                ScmEventType::Tag => "a tag",
            };
            let branches = if s.branches.is_empty() {
                String::new()
            } else {
                format!(" to {}", s.branches.join(", "))
            };
            TriggerRow {
                text: format!("{event}{branches} builds {}", belts(&s.belts)),
                link: None,
            }
        }
        Trigger::Schedule(c) => TriggerRow {
            text: format!(
                "the schedule `{}` (UTC) builds {} at the head of {}",
                c.cron,
                belts(&c.belts),
                c.branch.as_deref().unwrap_or("the product's branch")
            ),
            link: None,
        },
        Trigger::UpstreamBuild(u) => TriggerRow {
            text: format!("builds {} after a successful build of", belts(&u.belts)),
            link: Some(Link {
                href: format!("/products/{}", u.product),
                text: match &u.belt {
                    Some(b) => format!("{} {b}", u.product),
                    None => u.product.clone(),
                },
            }),
        },
    }
}

/// The product, the products whose builds fire it (left) and those it fires (right), each
/// coloured by its latest build.
fn neighbours(me: &Product, registered: &[Product], last: &[(String, String)]) -> Dag {
    let mut names = vec![me.name.clone()];
    let mut edges = Vec::new();
    let index = |names: &mut Vec<String>, n: &str| match names.iter().position(|x| x == n) {
        Some(i) => i,
        None => {
            names.push(n.to_string());
            names.len() - 1
        }
    };
    for b in &me.belts {
        for (p, _) in downstream_targets(me, &b.name, registered) {
            let i = index(&mut names, &p);
            if i != 0 && !edges.contains(&(0, i)) {
                edges.push((0, i));
            }
        }
    }
    for up in registered.iter().filter(|p| p.name != me.name) {
        let fires_me = up.belts.iter().any(|b| {
            downstream_targets(up, &b.name, registered)
                .iter()
                .any(|(p, _)| *p == me.name)
        });
        if fires_me {
            let i = index(&mut names, &up.name);
            if !edges.contains(&(i, 0)) {
                edges.push((i, 0));
            }
        }
    }
    let nodes = names
        .iter()
        .map(|n| NodeIn {
            id: n.clone(),
            name: n.clone(),
            badge: badge(
                last.iter()
                    .find(|(p, _)| p == n)
                    .map_or("pending", |(_, s)| s.as_str()),
            ),
            href: format!("/products/{n}"),
        })
        .collect();
    layout(nodes, &edges)
}
