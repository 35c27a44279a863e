-- A part's result is written once and read once, whole, by the collector: `json` keeps the
-- text as written (no jsonb parse on write, no rendering on read; a gc part's result names
-- 10000 events), and no query looks inside it.
alter table tasks_subtasks alter column result type json using result::json;
