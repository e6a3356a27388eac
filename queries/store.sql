-- Named queries of runner/store/, shared by SQLite and MySQL. "?" placeholders (converted for
-- pymysql); {ids} expands to one placeholder per list item.

-- name: revision_states
SELECT gelr_revision, CASE WHEN gelr_data IS NULL THEN 0 ELSE 1 END
FROM growthexperiments_link_recommendations WHERE gelr_revision IN ({ids})

-- name: prior_submissions
SELECT DISTINCT gels_revision FROM growthexperiments_link_submissions
WHERE gels_revision IN ({ids})

-- name: rejected_targets
SELECT gels_target FROM growthexperiments_link_submissions
WHERE gels_page = ? AND gels_feedback = 'r'
GROUP BY gels_target HAVING COUNT(*) >= ?

-- name: pool_size
SELECT COUNT(DISTINCT gelr_page) FROM growthexperiments_link_recommendations
WHERE gelr_data IS NOT NULL

-- name: row_counts
SELECT CASE WHEN gelr_data IS NULL THEN 0 ELSE 1 END AS has_data, COUNT(*)
FROM growthexperiments_link_recommendations GROUP BY has_data

-- name: feedback_by_revision
SELECT gels_revision, gels_feedback, COUNT(*) FROM growthexperiments_link_submissions
GROUP BY gels_revision, gels_feedback

-- name: data_of_revisions
SELECT gelr_revision, gelr_data FROM growthexperiments_link_recommendations
WHERE gelr_data IS NOT NULL AND gelr_revision IN ({ids})

-- name: last_success
SELECT MAX(ar_finished) FROM addlink_runs
WHERE ar_wiki = ? AND ar_command = ? AND ar_status = 'ok'

-- name: data_rows_after
SELECT gelr_page, gelr_revision, gelr_data FROM growthexperiments_link_recommendations
WHERE gelr_data IS NOT NULL AND gelr_page > ? ORDER BY gelr_page, gelr_revision LIMIT ?

-- name: null_rows_after
SELECT gelr_page, gelr_revision FROM growthexperiments_link_recommendations
WHERE gelr_data IS NULL AND gelr_page > ? ORDER BY gelr_page, gelr_revision LIMIT ?

-- name: data_pages_after
SELECT gelr_page, gelr_revision FROM growthexperiments_link_recommendations
WHERE gelr_data IS NOT NULL AND gelr_page > ? ORDER BY gelr_page LIMIT ?

-- name: row_by_revision
SELECT gelr_page, gelr_data FROM growthexperiments_link_recommendations
WHERE gelr_revision = ?

-- name: page_has_data
SELECT COUNT(*) FROM growthexperiments_link_recommendations
WHERE gelr_page = ? AND gelr_data IS NOT NULL

-- name: delete_page_rows
DELETE FROM growthexperiments_link_recommendations WHERE gelr_page = ?

-- name: replace_row
REPLACE INTO growthexperiments_link_recommendations (gelr_revision, gelr_page, gelr_data)
VALUES (?, ?, ?)

-- name: pool_titles
SELECT ap_page, ap_title FROM addlink_pool WHERE ap_page IN ({ids})

-- name: pool_entries_after
SELECT ap_page, ap_revision, ap_title FROM addlink_pool WHERE ap_page > ?
ORDER BY ap_page LIMIT ?

-- name: pool_put
REPLACE INTO addlink_pool (ap_page, ap_revision, ap_title, ap_tagged) VALUES (?, ?, ?, ?)

-- name: pool_delete
DELETE FROM addlink_pool WHERE ap_page = ?

-- name: outbox_add
INSERT INTO addlink_outbox (ao_wiki, ao_page, ao_event, ao_created) VALUES (?, ?, ?, ?)

-- name: outbox_pending
SELECT ao_id, ao_event, ao_attempts FROM addlink_outbox
WHERE ao_wiki = ? AND ao_state = 'pending' ORDER BY ao_id LIMIT ?

