//! A synthetic data set of realistic shape, generated inside PostgreSQL (set-based SQL, no
//! round trips per row): skewed community sizes and post activity, comment threads with a
//! realistic depth profile, and votes that leave every counter exact.

use crate::db::ops::DirectConn;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// How much to generate.
#[derive(Debug, Clone, Copy)]
pub struct SeedSize {
    /// Users.
    pub users: i64,
    /// Communities.
    pub communities: i64,
    /// Posts.
    pub posts: i64,
    /// Comments.
    pub comments: i64,
    /// Votes, split between posts and comments.
    pub votes: i64,
    /// Comments of post 1, the known large thread (part of `comments`).
    pub big_thread: i64,
    /// Deepest reply level of the big thread (0: all top level).
    pub big_thread_depth: i32,
    /// Deepest reply level elsewhere.
    pub max_depth: i32,
}

impl SeedSize {
    /// `agora seed`'s defaults: a large site (100 communities, 100k posts, 1M comments), with
    /// a flat 500-comment thread on post 1.
    pub const DEFAULT: Self = Self {
        users: 10_000,
        communities: 100,
        posts: 100_000,
        comments: 1_000_000,
        votes: 2_000_000,
        big_thread: 500,
        big_thread_depth: 0,
        max_depth: 10,
    };

    /// A busy small community: 64 users, one community, 1,000 posts, 2,000 comments (post 1
    /// with exactly 300, nested five levels deep), about 9,000 votes.
    pub const SMALL_COMMUNITY: Self = Self {
        users: 64,
        communities: 1,
        posts: 1_000,
        comments: 2_000,
        votes: 9_000,
        big_thread: 300,
        big_thread_depth: 5,
        max_depth: 5,
    };
}

/// Share of comments at each depth, top level first; the rest go deeper (down to 10 levels).
const DEPTH_PROFILE: [f64; 6] = [0.40, 0.28, 0.15, 0.08, 0.04, 0.02];

/// Share of the big thread at each level, top level first (the last level takes the rest).
const BIG_THREAD_PROFILE: [f64; 6] = [0.40, 0.28, 0.15, 0.08, 0.05, 0.04];

fn run(sql: &str) -> diesel::query_builder::SqlQuery {
    diesel::sql_query(sql.to_owned())
}

