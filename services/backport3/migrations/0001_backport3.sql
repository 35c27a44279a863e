-- Backport 3's own objects: the LUNA 3 fields of accounts, LUNA 3 tokens, persons and their
-- links, the kind of each list, and the three handlers of each account. Ids of accounts, lists
-- and descriptors are those of the faces service (LUNA 5 accounts, lists and faces); this
-- service never reads or writes the faces service's tables, so there are no foreign keys to them.

CREATE TABLE bp3_accounts (
    account_id        uuid PRIMARY KEY,
    email             varchar(64) NOT NULL UNIQUE,
    organization_name varchar(128) NOT NULL,
    suspended         boolean NOT NULL DEFAULT false,
    create_time       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bp3_tokens (
    token_id    uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES bp3_accounts (account_id) ON DELETE CASCADE,
    token_data  varchar(128) NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bp3_tokens_account ON bp3_tokens (account_id, create_time);

CREATE TABLE bp3_persons (
    person_id   uuid PRIMARY KEY,
    account_id  uuid NOT NULL,
    user_data   varchar(128) NOT NULL DEFAULT '',
    external_id varchar(36) NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bp3_persons_account ON bp3_persons (account_id, create_time);
CREATE INDEX bp3_persons_external_id ON bp3_persons (account_id, external_id);

-- A descriptor (LUNA 5 face) belongs to at most one person.
CREATE TABLE bp3_person_descriptors (
    descriptor_id uuid PRIMARY KEY,
    person_id     uuid NOT NULL REFERENCES bp3_persons (person_id) ON DELETE CASCADE,
    link_time     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bp3_person_descriptors_person ON bp3_person_descriptors (person_id, link_time);

CREATE TABLE bp3_lists (
    list_id     uuid PRIMARY KEY,
    account_id  uuid NOT NULL,
    kind        smallint NOT NULL CHECK (kind IN (1, 2)),  -- 1 descriptors, 2 persons
    list_data   varchar(128) NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bp3_lists_account ON bp3_lists (account_id, kind, create_time);

CREATE TABLE bp3_person_lists (
    person_id uuid NOT NULL REFERENCES bp3_persons (person_id) ON DELETE CASCADE,
    list_id   uuid NOT NULL REFERENCES bp3_lists (list_id) ON DELETE CASCADE,
    link_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, list_id)
);
CREATE INDEX bp3_person_lists_list ON bp3_person_lists (list_id, link_time);

CREATE TABLE bp3_handlers (
    account_id       uuid NOT NULL,
    type             smallint NOT NULL CHECK (type IN (1, 2, 3)),  -- extractor, verify, identify
    handler_id       uuid NOT NULL UNIQUE,
    policies         jsonb NOT NULL,
    version          integer NOT NULL DEFAULT 1,
    create_time      timestamptz NOT NULL DEFAULT now(),
    last_update_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, type)
);
