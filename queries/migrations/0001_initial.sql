-- Migration 0001: the schema as the store created it on every open before migrations existed
-- (runner/store/ up to the "migrate" command), unchanged, so a database made that way is at
-- version 1. IF NOT EXISTS: GrowthExperiments may have created its two tables already.
-- Dialect rules (runner/store/migrations.py, docs/runner.md "Schema migrations"):
-- placeholders {autoinc_pk}, {table_options}; on MySQL "CREATE INDEX IF NOT EXISTS" (not in
-- MySQL 8) is run as a plain CREATE INDEX only when information_schema lacks the index.
-- Statements are separated by ";" at the end of a line.

-- GrowthExperiments' cache table, column for column (SPEC §3). gelr_data is JSON
-- {"links": [...], "meta": {..., "task_timestamp": N}}; NULL = evaluated, nothing usable.
CREATE TABLE IF NOT EXISTS growthexperiments_link_recommendations (
  gelr_revision INT UNSIGNED NOT NULL,
  gelr_page INT UNSIGNED NOT NULL,
  gelr_data MEDIUMBLOB DEFAULT NULL,
  PRIMARY KEY (gelr_revision)
) {table_options};
CREATE INDEX IF NOT EXISTS gelr_page ON growthexperiments_link_recommendations (gelr_page);

-- GrowthExperiments' user feedback table: read here (targets rejected 2+ times are pruned).
CREATE TABLE IF NOT EXISTS growthexperiments_link_submissions (
  gels_revision INT UNSIGNED NOT NULL,
  gels_edit_revision INT UNSIGNED DEFAULT NULL,
  gels_page INT UNSIGNED NOT NULL,
  gels_user INT UNSIGNED NOT NULL,
  gels_target INT UNSIGNED NOT NULL,
  gels_anchor_offset INT UNSIGNED NOT NULL,
  gels_anchor_length INT UNSIGNED NOT NULL,
  gels_feedback CHAR(1) NOT NULL,
  PRIMARY KEY (gels_revision, gels_target, gels_anchor_offset)
) {table_options};
CREATE INDEX IF NOT EXISTS gels_page ON growthexperiments_link_submissions (gels_page, gels_feedback);

-- The pages this runner has tagged in search (a set event queued, no clear since), with the
-- title that a clear event needs once the page is gone. Drift repair compares it to the table.
CREATE TABLE IF NOT EXISTS addlink_pool (
  ap_page INT UNSIGNED NOT NULL,
  ap_revision INT UNSIGNED NOT NULL,
  ap_title VARCHAR(255) NOT NULL,
  ap_tagged DOUBLE NOT NULL,
  PRIMARY KEY (ap_page)
) {table_options};

-- What the search index was last told about each page: the latest event the sink
-- ACKNOWLEDGED (per-page order is kept, so it is the index's state). Written when the event
-- leaves the outbox; drift compares the table with this, not with addlink_pool (which is
-- written with the row, before delivery).
CREATE TABLE IF NOT EXISTS addlink_acked (
  aa_page INT UNSIGNED NOT NULL,
  aa_tagged TINYINT NOT NULL,
  aa_title VARCHAR(255) NOT NULL,
  aa_acked DOUBLE NOT NULL,
  PRIMARY KEY (aa_page)
) {table_options};

-- Transactional outbox: events are written with their row, sent later by the publisher.
-- ao_state: 'pending' (to send) or 'failed' (the dead letters: rejected as invalid, with
-- the reason in ao_error; counted by status, repaired by drift).
CREATE TABLE IF NOT EXISTS addlink_outbox (
  ao_id {autoinc_pk},
  ao_wiki VARCHAR(64) NOT NULL,
  ao_page INT UNSIGNED NOT NULL,
  ao_event MEDIUMTEXT NOT NULL,
  ao_created DOUBLE NOT NULL,
  ao_attempts INT UNSIGNED NOT NULL DEFAULT 0,
  ao_state VARCHAR(16) NOT NULL DEFAULT 'pending',
  ao_error TEXT
) {table_options};
CREATE INDEX IF NOT EXISTS ao_state ON addlink_outbox (ao_wiki, ao_state, ao_id);

-- One row per run of a command on a wiki (status command, dashboards of last resort).
CREATE TABLE IF NOT EXISTS addlink_runs (
  ar_id {autoinc_pk},
  ar_wiki VARCHAR(64) NOT NULL,
  ar_command VARCHAR(32) NOT NULL,
  ar_shard VARCHAR(32) NOT NULL DEFAULT '',
  ar_started DOUBLE NOT NULL,
  ar_finished DOUBLE DEFAULT NULL,
  ar_status VARCHAR(32) NOT NULL DEFAULT 'running',
  ar_stop_reason VARCHAR(64) DEFAULT NULL,
  ar_outcomes TEXT,
  ar_pool_size INT UNSIGNED DEFAULT NULL
) {table_options};
CREATE INDEX IF NOT EXISTS ar_wiki ON addlink_runs (ar_wiki, ar_id);

-- Resume points of the allpages walk, one per wiki and shard ("allpages:0/3").
CREATE TABLE IF NOT EXISTS addlink_resume (
  are_wiki VARCHAR(64) NOT NULL,
  are_key VARCHAR(64) NOT NULL,
  are_page INT UNSIGNED NOT NULL,
  are_updated DOUBLE NOT NULL,
  PRIMARY KEY (are_wiki, are_key)
) {table_options};
