-- The program a command session runs: its process group and that process's start time (clock
-- ticks since boot, from /proc/<pid>/stat), so a server that died can find a program it left
-- running when it starts again, and be sure it is the same one before stopping it.
ALTER TABLE sessions ADD COLUMN process_group BIGINT;
ALTER TABLE sessions ADD COLUMN process_started BIGINT;
