//! The response cache: every cached read of the API and the pages lives in one moka cache
//! under one memory budget (`cache.max_memory_mib`), weighed in bytes.
//!
//! An entry holds what a hit needs to answer with no query, no serialization and no
//! compression: the structured value (pages render from it), its JSON bytes with an ETag, and
//! gzip/brotli forms made once, lazily. Per-viewer state (a signed-in reader's votes, their
//! membership) is a separate small overlay entry, spliced into the shared bytes.
//!
//! Invalidation is by generation. Every key is stored with the sum of the generation counters
//! of the scopes it depends on, read *before* its fill ran; a write bumps the counters of what it
//! changed (see [`Change`]) after it commits. A fill that started before the write therefore
//! stores its result under a generation no reader asks for again, so a reader never sees a
//! value older than a write that finished before its request began; unreachable entries age
//! out by size or TTL. Bumps are also published over PostgreSQL `NOTIFY` for other daemons
//! (`service::cache_sync`).

use std::any::Any;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tracing::Instrument;

use crate::config::CacheConfig;
use crate::domain::{CommentSort, PostSort, TimeWindow};
use crate::error::AppError;
use crate::metrics::Metrics;

/// The caches, as metrics and dashboards name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheName {
    /// Post listings.
    Listings,
    /// Single posts.
    Posts,
    /// Comment trees of posts.
    Trees,
    /// "Continue this thread" subtrees.
    Subtrees,
    /// Communities.
    Communities,
    /// Public profiles.
    Profiles,
    /// Search result pages.
    Search,
    /// Per-viewer overlays (their votes and memberships).
    Overlays,
}

impl CacheName {
    /// Every cache.
    pub const ALL: [CacheName; 8] = [
        Self::Listings,
        Self::Posts,
        Self::Trees,
        Self::Subtrees,
        Self::Communities,
        Self::Profiles,
        Self::Search,
        Self::Overlays,
    ];

    /// The `cache` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Listings => "listings",
            Self::Posts => "posts",
            Self::Trees => "trees",
            Self::Subtrees => "subtrees",
            Self::Communities => "communities",
            Self::Profiles => "profiles",
            Self::Search => "search",
            Self::Overlays => "overlays",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a cached value is, with every parameter that shapes it (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A page of posts, all communities or one.
    Listing {
        /// Community name, `None` for all.
        community: Option<Box<str>>,
        /// Sort.
        sort: PostSort,
        /// Window of `top` and `controversial`.
        window: TimeWindow,
        /// Page size.
        limit: i64,
        /// Cursor.
        cursor: Option<Box<str>>,
    },
    /// One post.
    Post(i64),
    /// A page of a post's comment tree.
    Tree {
        /// Post id.
        post: i64,
        /// Sort.
        sort: CommentSort,
        /// Levels below the top-level comments.
        depth: i32,
        /// Top-level comments per page.
        limit: i64,
        /// Cursor.
        cursor: Option<Box<str>>,
    },
    /// One comment with its replies.
    Subtree {
        /// Comment id.
        comment: i64,
        /// Sort.
        sort: CommentSort,
        /// Levels below the comment.
        depth: i32,
    },
    /// A community, by lowercased name.
    Community(Box<str>),
    /// A public profile, by lowercased username.
    Profile(Box<str>),
    /// A page of search results.
    Search {
        /// Trimmed terms.
        terms: Box<str>,
        /// Community name, `None` for all.
        community: Option<Box<str>>,
        /// Page size.
        limit: i64,
        /// Cursor.
        cursor: Option<Box<str>>,
    },
    /// A viewer's marks (votes, saves, hides) on the given posts.
    PostMarks {
        /// The viewer.
        viewer: i64,
        /// The posts shown, in order.
        posts: Box<[i64]>,
    },
    /// A viewer's marks (votes, saves) on the comments of a post.
    CommentMarks {
        /// The viewer.
        viewer: i64,
        /// The post.
        post: i64,
    },
    /// Whether a viewer is a member of a community.
    Membership {
        /// The viewer.
        viewer: i64,
        /// The community id.
        community: i64,
    },
    /// What every page shows of a signed-in viewer: their avatar and NSFW preference.
    ViewerPrefs(i64),
    /// A user's unread inbox items.
    Unread(i64),
    /// A page of what a reader saved.
    Saved {
        /// The reader.
        viewer: i64,
        /// Comments, not posts.
        comments: bool,
        /// Page size.
        limit: i64,
        /// Cursor.
        cursor: Option<Box<str>>,
    },
    /// What one reader sees of a shared entry when their saves, hides, blocks or keywords
    /// change it: stale with the entry's scope and with the reader's own changes.
    ForReader {
        /// The reader.
        viewer: i64,
        /// The shared entry's key.
        of: Box<Key>,
    },
    /// A page of a signed-in reader's home feed (the communities they joined).
    Feed {
        /// The reader.
        viewer: i64,
        /// Sort.
        sort: PostSort,
        /// Window of `top` and `controversial`.
        window: TimeWindow,
        /// Page size.
        limit: i64,
        /// Cursor.
        cursor: Option<Box<str>>,
    },
}

impl Key {
    /// The cache this key belongs to.
    pub fn cache(&self) -> CacheName {
        match self {
            Self::ForReader { of, .. } => of.cache(),
            Self::Listing { .. } | Self::Feed { .. } => CacheName::Listings,
            Self::Post(_) => CacheName::Posts,
            Self::Tree { .. } => CacheName::Trees,
            Self::Subtree { .. } => CacheName::Subtrees,
            Self::Community(_) => CacheName::Communities,
            Self::Profile(_) => CacheName::Profiles,
            Self::Search { .. } => CacheName::Search,
            Self::PostMarks { .. }
            | Self::CommentMarks { .. }
            | Self::Membership { .. }
            | Self::ViewerPrefs(_)
            | Self::Saved { .. }
            | Self::Unread(_) => CacheName::Overlays,
        }
    }

