-- Blobs: what LUNA keeps in its Image Store buckets (face samples, body samples, source images
-- with user metadata, objects of any content type), per account, in PostgreSQL bytea.
-- Numbered 0010 to leave 0003..0009 to the faces/lists/attributes work running in parallel.

CREATE TABLE blobs (
    blob_id      uuid PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    kind         varchar(16) NOT NULL
                 CHECK (kind IN ('face_sample', 'body_sample', 'image', 'object')),
    content_type varchar(256) NOT NULL,
    data         bytea NOT NULL,
    -- Images: X-Luna-Meta-<key> headers (lower-cased keys); empty for the other kinds.
    meta         jsonb NOT NULL DEFAULT '{}',
    create_time  timestamptz NOT NULL DEFAULT now()
);
-- JPEG/PNG samples do not compress: store them out of line without trying (TOAST EXTERNAL).
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX blobs_account_kind_create_time ON blobs (account_id, kind, create_time);
