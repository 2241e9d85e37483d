//! `RedisStorage`: a library in Redis, shared by every agent host that uses the
//! same server and prefix. One prefix is one tenant.
//!
//! ```text
//! <prefix>:skills              SET   names of the skills
//! <prefix>:skill:<name>        HASH  source, description, created_at, updated_at,
//!                                    provenance (JSON: version, session, run, hash, tools),
//!                                    listed (JSON: version and tools, what a listing reads; `null`
//!                                    for a skill saved without history)
//! <prefix>:skill-history:<name> LIST JSON of each kept version, newest first
//! <prefix>:skill-cases:<name>  STRING the skill's recorded test cases (JSON)
//! <prefix>:artifacts           SET   names of the artifacts
//! <prefix>:artifact:<name>     HASH  data (raw bytes), meta (JSON: type, description,
//!                                    metadata, size, created_at, updated_at)
//! <prefix>:tools               HASH  file name (`nmap.yaml`) -> YAML text
//! <prefix>:cache:<key>         STRING derived blob (embeddings)
//! <prefix>:deps                STRING the configured runtime dependencies, one spec a line
//! ```
//!
//! Every write is one `MULTI`/`EXEC` transaction that replaces the item's hash
//! whole and updates its index set, so a reader (or a crash) sees the old item or
//! the new one and writers in many processes never lose each other's items.
//! Nothing is cached here: every list re-reads the index set and fetches the
//! items in one pipeline, so a skill another host created is visible to the next
//! call. Prefixes may not contain `:` and names are validated before they become
//! keys, so no prefix can reach another's keys.
//!
//! The connection is a multiplexed [`redis::aio::ConnectionManager`]: when Redis
//! goes away calls fail with an error naming the URL (its password masked) and
//! the next call reconnects. Writes are idempotent (whole-item replacement), so a
//! call whose connection dropped is retried once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError};

use super::{
    ItemKind, ListedProvenance, MAX_ARTIFACT_BYTES, MAX_CASES_BYTES, MAX_SKILL_BYTES,
    MAX_SKILL_HISTORY, MAX_TOOL_FILE_BYTES, Provenance, SkillEntry, SkillRecord, SkillVersion,
    Storage, StorageProblem, ToolSource, WarnOnce, is_key_safe, validate_cache_key,
    validate_tool_file_name,
};
use crate::artifacts::ArtifactMeta;
use crate::error::StorageError;
use crate::names::{validate_artifact_name, validate_skill_name};

/// How long to wait for a TCP (and TLS) connection: long enough for a remote
/// server, short enough that a call made while Redis is down fails promptly.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one command may take; a list of 1,000 skills takes milliseconds.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnection attempts per call while Redis is down, after the first; each
/// failed call triggers a new round, so Redis coming back is always noticed.
const RECONNECT_RETRIES: usize = 2;
/// First delay between reconnection attempts (it doubles each time).
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// Longest length of a prefix; it starts every key.
const MAX_PREFIX: usize = 100;
/// Cache keys fetched by one `MGET`.
const CACHE_MGET_CHUNK: usize = 512;

/// The fields of a skill's hash a listing reads, in the order
/// `entry_from_fields` takes them.
const LISTED_FIELDS: [&str; 5] = [
    "source",
    "description",
    "created_at",
    "updated_at",
    "listed",
];

/// Commits a version of a skill in one server-side step, so two hosts never
/// take the same number and the skill and its history never disagree.
/// KEYS: skill hash, skills index, history list.
/// ARGV: name, source, description, now, provenance and history entry JSON
/// without their leading `{` (the script puts `{"version":N,` in front), keep,
/// and the `listed` JSON without its leading `{` likewise.
/// A skill saved without history is first kept as a version of its own.
const COMMIT_SKILL_SCRIPT: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'source', 'description', 'created_at', 'updated_at', 'provenance')
local v = 1
if cur[5] then
  local ok, p = pcall(cjson.decode, cur[5])
  if not ok or type(p) ~= 'table' or type(p['version']) ~= 'number' then
    return redis.error_reply('its `provenance` field is not valid')
  end
  v = p['version'] + 1
else
  local head = redis.call('LINDEX', KEYS[3], 0)
  if head then
    local ok, e = pcall(cjson.decode, head)
    if ok and type(e) == 'table' and type(e['version']) == 'number' then v = e['version'] + 1 end
  end
  if cur[1] then
    redis.call('LPUSH', KEYS[3], cjson.encode({version = v, source = cur[1],
      description = cur[2] or '', created_at = cur[4] or ARGV[4]}))
    v = v + 1
  end
