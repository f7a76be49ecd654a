//! What templates show: the layout every page shares, and posts, comments and times prepared
//! for display. Building these is plain data work; templates only lay them out.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::service::comments::Comment;
use crate::service::posts::Post;
use crate::web::assets;

/// What the page frame needs: assets, who is signed in, the CSRF token and the search box.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Stylesheet URL (fingerprinted).
    pub css: String,
    /// Script URL (fingerprinted).
    pub js: String,
    /// The signed-in user's name.
    pub username: Option<String>,
    /// The CSRF token forms carry.
    pub csrf: String,
    /// The search box's text.
    pub query: String,
    /// The signed-in user's avatar.
    pub avatar_url: Option<String>,
    /// Whether the signed-in user sees NSFW images unblurred.
    pub show_nsfw: bool,
    /// The signed-in user's unread inbox items (the header's badge).
    pub unread: i64,
    /// Who the signed-in user blocks (lowercased), for the block buttons.
    pub blocked_users: std::collections::HashSet<String>,
    /// Which communities the signed-in user blocks (lowercased).
    pub blocked_communities: std::collections::HashSet<String>,
}

impl Layout {
    /// The frame for a viewer.
    pub fn new(username: Option<String>, csrf: String) -> Self {
        Self {
            css: assets::CSS.href.clone(),
            js: assets::JS.href.clone(),
            username,
            csrf,
            query: String::new(),
            avatar_url: None,
            show_nsfw: false,
            unread: 0,
            blocked_users: Default::default(),
            blocked_communities: Default::default(),
        }
    }

    /// Whether the signed-in user blocks the user `name`.
    pub fn blocks_user(&self, name: &str) -> bool {
        self.blocked_users.contains(&name.to_lowercase())
    }

    /// Whether the signed-in user blocks the community `name`.
    pub fn blocks_community(&self, name: &str) -> bool {
        self.blocked_communities.contains(&name.to_lowercase())
    }

    /// Whether someone is signed in.
    pub fn signed_in(&self) -> bool {
        self.username.is_some()
    }

    /// Whether `name` is the signed-in user.
    pub fn is(&self, name: &str) -> bool {
        self.username.as_deref() == Some(name)
    }
}

/// A moment shown relatively ("3 hours ago") with the exact time on hover.
#[derive(Debug, Clone)]
pub struct Time {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// Exact UTC time, for the tooltip.
    pub exact: String,
    /// "3 hours ago".
    pub relative: String,
}

impl Time {
    /// `at` as seen at `now`.
    pub fn at(at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            // Written field by field: a strftime pattern is parsed anew on every call, and a
            // page shows two times per post.
            exact: format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                at.year(),
                at.month(),
                at.day(),
                at.hour(),
                at.minute()
            ),
            relative: relative(now - at),
        }
    }
}

fn relative(elapsed: chrono::Duration) -> String {
    let seconds = elapsed.num_seconds().max(0);
    let (count, unit) = match seconds {
        0..60 => return "just now".to_owned(),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        86_400..2_592_000 => (seconds / 86_400, "day"),
        2_592_000..31_536_000 => (seconds / 2_592_000, "month"),
        _ => (seconds / 31_536_000, "year"),
    };
    format!("{count} {unit}{} ago", if count == 1 { "" } else { "s" })
}

/// A vote form: where it posts and what each button sends (pressing the button of the
/// current vote again takes the vote back).
#[derive(Debug, Clone)]
pub struct VoteButtons {
    /// Form action.
    pub action: String,
    /// Current score.
    pub score: i32,
    /// Whether the viewer upvoted.
    pub up: bool,
    /// Whether the viewer downvoted.
    pub down: bool,
    /// The upvote button's value: 1, or 0 to take the upvote back.
    pub up_value: i16,
    /// The downvote button's value: -1, or 0 to take the downvote back.
    pub down_value: i16,
    /// Shown in a row (comments) rather than a column (posts).
    pub inline: bool,
}

