DROP FUNCTION agora_vote_comment(bigint, bigint, smallint, text);
DROP FUNCTION agora_vote_post(bigint, bigint, smallint, text);
