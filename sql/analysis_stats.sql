-- Per-variant sufficient statistics for `cohortd analyze --stats FILE`, computed
-- in the warehouse (tested in CI with DuckDB: tests/analysis_sql.rs). Plain SQL
-- with window functions; runs as is on DuckDB, BigQuery, Snowflake, Postgres.
--
-- Inputs (docs/analysis.md, "The SQL path"):
--   events(type, time, unit, experiment, variant, epoch, salt_fingerprint,
--          metric, value, event_id)   -- the flat columns; time in Unix ns
--   analysis_plan(experiment, variant, epoch, salt_fingerprint)
--                                      -- one row per configured variant of the
--                                      -- analysed config
--   analysis_metrics(experiment, metric, kind)   -- kind: conversion | continuous
--
-- Output rows (CSV header: experiment,variant,metric,units,sum,sum_sq,
-- crossed_over,multi_cohort,foreign_exposures,foreign_only_units):
--   * variant row (metric ''): first-assigned units of the variant;
--   * metric row: sum and sum of squares of the per-unit values;
--   * experiment row (variant '' and metric ''): the integrity counts.
-- The rules are the raw path's (src/analysis/cohort.rs): a unit's variant is
-- its earliest exposure in the analysed cohort (same epoch and salt
-- fingerprint; an empty fingerprint counts as the analysed one); outcomes count
-- from that exposure on, once per event id; conversion = any positive value,
-- continuous = the sum.

WITH exposures AS (
  SELECT e.experiment, e.unit, e.variant, e."time" AS t,
         (e.epoch = p.epoch
          AND (COALESCE(e.salt_fingerprint, '') = '' OR e.salt_fingerprint = p.salt_fingerprint)) AS in_cohort,
         CAST(e.epoch AS VARCHAR) || ':' || COALESCE(NULLIF(e.salt_fingerprint, ''), p.salt_fingerprint) AS cohort
  FROM events e
  JOIN analysis_plan p ON p.experiment = e.experiment AND p.variant = e.variant
  WHERE e.type = 'exposure'
),
first_exposure AS (
  SELECT experiment, unit, variant, t AS first_t
  FROM (
    SELECT experiment, unit, variant, t,
           ROW_NUMBER() OVER (PARTITION BY experiment, unit ORDER BY t) AS rn
    FROM exposures
    WHERE in_cohort
  ) ranked
  WHERE rn = 1
),
unit_flags AS (
  SELECT experiment, unit,
         COUNT(DISTINCT variant) > 1 AS crossed,
         COUNT(DISTINCT cohort) > 1 AS multi
  FROM exposures
  GROUP BY experiment, unit
),
outcomes AS (
  SELECT unit, metric, value, "time" AS t, experiment
  FROM (
    SELECT o.*,
           ROW_NUMBER() OVER (PARTITION BY o.event_id ORDER BY o."time") AS rn
    FROM events o
    WHERE o.type = 'outcome'
  ) ranked
  WHERE COALESCE(event_id, '') = '' OR rn = 1
),
per_unit AS (
  SELECT f.experiment, f.unit, f.variant, m.metric,
         CASE WHEN m.kind = 'conversion'
              THEN CASE WHEN MAX(CASE WHEN o.value > 0 THEN 1 ELSE 0 END) = 1 THEN 1.0 ELSE 0.0 END
              ELSE COALESCE(SUM(o.value), 0.0)
         END AS x
  FROM first_exposure f
  JOIN analysis_metrics m ON m.experiment = f.experiment
  LEFT JOIN outcomes o
    ON o.unit = f.unit AND o.metric = m.metric AND o.t >= f.first_t
   AND (COALESCE(o.experiment, '') = '' OR o.experiment = f.experiment)
  GROUP BY f.experiment, f.unit, f.variant, m.metric, m.kind
)
SELECT experiment, variant, '' AS metric, COUNT(*) AS units, 0.0 AS sum, 0.0 AS sum_sq,
       0 AS crossed_over, 0 AS multi_cohort, 0 AS foreign_exposures, 0 AS foreign_only_units
FROM first_exposure
GROUP BY experiment, variant
UNION ALL
SELECT experiment, variant, metric, COUNT(*), SUM(x), SUM(x * x), 0, 0, 0, 0
FROM per_unit
GROUP BY experiment, variant, metric
UNION ALL
SELECT u.experiment, '', '', 0, 0.0, 0.0,
       SUM(CASE WHEN u.crossed THEN 1 ELSE 0 END),
       SUM(CASE WHEN u.multi THEN 1 ELSE 0 END),
       (SELECT COUNT(*) FROM exposures x WHERE NOT x.in_cohort AND x.experiment = u.experiment),
       SUM(CASE WHEN f.unit IS NULL THEN 1 ELSE 0 END)
FROM unit_flags u
LEFT JOIN first_exposure f ON f.experiment = u.experiment AND f.unit = u.unit
GROUP BY u.experiment
ORDER BY 1, 2, 3
