-- Facts about this Loupe installation, written once by whichever server starts first.
CREATE TABLE loupe_instance (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    instance_id   TEXT    NOT NULL,
    created_at_us BIGINT  NOT NULL
);