    /// Listings whose order drifts with time (`hot`, `active`) live only `ranked_ttl`.
    fn drifts(&self) -> bool {
        match self {
            Self::ForReader { of, .. } => of.drifts(),
            _ => matches!(
                self,
                Self::Listing { sort: PostSort::Hot | PostSort::Active, .. }
                    | Self::Feed { sort: PostSort::Hot | PostSort::Active, .. }
            ),
        }
    }
}

/// What a committed write changed; each names the scopes whose cached values it makes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A post's own fields (votes, text, flags): the post, every listing and search page.
    Post(i64),
    /// A post's comments (new, edited, voted, removed): its tree pages and every subtree.
    Thread(i64),
    /// Posts appeared or left listings without one post id to name.
    Listings,
    /// A community's view (text, settings, moderators, member count).
    Communities,
    /// Public profiles (karma, bio).
    Profiles,
    /// One viewer's own state (their votes, memberships).
    Viewer(i64),
    /// A user wrote something: invalidates nothing, but their reads need a replica that has
    /// replayed it for `database.read_your_writes`.
    Wrote(i64),
    /// Anything at all: bans, account changes, a lost notification connection.
    Everything,
}

impl Change {
    /// The form sent over `NOTIFY`.
    pub fn encode(self) -> String {
        match self {
            Self::Post(id) => format!("post:{id}"),
            Self::Thread(id) => format!("thread:{id}"),
            Self::Listings => "listings".into(),
            Self::Communities => "communities".into(),
            Self::Profiles => "profiles".into(),
            Self::Viewer(id) => format!("viewer:{id}"),
            Self::Wrote(id) => format!("wrote:{id}"),
            Self::Everything => "all".into(),
        }
    }

    /// Parses [`Change::encode`]'s form; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let (kind, id) = match text.split_once(':') {
            Some((kind, id)) => (kind, Some(id.parse::<i64>().ok()?)),
            None => (text, None),
        };
        Some(match (kind, id) {
            ("post", Some(id)) => Self::Post(id),
            ("thread", Some(id)) => Self::Thread(id),
            ("viewer", Some(id)) => Self::Viewer(id),
            ("wrote", Some(id)) => Self::Wrote(id),
            ("listings", None) => Self::Listings,
            ("communities", None) => Self::Communities,
            ("profiles", None) => Self::Profiles,
            ("all", None) => Self::Everything,
            _ => return None,
        })
    }
}

/// Where an invalidation came from, as the metric labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A write this daemon committed.
    Local,
    /// A notification from another daemon (or the listener's reconnect).
    Notify,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Notify => "notify",
        }
    }
}

const STRIPES: usize = 4096;

/// Generation counters striped by id, so a write to one post leaves the others' entries valid.
struct Stripes(Box<[AtomicU64]>);

impl Stripes {
    fn new() -> Self {
        Self((0..STRIPES).map(|_| AtomicU64::new(0)).collect())
    }

    fn slot(&self, id: i64) -> &AtomicU64 {
        &self.0[(id.unsigned_abs() as usize) % STRIPES]
    }
}

/// The generation counters of every scope.
struct Generations {
    everything: AtomicU64,
    listings: AtomicU64,
    search: AtomicU64,
    subtrees: AtomicU64,
    communities: AtomicU64,
    profiles: AtomicU64,
    posts: Stripes,
    threads: Stripes,
    viewers: Stripes,
}

impl Generations {
    fn new() -> Self {
        Self {
            everything: AtomicU64::new(0),
            listings: AtomicU64::new(0),
            search: AtomicU64::new(0),
            subtrees: AtomicU64::new(0),
            communities: AtomicU64::new(0),
            profiles: AtomicU64::new(0),
            posts: Stripes::new(),
            threads: Stripes::new(),
            viewers: Stripes::new(),
        }
    }

