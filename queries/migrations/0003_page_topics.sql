-- Migration 0003: the topics each pooled page was counted for (per-topic pools, SPEC §5).
-- Written with the page's row, deleted with it. It is the per-topic count where the wiki has
-- no CirrusSearch, and the count shards share their per-topic targets by (the search index
-- lags behind what was committed; runner/topics.py).
CREATE TABLE IF NOT EXISTS addlink_page_topics (
  apt_page INT UNSIGNED NOT NULL,
  apt_topic VARCHAR(255) NOT NULL,
  PRIMARY KEY (apt_page, apt_topic)
) {table_options};
CREATE INDEX IF NOT EXISTS apt_topic ON addlink_page_topics (apt_topic, apt_page);
