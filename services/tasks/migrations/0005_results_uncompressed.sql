-- A part's result and a task's result are each written once and read once, whole: no pglz
-- compression (a ZIP is compressed already; compressing a 9 MB gc result was more than half
-- of collecting it, and a 1 MB gc part result cost its worker tens of milliseconds).
alter table tasks_results alter column body set storage external;
alter table tasks_subtasks alter column result set storage external;
