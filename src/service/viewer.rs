//! What every request of a signed-in viewer needs to know about them, cached per viewer and
//! invalidated by their own changes: their avatar and NSFW choice, whether they joined any
//! community, and what they refuse to see (blocks, filtered keywords).

use crate::db;
use crate::domain::UserId;
use crate::error::AppError;
use crate::service::Context;

/// What every page shows of a signed-in viewer (memberships change it: joining and leaving
/// invalidate the viewer's overlays).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ViewerPrefs {
    /// Show NSFW images unblurred.
    pub show_nsfw: bool,
    /// Their avatar (a path on this server).
    pub avatar_url: Option<String>,
    /// Whether they joined any community (their front page is then their home feed).
    pub joined_any: bool,
    /// The users they block, lowercased: their posts leave listings, their comments are blanked.
    pub blocked_users: std::collections::HashSet<String>,
    /// The communities they block, lowercased: their posts leave feeds and search.
    pub blocked_communities: std::collections::HashSet<String>,
    /// Their filtered keywords, normalized.
    pub filtered_keywords: Vec<String>,
}

impl ViewerPrefs {
    /// Whether the reader sees `post` in a listing; `in_community` when the listing is that
    /// post's own community (a blocked community's page still lists its posts).
    pub fn lists(&self, post: &crate::db::posts::PostView, in_community: bool) -> bool {
        if !self.filters_anything() {
            return true;
        }
        !self.blocked_users.contains(&post.author.to_lowercase())
            && (in_community || !self.blocked_communities.contains(&post.community.to_lowercase()))
            && !crate::domain::reader::title_is_filtered(&post.title, &self.filtered_keywords)
    }

    /// Whether anything would be filtered out for this reader.
    pub fn filters_anything(&self) -> bool {
        !self.blocked_users.is_empty() || !self.blocked_communities.is_empty() || !self.filtered_keywords.is_empty()
    }
}

/// A viewer's page preferences, through the response cache (their own profile changes
/// invalidate it, on every daemon).
pub async fn viewer_prefs(ctx: &Context, user_id: UserId) -> Result<std::sync::Arc<ViewerPrefs>, AppError> {
    use crate::service::cache::{Entry, Key};
    let cached = ctx
        .caches
        .responses
        .get_or_fill(Key::ViewerPrefs(user_id.0), async {
            let mut conn = ctx.reader_read_conn(user_id).await?;
            let account = ctx
                .db
                .observe_read("accounts.account_by_id", &mut conn, async |conn| {
                    db::accounts::account_by_id(conn, user_id).await
                })
                .await?
                .ok_or_else(|| AppError::unauthorized("the account is gone"))?;
            let avatar = account.avatar_upload_id;
            let avatar_url = ctx
                .db
                .observe_read("uploads.avatar_url", &mut conn, async |conn| db::uploads::avatar_url(conn, avatar).await)
                .await?;
            let joined_any = ctx
                .db
                .observe_read("communities.joined_any", &mut conn, async |conn| {
                    db::communities::joined_any(conn, user_id).await
                })
                .await?;
            let blocks = ctx
                .db
                .observe_read("reader.blocks", &mut conn, async |conn| db::reader::blocks(conn, user_id).await)
                .await?;
            let lower = |names: Vec<String>| names.into_iter().map(|n| n.to_lowercase()).collect();
            let prefs = ViewerPrefs {
                show_nsfw: account.show_nsfw,
                avatar_url,
                joined_any,
                blocked_users: lower(blocks.users),
                blocked_communities: lower(blocks.communities),
                filtered_keywords: account.filtered_keywords,
            };
            let bytes = 64
                + prefs.avatar_url.as_ref().map_or(0, String::len)
                + prefs.blocked_users.iter().chain(&prefs.blocked_communities).map(|n| n.len() + 48).sum::<usize>()
                + prefs.filtered_keywords.iter().map(|k| k.len() + 24).sum::<usize>();
            Ok(Entry::value(std::sync::Arc::new(prefs), bytes))
        })
        .await?;
    // Every signed-in read asks for these: hand out the cached value itself, not a copy.
    Ok(cached.entry.data::<std::sync::Arc<ViewerPrefs>>().cloned().unwrap_or_default())
}