    /// The sum of the counters `key` depends on: it grows whenever one of them does.
    fn of(&self, key: &Key) -> u64 {
        if let Key::ForReader { viewer, of } = key {
            return self.of(of).wrapping_add(self.viewers.slot(*viewer).load(Ordering::Acquire));
        }
        let scope = match key {
            Key::ForReader { .. } => 0,
            // Saved posts change with any post, saved comments with any thread, and both with
            // the reader's own saves.
            Key::Saved { viewer, comments, .. } => {
                let content = if *comments { &self.subtrees } else { &self.listings };
                content.load(Ordering::Acquire).wrapping_add(self.viewers.slot(*viewer).load(Ordering::Acquire))
            }
            Key::Listing { .. } => self.listings.load(Ordering::Acquire),
            // A feed goes stale with any listing and with the reader's memberships.
            Key::Feed { viewer, .. } => {
                self.listings.load(Ordering::Acquire).wrapping_add(self.viewers.slot(*viewer).load(Ordering::Acquire))
            }
            Key::Search { .. } => self.search.load(Ordering::Acquire),
            Key::Post(id) => self.posts.slot(*id).load(Ordering::Acquire),
            Key::Tree { post, .. } => self.threads.slot(*post).load(Ordering::Acquire),
            Key::Subtree { .. } => self.subtrees.load(Ordering::Acquire),
            Key::Community(_) => self.communities.load(Ordering::Acquire),
            Key::Profile(_) => self.profiles.load(Ordering::Acquire),
            Key::PostMarks { viewer, .. }
            | Key::CommentMarks { viewer, .. }
            | Key::Membership { viewer, .. }
            | Key::ViewerPrefs(viewer)
            | Key::Unread(viewer) => self.viewers.slot(*viewer).load(Ordering::Acquire),
        };
        self.everything.load(Ordering::Acquire).wrapping_add(scope)
    }

    /// Bumps the counters `change` makes stale and returns the caches it touched.
    fn bump(&self, change: Change) -> &'static [CacheName] {
        let bump = |counter: &AtomicU64| {
            counter.fetch_add(1, Ordering::AcqRel);
        };
        match change {
            Change::Post(id) => {
                bump(self.posts.slot(id));
                bump(&self.listings);
                bump(&self.search);
                &[CacheName::Posts, CacheName::Listings, CacheName::Search]
            }
            Change::Thread(post) => {
                bump(self.threads.slot(post));
                bump(&self.subtrees);
                &[CacheName::Trees, CacheName::Subtrees]
            }
            Change::Listings => {
                bump(&self.listings);
                bump(&self.search);
                &[CacheName::Listings, CacheName::Search]
            }
            Change::Communities => {
                bump(&self.communities);
                &[CacheName::Communities]
            }
            Change::Profiles => {
                bump(&self.profiles);
                &[CacheName::Profiles]
            }
            Change::Viewer(id) => {
                bump(self.viewers.slot(id));
                &[CacheName::Overlays]
            }
            Change::Everything => {
                bump(&self.everything);
                &CacheName::ALL
            }
            Change::Wrote(_) => &[],
        }
    }
}

/// A key with the generation it was filled under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Stamped {
    key: Key,
    generation: u64,
}

/// A cached value: the structured form, and the JSON answer made once.
pub struct Entry {
    data: Arc<dyn Any + Send + Sync>,
    json: Bytes,
    etag: Box<str>,
    /// Byte offset of the `0` of each `"my_vote":0` in `json`, with its item's id.
    vote_slots: Box<[(usize, i64)]>,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
    derived: std::sync::Mutex<Option<Derived>>,
    weight: u32,
}

/// The value of [`Entry::unchanged`].
struct Unchanged;

/// A value made from an entry and others (an anonymous page's HTML).
struct Derived {
    made: Instant,
    deps: Vec<Arc<Entry>>,
    value: Arc<dyn Any + Send + Sync>,
}

/// The `"my_vote":0` member every post and comment serializes. JSON escapes `"` inside
/// strings, so this exact text can only be that member, never user content.
const VOTE_MEMBER: &[u8] = b"\"my_vote\":0";

