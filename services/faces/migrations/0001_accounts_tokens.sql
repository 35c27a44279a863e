-- Accounts and their tokens. Passwords are stored only as argon2id hashes.
CREATE TABLE accounts (
    account_id       uuid PRIMARY KEY,
    login            varchar(128) NOT NULL UNIQUE,
    password_hash    text NOT NULL,
    account_type     varchar(16) NOT NULL CHECK (account_type IN ('user', 'advanced_user', 'admin')),
    description      varchar(128) NOT NULL DEFAULT '',
    create_time      timestamptz NOT NULL DEFAULT now(),
    last_update_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tokens (
    token_id         uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    description      varchar(128) NOT NULL DEFAULT '',
    expiration_time  timestamptz,
    permissions      jsonb NOT NULL,
    visibility_area  varchar(8) NOT NULL CHECK (visibility_area IN ('account', 'all')),
    -- The JWT last issued for this token; older JWTs of the same token are refused.
    token            text NOT NULL,
    create_time      timestamptz NOT NULL DEFAULT now(),
    last_update_time timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tokens_account_create_time ON tokens (account_id, create_time);
