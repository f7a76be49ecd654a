DROP INDEX comments_post_score_idx;
DROP TABLE summary_usage;
DROP TABLE post_summaries;
DROP TABLE email_deliveries;
