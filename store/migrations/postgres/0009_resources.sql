-- Conveyor CI's resources (issue 14): resource definitions (a JSON Schema per type), resources
-- with every version kept, and pipelines (ordered driver steps bound to a resource type).
-- Each pipeline is also a product of the same name, and each resource type's fan-out build
-- (drivers listening to a type without a pipeline) a product named `TYPE.drivers`:
-- `products.managed_by` says which ('pipeline' or 'resource-type'), so that a repository
-- product can never take such a name, nor such a product a repository product's.
CREATE TABLE resource_definitions (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    description TEXT NOT NULL,
    version TEXT NOT NULL,
    schema TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE resources (
    type TEXT NOT NULL REFERENCES resource_definitions (name),
    name TEXT NOT NULL,
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (type, name)
);

-- Every version of every resource (a deleted resource's go with it; its builds keep the
-- version they ran with).
CREATE TABLE resource_versions (
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    pipeline TEXT,
    metadata TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (type, name, version)
);

CREATE TABLE pipelines (
    name TEXT PRIMARY KEY,
    resource TEXT NOT NULL REFERENCES resource_definitions (name),
    description TEXT NOT NULL,
    version TEXT NOT NULL,
    steps TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX pipelines_by_resource ON pipelines (resource);

ALTER TABLE products ADD COLUMN managed_by TEXT;
