"""Runs sql/analysis_stats.sql in DuckDB.

usage: run_analysis_sql.py EVENTS.csv PLAN.json OUT.csv

EVENTS.csv has the flat columns of docs/analysis.md; PLAN.json is
{"plan": [[experiment, variant, epoch, salt_fingerprint], ...],
 "metrics": [[experiment, metric, kind], ...]}. Writes the statistics CSV.
"""
import json
import pathlib
import sys

import duckdb


def main():
    events, plan_path, out = sys.argv[1:4]
    plan = json.loads(pathlib.Path(plan_path).read_text())
    sql = (pathlib.Path(__file__).resolve().parents[2] / "sql" / "analysis_stats.sql").read_text()
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT * FROM read_csv(?, header = true, columns = {"
        "'type': 'VARCHAR', 'time': 'BIGINT', 'unit': 'VARCHAR', 'experiment': 'VARCHAR',"
        "'variant': 'VARCHAR', 'version': 'VARCHAR', 'epoch': 'INTEGER',"
        "'salt_fingerprint': 'VARCHAR', 'stratum': 'VARCHAR', 'metric': 'VARCHAR',"
        "'value': 'DOUBLE', 'event_id': 'VARCHAR'})",
        [events],
    )
    con.execute("CREATE TABLE analysis_plan (experiment VARCHAR, variant VARCHAR, epoch INTEGER, salt_fingerprint VARCHAR)")
    con.executemany("INSERT INTO analysis_plan VALUES (?, ?, ?, ?)", plan["plan"])
    con.execute("CREATE TABLE analysis_metrics (experiment VARCHAR, metric VARCHAR, kind VARCHAR)")
    con.executemany("INSERT INTO analysis_metrics VALUES (?, ?, ?)", plan["metrics"])
    rel = con.sql(sql)
    rel.write_csv(out, header=True)


if __name__ == "__main__":
    main()