end
local created = cur[3] or ARGV[4]
local head = '{"version":' .. string.format('%d', v) .. ','
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'source', ARGV[2], 'description', ARGV[3], 'created_at', created,
  'updated_at', ARGV[4], 'provenance', head .. ARGV[5], 'listed', head .. ARGV[8])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], head .. ARGV[6])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[7]) - 1)
return {v, created}
"#;

/// What a listing reads of a provenance (see [`ListedProvenance`]), kept in
/// the `listed` field so a listing never transfers nor parses the rest.
fn listed(provenance: &Provenance) -> serde_json::Value {
    serde_json::json!({"version": provenance.version, "tools": provenance.tools})
}

/// A JSON object without its `version` member and without its leading `{`:
/// the script puts `{"version":N,` in front.
fn json_tail<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    let mut value = serde_json::to_value(value).map_err(|e| StorageError::Backend {
        backend: "redis".into(),
        message: format!("cannot encode a skill version: {e}"),
        source: None,
    })?;
    if let Some(map) = value.as_object_mut() {
        map.remove("version");
    }
    let text = value.to_string();
    Ok(text.strip_prefix('{').unwrap_or(&text).to_owned())
}

/// A library kept in Redis under one key prefix; see the module docs for the keys.
///
/// ```no_run
/// # async fn demo() -> Result<(), py_code_mode::StorageError> {
/// use py_code_mode::RedisStorage;
/// let storage = RedisStorage::connect("redis://localhost:6379", "my-agent").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStorage {
    conn: ConnectionManager,
    /// The URL with its password masked: safe for messages and logs.
    url: String,
    prefix: String,
    warned: Arc<WarnOnce>,
}

