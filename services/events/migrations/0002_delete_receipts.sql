-- What a DeleteEventsWhere call with a receipt removed, stored in the delete's transaction so
-- a repeated call (a task part redelivered after a crash) answers the same (events_bulk.py).
create table events_delete_receipts (
    receipt text primary key,
    account_id uuid not null,
    events jsonb not null,
    create_time timestamptz not null default now()
);
create index events_delete_receipts_create_time on events_delete_receipts (create_time);
