-- LUNA 3 garbage-collects descriptors attached to neither a person nor a list once their TTL
-- runs out; this tracks the descriptors (LUNA 5 faces) made or detached through /4 with the
-- time they may go. Faces made through /6 are never tracked, so never collected.
CREATE TABLE bp3_descriptors (
    descriptor_id uuid PRIMARY KEY,
    account_id    uuid NOT NULL,
    expire_time   timestamptz NOT NULL
);
CREATE INDEX bp3_descriptors_expire_time ON bp3_descriptors (expire_time);