impl std::fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStorage")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStorage {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` for TLS) and keeps the library under `prefix`.
    ///
    /// Fails when the URL or prefix is invalid or Redis cannot be reached now;
    /// once connected, a lost connection is re-established by later calls.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StorageError> {
        validate_prefix(prefix)?;
        let shown = redact_url(url);
        if url.starts_with("rediss://") {
            // rustls needs a process-wide crypto provider; another part of the
            // program may have installed one already, which is just as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = redis::Client::open(url).map_err(|e| StorageError::Backend {
            backend: "redis".into(),
            message: format!(
                "invalid Redis URL `{shown}`: {}\nhint: use `redis://[user:password@]host[:port][/db]` or `rediss://` for TLS",
                redact_error(&e, url)
            ),
            source: None,
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| unreachable_error(&shown, url, &e))?;
        Ok(Self {
            conn,
            url: shown,
            prefix: prefix.to_owned(),
            warned: Arc::default(),
        })
    }

    /// The key prefix (the tenant).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The server URL with any password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    fn skills_index(&self) -> String {
        self.key(&["skills"])
    }

    fn skill_key(&self, name: &str) -> String {
        self.key(&["skill", name])
    }

    fn history_key(&self, name: &str) -> String {
        self.key(&["skill-history", name])
    }

    fn cases_key(&self, name: &str) -> String {
        self.key(&["skill-cases", name])
    }

    fn artifacts_index(&self) -> String {
        self.key(&["artifacts"])
    }

    fn artifact_key(&self, name: &str) -> String {
        self.key(&["artifact", name])
    }

    fn tools_key(&self) -> String {
        self.key(&["tools"])
    }

    /// Runs one command, retrying once when the connection dropped under it.
    async fn cmd<T: FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, StorageError> {
        self.retrying(
            what,
            |mut conn| async move { cmd.query_async(&mut conn).await },
        )
        .await
    }

    /// Runs a pipeline (a transaction when built with `.atomic()`), retrying
    /// once when the connection dropped under it; every pipeline here is
    /// idempotent.
    async fn pipe<T: FromRedisValue>(
        &self,
        what: &str,
        pipe: &redis::Pipeline,
    ) -> Result<T, StorageError> {
        self.retrying(
            what,
            |mut conn| async move { pipe.query_async(&mut conn).await },
        )
        .await
    }

    /// `attempt` once, and once more if the connection dropped under it.
    async fn retrying<T, Fut>(
        &self,
        what: &str,
        attempt: impl Fn(ConnectionManager) -> Fut,
    ) -> Result<T, StorageError>
    where
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match attempt(self.conn.clone()).await {
            Err(e) if is_connection_error(&e) => attempt(self.conn.clone())
                .await
                .map_err(|e| self.error(what, &e)),
            result => result.map_err(|e| self.error(what, &e)),
        }
    }

    fn error(&self, what: &str, e: &RedisError) -> StorageError {
        if is_connection_error(e) || e.is_timeout() {
            let mut error = unreachable_error(&self.url, "", e);
            if let StorageError::Backend { message, .. } = &mut error {
                *message = format!("cannot {what}: {message}");
            }
            return error;
        }
        StorageError::Backend {
            backend: "redis".into(),
            message: format!(
                "cannot {what} at `{}` (prefix `{}`): {e}",
                self.url, self.prefix
            ),
            source: None,
        }
    }

    /// Refuses to write more than the file backend would read back.
    fn check_size(&self, what: &str, name: &str, len: usize, max: u64) -> Result<(), StorageError> {
        if len as u64 <= max {
            return Ok(());
        }
        Err(StorageError::Backend {
            backend: "redis".into(),
            message: format!(
                "cannot save {what} `{name}` at `{}`: it holds {len} bytes, more than the {max} allowed",
                self.url
            ),
            source: None,
        })
    }

    fn corrupt(&self, key: &str, message: impl Into<String>) -> StorageError {
        StorageError::Backend {
            backend: "redis".into(),
            message: format!(
                "key `{key}` at `{}` is corrupt: {}",
                self.url,
                message.into()
            ),
            source: None,
        }
    }

    fn skill_from_hash(
        &self,
        name: &str,
        mut hash: HashMap<String, Vec<u8>>,
    ) -> Result<Option<SkillRecord>, StorageError> {
        let key = self.skill_key(name);
        let Some(source) = hash.remove("source") else {
            return Ok(None);
        };
        let text = |field: &str, bytes: Vec<u8>| {
            String::from_utf8(bytes)
                .map_err(|_| self.corrupt(&key, format!("`{field}` is not UTF-8")))
        };
        let time = |field: &str, hash: &mut HashMap<String, Vec<u8>>| {
            let bytes = hash
                .remove(field)
                .ok_or_else(|| self.corrupt(&key, format!("`{field}` is missing")))?;
            text(field, bytes)?
                .parse::<jiff::Timestamp>()
                .map_err(|e| self.corrupt(&key, format!("`{field}`: {e}")))
        };
        let created_at = time("created_at", &mut hash)?;
        let updated_at = time("updated_at", &mut hash)?;
        let provenance = match hash.remove("provenance") {
            Some(bytes) => Some(
                serde_json::from_slice::<Provenance>(&bytes)
                    .map_err(|e| self.corrupt(&key, format!("`provenance`: {e}")))?,
            ),
            None => None,
        };
        Ok(Some(SkillRecord {
            provenance,
            name: name.to_owned(),
            source: text("source", source)?,
            description: text(
                "description",
                hash.remove("description").unwrap_or_default(),
            )?,
            created_at,
            updated_at,
        }))
    }

    /// A skill as a listing reads it from the fields [`LISTED_FIELDS`] (see
    /// [`SkillEntry`]): the provenance is skipped but for version and tools.
    /// With the entry, whether its hash has no `listed` field (saved by an
    /// earlier build): its version and tools are then in `provenance` only.
    fn entry_from_fields(
        &self,
        name: &str,
        fields: Vec<Option<Vec<u8>>>,
    ) -> Result<Option<(SkillEntry, bool)>, StorageError> {
        let key = self.skill_key(name);
        let mut fields = fields.into_iter();
        let mut next = || fields.next().flatten();
        let (source, description, created_at, updated_at, listed) =
            (next(), next(), next(), next(), next());
        let unlisted = listed.is_none();
        let Some(source) = source else {
            return Ok(None);
        };
        let text = |field: &str, bytes: Vec<u8>| {
            String::from_utf8(bytes)
                .map_err(|_| self.corrupt(&key, format!("`{field}` is not UTF-8")))
        };
        let time = |field: &str, bytes: Option<Vec<u8>>| {
            let bytes = bytes.ok_or_else(|| self.corrupt(&key, format!("`{field}` is missing")))?;
            std::str::from_utf8(&bytes)
                .map_err(|_| self.corrupt(&key, format!("`{field}` is not UTF-8")))?
                .parse::<jiff::Timestamp>()
                .map_err(|e| self.corrupt(&key, format!("`{field}`: {e}")))
        };
        let created_at = time("created_at", created_at)?;
        let updated_at = time("updated_at", updated_at)?;
        let (version, tools) = match listed {
            Some(bytes) => match serde_json::from_slice::<Option<ListedProvenance>>(&bytes)
                .map_err(|e| self.corrupt(&key, format!("`listed`: {e}")))?
            {
                Some(p) => (Some(p.version), p.tools),
                None => (None, std::collections::BTreeMap::default()),
            },
            // Saved by a build that kept no `listed` field (or by hand): the
            // caller reads the provenance of these.
            None => (None, std::collections::BTreeMap::default()),
        };
        let entry = SkillEntry {
            name: name.to_owned(),
            source: text("source", source)?,
            description: text("description", description.unwrap_or_default())?,
            created_at,
            updated_at,
            version,
            tools,
        };
        Ok(Some((entry, unlisted)))
    }

    /// Every skill as a listing reads it: `HMGET` of [`LISTED_FIELDS`] only.
    async fn scan_skill_entries(
        &self,
    ) -> Result<(Vec<SkillEntry>, Vec<StorageProblem>), StorageError> {
        let mut problems = Vec::new();
        let names = self
            .index(
                ItemKind::Skill,
                &self.skills_index(),
                validate_skill_name,
                &mut problems,
            )
            .await?;
        if names.is_empty() {
            return Ok((Vec::new(), problems));
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.cmd("HMGET")
                .arg(self.skill_key(name))
                .arg(&LISTED_FIELDS[..]);
        }
        let rows: Vec<Vec<Option<Vec<u8>>>> = self.pipe("list skills", &pipe).await?;
        let mut skills = Vec::with_capacity(names.len());
        let mut unlisted = Vec::new();
        for (name, fields) in names.iter().zip(rows) {
            match self.entry_from_fields(name, fields) {
                Ok(Some((skill, missing))) => {
                    if missing {
                        unlisted.push(skills.len());
                    }
                    skills.push(skill);
                }
                // Deleted between reading the index and the items: simply gone.
                Ok(None) => {}
                Err(e) => problems.push(StorageProblem {
                    kind: ItemKind::Skill,
                    location: self.skill_key(name),
                    reason: Self::problem_reason(&e),
                }),
            }
        }
        self.read_unlisted(&mut skills, &unlisted).await?;
        Ok((skills, problems))
    }

    /// Fills version and tools of the entries at `unlisted` from their
    /// `provenance` (hashes saved before the `listed` field, or by hand):
    /// one more round trip, only when there are such entries.
    async fn read_unlisted(
        &self,
        skills: &mut [SkillEntry],
        unlisted: &[usize],
    ) -> Result<(), StorageError> {
        if unlisted.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for &i in unlisted {
            pipe.cmd("HGET")
                .arg(self.skill_key(&skills[i].name))
                .arg("provenance");
        }
        let rows: Vec<Option<Vec<u8>>> = self.pipe("list skills", &pipe).await?;
        for (&i, row) in unlisted.iter().zip(rows) {
            let Some(bytes) = row else { continue };
            let skill = &mut skills[i];
            match serde_json::from_slice::<ListedProvenance>(&bytes) {
                Ok(p) => {
                    skill.version = Some(p.version);
                    skill.tools = p.tools;
                }
                // Shown without its version rather than hiding the skill.
                Err(e) => tracing::warn!(
                    "the `provenance` of `{}` is not valid: {e}",
                    self.skill_key(&skill.name)
                ),
            }
        }
        Ok(())
    }

    fn parse_meta(&self, name: &str, bytes: &[u8]) -> Result<ArtifactMeta, StorageError> {
        let mut meta: ArtifactMeta = serde_json::from_slice(bytes)
            .map_err(|e| self.corrupt(&self.artifact_key(name), format!("`meta`: {e}")))?;
        // The key is the truth: the name in the JSON cannot point elsewhere.
        name.clone_into(&mut meta.name);
        Ok(meta)
    }

    /// Index members that are valid names, sorted; anything else in the set
    /// (written by hand or by a buggy client) is reported in `problems`,
    /// never turned into a key.
    async fn index<E: std::fmt::Display>(
        &self,
        kind: ItemKind,
        index: &str,
        valid: impl Fn(&str) -> Result<(), E>,
        problems: &mut Vec<StorageProblem>,
    ) -> Result<Vec<String>, StorageError> {
        let members: Vec<Vec<u8>> = self
            .cmd(
                &format!("list `{index}`"),
                redis::cmd("SMEMBERS").arg(index),
            )
            .await?;
        let mut names = Vec::with_capacity(members.len());
        for member in members {
            let checked = String::from_utf8(member)
                .map_err(|e| {
                    let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    (lossy, "the name is not UTF-8".to_owned())
                })
                .and_then(|name| match valid(&name) {
                    Ok(()) => Ok(name),
                    Err(e) => Err((name, e.to_string())),
                });
            match checked {
                Ok(name) => names.push(name),
                Err((name, reason)) => problems.push(StorageProblem {
                    kind,
                    location: format!("{index} member `{name}`"),
                    reason,
                }),
            }
        }
        names.sort();
        Ok(names)
    }

    async fn scan_tools(&self) -> Result<(Vec<ToolSource>, Vec<StorageProblem>), StorageError> {
        let key = self.tools_key();
        let tools: HashMap<Vec<u8>, Vec<u8>> = self
            .cmd("read tool definitions", redis::cmd("HGETALL").arg(&key))
            .await?;
        let mut sources = Vec::with_capacity(tools.len());
        let mut problems = Vec::new();
        for (name, text) in tools {
            let name = String::from_utf8_lossy(&name).into_owned();
            let mut problem = |reason: String| {
                problems.push(StorageProblem {
                    kind: ItemKind::Tool,
                    location: format!("{key} field `{name}`"),
                    reason,
                });
            };
            if let Err(e) = validate_tool_file_name(&name) {
                problem(e.to_string());
                continue;
            }
            if text.len() as u64 > MAX_TOOL_FILE_BYTES {
                problem(format!(
                    "it holds {} bytes, more than the {MAX_TOOL_FILE_BYTES} bytes a tool definition may",
                    text.len()
                ));
                continue;
            }
            match String::from_utf8(text) {
                Ok(text) => sources.push(ToolSource {
                    origin: format!("redis:{key}/{name}"),
                    text,
                }),
                Err(e) => problem(format!("not UTF-8: {}", e.utf8_error())),
            }
        }
        sources.sort_by(|a, b| a.origin.cmp(&b.origin));
        Ok((sources, problems))
    }

    async fn scan_skills(&self) -> Result<(Vec<SkillRecord>, Vec<StorageProblem>), StorageError> {
        let mut problems = Vec::new();
        let names = self
            .index(
                ItemKind::Skill,
                &self.skills_index(),
                validate_skill_name,
                &mut problems,
            )
            .await?;
        if names.is_empty() {
            return Ok((Vec::new(), problems));
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.cmd("HGETALL").arg(self.skill_key(name));
        }
        let hashes: Vec<HashMap<String, Vec<u8>>> = self.pipe("list skills", &pipe).await?;
        let mut skills = Vec::with_capacity(names.len());
        for (name, hash) in names.iter().zip(hashes) {
            match self.skill_from_hash(name, hash) {
                Ok(Some(skill)) => skills.push(skill),
                // Deleted between reading the index and the items: simply gone.
                Ok(None) => {}
                Err(e) => problems.push(StorageProblem {
                    kind: ItemKind::Skill,
                    location: self.skill_key(name),
                    reason: Self::problem_reason(&e),
                }),
            }
        }
        Ok((skills, problems))
    }

    async fn scan_artifacts(
        &self,
    ) -> Result<(Vec<ArtifactMeta>, Vec<StorageProblem>), StorageError> {
        let mut problems = Vec::new();
        let names = self
            .index(
                ItemKind::Artifact,
                &self.artifacts_index(),
                validate_artifact_name,
                &mut problems,
            )
            .await?;
        if names.is_empty() {
            return Ok((Vec::new(), problems));
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.cmd("HGET").arg(self.artifact_key(name)).arg("meta");
        }
        let metas: Vec<Option<Vec<u8>>> = self.pipe("list artifacts", &pipe).await?;
        let mut listed = Vec::with_capacity(names.len());
        for (name, meta) in names.iter().zip(metas) {
            let Some(meta) = meta else {
                continue; // deleted between reading the index and the items
            };
            match self.parse_meta(name, &meta) {
                Ok(meta) => listed.push(meta),
                Err(e) => problems.push(StorageProblem {
                    kind: ItemKind::Artifact,
                    location: self.artifact_key(name),
                    reason: Self::problem_reason(&e),
                }),
            }
        }
        Ok((listed, problems))
    }

    /// The reason of a `corrupt` error without the key and URL it repeats.
    fn problem_reason(e: &StorageError) -> String {
        let text = e.to_string();
        text.split_once(" is corrupt: ")
            .map_or_else(|| text.clone(), |(_, reason)| reason.to_owned())
    }
}