impl Entry {
    /// An entry answering with `data` as JSON. `voted` lists the ids of the items carrying a
    /// `my_vote` member, in the order they serialize (depth first for trees).
    pub fn json<T: Serialize + Send + Sync + 'static>(data: T, voted: Vec<i64>) -> Result<Self, AppError> {
        let json = serde_json::to_vec(&data).map_err(AppError::internal)?;
        let mut vote_slots = Vec::with_capacity(voted.len());
        let mut from = 0;
        for id in voted {
            let at = find(&json[from..], VOTE_MEMBER)
                .ok_or_else(|| AppError::internal(std::io::Error::other("a voted item has no my_vote member")))?;
            let digit = from + at + VOTE_MEMBER.len() - 1;
            vote_slots.push((digit, id));
            from = digit + 1;
        }
        let etag = etag_of(&json);
        let weight = u32::try_from(json.len().saturating_mul(WEIGHT_PER_JSON_BYTE).saturating_add(ENTRY_OVERHEAD))
            .unwrap_or(u32::MAX);
        Ok(Self {
            data: Arc::new(data),
            json: Bytes::from(json),
            etag: etag.into(),
            vote_slots: vote_slots.into(),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
            derived: std::sync::Mutex::new(None),
            weight,
        })
    }

    /// An entry that is only a value (an overlay), weighed at `bytes`.
    pub fn value<T: Send + Sync + 'static>(data: T, bytes: usize) -> Self {
        Self {
            data: Arc::new(data),
            json: Bytes::new(),
            etag: "".into(),
            vote_slots: Box::new([]),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
            derived: std::sync::Mutex::new(None),
            weight: u32::try_from(bytes.saturating_add(ENTRY_OVERHEAD)).unwrap_or(u32::MAX),
        }
    }

    /// The structured value, when it is a `T`.
    pub fn data<T: 'static>(&self) -> Option<&T> {
        self.data.downcast_ref::<T>()
    }

    /// A reader's entry saying the shared one is already what they see (remembered, so the
    /// shared value is not searched for their choices on every read).
    pub fn unchanged() -> Self {
        Self::value(Unchanged, 0)
    }

    /// The ids of the items that carry the reader's vote, in order.
    pub fn voted_ids(&self) -> Vec<i64> {
        self.vote_slots.iter().map(|&(_, id)| id).collect()
    }

    /// The JSON answer.
    pub fn body(&self) -> &Bytes {
        &self.json
    }

    /// The JSON answer's ETag (weak: it names the JSON, whatever the encoding).
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The JSON gzipped, made on first use.
    pub fn gzip(&self) -> &Bytes {
        self.gzip.get_or_init(|| {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            // Writing to a Vec cannot fail.
            let _ = encoder.write_all(&self.json);
            Bytes::from(encoder.finish().unwrap_or_default())
        })
    }

    /// The JSON in brotli, made on first use (quality 5: most of the gain at a fraction of the CPU).
    pub fn brotli(&self) -> &Bytes {
        self.brotli.get_or_init(|| {
            let mut out = Vec::new();
            {
                let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                let _ = writer.write_all(&self.json);
            }
            Bytes::from(out)
        })
    }

    /// The JSON with the viewer's votes written in, or `None` when they voted on nothing shown
    /// (the shared bytes are then their answer too).
    pub fn with_votes(&self, votes: &HashMap<i64, i16>) -> Option<Personal> {
        let mut slots = self.vote_slots.iter().filter_map(|&(at, id)| match votes.get(&id) {
            Some(&value) if value != 0 => Some((at, value)),
            _ => None,
        });
        let first = slots.next()?;
        let mut out = Vec::with_capacity(self.json.len() + 16);
        let mut copied = 0;
        // The answer is a function of the shared bytes and the votes written in: its ETag is
        // the shared one with a digest of those votes (no hash over the whole body).
        let mut votes_digest = std::collections::hash_map::DefaultHasher::new();
        for (at, value) in std::iter::once(first).chain(slots) {
            out.extend_from_slice(&self.json[copied..at]);
            out.extend_from_slice(if value > 0 { b"1" } else { b"-1" });
            (at, value).hash(&mut votes_digest);
            copied = at + 1;
        }
        out.extend_from_slice(&self.json[copied..]);
        let shared = self.etag.trim_end_matches('"');
        let etag = format!("{shared}-{:016x}\"", votes_digest.finish());
        Some(Personal { body: Bytes::from(out), etag })
    }

    /// A value made from this entry and `deps` by `make`, kept while `deps` are the same entries
    /// and for at most `max_age` (pages show relative times). Concurrent first calls may each
    /// make it; one is kept.
    pub fn derived<T: Send + Sync + 'static, E>(
        &self,
        deps: &[&Arc<Entry>],
        max_age: Duration,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let same_deps = |kept: &[Arc<Entry>]| {
            kept.len() == deps.len() && kept.iter().zip(deps).all(|(kept, dep)| Arc::ptr_eq(kept, dep))
        };
        if let Ok(slot) = self.derived.lock()
            && let Some(derived) = slot.as_ref()
            && derived.made.elapsed() < max_age
            && same_deps(&derived.deps)
            && let Ok(value) = derived.value.clone().downcast::<T>()
        {
            return Ok(value);
        }
        let value = Arc::new(make()?);
        if let Ok(mut slot) = self.derived.lock() {
            *slot = Some(Derived {
                made: Instant::now(),
                deps: deps.iter().map(|dep| Arc::clone(dep)).collect(),
                value: value.clone(),
            });
        }
        Ok(value)
    }
}

