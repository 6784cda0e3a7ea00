-- Several products per repository: the file each product's config is read from in its
-- repository (`.conveyor.yml` when NULL, or `.conveyor/NAME.yml`).
ALTER TABLE products ADD COLUMN config_path TEXT;
