-- Task schedules (/6/tasks/schedules): a task template fired by a cron trigger.
create table tasks_schedules (
    schedule_id      bigserial   primary key,
    account_id       uuid        not null,
    task             jsonb       not null,
    trigger          jsonb       not null,
    behaviour        jsonb       not null,
    -- 'running' fires at next_run_time; 'stopped' does not.
    status           text        not null,
    next_run_time    timestamptz,
    create_time      timestamptz not null default now(),
    last_update_time timestamptz not null default now()
);
create index tasks_schedules_due on tasks_schedules (next_run_time) where status = 'running';
create index tasks_tasks_schedule on tasks_tasks (schedule_id) where schedule_id is not null;
