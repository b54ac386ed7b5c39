-- Amazon Athena over the archive (Hive DDL). As for Trino: `cluster` and `node` are the
-- partition directories; day files are in hour=__HIVE_DEFAULT_PARTITION__. Athena reads
-- Parquet TIMESTAMP(NANOS) as timestamp (millisecond precision). Replace BUCKET/PREFIX.
CREATE EXTERNAL TABLE IF NOT EXISTS karmor_events (
  ts_first timestamp, ts_last timestamp, `count` decimal(20,0),
  namespace string, pod string, pod_uid string, container string, container_id string,
  image string, workload_kind string, workload string, labels array<string>, host boolean,
  pid bigint, ppid bigint, uid bigint, process string, parent_process string, args string,
  op string, source string, path string, access string,
  proto string, direction string, local_addr string, local_port int,
  remote_addr string, remote_port int, remote_name string,
  syscall string, capability string, result string, policy string, action string
)
PARTITIONED BY (cluster string, node string, `date` string, `hour` string)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/';
-- Register the partitions present (again after each archive run):
MSCK REPAIR TABLE karmor_events;

-- The summary per cluster, namespace and workload (as scripts/fleet/summary.sql):
SELECT cluster, namespace,
       CASE WHEN workload IS NULL AND pod IS NULL AND namespace IS NULL
            THEN 'Container/' || coalesce(container, substr(container_id, 1, 12), '(none)')
            ELSE coalesce(workload_kind, '?') || '/' || coalesce(workload, '(none)') END AS workload,
       op, CAST(sum(`count`) AS bigint) AS events, count(*) AS rows,
       min(ts_first) AS first_seen, max(ts_last) AS last_seen
FROM karmor_events
WHERE namespace IS NOT NULL
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4;
