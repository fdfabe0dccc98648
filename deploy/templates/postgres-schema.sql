-- Example template for the postgres-schema provider: run once in each new sandbox schema, as the sandbox's own
-- role, with search_path set to that schema (so unqualified names land there). It runs in the same transaction
-- as the schema's creation, and only then: a repeated create of the same sandbox does not run it again.
CREATE TABLE notes
(
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title      text        NOT NULL,
    body       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notes_created_at ON notes (created_at);

INSERT INTO notes (title, body) VALUES ('welcome', 'This schema belongs to one sandbox.');
