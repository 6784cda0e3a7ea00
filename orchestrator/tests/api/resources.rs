//! Conveyor CI's resource API over HTTP: definitions with a JSON Schema compiled when saved,
//! resources checked against it and versioned, and the statuses Conveyor CI answers 500
//! with (an unknown type, a name taken, a schema failure, a definition still in use).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::{ADMIN, App, spawn_app};

/// A schema with a nested required field and a pattern.
pub fn app_schema() -> Value {
    json!({
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {
                "type": "object",
                "required": ["repo", "tag"],
                "properties": {
                    "repo": {"type": "string"},
                    "tag": {"type": "string", "pattern": "^v[0-9]+$"}
                }
            },
            "replicas": {"type": "integer", "minimum": 1}
        }
    })
}

impl App {
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        }
        .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    pub async fn define(&self, name: &str, schema: Value) {
        let body =
            json!({ "name": name, "description": "apps", "version": "v1", "schema": schema });
        let (status, body) = self
            .call("POST", "/resource-definitions", Some(&body))
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

fn resource(name: &str, tag: &str) -> Value {
    json!({ "name": name, "resource": "app", "metadata": {"team": "web"},
            "spec": {"image": {"repo": "shop", "tag": tag}, "replicas": 2} })
}

#[tokio::test]
async fn a_definition_is_created_read_listed_and_not_created_twice() {
    let app = spawn_app().await;
    app.define("app", app_schema()).await;
    let (status, got) = app.get("/resource-definitions/app").await;
    assert_eq!(status, 200);
    assert_eq!(got["schema"], app_schema());
    assert_eq!(got["description"], "apps");

    let again = json!({ "name": "app", "schema": {"type": "object"} });
    let (status, body) = app
        .call("POST", "/resource-definitions", Some(&again))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("exists already"));
    app.define("db", json!({"type": "object"})).await;
    let (status, list) = app.get("/resource-definitions").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "db"]);
}

#[tokio::test]
async fn an_invalid_schema_or_name_is_refused_and_a_definition_is_applied_or_replaced() {
    let app = spawn_app().await;
    let bad = json!({ "name": "broken", "schema": {"type": "strnig"} });
    let (status, body) = app.call("POST", "/resource-definitions", Some(&bad)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "schema");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("`schema` is not a valid JSON Schema: "),
        "{body}"
    );
    let (status, _) = app.get("/resource-definitions/broken").await;
    assert_eq!(status, 404);

    let applied = json!({ "name": "db", "schema": {"type": "object"} });
    let (status, _) = app
        .post("/resource-definitions/apply", None, &applied)
        .await;
    assert_eq!(status, 401, "writes need the admin token");
    let (status, body) = app
        .call("POST", "/resource-definitions/apply", Some(&applied))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call("POST", "/resource-definitions/apply", Some(&applied))
        .await;
    assert_eq!((status, body["name"].clone()), (200, json!("db")));

    let replace = json!({ "schema": {"type": "object"}, "description": "any" });
    let (status, body) = app
        .call("PUT", "/resource-definitions/nope", Some(&replace))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .call("PUT", "/resource-definitions/db", Some(&replace))
        .await;
    assert_eq!((status, body["description"].clone()), (200, json!("any")));
    let wrong = json!({ "name": "other", "schema": {} });
    let (status, body) = app
        .call("PUT", "/resource-definitions/db", Some(&wrong))
        .await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("name")),
        "{body}"
    );

    let bad_name = json!({ "name": "Bad Name", "schema": {} });
    let (status, body) = app
        .call("POST", "/resource-definitions", Some(&bad_name))
        .await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("name")),
        "{body}"
    );
}

#[tokio::test]
async fn a_resource_is_validated_versioned_and_its_old_versions_stay_readable() {
    let app = spawn_app().await;
    app.define("app", app_schema()).await;
    let (status, made) = app
        .call("POST", "/resources", Some(&resource("web", "v1")))
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["version"], 1);
    assert_eq!(
        made["runid"],
        Value::Null,
        "nothing listens to type `app`: {made}"
    );
    assert_eq!(
        made["resource"]["metadata"],
        json!({"team": "web", "version": "1"})
    );

    let (status, body) = app
        .call("POST", "/resources", Some(&resource("web", "v1")))
        .await;
    assert_eq!(status, 409, "{body}");

    let (status, body) = app
        .call("PUT", "/resources/app/web", Some(&resource("web", "v2")))
        .await;
    assert_eq!((status, body["version"].clone()), (200, json!(2)), "{body}");
    let (_, latest) = app.get("/resources/app/web").await;
    assert_eq!(latest["spec"]["image"]["tag"], "v2");
    assert_eq!(latest["version"], 2);
    let (status, first) = app.get("/resources/app/web/1").await;
    assert_eq!(status, 200);
    assert_eq!(first["spec"]["image"]["tag"], "v1");
    assert_eq!(first["id"], latest["id"], "one resource, two versions");
    let (status, body) = app.get("/resources/app/web/one").await;
    assert_eq!((status, body["field"].clone()), (422, json!("version")));

    app.call("POST", "/resources", Some(&resource("api", "v7")))
        .await;
    let (status, list) = app.get("/resources/app").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);

    let (status, body) = app.call("DELETE", "/resources/app/web", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 2, "a delete names the version it deleted");
    let (status, _) = app.get("/resources/app/web").await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/resources/app/web/1").await;
    assert_eq!(status, 404, "a deleted resource's versions go with it");
    let (status, _) = app.call("DELETE", "/resources/app/web", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_invalid_resource_is_refused_naming_the_path_and_nothing_is_saved() {
    let app = spawn_app().await;
    app.define("app", app_schema()).await;
    let (status, body) = app
        .call("POST", "/resources", Some(&resource("web", "latest")))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "spec/image/tag");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.starts_with("`spec/image/tag` does not match the schema of resource type `app`: "),
        "{message}"
    );
    let (status, _) = app.get("/resources/app/web").await;
    assert_eq!(status, 404, "nothing was saved");
    let (_, builds) = app.get("/api/v1/builds").await;
    assert_eq!(builds["builds"], json!([]), "nothing started");

    let missing = json!({ "name": "web", "resource": "app", "spec": {"replicas": 0} });
    let (status, body) = app.call("POST", "/resources", Some(&missing)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["field"], "spec",
        "a missing property is the object's failure"
    );

    let unknown = json!({ "name": "web", "resource": "nope", "spec": {} });
    let (status, body) = app.call("POST", "/resources", Some(&unknown)).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no resource definition `nope`")
    );

    let no_pipeline = json!({ "name": "web", "resource": "app", "pipeline": "ghost",
                               "spec": {"image": {"repo": "r", "tag": "v1"}} });
    let (status, body) = app.call("POST", "/resources", Some(&no_pipeline)).await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("pipeline")),
        "{body}"
    );
}

#[tokio::test]
async fn a_definition_in_use_cannot_be_deleted_and_an_unused_one_can() {
    let app = spawn_app().await;
    app.define("app", app_schema()).await;
    app.call("POST", "/resources", Some(&resource("web", "v1")))
        .await;
    let (status, body) = app.call("DELETE", "/resource-definitions/app", None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        "resource definition `app` is still used by 1 resource(s): delete them first"
    );
    app.call("DELETE", "/resources/app/web", None).await;
    let (status, _) = app.call("DELETE", "/resource-definitions/app", None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call("DELETE", "/resource-definitions/app", None).await;
    assert_eq!(status, 404);
}