#[async_trait]
impl Storage for RedisStorage {
    fn location(&self) -> String {
        format!("{} (prefix `{}`)", self.url, self.prefix)
    }

    async fn tool_sources(&self) -> Result<Vec<ToolSource>, StorageError> {
        let (sources, problems) = self.scan_tools().await?;
        self.warned.warn(&problems);
        Ok(sources)
    }

    async fn put_tool(&self, file_name: &str, text: &str) -> Result<(), StorageError> {
        validate_tool_file_name(file_name)?;
        self.check_size("tool", file_name, text.len(), MAX_TOOL_FILE_BYTES)?;
        self.cmd(
            &format!("save tool `{file_name}`"),
            redis::cmd("HSET")
                .arg(self.tools_key())
                .arg(file_name)
                .arg(text),
        )
        .await
    }

    async fn list_skills(&self) -> Result<Vec<SkillRecord>, StorageError> {
        let (skills, problems) = self.scan_skills().await?;
        self.warned.warn(&problems);
        Ok(skills)
    }

    async fn list_skill_entries(&self) -> Result<Vec<SkillEntry>, StorageError> {
        let (skills, problems) = self.scan_skill_entries().await?;
        self.warned.warn(&problems);
        Ok(skills)
    }

    async fn get_skill(&self, name: &str) -> Result<Option<SkillRecord>, StorageError> {
        validate_skill_name(name)?;
        let hash: HashMap<String, Vec<u8>> = self
            .cmd(
                &format!("read skill `{name}`"),
                redis::cmd("HGETALL").arg(self.skill_key(name)),
            )
            .await?;
        self.skill_from_hash(name, hash)
    }