/// An answer made for one viewer from a shared entry.
#[derive(Debug, Clone)]
pub struct Personal {
    /// The JSON.
    pub body: Bytes,
    /// Its ETag.
    pub etag: String,
}

impl Personal {
    /// `value` serialized for one reader.
    pub fn of<T: Serialize>(value: &T) -> Result<Self, AppError> {
        let json = serde_json::to_vec(value).map_err(AppError::internal)?;
        Ok(Self { etag: etag_of(&json), body: Bytes::from(json) })
    }
}

/// Bytes an entry costs beyond its JSON (key, bookkeeping, moka's node).
const ENTRY_OVERHEAD: usize = 512;

/// What an entry weighs per byte of its JSON: the JSON, the structured value (about as large),
/// and room for its compressed forms or an anonymous page's HTML made from it.
const WEIGHT_PER_JSON_BYTE: usize = 3;

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// A weak ETag naming `bytes` (a cached answer or a page): two 64-bit multiply-rotate hashes (FxHash's step with
/// two seeds), several times faster than SHA-256, which took a fifth of a signed-in page's
/// CPU. An ETag only has to change when the page does; nothing trusts it for integrity.
pub fn etag_of(bytes: &[u8]) -> String {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let step = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
    let (mut a, mut b) = (0x243f_6a88_85a3_08d3_u64, 0x1319_8a2e_0370_7344_u64 ^ bytes.len() as u64);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        a = step(a, word);
        b = step(b, word.rotate_left(29));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let tail = u64::from_le_bytes(tail);
    format!("W/\"{:016x}{:016x}\"", step(a, tail), step(b, tail.rotate_left(29)))
}

/// A read through the cache: the entry and whether it was already there.
pub struct Cached {
    /// The entry.
    pub entry: Arc<Entry>,
    /// Served from memory (no query ran for it).
    pub hit: bool,
}

/// A reader's marks on the items of a cached answer: their votes, what they saved and what
/// they hid (one overlay entry, invalidated by their own changes).
#[derive(Debug, Clone, Default)]
pub struct Marks {
    /// Item id to their vote (only non-zero votes).
    pub votes: HashMap<i64, i16>,
    /// Items they saved.
    pub saved: std::collections::HashSet<i64>,
    /// Posts they hid.
    pub hidden: std::collections::HashSet<i64>,
}

impl Marks {
    /// What the overlay entry weighs.
    pub fn weight(&self) -> usize {
        self.votes.len() * 32 + (self.saved.len() + self.hidden.len()) * 16
    }
}

/// A cached read answered for one reader: the shared entry (or, when their saves, hides,
/// blocks or keywords change what they see, the entry made for them) and, for a signed-in
/// reader, their overlay (their marks on the items, or their membership).
pub struct Served {
    /// The shared entry.
    pub entry: Arc<Entry>,
    /// The reader's overlay entry.
    overlay: Option<Arc<Entry>>,
    /// The reader's own answer, when the service made one from the overlay.
    made: Option<Personal>,
    /// Everything came from memory.
    pub hit: bool,
}

impl Served {
    /// The shared answer alone (anonymous readers, or nothing personal to add).
    pub fn shared(cached: Cached) -> Self {
        Self { entry: cached.entry, overlay: None, made: None, hit: cached.hit }
    }

    /// The shared answer with the reader's overlay.
    pub fn with_overlay(cached: Cached, overlay: Cached) -> Self {
        Self { entry: cached.entry, hit: cached.hit && overlay.hit, overlay: Some(overlay.entry), made: None }
    }

    /// Sets the reader's own answer (for overlays that are not votes).
    pub fn with_personal(self, made: Option<Personal>) -> Self {
        Self { made, ..self }
    }

    /// Answers with `made`, an entry made for this reader (their votes already written in),
    /// instead of the shared one, unless it is [`Entry::unchanged`]; the overlay stays.
    pub fn for_reader(self, made: Cached) -> Self {
        let hit = self.hit && made.hit;
        if made.entry.data::<Unchanged>().is_some() {
            return Self { hit, ..self };
        }
        Self { entry: made.entry, hit, ..self }
    }

    /// The value answered, when it is a `T`.
    pub fn data<T: 'static>(&self) -> Option<&T> {
        self.entry.data::<T>()
    }

    /// The reader's vote on item `id` (0 when none or anonymous).
    pub fn my_vote(&self, id: i64) -> i16 {
        self.votes().and_then(|votes| votes.get(&id).copied()).unwrap_or(0)
    }

    /// The reader's votes, when the overlay holds their marks.
    pub fn votes(&self) -> Option<&HashMap<i64, i16>> {
        self.marks().map(|marks| &marks.votes)
    }

    /// The reader's marks, when the overlay holds them.
    pub fn marks(&self) -> Option<&Marks> {
        self.overlay::<Marks>()
    }

    /// The reader's overlay value, when it is a `T`.
    pub fn overlay<T: 'static>(&self) -> Option<&T> {
        self.overlay.as_ref().and_then(|overlay| overlay.data::<T>())
    }

    /// The JSON this reader gets when it differs from the entry's bytes (their votes written in).
    pub fn personal(&self) -> Option<Personal> {
        if let Some(made) = &self.made {
            return Some(made.clone());
        }
        self.votes().and_then(|votes| self.entry.with_votes(votes))
    }
}