impl VoteButtons {
    /// The buttons for a score and the viewer's vote.
    pub fn new(action: String, score: i32, my_vote: i16, inline: bool) -> Self {
        Self {
            action,
            score,
            up: my_vote == 1,
            down: my_vote == -1,
            up_value: if my_vote == 1 { 0 } else { 1 },
            down_value: if my_vote == -1 { 0 } else { -1 },
            inline,
        }
    }
}

/// A post as listings and the post page show it.
#[derive(Debug, Clone)]
pub struct PostItem {
    /// Id.
    pub id: i64,
    /// Community name.
    pub community: String,
    /// Author username.
    pub author: String,
    /// Title.
    pub title: String,
    /// Link of a link post.
    pub url: Option<String>,
    /// The link's host, shown next to the title.
    pub domain: String,
    /// Sanitized body HTML.
    pub body_html: String,
    /// Markdown source, for the edit form.
    pub body: String,
    /// Score.
    pub score: i32,
    /// Comments.
    pub comment_count: i32,
    /// The viewer's vote.
    pub my_vote: i16,
    /// Created.
    pub created: Time,
    /// Edited, if ever.
    pub edited: Option<Time>,
    /// Deleted by its author.
    pub deleted: bool,
    /// Removed by a moderator.
    pub removed: bool,
    /// No new comments.
    pub locked: bool,
    /// Pinned to the top of its community.
    pub pinned: bool,
    /// The vote form.
    pub vote: VoteButtons,
    /// The post's image.
    pub image: Option<PageImage>,
    /// Not safe for work.
    pub nsfw: bool,
    /// A spoiler.
    pub spoiler: bool,
    /// The author's avatar.
    pub author_avatar: Option<String>,
    /// Saved by the viewer.
    pub saved: bool,
    /// Hidden by the viewer.
    pub hidden: bool,
}

/// A post's image as the pages show it: a thumbnail in listings, the large image on the post
/// page, both with a `srcset` over the stored widths and their size set so nothing shifts.
#[derive(Debug, Clone)]
pub struct PageImage {
    /// The full-size image.
    pub original: String,
    /// `url width` pairs of every stored width.
    pub srcset: String,
    /// The listing thumbnail (320 wide, or the image when narrower) and its size.
    pub thumb: String,
    /// Width of `thumb`.
    pub thumb_width: u32,
    /// Height of `thumb`.
    pub thumb_height: u32,
    /// The post page's image (1280 wide, or the image when narrower) and its size.
    pub large: String,
    /// Width of `large`.
    pub large_width: u32,
    /// Height of `large`.
    pub large_height: u32,
}

impl PageImage {
    /// The page form of a post's image.
    pub fn of(image: &crate::service::posts::PostImage) -> Self {
        use crate::domain::media::{THUMBNAIL_WIDTHS, scaled_height};
        let width = u32::try_from(image.width).unwrap_or(1).max(1);
        let height = u32::try_from(image.height).unwrap_or(1).max(1);
        let urls = &image.urls;
        let at =
            |target: u32| if target < width { (target, scaled_height(width, height, target)) } else { (width, height) };
        let mut srcset: Vec<String> = THUMBNAIL_WIDTHS
            .iter()
            .zip([&urls.w320, &urls.w640, &urls.w1280])
            .filter(|(w, _)| **w < width)
            .map(|(w, url)| format!("{url} {w}w"))
            .collect();
        srcset.push(format!("{} {width}w", urls.original));
        let (thumb_width, thumb_height) = at(320);
        let (large_width, large_height) = at(1280);
        Self {
            original: urls.original.clone(),
            srcset: srcset.join(", "),
            thumb: urls.w320.clone(),
            thumb_width,
            thumb_height,
            large: urls.w1280.clone(),
            large_width,
            large_height,
        }
    }

    /// The image a page shows: the large one on the post page, else the thumbnail.
    pub fn src(&self, large: &bool) -> &str {
        if *large { &self.large } else { &self.thumb }
    }

    /// Its width.
    pub fn width(&self, large: &bool) -> u32 {
        if *large { self.large_width } else { self.thumb_width }
    }

    /// Its height.
    pub fn height(&self, large: &bool) -> u32 {
        if *large { self.large_height } else { self.thumb_height }
    }

