-- Output chunks (64 KiB) and row pages (up to 1000 rows of JSON) are stored out of line by
-- TOAST, compressed. PostgreSQL's default compressor, pglz, is slow both ways and was a large
-- share of ingest and download time on PostgreSQL; LZ4 (PostgreSQL 14+) is several times faster
-- at a similar ratio for text. Rows written from now on use it; older rows stay readable as
-- they are. A server built without LZ4 keeps pglz (nothing here can fail there).
-- PostgreSQL only: SQLite stores these values as they are.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_settings
        WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)
    ) THEN
        ALTER TABLE output_chunks ALTER COLUMN data SET COMPRESSION lz4;
        ALTER TABLE row_pages ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
END
$$;
