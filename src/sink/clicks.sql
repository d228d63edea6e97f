-- linkgate: the PostgreSQL table `PostgresSink` writes clicks into.
--
-- Idempotent (CREATE ... IF NOT EXISTS): `PostgresSink` runs it on connect unless told not to,
-- in one transaction under an advisory lock. Runnable as is with `psql -f clicks.sql`, which
-- creates the default table `clicks`. The comment `/*table*/` just before `clicks` marks where
-- the configured (quoted) table name goes.
--
-- One column per field of the click's JSON form, same names. `click_id` is the primary key:
-- a batch written twice (the sink's delivery is at-least-once) adds no row the second time.
-- It is the 26-character ULID text of the JSON (so it joins with `{click_id}` in redirect
-- targets); `COLLATE "C"` makes the key's comparisons byte order, which is also time order.
-- Extra columns of your own are fine if they have defaults (the sink names its columns).
-- Time-range queries on a big table: add `CREATE INDEX ... USING brin (ts)` (tiny, cheap to
-- maintain for append-only data).

CREATE TABLE IF NOT EXISTS /*table*/clicks (
    ts                timestamptz NOT NULL,
    click_id          text COLLATE "C" PRIMARY KEY,
    key               text        NOT NULL,
    location          text        NOT NULL,
    status            smallint    NOT NULL,
    ip                text,
    user_agent        text,
    referer           text,
    country           text,
    query             text,
    tags              jsonb       NOT NULL DEFAULT '{}',
    matched           boolean     NOT NULL,
    bot               boolean,
    bot_reason        text,
    "unique"          boolean,
    suspicious        boolean,
    suspicious_reason text,
    rule              text,
    variant           text
);
