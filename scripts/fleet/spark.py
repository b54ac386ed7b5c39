#!/usr/bin/env python3
"""Runs a fleet query (summary.sql or drift.sql) over an archive with Spark SQL.

    scripts/fleet/spark.py ARCHIVE summary [--json]
    scripts/fleet/spark.py ARCHIVE drift --since '2026-11-20 12:00:00' [--json]

ARCHIVE is s3a://BUCKET/PREFIX (with hadoop-aws on the classpath, e.g. spark-submit
--packages org.apache.hadoop:hadoop-aws:<your Hadoop version>), or a local directory holding a
copy of it. Locally (pip install pyspark, a JRE) it runs in local mode; on a cluster, submit it
with spark-submit. Prints a table, or one JSON object per line with --json.
"""
import argparse
import json
import os
import sys

from pyspark.sql import SparkSession

HERE = os.path.dirname(os.path.abspath(__file__))


def statements(name):
    text = open(os.path.join(HERE, name)).read()
    lines = [l for l in text.splitlines() if not l.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive")
    p.add_argument("query", choices=["summary", "drift"])
    p.add_argument("--since", default="1970-01-01 00:00:00")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    archive = a.archive
    if "://" not in archive:
        archive = "file://" + os.path.abspath(archive)
    spark = (
        SparkSession.builder.appName("karmor-fleet")
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("archive", archive)
    spark.conf.set("since", a.since)
    for s in statements("events.sql"):
        spark.sql(s)
    result = None
    for s in statements(a.query + ".sql"):
        result = spark.sql(s)
    if a.json:
        for row in result.collect():
            d = row.asDict()
            print(json.dumps({k: (str(v) if not isinstance(v, (int, float, str, type(None))) else v) for k, v in d.items()}))
    else:
        result.show(1000, truncate=False)
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
