-- Twin of postgres/0016_retention_vacuum.sql, which tunes autovacuum for retention's daily
-- deletes. SQLite needs nothing: the pages a delete frees are reused by later inserts.
SELECT 1;