/// Generates the data set into an empty database; `password_hash` is every user's password hash.
/// Calls `progress` with a line per step.
pub async fn generate(
    conn: &mut DirectConn,
    size: SeedSize,
    password_hash: &str,
    mut progress: impl FnMut(&str),
) -> diesel::QueryResult<()> {
    let conn = conn.pg();
    conn.batch_execute("SET synchronous_commit = off").await?;

    progress("users");
    run("INSERT INTO users (username, email, password_hash, created_at)
         SELECT 'user_' || g, 'user_' || g || '@example.com', $1, now() - (random() * interval '365 days')
         FROM generate_series(1, $2) g")
    .bind::<Text, _>(password_hash)
    .bind::<BigInt, _>(size.users)
    .execute(conn)
    .await?;

    progress("communities");
    run("INSERT INTO communities (name, title, description, rules, creator_id, created_at)
         SELECT 'community_' || g, 'Community ' || g, 'A place to talk about topic ' || g || '.',
                ARRAY['Be civil', 'Stay on topic', 'No spam'],
                1 + (g % $2), now() - interval '400 days' + g * interval '1 hour'
         FROM generate_series(1, $1) g")
    .bind::<BigInt, _>(size.communities)
    .bind::<BigInt, _>(size.users)
    .execute(conn)
    .await?;
    run("INSERT INTO community_moderators (community_id, user_id) SELECT id, creator_id FROM communities")
        .execute(conn)
        .await?;
    // Each user joins about five communities, favouring the first (most popular) ones.
    run("INSERT INTO community_members (community_id, user_id)
         SELECT DISTINCT 1 + floor($1 * power(random(), 2))::int8, u
         FROM generate_series(1, $2) u, generate_series(1, 5) k
         ON CONFLICT DO NOTHING")
    .bind::<BigInt, _>(size.communities)
    .bind::<BigInt, _>(size.users)
    .execute(conn)
    .await?;

    progress("posts");
    run("INSERT INTO posts (community_id, author_id, title, body, body_html, created_at, last_activity_at)
         SELECT c, a, t, b, '<p>' || b || '</p>', at, at
         FROM (SELECT 1 + floor($1 * power(random(), 2))::int8 AS c,
                      1 + floor($2 * random())::int8 AS a,
                      'Post ' || g || ': ' || (ARRAY['thoughts on','a question about','news from','a guide to','why I like'])[1 + g % 5]
                          || ' topic ' || (g % 997) AS t,
                      repeat('Some words about topic ' || (g % 997) || '. ', (1 + g % 12)::int) AS b,
                      now() - (power(random(), 2) * interval '90 days') AS at
               FROM generate_series(1, $3) g) p")
    .bind::<BigInt, _>(size.communities)
    .bind::<BigInt, _>(size.users)
    .bind::<BigInt, _>(size.posts)
    .execute(conn)
    .await?;

    progress("comments");
    let big_thread = size.big_thread.min(size.comments / 2);
    let mut remaining = size.comments - big_thread;
    let mut depth: i32 = 0;
    while remaining > 0 {
        let wanted = match DEPTH_PROFILE.get(depth as usize) {
            Some(share) if depth == 0 => ((size.comments as f64 * share).round() as i64).clamp(1, remaining),
            _ if depth >= size.max_depth => remaining,
            Some(share) => ((size.comments as f64 * share).round() as i64).clamp(0, remaining),
            None => (remaining / 2).max(1),
        };
        let before = comment_count(conn).await?;
        insert_comment_level(conn, depth, wanted, size).await?;
        let inserted = comment_count(conn).await? - before;
        remaining -= inserted;
        // A level left without parents restarts at the top, which needs none.
        depth = if inserted < wanted { 0 } else { depth + 1 };
    }
    progress("the big thread on post 1");
    insert_big_thread(conn, big_thread, size).await?;

    progress("votes");
    let post_votes = size.votes * 2 / 3;
    run("INSERT INTO post_votes (post_id, user_id, value)
         SELECT 1 + floor($1 * power(random(), 3))::int8, 1 + floor($2 * random())::int8,
                CASE WHEN random() < 0.8 THEN 1 ELSE -1 END
         FROM generate_series(1, $3)
         ON CONFLICT DO NOTHING")
    .bind::<BigInt, _>(size.posts)
    .bind::<BigInt, _>(size.users)
    .bind::<BigInt, _>(post_votes)
    .execute(conn)
    .await?;
    run("INSERT INTO comment_votes (comment_id, user_id, value)
         SELECT 1 + floor(m * power(random(), 2))::int8, 1 + floor($1 * random())::int8,
                CASE WHEN random() < 0.75 THEN 1 ELSE -1 END
         FROM generate_series(1, $2), (SELECT max(id) AS m FROM comments) mx
         ON CONFLICT DO NOTHING")
    .bind::<BigInt, _>(size.users)
    .bind::<BigInt, _>(size.votes - post_votes)
    .execute(conn)
    .await?;

    progress("counters");
    recount(conn).await?;
    progress("analyze");
    conn.batch_execute("ANALYZE").await
}

/// Gives post 1 exactly `total` comments, level by level down to `size.big_thread_depth`.
async fn insert_big_thread(conn: &mut AsyncPgConnection, total: i64, size: SeedSize) -> diesel::QueryResult<()> {
    let deepest = size.big_thread_depth.clamp(0, BIG_THREAD_PROFILE.len() as i32 - 1);
    let mut remaining = total;
    for depth in 0..=deepest {
        let count = if depth == deepest {
            remaining
        } else {
            let share: f64 = BIG_THREAD_PROFILE[depth as usize..=deepest as usize].iter().sum();
            ((remaining as f64) * BIG_THREAD_PROFILE[depth as usize] / share).round() as i64
        };
        if count <= 0 {
            continue;
        }
        // Parents come from the level above within post 1; each level is one statement.
        run("WITH parents AS MATERIALIZED (
                 SELECT id, row_number() OVER (ORDER BY id) AS n FROM comments WHERE post_id = 1 AND depth = $1 - 1
             ), total AS (SELECT count(*) AS c FROM parents)
             INSERT INTO comments (post_id, parent_id, author_id, body, body_html, path, depth, created_at)
             SELECT 1, p.id, 1 + floor($2 * random())::int8, 'Reply ' || g || ' in the big thread.',
                    '<p>Reply ' || g || ' in the big thread.</p>', '{}', 0, now() - random() * interval '1 day'
             FROM generate_series(1, $3) g
             LEFT JOIN total ON true
             LEFT JOIN parents p ON $1 > 0 AND p.n = 1 + (g % greatest(total.c, 1))")
        .bind::<Integer, _>(depth)
        .bind::<BigInt, _>(size.users)
        .bind::<BigInt, _>(count)
        .execute(conn)
        .await?;
        remaining -= count;
    }
    Ok(())
}

/// Inserts `count` comments at `depth`: top-level ones on posts chosen with a heavy skew
/// (a few posts draw most comments), replies under random comments one level up.
async fn insert_comment_level(
    conn: &mut AsyncPgConnection,
    depth: i32,
    count: i64,
    size: SeedSize,
) -> diesel::QueryResult<usize> {
    if count == 0 {
        return Ok(0);
    }
    if depth == 0 {
        return run("INSERT INTO comments (post_id, parent_id, author_id, body, body_html, path, depth, created_at)
             SELECT 2 + floor(($1 - 1) * power(random(), 3))::int8, NULL, 1 + floor($2 * random())::int8,
                    'Comment ' || g || ' on this.', '<p>Comment ' || g || ' on this.</p>', '{}', 0,
                    now() - random() * interval '60 days'
             FROM generate_series(1, $3) g")
        .bind::<BigInt, _>(size.posts)
        .bind::<BigInt, _>(size.users)
        .bind::<BigInt, _>(count)
        .execute(conn)
        .await;
    }
    // Parents are sampled with replacement among the level above; rows of one level are
    // inserted together, so the path trigger always finds the parent committed.
    run("WITH parents AS MATERIALIZED (
             SELECT id, post_id, row_number() OVER (ORDER BY id) AS n FROM comments WHERE depth = $1 - 1
         ), total AS (SELECT count(*) AS c FROM parents),
         picks AS MATERIALIZED (
             SELECT g, 1 + floor(random() * total.c)::int8 AS n FROM generate_series(1, $3) g, total WHERE total.c > 0
         )
         INSERT INTO comments (post_id, parent_id, author_id, body, body_html, path, depth, created_at)
         SELECT p.post_id, p.id, 1 + floor($2 * random())::int8,
                'Reply ' || picks.g || ' at depth ' || $1, '<p>Reply ' || picks.g || ' at depth ' || $1 || '</p>', '{}', 0,
                now() - random() * interval '30 days'
         FROM picks JOIN parents p ON p.n = picks.n")
    .bind::<Integer, _>(depth)
    .bind::<BigInt, _>(size.users)
    .bind::<BigInt, _>(count)
    .execute(conn)
    .await
}

async fn comment_count(conn: &mut AsyncPgConnection) -> diesel::QueryResult<i64> {
    use diesel::QueryDsl;
    crate::db::schema::comments::table.count().get_result(conn).await
}

/// Recomputes every denormalized counter from the rows: votes, scores, ranks, karma, counts.
pub async fn recount(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    conn.batch_execute(concat!(
        "UPDATE posts p SET upvotes = v.up, downvotes = v.down, score = v.up - v.down
           FROM (SELECT post_id, count(*) FILTER (WHERE value = 1) AS up, count(*) FILTER (WHERE value = -1) AS down
                 FROM post_votes GROUP BY post_id) v
          WHERE v.post_id = p.id;
         UPDATE posts SET hot_rank = ",
        hot_rank_sql!("score"),
        ";
         UPDATE comments c SET upvotes = v.up, downvotes = v.down, score = v.up - v.down
           FROM (SELECT comment_id, count(*) FILTER (WHERE value = 1) AS up, count(*) FILTER (WHERE value = -1) AS down
                 FROM comment_votes GROUP BY comment_id) v
          WHERE v.comment_id = c.id;
         UPDATE comments c SET reply_count = r.n
           FROM (SELECT parent_id, count(*) AS n FROM comments WHERE parent_id IS NOT NULL GROUP BY parent_id) r
          WHERE r.parent_id = c.id;
         UPDATE posts p SET comment_count = s.n, last_activity_at = greatest(p.created_at, s.latest)
           FROM (SELECT post_id, count(*) AS n, max(created_at) AS latest FROM comments GROUP BY post_id) s
          WHERE s.post_id = p.id;
         UPDATE communities c SET member_count = coalesce(m.n, 0), post_count = coalesce(p.n, 0)
           FROM communities c2
           LEFT JOIN (SELECT community_id, count(*) AS n FROM community_members GROUP BY community_id) m ON m.community_id = c2.id
           LEFT JOIN (SELECT community_id, count(*) AS n FROM posts GROUP BY community_id) p ON p.community_id = c2.id
          WHERE c.id = c2.id;
         UPDATE users u SET karma = coalesce(pk.k, 0) + coalesce(ck.k, 0)
           FROM users u2
           LEFT JOIN (SELECT p.author_id, sum(p.score) AS k FROM posts p GROUP BY p.author_id) pk ON pk.author_id = u2.id
           LEFT JOIN (SELECT c.author_id, sum(c.score) AS k FROM comments c GROUP BY c.author_id) ck ON ck.author_id = u2.id
          WHERE u.id = u2.id;"
    ))
    .await
}

/// Whether the database holds no users yet.
pub async fn is_empty(conn: &mut DirectConn) -> diesel::QueryResult<bool> {
    let conn = conn.pg();
    #[derive(diesel::QueryableByName)]
    struct Empty {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        empty: bool,
    }
    let row: Empty = run("SELECT NOT EXISTS (SELECT 1 FROM users) AS empty").get_result(conn).await?;
    Ok(row.empty)
}
