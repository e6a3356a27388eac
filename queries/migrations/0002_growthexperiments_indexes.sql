-- Migration 0002: match GrowthExperiments' current indexes.
-- growthexperiments_link_submissions: GrowthExperiments indexes (gels_page, gels_feedback,
-- gels_target); 0001 had (gels_page, gels_feedback). Same name, one more column: the
-- "rejected 2+ times for this page" lookup (SPEC §3) is then answered from the index alone.
-- On SQLite "DROP INDEX x ON t" is run as "DROP INDEX x" (index names are per database there).
-- Where GrowthExperiments created the table with its index already, this rebuilds the same
-- index (a DBA may skip it: see docs/operations.md "Deploying a schema change").
DROP INDEX gels_page ON growthexperiments_link_submissions;
CREATE INDEX gels_page ON growthexperiments_link_submissions (gels_page, gels_feedback, gels_target);
