DROP TABLE summary_usage;
DROP TABLE post_summaries;
DROP TABLE email_deliveries;
