-- Faces, their attributes, lists and list membership, temporary attributes, and the outbox of
-- FACES_CHANGES messages. Limits are LUNA's (user_data <= 128, external_id <= 36,
-- avatar <= 256); the services check them first so clients get LUNA errors, the CHECKs here
-- keep any other writer honest.

CREATE TABLE faces (
    face_id          uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    event_id         uuid,
    user_data        varchar(128) NOT NULL DEFAULT '',
    external_id      varchar(36) NOT NULL DEFAULT '',
    avatar           varchar(256) NOT NULL DEFAULT '',
    create_time      timestamptz NOT NULL DEFAULT now(),
    last_update_time timestamptz NOT NULL DEFAULT now()
);
-- One index per filter of GET /6/faces, each led by account_id because every non-admin read
-- is scoped to one account.
CREATE INDEX faces_account_create_time ON faces (account_id, create_time);
CREATE INDEX faces_create_time ON faces (create_time);
CREATE INDEX faces_account_face_id ON faces (account_id, face_id);
CREATE INDEX faces_account_external_id ON faces (account_id, external_id);
CREATE INDEX faces_external_id ON faces (external_id);
CREATE INDEX faces_event_id ON faces (event_id) WHERE event_id IS NOT NULL;

-- A face's attribute: basic attributes (nullable: descriptors-only attributes) and samples.
CREATE TABLE face_attributes (
    face_id                  uuid PRIMARY KEY REFERENCES faces (face_id) ON DELETE CASCADE,
    age                      smallint CHECK (age BETWEEN 0 AND 100),
    gender                   smallint CHECK (gender IN (0, 1)),
    ethnicity                smallint CHECK (ethnicity BETWEEN 1 AND 4),
    descriptor_samples       uuid[] NOT NULL DEFAULT '{}',
    basic_attributes_samples uuid[] NOT NULL DEFAULT '{}',
    create_time              timestamptz NOT NULL DEFAULT now()
);

-- Descriptors of a face's attribute, one per version (packed little-endian float32,
-- L2-normalised).
CREATE TABLE face_descriptors (
    face_id    uuid NOT NULL REFERENCES face_attributes (face_id) ON DELETE CASCADE,
    version    integer NOT NULL CHECK (version > 0),
    descriptor bytea NOT NULL CHECK (octet_length(descriptor) > 0),
    PRIMARY KEY (face_id, version)
);
CREATE INDEX face_descriptors_version ON face_descriptors (version, face_id);

CREATE TABLE lists (
    list_id          uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    user_data        varchar(128) NOT NULL DEFAULT '',
    create_time      timestamptz NOT NULL DEFAULT now(),
    last_update_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lists_account_create_time ON lists (account_id, create_time);
CREATE INDEX lists_create_time ON lists (create_time);
CREATE INDEX lists_account_list_id ON lists (account_id, list_id);
CREATE INDEX lists_account_last_update_time ON lists (account_id, last_update_time);
CREATE INDEX lists_account_user_data ON lists (account_id, user_data);

-- Membership. link_key grows with every link, so a reader can follow links incrementally;
-- unlinks are kept (with their own key) in list_face_unlinks by a trigger for the same reason.
CREATE SEQUENCE list_link_keys AS bigint;
CREATE TABLE list_faces (
    list_id   uuid NOT NULL REFERENCES lists (list_id) ON DELETE CASCADE,
    face_id   uuid NOT NULL REFERENCES faces (face_id) ON DELETE CASCADE,
    link_key  bigint NOT NULL DEFAULT nextval('list_link_keys'),
    link_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, face_id)
);
CREATE INDEX list_faces_face_id ON list_faces (face_id, link_key);
CREATE INDEX list_faces_list_link_key ON list_faces (list_id, link_key);

CREATE TABLE list_face_unlinks (
    unlink_key  bigint PRIMARY KEY DEFAULT nextval('list_link_keys'),
    list_id     uuid NOT NULL,
    face_id     uuid NOT NULL,
    link_key    bigint NOT NULL,
    unlink_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX list_face_unlinks_list ON list_face_unlinks (list_id, unlink_key);
CREATE INDEX list_face_unlinks_time ON list_face_unlinks (unlink_time);

CREATE FUNCTION record_list_face_unlink() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_face_unlinks (list_id, face_id, link_key)
    VALUES (OLD.list_id, OLD.face_id, OLD.link_key);
    RETURN OLD;
END;
$$;
CREATE TRIGGER list_faces_unlink AFTER DELETE ON list_faces
    FOR EACH ROW EXECUTE FUNCTION record_list_face_unlink();

-- Temporary attributes: readable until expire_time, then purged by a periodic task.
CREATE TABLE temporary_attributes (
    attribute_id             uuid PRIMARY KEY,
    account_id               uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    age                      smallint CHECK (age BETWEEN 0 AND 100),
    gender                   smallint CHECK (gender IN (0, 1)),
    ethnicity                smallint CHECK (ethnicity BETWEEN 1 AND 4),
    descriptor_samples       uuid[] NOT NULL DEFAULT '{}',
    basic_attributes_samples uuid[] NOT NULL DEFAULT '{}',
    create_time              timestamptz NOT NULL DEFAULT now(),
    expire_time              timestamptz NOT NULL,
    CHECK (expire_time > create_time)
);
CREATE INDEX temporary_attributes_expire_time ON temporary_attributes (expire_time);
CREATE INDEX temporary_attributes_account ON temporary_attributes (account_id);

CREATE TABLE temporary_attribute_descriptors (
    attribute_id uuid NOT NULL
        REFERENCES temporary_attributes (attribute_id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version > 0),
    descriptor   bytea NOT NULL CHECK (octet_length(descriptor) > 0),
    PRIMARY KEY (attribute_id, version)
);

-- Transactional outbox of FACES_CHANGES: a change's messages are inserted in the same
-- transaction as the change, then published in seq order and deleted. Nothing is lost when
-- NATS is down or the process dies between commit and publish; a row published twice is
-- dropped by JetStream's Nats-Msg-Id dedupe.
CREATE TABLE faces_outbox (
    seq         bigserial PRIMARY KEY,
    change_id   uuid NOT NULL,
    subject     text NOT NULL,
    payload     bytea NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);