/// Per-cache bytes held, kept by inserts and the eviction listener.
struct Weights([AtomicI64; 8]);

/// The response cache of one daemon.
pub struct ResponseCache {
    store: moka::future::Cache<Stamped, Arc<Entry>>,
    generations: Arc<Generations>,
    weights: Arc<Weights>,
    /// `agora_cache_requests_total` resolved once per cache: `[hit, miss]`, so a hit does no
    /// label lookup.
    requests: [[prometheus::IntCounter; 2]; 8],
    freshness: Freshness,
    /// `cache.max_memory_mib = 0`: every read is filled and nothing is kept.
    disabled: bool,
    metrics: Metrics,
}

/// When this daemon last learned of changes, so reads that may go to a replica go only to
/// one that has replayed them (`db::Database::read_conn`).
struct Freshness {
    epoch: Instant,
    /// Nanoseconds after `epoch` of the last change of any kind (0: none yet).
    any: AtomicU64,
    /// Nanoseconds after `epoch` of the last `Everything` (0: none yet).
    everything: AtomicU64,
    /// Each recent writer's last own change, kept for `database.read_your_writes`.
    readers: moka::sync::Cache<i64, Instant>,
}

impl Freshness {
    fn new(read_your_writes: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            any: AtomicU64::new(0),
            everything: AtomicU64::new(0),
            readers: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(read_your_writes).build(),
        }
    }

    fn note(&self, change: Change, now: Instant) {
        let nanos = u64::try_from(now.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX).max(1);
        self.any.fetch_max(nanos, Ordering::AcqRel);
        match change {
            Change::Everything => {
                self.everything.fetch_max(nanos, Ordering::AcqRel);
            }
            Change::Viewer(user) | Change::Wrote(user) => self.readers.insert(user, now),
            _ => {}
        }
    }

    fn instant(&self, nanos: &AtomicU64) -> Option<Instant> {
        match nanos.load(Ordering::Acquire) {
            0 => None,
            nanos => Some(self.epoch + Duration::from_nanos(nanos)),
        }
    }
}

struct Lifetimes {
    ranked: Duration,
    profiles: Duration,
    other: Duration,
}

impl moka::Expiry<Stamped, Arc<Entry>> for Lifetimes {
    fn expire_after_create(&self, key: &Stamped, _value: &Arc<Entry>, _created_at: Instant) -> Option<Duration> {
        Some(match key.key {
            Key::Profile(_) => self.profiles,
            _ if key.key.drifts() => self.ranked,
            _ => self.other,
        })
    }
}

impl ResponseCache {
    /// A cache with the configured budget and lifetimes.
    pub fn new(config: &CacheConfig, read_your_writes: Duration, metrics: Metrics) -> Self {
        let weights = Arc::new(Weights(std::array::from_fn(|_| AtomicI64::new(0))));
        let listener_weights = weights.clone();
        let listener_metrics = metrics.clone();
        let budget = config.max_memory_mib.saturating_mul(1024 * 1024);
        metrics.cache_max_bytes.set(i64::try_from(budget).unwrap_or(i64::MAX));
        let store = moka::future::Cache::builder()
            .max_capacity(budget)
            .weigher(|_key: &Stamped, entry: &Arc<Entry>| entry.weight)
            .expire_after(Lifetimes {
                ranked: Duration::from_secs(config.ranked_ttl_seconds),
                profiles: Duration::from_secs(config.profile_ttl_seconds),
                other: Duration::from_secs(config.ttl_seconds),
            })
            .eviction_listener(move |key: Arc<Stamped>, entry: Arc<Entry>, cause| {
                let cache = key.key.cache();
                let held = listener_weights.0[cache.index()].fetch_sub(i64::from(entry.weight), Ordering::AcqRel);
                listener_metrics
                    .cache_weighted_bytes
                    .with_label_values(&[cache.as_str()])
                    .set(held - i64::from(entry.weight));
                let cause = match cause {
                    moka::notification::RemovalCause::Expired => "expired",
                    moka::notification::RemovalCause::Explicit => "explicit",
                    moka::notification::RemovalCause::Replaced => "replaced",
                    moka::notification::RemovalCause::Size => "size",
                };
                listener_metrics.cache_evictions.with_label_values(&[cache.as_str(), cause]).inc();
            })
            .build();
        for cache in CacheName::ALL {
            for result in ["hit", "miss"] {
                metrics.cache_requests.with_label_values(&[cache.as_str(), result]);
            }
            for cause in ["expired", "explicit", "replaced", "size"] {
                metrics.cache_evictions.with_label_values(&[cache.as_str(), cause]);
            }
            for source in [Source::Local, Source::Notify] {
                metrics.cache_invalidations.with_label_values(&[cache.as_str(), source.as_str()]);
            }
            metrics.cache_weighted_bytes.with_label_values(&[cache.as_str()]).set(0);
        }
        let requests = CacheName::ALL.map(|cache| {
            ["hit", "miss"].map(|result| metrics.cache_requests.with_label_values(&[cache.as_str(), result]))
        });
        let freshness = Freshness::new(read_your_writes);
        let disabled = budget == 0;
        Self { store, generations: Arc::new(Generations::new()), weights, requests, freshness, disabled, metrics }
    }

