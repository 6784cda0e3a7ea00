-- Secrets: values sealed by the orchestrator (an AEAD with the operator's key); the store
-- keeps only the sealed text. `scope` is a product's name, or '' for secrets every product
-- may name.
CREATE TABLE secrets (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope, name)
);

-- Whether builds of pull requests get the secrets their jobs name (off: they get none).
ALTER TABLE products ADD COLUMN pr_secrets BOOLEAN NOT NULL DEFAULT FALSE;
