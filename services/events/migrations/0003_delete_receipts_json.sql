-- A receipt's answer is written once and read back whole: `json` keeps the text as written
-- (no jsonb parse on write, no rendering on read). The answer is now the gc result's items,
-- and the body samples among their samples are kept beside them.
alter table events_delete_receipts alter column events type json using events::json;
alter table events_delete_receipts add column body_samples json not null default '[]';
-- Written once per gc part and read only by a redelivered part: stored uncompressed.
alter table events_delete_receipts alter column events set storage external;