    /// The entry for `key`, filled by `fill` on a miss. Concurrent misses of one key share one
    /// fill. The generation is read before the fill, so a write that commits while it runs
    /// leaves its result unreachable (see the module comment).
    pub async fn get_or_fill(
        &self,
        key: Key,
        fill: impl Future<Output = Result<Entry, AppError>>,
    ) -> Result<Cached, AppError> {
        let cache = key.cache();
        if self.disabled {
            self.requests[cache.index()][1].inc();
            let entry = fill.instrument(tracing::info_span!("cache.fill", cache = cache.as_str())).await?;
            return Ok(Cached { entry: Arc::new(entry), hit: false });
        }
        let stamped = Stamped { generation: self.generations.of(&key), key };
        let filled = std::sync::atomic::AtomicBool::new(false);
        let result = self
            .store
            .try_get_with(stamped, async {
                filled.store(true, Ordering::Relaxed);
                let entry = fill.instrument(tracing::info_span!("cache.fill", cache = cache.as_str())).await?;
                let held = self.weights.0[cache.index()].fetch_add(i64::from(entry.weight), Ordering::AcqRel);
                self.metrics
                    .cache_weighted_bytes
                    .with_label_values(&[cache.as_str()])
                    .set(held + i64::from(entry.weight));
                Ok::<_, AppError>(Arc::new(entry))
            })
            .await;
        let hit = !filled.load(Ordering::Relaxed);
        self.requests[cache.index()][usize::from(!hit)].inc();
        match result {
            Ok(entry) => Ok(Cached { entry, hit }),
            Err(shared) => Err(unshare(shared)),
        }
    }

    /// Makes the values `changes` affect stale on this daemon. The changes are noted as fresh
    /// before any generation moves, so a fill that sees the new generation also sees them.
    pub fn apply(&self, changes: &[Change], source: Source) {
        let now = Instant::now();
        for &change in changes {
            self.freshness.note(change, now);
        }
        for &change in changes {
            for cache in self.generations.bump(change) {
                self.metrics.cache_invalidations.with_label_values(&[cache.as_str(), source.as_str()]).inc();
            }
        }
    }
}

impl ResponseCache {
    /// What a fill of a shared entry must see: every change this daemon has applied.
    pub fn fresh_since(&self) -> Option<Instant> {
        self.freshness.instant(&self.freshness.any)
    }

    /// What a read of `reader`'s own state must see: their last change while it is within
    /// `database.read_your_writes`, and the last `Everything`.
    pub fn reader_fresh_since(&self, reader: i64) -> Option<Instant> {
        let own = self.freshness.readers.get(&reader);
        own.max(self.freshness.instant(&self.freshness.everything))
    }
}

