-- Drift across the fleet: per cluster, namespace and workload, the behaviour first seen at or
-- after ${since} (an instant, e.g. 2026-11-20 12:00:00) that the same workload did not show
-- before it, as `kubectl karmor diff --baseline-until T --since T` does for one machine
-- (without its generalisation of paths). Needs events.sql first.
WITH items AS (
  SELECT cluster_name AS cluster, namespace, workload_key AS workload, op,
         coalesce(parent_process, '') AS parent,
         coalesce(process, '') AS process,
         coalesce(path, coalesce(remote_name, remote_addr, '') || ':' || coalesce(CAST(remote_port AS STRING), '')) AS target,
         min(first_seen) AS first_seen,
         max(last_seen) AS last_seen,
         CAST(sum(count) AS BIGINT) AS events
  FROM events
  WHERE namespace IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5, 6, 7
)
SELECT cluster, namespace, workload, op, parent, process, target, first_seen, events
FROM items
WHERE first_seen >= TIMESTAMP '${since}'
ORDER BY cluster, namespace, workload, op, first_seen;
