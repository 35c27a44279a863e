-- Per-item ledger of parts whose effects are one item at a time (the estimator task's
-- images): an item recorded here is never processed again by a redelivered part.
create table tasks_part_items (
    subtask_id bigint not null references tasks_subtasks on delete cascade,
    item       text   not null,
    outcome    jsonb  not null,
    primary key (subtask_id, item)
);
