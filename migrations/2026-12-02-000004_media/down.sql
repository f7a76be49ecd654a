ALTER TABLE users DROP COLUMN show_nsfw, DROP COLUMN avatar_upload_id;
ALTER TABLE posts DROP COLUMN spoiler, DROP COLUMN nsfw, DROP COLUMN image_upload_id;
DROP TABLE uploads;