    /// The `sizes` attribute: the post page's column, or a listing's thumbnail box.
    pub fn sizes(&self, large: &bool) -> &'static str {
        if *large { "(max-width: 60rem) 100vw, 60rem" } else { "10rem" }
    }
}

impl PostItem {
    /// Prepares `post` for display at `now`.
    pub fn new(post: Post, now: DateTime<Utc>) -> Self {
        let image = post.image.as_ref().map(PageImage::of);
        let view = post.view;
        let domain = view.url.as_deref().map(link_host).unwrap_or_default();
        Self {
            id: view.id,
            community: view.community,
            author: view.author,
            title: view.title,
            url: view.url,
            domain,
            body_html: view.body_html,
            body: view.body,
            score: view.score,
            comment_count: view.comment_count,
            my_vote: view.my_vote,
            created: Time::at(view.created_at, now),
            edited: view.edited_at.map(|at| Time::at(at, now)),
            deleted: view.deleted,
            removed: view.removed,
            locked: view.locked,
            pinned: view.pinned,
            vote: VoteButtons::new(format!("/p/{}/vote", view.id), view.score, view.my_vote, false),
            image,
            nsfw: view.nsfw,
            spoiler: view.spoiler,
            author_avatar: view.author_avatar_url,
            saved: view.saved,
            hidden: view.hidden,
        }
    }

    /// Whether the image stays hidden (blurred) until the reader opens it: spoilers always,
    /// NSFW images unless the reader chose to see them.
    pub fn hides_image(&self, show_nsfw: &bool) -> bool {
        self.spoiler || (self.nsfw && !*show_nsfw)
    }

    /// What the hidden image's cover says.
    pub fn cover_label(&self) -> &'static str {
        match (self.nsfw, self.spoiler) {
            (true, true) => "NSFW spoiler",
            (true, false) => "NSFW",
            _ => "Spoiler",
        }
    }

    /// Sets the viewer's vote (listings are cached without it).
    pub fn set_my_vote(&mut self, my_vote: i16) {
        self.my_vote = my_vote;
        self.vote = VoteButtons::new(self.vote.action.clone(), self.score, my_vote, false);
    }

    /// Where the title links: the post page, or the link of a link post.
    pub fn href(&self) -> String {
        self.url.clone().unwrap_or_else(|| format!("/p/{}", self.id))
    }

    /// "1 comment" / "5 comments".
    pub fn comments_label(&self) -> String {
        plural(i64::from(self.comment_count), "comment")
    }
}

/// "1 point" / "5 points".
pub fn plural(count: i64, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

fn link_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.trim_start_matches("www.").to_owned()
}

/// One comment of a flattened tree: templates open a `<details>` per node and close `closes`
/// of them after it, which rebuilds the nesting without recursion.
#[derive(Debug, Clone)]
pub struct CommentNode {
    /// Id.
    pub id: i64,
    /// Post.
    pub post_id: i64,
    /// Depth in the thread (0 = top level).
    pub depth: i32,
    /// Author username.
    pub author: String,
    /// The author's avatar.
    pub author_avatar: Option<String>,
    /// Markdown source (for the edit form).
    pub body: String,
    /// Sanitized HTML.
    pub body_html: String,
    /// Score.
    pub score: i32,
    /// The viewer's vote.
    pub my_vote: i16,
    /// Created.
    pub created: Time,
    /// Edited, if ever.
    pub edited: Option<Time>,
    /// Deleted by its author.
    pub deleted: bool,
    /// Removed by a moderator.
    pub removed: bool,
    /// Replies not shown here ("continue this thread").
    pub more: i32,
    /// `</details>` to emit after this node.
    pub closes: usize,
    /// Saved by the viewer.
    pub saved: bool,
    /// Written by someone the viewer blocks (the body is blank).
    pub blocked: bool,
    /// The vote form.
    pub vote: VoteButtons,
}

impl CommentNode {
    /// "1 point" / "5 points".
    pub fn points(&self) -> String {
        plural(i64::from(self.score), "point")
    }

