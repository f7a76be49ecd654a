-- Outside a transaction of its own: validating takes a SHARE UPDATE EXCLUSIVE lock, so reads
-- and writes of posts and users go on while the (all NULL) columns are checked.
ALTER TABLE posts VALIDATE CONSTRAINT posts_image_upload_id_fkey;
ALTER TABLE users VALIDATE CONSTRAINT users_avatar_upload_id_fkey;
