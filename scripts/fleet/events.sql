-- The archive as one Spark SQL view, `events`: every Parquet file under
-- ${archive}/cluster=*/node=* (s3a://BUCKET/PREFIX, or a local copy), one row per distinct
-- behaviour per window with its `count`. The archive holds each row once (a compacted file's
-- inputs are deleted when it is archived), so reading every event file is right;
-- manifest.json files are skipped, and so is each cluster's pods table (cluster=*/pods/: its
-- own schema).
-- Partition directories (cluster=, node=, date=, hour=) are not inferred (recursiveFileLookup):
-- `cluster` and `node` are columns of the files themselves, and the archive's cluster= name
-- fills `cluster` where a producer left it empty. Timestamps are nanoseconds (read as longs:
-- spark.sql.legacy.parquet.nanosAsLong=true).
CREATE OR REPLACE TEMPORARY VIEW archived_files
USING parquet
OPTIONS (path '${archive}/cluster=*/node=*', recursiveFileLookup 'true', pathGlobFilter '*.parquet');

CREATE OR REPLACE TEMPORARY VIEW events AS
SELECT
  coalesce(cluster, regexp_extract(input_file_name(), 'cluster=([^/]+)/', 1)) AS cluster_name,
  *,
  -- observe's workload key: the owning workload, or a container no pod holds by its name.
  CASE WHEN workload IS NULL AND pod IS NULL AND namespace IS NULL
       THEN 'Container/' || coalesce(container, left(container_id, 12), '(none)')
       ELSE coalesce(workload_kind, '?') || '/' || coalesce(workload, '(none)') END AS workload_key,
  timestamp_micros(ts_first DIV 1000) AS first_seen,
  timestamp_micros(ts_last DIV 1000) AS last_seen
FROM archived_files;