/// A fill error shared by the waiters of one fill, as each waiter's own error.
fn unshare(shared: Arc<AppError>) -> AppError {
    match Arc::try_unwrap(shared) {
        Ok(error) => error,
        Err(shared) => AppError {
            code: shared.code,
            detail: shared.detail.clone(),
            errors: shared.errors.clone(),
            source: None,
            location: shared.location,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cache() -> ResponseCache {
        let config = crate::config::Config::defaults().expect("defaults").cache;
        ResponseCache::new(&config, Duration::from_secs(5), Metrics::new().expect("metrics"))
    }

    fn entry(text: &str) -> Result<Entry, AppError> {
        Entry::json(text.to_owned(), Vec::new())
    }

    #[tokio::test]
    async fn a_cache_of_no_memory_fills_every_read() {
        let mut config = crate::config::Config::defaults().expect("defaults").cache;
        config.max_memory_mib = 0;
        let cache = ResponseCache::new(&config, Duration::from_secs(5), Metrics::new().expect("metrics"));
        for text in ["first", "second"] {
            let got = cache.get_or_fill(Key::Post(1), async { entry(text) }).await.unwrap();
            assert!(!got.hit);
            assert_eq!(got.entry.data::<String>().map(String::as_str), Some(text));
        }
    }

    #[tokio::test]
    async fn a_fill_that_started_before_an_invalidation_is_never_served() {
        let cache = cache();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let slow_fill = cache.get_or_fill(Key::Post(7), async {
            released.await.ok();
            entry("before the write")
        });
        let race = async {
            // The write commits and invalidates while the fill above is still reading.
            tokio::task::yield_now().await;
            cache.apply(&[Change::Post(7)], Source::Local);
            release.send(()).ok();
        };
        let (stale, ()) = tokio::join!(slow_fill, race);
        assert_eq!(stale.unwrap().entry.body().as_ref(), b"\"before the write\"");
        let fresh = cache.get_or_fill(Key::Post(7), async { entry("after the write") }).await.unwrap();
        assert!(!fresh.hit);
        assert_eq!(fresh.entry.body().as_ref(), b"\"after the write\"");
        let again = cache.get_or_fill(Key::Post(7), async { entry("not used") }).await.unwrap();
        assert!(again.hit);
        assert_eq!(again.entry.body().as_ref(), b"\"after the write\"");
    }

    #[tokio::test]
    async fn a_change_invalidates_only_what_depends_on_it() {
        let cache = cache();
        let listing =
            Key::Listing { community: None, sort: PostSort::New, window: TimeWindow::All, limit: 25, cursor: None };
        for key in [Key::Post(1), Key::Post(2), listing.clone(), Key::Profile("ann".into())] {
            cache.get_or_fill(key, async { entry("x") }).await.unwrap();
        }
        cache.apply(&[Change::Post(1)], Source::Local);
        let hit = async |key: Key| cache.get_or_fill(key, async { entry("y") }).await.unwrap().hit;
        assert!(!hit(Key::Post(1)).await);
        assert!(hit(Key::Post(2)).await);
        assert!(!hit(listing).await);
        assert!(hit(Key::Profile("ann".into())).await);
        cache.apply(&[Change::Everything], Source::Notify);
        assert!(!hit(Key::Post(2)).await);
    }

    #[tokio::test]
    async fn fill_errors_are_not_cached() {
        let cache = cache();
        let failed = cache.get_or_fill(Key::Post(3), async { Err(AppError::not_found("post")) }).await;
        assert!(failed.is_err());
        let filled = cache.get_or_fill(Key::Post(3), async { entry("z") }).await.unwrap();
        assert!(!filled.hit);
    }

    #[test]
    fn votes_are_spliced_into_the_shared_bytes() {
        #[derive(Serialize)]
        struct Item {
            id: i64,
            body: &'static str,
            my_vote: i16,
        }
        let items = vec![
            Item { id: 1, body: "\"my_vote\":0 in a body is escaped", my_vote: 0 },
            Item { id: 2, body: "", my_vote: 0 },
            Item { id: 3, body: "", my_vote: 0 },
        ];
        let entry = Entry::json(items, vec![1, 2, 3]).unwrap();
        assert!(entry.with_votes(&HashMap::from([(2, 0)])).is_none());
        let personal = entry.with_votes(&HashMap::from([(1, 1), (3, -1)])).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&personal.body).unwrap();
        let votes: Vec<i64> = parsed.as_array().unwrap().iter().map(|i| i["my_vote"].as_i64().unwrap()).collect();
        assert_eq!(votes, [1, 0, -1]);
        assert_eq!(parsed[0]["body"], "\"my_vote\":0 in a body is escaped");
        assert_ne!(personal.etag, entry.etag());
    }

    #[test]
    fn changes_survive_the_notification_wire_form() {
        for change in [
            Change::Post(5),
            Change::Thread(6),
            Change::Listings,
            Change::Communities,
            Change::Profiles,
            Change::Viewer(9),
            Change::Everything,
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("post:x"), None);
        assert_eq!(Change::decode("nonsense"), None);
    }

    #[test]
    fn compressed_forms_decompress_to_the_json() {
        let entry = Entry::json(vec!["some text"; 100], Vec::new()).unwrap();
        let mut gunzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(entry.gzip().as_ref()), &mut gunzipped).unwrap();
        assert_eq!(gunzipped, entry.body().as_ref());
        assert!(entry.brotli().len() < entry.body().len());
    }

    #[test]
    fn page_etags_follow_every_byte() {
        let page = "<html>a page of some length, more than a few words</html>";
        assert_eq!(etag_of(page.as_bytes()), etag_of(page.as_bytes()));
        assert_ne!(etag_of(page.as_bytes()), etag_of(page.replace("few", "fee").as_bytes()));
        assert_ne!(etag_of(b"abc"), etag_of(b"abd"), "the last, partial word counts");
        assert_ne!(etag_of(b""), etag_of(b"\0"), "so does the length");
        assert!(etag_of(b"x").starts_with("W/\"") && etag_of(b"x").len() == 3 + 32 + 1);
    }
}
