-- Trace retention takes events oldest first by ID (PruneTrace, trace.go)
-- instead of through an index on their time: the index cost every
-- commit group one more B-tree insert per event, and retention, which
-- runs once a sweep, was its only reader (BENCHMARKS.md, "Ninth run").
DROP INDEX IF EXISTS trace_events_by_time;
