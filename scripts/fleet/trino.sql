-- Trino (Hive connector) over the archive: an external table on the Hive layout
-- s3://BUCKET/PREFIX/cluster=<name>/node=<node>/date=<YYYY-MM-DD>/hour=<HH>/*.parquet.
-- Partition columns may not repeat data columns, so `cluster` and `node` come from the
-- directories (the files hold the same values). Day files sit in hour=__HIVE_DEFAULT_PARTITION__
-- (hour is NULL for them). Timestamps are Parquet TIMESTAMP(NANOS, UTC).
-- Replace BUCKET/PREFIX; the schema `karmor` must exist in the catalog `hive`.
CREATE TABLE hive.karmor.events (
  ts_first timestamp(9) with time zone,
  ts_last timestamp(9) with time zone,
  count decimal(20, 0),
  namespace varchar, pod varchar, pod_uid varchar, container varchar, container_id varchar,
  image varchar, workload_kind varchar, workload varchar, labels array(varchar), host boolean,
  pid bigint, ppid bigint, uid bigint, process varchar, parent_process varchar, args varchar,
  op varchar, source varchar, path varchar, access varchar,
  proto varchar, direction varchar, local_addr varchar, local_port integer,
  remote_addr varchar, remote_port integer, remote_name varchar,
  syscall varchar, capability varchar, result varchar, policy varchar, action varchar,
  cluster varchar, node varchar, date varchar, hour varchar
)
WITH (
  external_location = 's3://BUCKET/PREFIX/',
  format = 'PARQUET',
  partitioned_by = ARRAY['cluster', 'node', 'date', 'hour']
);
-- Register the partitions present (again after each archive run):
CALL hive.system.sync_partition_metadata('karmor', 'events', 'ADD');

-- The summary per cluster, namespace and workload (as scripts/fleet/summary.sql):
SELECT cluster, namespace,
       CASE WHEN workload IS NULL AND pod IS NULL AND namespace IS NULL
            THEN 'Container/' || coalesce(container, substr(container_id, 1, 12), '(none)')
            ELSE coalesce(workload_kind, '?') || '/' || coalesce(workload, '(none)') END AS workload,
       op, CAST(sum(count) AS bigint) AS events, count(*) AS rows,
       min(ts_first) AS first_seen, max(ts_last) AS last_seen
FROM hive.karmor.events
WHERE namespace IS NOT NULL
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4;
