-- observe's summaries per cluster, namespace and workload: events, distinct behaviours,
-- first and last seen, per operation (process, file, network, ...). Needs events.sql first.
SELECT cluster_name AS cluster,
       namespace,
       workload_key AS workload,
       op,
       CAST(sum(count) AS BIGINT) AS events,
       count(*) AS rows,
       min(first_seen) AS first_seen,
       max(last_seen) AS last_seen
FROM events
WHERE namespace IS NOT NULL
GROUP BY cluster_name, namespace, workload_key, op
ORDER BY cluster, namespace, workload, op;