    /// Whether the text is gone (deleted or removed).
    pub fn gone(&self) -> bool {
        self.deleted || self.removed
    }
}

/// Flattens comment trees depth-first into nodes that say how many levels end after them.
pub fn flatten(roots: Vec<Comment>, now: DateTime<Utc>) -> Vec<CommentNode> {
    let mut nodes = Vec::new();
    for root in roots {
        let base = root.depth;
        push(root, now, &mut nodes);
        // The next root starts at the base depth again.
        close_last(&mut nodes, base);
    }
    nodes
}

fn push(mut comment: Comment, now: DateTime<Utc>, nodes: &mut Vec<CommentNode>) {
    let children = std::mem::take(&mut comment.children);
    nodes.push(CommentNode {
        id: comment.id,
        post_id: comment.post_id,
        depth: comment.depth,
        author: comment.author,
        author_avatar: comment.author_avatar_url,
        body: comment.body,
        body_html: comment.body_html,
        score: comment.score,
        my_vote: comment.my_vote,
        created: Time::at(comment.created_at, now),
        edited: comment.edited_at.map(|at| Time::at(at, now)),
        deleted: comment.deleted,
        removed: comment.removed,
        more: comment.more_children,
        closes: 0,
        saved: comment.saved,
        blocked: comment.blocked,
        vote: VoteButtons::new(format!("/comments/{}/vote", comment.id), comment.score, comment.my_vote, true),
    });
    for child in children {
        let depth = child.depth;
        push(child, now, nodes);
        close_last(nodes, depth);
    }
}

/// After a subtree rooted at `depth` is pushed, its last node closes down to `depth`.
fn close_last(nodes: &mut [CommentNode], depth: i32) {
    let Some(last) = nodes.last_mut() else { return };
    let opened = usize::try_from(last.depth - depth + 1).unwrap_or(1);
    last.closes = opened.max(last.closes);
}

/// One tab of a sort or window selector.
#[derive(Debug, Clone)]
pub struct Tab {
    /// Label.
    pub label: &'static str,
    /// Link.
    pub href: String,
    /// Whether it is the page shown.
    pub current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(id: i64, depth: i32, children: Vec<Comment>) -> Comment {
        Comment {
            id,
            post_id: 1,
            parent_id: None,
            depth,
            author: "a".into(),
            author_avatar_url: None,
            body: String::new(),
            body_html: String::new(),
            score: 1,
            upvotes: 1,
            downvotes: 0,
            my_vote: 0,
            saved: false,
            blocked: false,
            created_at: Utc::now(),
            edited_at: None,
            deleted: false,
            removed: false,
            children,
            more_children: 0,
        }
    }

    #[test]
    fn flattening_closes_every_opened_level_once() {
        // 1 ─ 2 ─ 3
        //   └ 4
        // 5
        let tree = vec![
            comment(1, 0, vec![comment(2, 1, vec![comment(3, 2, vec![])]), comment(4, 1, vec![])]),
            comment(5, 0, vec![]),
        ];
        let nodes = flatten(tree, Utc::now());
        let shape: Vec<(i64, usize)> = nodes.iter().map(|n| (n.id, n.closes)).collect();
        assert_eq!(shape, vec![(1, 0), (2, 0), (3, 2), (4, 2), (5, 1)]);
        assert_eq!(nodes.iter().map(|n| n.closes).sum::<usize>(), nodes.len());
    }

    #[test]
    fn times_read_naturally() {
        let now = Utc::now();
        assert_eq!(Time::at(now, now).relative, "just now");
        assert_eq!(Time::at(now - chrono::Duration::minutes(1), now).relative, "1 minute ago");
        assert_eq!(Time::at(now - chrono::Duration::hours(5), now).relative, "5 hours ago");
        assert_eq!(Time::at(now - chrono::Duration::days(400), now).relative, "1 year ago");
    }

    #[test]
    fn link_hosts_drop_scheme_path_and_www() {
        assert_eq!(link_host("https://www.example.org/a?b"), "example.org");
        assert_eq!(link_host("http://host:8080"), "host:8080");
    }
}