-- name: outbox_heads
SELECT ao_id, ao_event, ao_attempts FROM addlink_outbox WHERE ao_id IN (
  SELECT MIN(ao_id) FROM addlink_outbox WHERE ao_wiki = ? AND ao_state = 'pending'
  GROUP BY ao_page)
ORDER BY ao_id LIMIT ?

-- name: outbox_events
SELECT ao_id, ao_page, ao_event FROM addlink_outbox WHERE ao_id IN ({ids})

-- name: outbox_has_event
SELECT COUNT(*) FROM addlink_outbox WHERE ao_wiki = ? AND ao_page = ? AND ao_event = ?

-- name: outbox_dead_pages
SELECT DISTINCT ao_page FROM addlink_outbox WHERE ao_wiki = ? AND ao_state = 'failed'

-- name: outbox_pending_pages
SELECT DISTINCT ao_page FROM addlink_outbox WHERE ao_wiki = ? AND ao_state = 'pending'

-- name: outbox_forget_dead
DELETE FROM addlink_outbox WHERE ao_wiki = ? AND ao_state = 'failed'

-- name: acked_put
REPLACE INTO addlink_acked (aa_page, aa_tagged, aa_title, aa_acked) VALUES (?, ?, ?, ?)

-- name: acked_after
SELECT aa_page, aa_tagged, aa_title FROM addlink_acked WHERE aa_page > ?
ORDER BY aa_page LIMIT ?

-- name: outbox_ack
DELETE FROM addlink_outbox WHERE ao_id IN ({ids})

-- name: outbox_fail
UPDATE addlink_outbox SET ao_state = 'failed', ao_attempts = ao_attempts + 1, ao_error = ?
WHERE ao_id = ?

-- name: outbox_retry
UPDATE addlink_outbox SET ao_attempts = ao_attempts + 1, ao_error = ? WHERE ao_id IN ({ids})

-- name: outbox_counts
SELECT ao_state, COUNT(*) FROM addlink_outbox WHERE ao_wiki = ? GROUP BY ao_state

-- name: run_start
INSERT INTO addlink_runs (ar_wiki, ar_command, ar_shard, ar_started) VALUES (?, ?, ?, ?)

-- name: run_finish
UPDATE addlink_runs SET ar_finished = ?, ar_status = ?, ar_stop_reason = ?, ar_outcomes = ?,
  ar_pool_size = ? WHERE ar_id = ?

-- name: last_run
SELECT ar_id, ar_command, ar_shard, ar_started, ar_finished, ar_status, ar_stop_reason,
  ar_outcomes, ar_pool_size
FROM addlink_runs WHERE ar_wiki = ? ORDER BY ar_id DESC LIMIT 1

-- name: last_run_of
SELECT ar_id, ar_command, ar_shard, ar_started, ar_finished, ar_status, ar_stop_reason,
  ar_outcomes, ar_pool_size
FROM addlink_runs WHERE ar_wiki = ? AND ar_command = ? ORDER BY ar_id DESC LIMIT 1

-- name: resume_get
SELECT are_page FROM addlink_resume WHERE are_wiki = ? AND are_key = ?

-- name: resume_set
REPLACE INTO addlink_resume (are_wiki, are_key, are_page, are_updated) VALUES (?, ?, ?, ?)

-- name: resume_clear
DELETE FROM addlink_resume WHERE are_wiki = ? AND are_key = ?

-- name: topic_put
REPLACE INTO addlink_page_topics (apt_page, apt_topic) VALUES (?, ?)

-- name: topics_delete
DELETE FROM addlink_page_topics WHERE apt_page = ?

-- name: topic_counts
SELECT apt_topic, COUNT(DISTINCT apt_page) FROM addlink_page_topics
WHERE apt_page IN (SELECT gelr_page FROM growthexperiments_link_recommendations
                   WHERE gelr_data IS NOT NULL)
GROUP BY apt_topic

-- name: acked_since
SELECT aa_page FROM addlink_acked WHERE aa_acked >= ?
