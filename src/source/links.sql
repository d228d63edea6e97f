-- linkgate: the PostgreSQL link table and its change notification.
--
-- Idempotent: safe to run again (and by several instances: `PostgresSource::install_schema`
-- runs it in one transaction under an advisory lock). Runnable as is with
-- `psql -f links.sql`, which creates the default table `links`. The comment `/*table*/` just
-- before `links` marks every place the table name goes: `install_schema` puts the configured
-- (quoted) name there.
--
-- Any change to the table (INSERT, UPDATE, DELETE, COPY, TRUNCATE) sends ONE notification per
-- statement on channel `linkgate_links`, payload `schema.table`; PostgreSQL delivers it when the
-- transaction commits (and folds identical notifications of one transaction into one). Every
-- `PostgresSource` listening then reloads the whole table in one consistent read.

CREATE TABLE IF NOT EXISTS /*table*/links (
    key           text        PRIMARY KEY,
    target        text        NOT NULL,
    status        smallint    NOT NULL DEFAULT 302
                              CHECK (status IN (301, 302, 303, 307, 308)),
    forward_query boolean     NOT NULL DEFAULT false,
    forward_path  boolean     NOT NULL DEFAULT false,
    cache_seconds integer,
    not_before    timestamptz,
    not_after     timestamptz,
    tags          jsonb       NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One notification per statement, whatever the number of rows it touched.
CREATE OR REPLACE FUNCTION linkgate_links_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linkgate_links', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

-- Keeps `updated_at` current on UPDATE unless the statement sets it itself.
CREATE OR REPLACE FUNCTION linkgate_links_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS linkgate_links_notify ON /*table*/links;
CREATE TRIGGER linkgate_links_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON /*table*/links
    FOR EACH STATEMENT EXECUTE FUNCTION linkgate_links_notify();

DROP TRIGGER IF EXISTS linkgate_links_touch ON /*table*/links;
CREATE TRIGGER linkgate_links_touch
    BEFORE UPDATE ON /*table*/links
    FOR EACH ROW EXECUTE FUNCTION linkgate_links_touch();