    async fn put_skill(&self, skill: &SkillRecord) -> Result<(), StorageError> {
        validate_skill_name(&skill.name)?;
        self.check_size("skill", &skill.name, skill.source.len(), MAX_SKILL_BYTES)?;
        let key = self.skill_key(&skill.name);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore().cmd("HSET").arg(&key);
        pipe.arg("source")
            .arg(&skill.source)
            .arg("description")
            .arg(&skill.description)
            .arg("created_at")
            .arg(skill.created_at.to_string())
            .arg("updated_at")
            .arg(skill.updated_at.to_string());
        if let Some(provenance) = &skill.provenance {
            pipe.arg("provenance")
                .arg(serde_json::to_string(provenance).unwrap_or_default());
        }
        let listed = skill.provenance.as_ref().map(listed);
        pipe.arg("listed")
            .arg(serde_json::to_string(&listed).unwrap_or_default());
        pipe.ignore()
            .sadd(self.skills_index(), &skill.name)
            .ignore();
        self.pipe(&format!("save skill `{}`", skill.name), &pipe)
            .await
    }

    async fn delete_skill(&self, name: &str) -> Result<bool, StorageError> {
        validate_skill_name(name)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.skill_key(name))
            .srem(self.skills_index(), name)
            .ignore();
        let (deleted,): (u64,) = self.pipe(&format!("delete skill `{name}`"), &pipe).await?;
        Ok(deleted > 0)
    }

    async fn commit_skill(
        &self,
        skill: &SkillRecord,
        provenance: &Provenance,
        keep: usize,
    ) -> Result<SkillRecord, StorageError> {
        validate_skill_name(&skill.name)?;
        self.check_size("skill", &skill.name, skill.source.len(), MAX_SKILL_BYTES)?;
        let now = skill.updated_at.to_string();
        let entry = SkillVersion {
            source: skill.source.clone(),
            description: skill.description.clone(),
            created_at: skill.updated_at,
            provenance: provenance.clone(),
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(COMMIT_SKILL_SCRIPT)
            .arg(3)
            .arg(self.skill_key(&skill.name))
            .arg(self.skills_index())
            .arg(self.history_key(&skill.name))
            .arg(&skill.name)
            .arg(&skill.source)
            .arg(&skill.description)
            .arg(&now)
            .arg(json_tail(provenance)?)
            .arg(json_tail(&entry)?)
            .arg(keep.max(1))
            .arg(json_tail(&listed(provenance))?);
        // Not retried: the script is not idempotent (a retry after a lost
        // reply would add a second version).
        let what = format!("save skill `{}`", skill.name);
        let (version, created): (u64, String) = cmd
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(&what, &e))?;
        let created_at = created.parse().map_err(|e| {
            self.corrupt(&self.skill_key(&skill.name), format!("`created_at`: {e}"))
        })?;
        Ok(SkillRecord {
            created_at,
            provenance: Some(Provenance {
                version,
                ..provenance.clone()
            }),
            ..skill.clone()
        })
    }

    async fn skill_history(&self, name: &str) -> Result<Vec<SkillVersion>, StorageError> {
        validate_skill_name(name)?;
        let key = self.history_key(name);
        let entries: Vec<Vec<u8>> = self
            .cmd(
                &format!("read the history of skill `{name}`"),
                redis::cmd("LRANGE").arg(&key).arg(0).arg(-1),
            )
            .await?;
        let mut versions = Vec::with_capacity(entries.len());
        for entry in entries {
            match serde_json::from_slice::<SkillVersion>(&entry) {
                Ok(version) => versions.push(version),
                // One bad entry must not hide the rest.
                Err(e) => tracing::warn!("skipped an entry of `{key}`: {e}"),
            }
        }
        Ok(versions)
    }

    fn keeps_history(&self) -> bool {
        true
    }

    async fn put_skill_history(
        &self,
        name: &str,
        versions: &[SkillVersion],
    ) -> Result<(), StorageError> {
        validate_skill_name(name)?;
        let key = self.history_key(name);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        for version in versions.iter().take(MAX_SKILL_HISTORY) {
            self.check_size("skill", name, version.source.len(), MAX_SKILL_BYTES)?;
            let entry = serde_json::to_string(version).map_err(|e| StorageError::Backend {
                backend: self.location(),
                message: format!("cannot encode a version of skill `{name}`: {e}"),
                source: None,
            })?;
            pipe.rpush(&key, entry).ignore();
        }
        self.pipe(&format!("save the history of skill `{name}`"), &pipe)
            .await
    }

    async fn purge_skill(&self, name: &str) -> Result<bool, StorageError> {
        validate_skill_name(name)?;
        let removed: u64 = self
            .cmd(
                &format!("purge skill `{name}`"),
                redis::cmd("DEL")
                    .arg(self.history_key(name))
                    .arg(self.cases_key(name)),
            )
            .await?;
        Ok(removed > 0)
    }

    async fn skill_cases(&self, name: &str) -> Result<Option<String>, StorageError> {
        validate_skill_name(name)?;
        let bytes: Option<Vec<u8>> = self
            .cmd(
                &format!("read the tests of skill `{name}`"),
                redis::cmd("GET").arg(self.cases_key(name)),
            )
            .await?;
        let Some(bytes) = bytes else { return Ok(None) };
        self.check_size("tests of skill", name, bytes.len(), MAX_CASES_BYTES)?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| self.corrupt(&self.cases_key(name), "it is not UTF-8"))
    }

    async fn put_skill_cases(&self, name: &str, json: &str) -> Result<(), StorageError> {
        validate_skill_name(name)?;
        self.check_size("tests of skill", name, json.len(), MAX_CASES_BYTES)?;
        self.cmd(
            &format!("save the tests of skill `{name}`"),
            redis::cmd("SET").arg(self.cases_key(name)).arg(json),
        )
        .await
    }

    async fn put_artifact(&self, meta: &ArtifactMeta, data: &[u8]) -> Result<(), StorageError> {
        validate_artifact_name(&meta.name)?;
        self.check_size("artifact", &meta.name, data.len(), MAX_ARTIFACT_BYTES)?;
        let key = self.artifact_key(&meta.name);
        let meta_json = serde_json::to_vec(meta).map_err(|e| StorageError::Backend {
            backend: "redis".into(),
            message: format!(
                "cannot encode the metadata of artifact `{}`: {e}",
                meta.name
            ),
            source: None,
        })?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&key)
            .ignore()
            .cmd("HSET")
            .arg(&key)
            .arg("meta")
            .arg(meta_json)
            .arg("data")
            .arg(data)
            .ignore()
            .sadd(self.artifacts_index(), &meta.name)
            .ignore();
        self.pipe(&format!("save artifact `{}`", meta.name), &pipe)
            .await
    }

    async fn get_artifact(
        &self,
        name: &str,
    ) -> Result<Option<(ArtifactMeta, Vec<u8>)>, StorageError> {
        validate_artifact_name(name)?;
        let (meta, data): (Option<Vec<u8>>, Option<Vec<u8>>) = self
            .cmd(
                &format!("read artifact `{name}`"),
                redis::cmd("HMGET")
                    .arg(self.artifact_key(name))
                    .arg("meta")
                    .arg("data"),
            )
            .await?;
        match (meta, data) {
            (Some(meta), Some(data)) => Ok(Some((self.parse_meta(name, &meta)?, data))),
            _ => Ok(None),
        }
    }

    async fn artifact_meta(&self, name: &str) -> Result<Option<ArtifactMeta>, StorageError> {
        validate_artifact_name(name)?;
        let meta: Option<Vec<u8>> = self
            .cmd(
                &format!("read artifact `{name}`"),
                redis::cmd("HGET").arg(self.artifact_key(name)).arg("meta"),
            )
            .await?;
        meta.map(|m| self.parse_meta(name, &m)).transpose()
    }

    async fn list_artifacts(&self) -> Result<Vec<ArtifactMeta>, StorageError> {
        let (metas, problems) = self.scan_artifacts().await?;
        self.warned.warn(&problems);
        Ok(metas)
    }

    async fn delete_artifact(&self, name: &str) -> Result<bool, StorageError> {
        validate_artifact_name(name)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.artifact_key(name))
            .srem(self.artifacts_index(), name)
            .ignore();
        let (deleted,): (u64,) = self
            .pipe(&format!("delete artifact `{name}`"), &pipe)
            .await?;
        Ok(deleted > 0)
    }

    async fn deps_get(&self) -> Result<Option<String>, StorageError> {
        let key = self.key(&["deps"]);
        let bytes: Option<Vec<u8>> = self
            .cmd("read the dependency list", redis::cmd("GET").arg(&key))
            .await?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        self.check_size(
            "dependency list",
            "deps",
            bytes.len(),
            super::MAX_DEPS_BYTES,
        )?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn deps_put(&self, text: &str) -> Result<(), StorageError> {
        self.cmd(
            "save the dependency list",
            redis::cmd("SET").arg(self.key(&["deps"])).arg(text),
        )
        .await
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_cache_key(key)?;
        self.cmd(
            &format!("read cache entry `{key}`"),
            redis::cmd("GET").arg(self.key(&["cache", key])),
        )
        .await
    }

    async fn cache_put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        validate_cache_key(key)?;
        self.cmd(
            &format!("save cache entry `{key}`"),
            redis::cmd("SET").arg(self.key(&["cache", key])).arg(value),
        )
        .await
    }

    async fn cache_get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let mut blobs = Vec::with_capacity(keys.len());
        // One MGET per chunk: a restart reads a thousand vectors in two round trips.
        for chunk in keys.chunks(CACHE_MGET_CHUNK) {
            let mut mget = redis::cmd("MGET");
            for key in chunk {
                validate_cache_key(key)?;
                mget.arg(self.key(&["cache", key]));
            }
            let values: Vec<Option<Vec<u8>>> = self
                .cmd(&format!("read {} cache entries", chunk.len()), &mget)
                .await?;
            blobs.extend(values);
        }
        Ok(blobs)
    }

    async fn cache_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        // Cache keys and prefixes are `[A-Za-z0-9._-]`: nothing a SCAN
        // pattern would read as a wildcard, except what we add.
        if !prefix.is_empty() {
            validate_cache_key(prefix)?;
        }
        let head = self.key(&["cache", ""]);
        let pattern = format!("{head}{prefix}*");
        let mut keys = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) = self
                .cmd(
                    "list cache entries",
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            keys.extend(
                batch
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(&head).map(str::to_owned)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    async fn problems(&self) -> Result<Vec<StorageProblem>, StorageError> {
        let mut problems = self.scan_tools().await?.1;
        problems.extend(self.scan_skills().await?.1);
        problems.extend(self.scan_artifacts().await?.1);
        problems.sort();
        Ok(problems)
    }

    async fn cache_delete(&self, key: &str) -> Result<bool, StorageError> {
        validate_cache_key(key)?;
        let deleted: u64 = self
            .cmd(
                &format!("delete cache entry `{key}`"),
                redis::cmd("DEL").arg(self.key(&["cache", key])),
            )
            .await?;
        Ok(deleted > 0)
    }
}

/// A prefix is `[A-Za-z0-9._-]+`: no `:`, so no prefix is a key-prefix of another
/// prefix's keys (`a` and `a:skill` would otherwise share keys).
fn validate_prefix(prefix: &str) -> Result<(), StorageError> {
    let ok = is_key_safe(prefix) && prefix.len() <= MAX_PREFIX;
    if ok {
        Ok(())
    } else {
        Err(StorageError::Backend {
            backend: "redis".into(),
            message: format!(
                "prefix `{prefix}` is not allowed: it must be 1 to {MAX_PREFIX} letters, digits, `.`, `_` or `-`\nhint: `--prefix my-agent`"
            ),
            source: None,
        })
    }
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn unreachable_error(shown: &str, url: &str, e: &RedisError) -> StorageError {
    let cause = redact_error(e, url);
    let hint = if cause.contains("certificate") {
        "the server's TLS certificate is not trusted: add its CA to the system's roots or point `SSL_CERT_FILE` at it"
    } else {
        "is `redis-server` running there? The next call reconnects"
    };
    StorageError::Backend {
        backend: "redis".into(),
        message: format!("Redis unreachable at `{shown}`: {cause}\nhint: {hint}"),
        source: None,
    }
}

/// The error's text with the URL's password masked, should the driver quote it.
fn redact_error(e: &RedisError, url: &str) -> String {
    let text = e.to_string();
    match password(url) {
        Some(password) if !password.is_empty() => text.replace(password, "***"),
        _ => text,
    }
}

fn password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, p)| p)
}

/// `redis://user:secret@host:6379/0` -> `redis://user:***@host:6379/0`; a
/// password alone (`redis://:secret@host`) is masked too.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let userinfo = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(), // `redis://secret@host`: a bare userinfo may be a password
    };
    format!("{scheme}://{userinfo}@{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            ("redis://localhost:6379", "redis://localhost:6379"),
            ("redis://:s3cret@host:1/0", "redis://:***@host:1/0"),
            ("rediss://user:p@ss@host/2", "rediss://user:***@host/2"),
            ("redis://token@host", "redis://***@host"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
        assert_eq!(password("redis://u:p@ss@h/0"), Some("p@ss"));
    }

    #[test]
    fn prefixes_cannot_overlap() {
        for ok in ["my-agent", "team.a_1"] {
            assert!(validate_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a:skill", "a b", "*", "x{y}"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }
}
