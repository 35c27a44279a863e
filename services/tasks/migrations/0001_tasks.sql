-- The tasks service's tables. Statuses are LUNA's integers (catalogue tasks-api §3):
-- task 0 pending, 1 in progress, 2 cancelled, 3 failed, 4 collect results, 5 done;
-- subtask 0 pending, 1 in progress, 2 cancelled, 3 failed, 4 done.
create table tasks_tasks (
    task_id          bigserial   primary key,
    account_id       uuid        not null,
    task_type        smallint    not null,
    task_status      smallint    not null default 0,
    description      text        not null default '',
    content          jsonb       not null,
    create_time      timestamptz not null default now(),
    end_time         timestamptz,
    last_update_time timestamptz not null default now(),
    result_id        uuid,
    parts_done       int         not null default 0,
    parts_all        int         not null default 1,
    schedule_id      bigint
);
create index tasks_tasks_account on tasks_tasks (account_id, task_id);
create index tasks_tasks_open on tasks_tasks (task_status) where task_status in (0, 4);

create table tasks_subtasks (
    subtask_id     bigserial   primary key,
    task_id        bigint      not null references tasks_tasks on delete cascade,
    part           int         not null,
    subtask_status smallint    not null default 0,
    content        jsonb       not null,
    result         jsonb,
    -- What a part learned before its effects (e.g. the samples of events it deletes), so a
    -- redelivered part finishes the same work instead of losing what the first try knew.
    checkpoint     jsonb,
    result_id      uuid,
    attempts       int         not null default 0,
    published      boolean     not null default false,
    create_time    timestamptz not null default now(),
    end_time       timestamptz,
    unique (task_id, part)
);
create index tasks_subtasks_unpublished on tasks_subtasks (task_id) where not published;

create table tasks_errors (
    error_id        bigserial   primary key,
    task_id         bigint      not null references tasks_tasks on delete cascade,
    subtask_id      bigint,
    account_id      uuid        not null,
    task_type       smallint    not null,
    error_code      int         not null,
    status_code     int         not null,
    description     text        not null,
    detail          text        not null,
    additional_info text,
    error_time      timestamptz not null default now(),
    -- A redelivered subtask records the same errors again: the key makes that a no-op.
    dedupe_key      text        unique
);
create index tasks_errors_task on tasks_errors (task_id, error_id);

create table tasks_results (
    result_id    uuid        primary key,
    task_id      bigint      not null unique references tasks_tasks on delete cascade,
    content_type text        not null,
    body         bytea       not null,
    create_time  timestamptz not null default now()
);
