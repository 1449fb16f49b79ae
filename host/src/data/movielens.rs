//! `recengine import movielens <dir>`: MovieLens 100K, in either layout.
//!
//! - GroupLens: `u.data` (user, item, rating, time; tab-separated),
//!   `u.item` (`|`-separated, 19 genre flags, Latin-1), `u.user`.
//! - Atomic files (as shipped in the RecBole wheel): `ml-100k.inter`,
//!   `ml-100k.item`, `ml-100k.user`, tab-separated with a `name:type` header.
//!
//! Users and items keep the data set's ids, so "user 196" is user 196 in the
//! API. Every rating becomes a `rating` interaction with a stable source key,
//! which makes the import idempotent: a second run inserts nothing.
//!
//! The same layouts carry far more than 100,000 ratings (exports of a shop,
//! generated data sets), so an import streams the ratings file twice, line
//! by line: once for each user's and item's first appearance, once to write
//! the ratings in chunks through an [`InteractionWriter`]. Memory grows
//! with users and items, never with ratings.

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, bail};
use serde_json::json;

use super::writer::InteractionWriter;
use crate::store::{
    Db,
    bulk::{self, InteractionRecord, ItemRecord, UserRecord},
    users::UNUSABLE_PASSWORD_HASH,
};

const GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

#[derive(Debug, Default, Clone)]
pub struct Dataset {
    pub users: Vec<MlUser>,
    pub items: Vec<MlItem>,
    pub ratings: Vec<Rating>,
}

#[derive(Debug, Clone)]
pub struct MlUser {
    pub id: i64,
    pub age: Option<i64>,
    pub gender: String,
    pub occupation: String,
    pub zip_code: String,
}

#[derive(Debug, Clone)]
pub struct MlItem {
    pub id: i64,
    pub title: String,
    pub release_year: Option<i64>,
    pub genres: Vec<String>,
}

impl MlItem {
    /// "Toy Story (1995): Animation, Children's, Comedy".
    pub fn description(&self) -> String {
        match self.release_year {
            Some(y) => format!("{} ({y}): {}", self.title, self.genres.join(", ")),
            None => format!("{}: {}", self.title, self.genres.join(", ")),
        }
    }

    /// The first genre.
    pub fn category(&self) -> String {
        self.genres
            .first()
            .cloned()
            .unwrap_or_else(|| "unknown".into())
    }

    /// The text the content model sees: what the importer stores.
    pub fn text(&self) -> recengine_models::content::ItemText {
        recengine_models::content::ItemText {
            title: self.title.clone(),
            description: self.description(),
            category: self.category(),
            tags: self.genres.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Rating {
    pub user_id: i64,
    pub item_id: i64,
    pub rating: f64,
    pub timestamp: i64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub users: u64,
    pub items: u64,
    pub interactions: u64,
}

/// Reads whichever layout `dir` holds, ratings and all, into memory (the
/// evaluation's way; an import streams instead: [`import_dir`]).
pub fn read_dataset(dir: &Path) -> anyhow::Result<Dataset> {
    let layout = Layout::find(dir)?;
    let ratings = layout.ratings()?.collect::<anyhow::Result<Vec<_>>>()?;
    let (users, items) = layout.users_and_items()?;
    Ok(Dataset {
        users,
        items,
        ratings,
    })
}

/// Where a folder keeps its data, by layout.
enum Layout {
    /// `u.data`, `u.item`, `u.user` in this folder.
    GroupLens(PathBuf),
    /// The `.inter` file; `.item` and `.user` beside it.
    Atomic(PathBuf),
}

impl Layout {
    fn find(dir: &Path) -> anyhow::Result<Self> {
        if dir.join("u.data").is_file() {
            Ok(Self::GroupLens(dir.to_path_buf()))
        } else if let Some(inter) = find_with_extension(dir, "inter")? {
            Ok(Self::Atomic(inter))
        } else {
            bail!(
                "{} holds neither u.data (GroupLens layout) nor a .inter file (atomic layout)",
                dir.display()
            )
        }
    }

    /// The ratings, streamed from the file.
    fn ratings(&self) -> anyhow::Result<RatingsFile> {
        match self {
            Self::GroupLens(dir) => RatingsFile::open(&dir.join("u.data"), 0),
            Self::Atomic(inter) => RatingsFile::open(inter, 1),
        }
    }

    /// The users and items files (small: one line a user or an item).
    fn users_and_items(&self) -> anyhow::Result<(Vec<MlUser>, Vec<MlItem>)> {
        match self {
            Self::GroupLens(dir) => Ok((
                read_users(&dir.join("u.user"), '|', 0)?,
                read_grouplens_items(&dir.join("u.item"))?,
            )),
            Self::Atomic(inter) => {
                let stem = inter.with_extension("");
                Ok((
                    read_users(&stem.with_extension("user"), '\t', 1)?,
                    read_atomic_items(&stem.with_extension("item"))?,
                ))
            }
        }
    }
}

fn find_with_extension(dir: &Path, ext: &str) -> anyhow::Result<Option<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == ext) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// UTF-8 when it is, Latin-1 otherwise (GroupLens' `u.item` is Latin-1).
fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    })
}

fn int(field: &str, what: &str, line: usize) -> anyhow::Result<i64> {
    // Atomic files write some integers as floats ("881250949.0").
    field
        .trim()
        .parse::<i64>()
        .or_else(|_| field.trim().parse::<f64>().map(|f| f as i64))
        .with_context(|| format!("line {line}: {what} {field:?} is not a number"))
}

/// A ratings file read line by line: user, item, rating, time,
/// tab-separated, after `header_lines`; blank lines are skipped.
struct RatingsFile {
    path: PathBuf,
    reader: BufReader<File>,
    header_lines: usize,
    line: usize,
    buf: String,
}

impl RatingsFile {
    fn open(path: &Path, header_lines: usize) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            header_lines,
            line: 0,
            buf: String::new(),
        })
    }

    fn parse(&self) -> anyhow::Result<Rating> {
        let n = self.line;
        let mut f = self.buf.trim_end_matches(['\n', '\r']).split('\t');
        let mut field = || f.next().unwrap_or("");
        let (user, item, rating, time) = (field(), field(), field(), field());
        if time.is_empty() {
            bail!("line {n}: expected 4 tab-separated fields");
        }
        Ok(Rating {
            user_id: int(user, "user id", n)?,
            item_id: int(item, "item id", n)?,
            rating: rating
                .trim()
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite())
                .with_context(|| format!("line {n}: rating {rating:?} is not a number"))?,
            timestamp: int(time, "timestamp", n)?,
        })
    }
}

impl Iterator for RatingsFile {
    type Item = anyhow::Result<Rating>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => self.line += 1,
                Err(e) => {
                    return Some(Err(anyhow::Error::new(e).context(format!(
                        "{} line {}",
                        self.path.display(),
                        self.line + 1
                    ))));
                }
            }
            if self.line > self.header_lines && !self.buf.trim().is_empty() {
                return Some(self.parse());
            }
        }
    }
}

fn read_grouplens_items(file: &Path) -> anyhow::Result<Vec<MlItem>> {
    let mut items = Vec::new();
    for (n, line) in read_text(file)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 24 {
            bail!("u.item line {}: expected 24 '|'-separated fields", n + 1);
        }
        // "Toy Story (1995)" -> title "Toy Story", year from the date field.
        let raw_title = f[1].trim();
        let title = match raw_title.rfind(" (") {
            Some(pos) if raw_title.ends_with(')') => raw_title[..pos].to_string(),
            _ => raw_title.to_string(),
        };
        let release_year = f[2].rsplit('-').next().and_then(|y| y.trim().parse().ok());
        let genres = f[5..24]
            .iter()
            .zip(GENRES)
            .filter(|(flag, _)| flag.trim() == "1")
            .map(|(_, g)| g.to_string())
            .collect();
        items.push(MlItem {
            id: int(f[0], "item id", n + 1)?,
            title,
            release_year,
            genres,
        });
    }
    Ok(items)
}

/// The users file, if there is one: id, age, gender, occupation, zip code,
/// split by `separator`, after `header_lines`. Both layouts share it.
fn read_users(file: &Path, separator: char, header_lines: usize) -> anyhow::Result<Vec<MlUser>> {
    let mut users = Vec::new();
    if !file.is_file() {
        return Ok(users);
    }
    for (n, line) in read_text(file)?.lines().enumerate().skip(header_lines) {
        let f: Vec<&str> = line.split(separator).collect();
        if f.len() < 5 {
            continue;
        }
        users.push(MlUser {
            id: int(f[0], "user id", n + 1)?,
            age: f[1].trim().parse().ok(),
            gender: f[2].trim().into(),
            occupation: f[3].trim().into(),
            zip_code: f[4].trim().into(),
        });
    }
    Ok(users)
}

fn read_atomic_items(file: &Path) -> anyhow::Result<Vec<MlItem>> {
    let mut items = Vec::new();
    if !file.is_file() {
        return Ok(items);
    }
    for (n, line) in read_text(file)?.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        items.push(MlItem {
            id: int(f[0], "item id", n + 1)?,
            title: f[1].trim().to_string(),
            release_year: f[2].trim().parse().ok(),
            genres: f[3].split_whitespace().map(str::to_string).collect(),
        });
    }
    Ok(items)
}

/// Writes a data set held in memory; safe to run again (nothing is
/// duplicated).
pub async fn import(db: &Db, data: &Dataset) -> anyhow::Result<ImportReport> {
    write(db, data.users.clone(), &data.items, || {
        Ok(data.ratings.iter().copied().map(Ok))
    })
    .await
}

/// Reads `dir` (either layout) and imports it, streaming the ratings;
/// safe to run again. Logs what was added and how long it took.
pub async fn import_dir(db: &Db, dir: &Path) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let layout = Layout::find(dir)?;
    let (users, items) = layout.users_and_items()?;
    let (read_users, read_items) = (users.len(), items.len());
    let report = write(db, users, &items, || layout.ratings()).await?;
    tracing::info!(
        users = report.users,
        items = report.items,
        interactions = report.interactions,
        read_users,
        read_items,
        seconds = started.elapsed().as_secs_f64(),
        "MovieLens import finished"
    );
    Ok(report)
}

/// The import proper. `ratings` opens the ratings afresh: they are read
/// twice, first for when each user and item first appears and how many
/// there are, then to write them.
async fn write<R>(
    db: &Db,
    mut users: Vec<MlUser>,
    items: &[MlItem],
    ratings: impl Fn() -> anyhow::Result<R>,
) -> anyhow::Result<ImportReport>
where
    R: Iterator<Item = anyhow::Result<Rating>>,
{
    let mut first_seen_user: HashMap<i64, i64> = HashMap::new();
    let mut first_seen_item: HashMap<i64, i64> = HashMap::new();
    let mut total = 0u64;
    for r in ratings()? {
        let r = r?;
        let ms = r.timestamp * 1000;
        first_seen_user
            .entry(r.user_id)
            .and_modify(|t| *t = (*t).min(ms))
            .or_insert(ms);
        first_seen_item
            .entry(r.item_id)
            .and_modify(|t| *t = (*t).min(ms))
            .or_insert(ms);
        total += 1;
    }
    let now = crate::store::now_millis();

    // Users named only in the ratings file still need a row.
    let known: std::collections::HashSet<i64> = users.iter().map(|u| u.id).collect();
    let mut missing: Vec<i64> = first_seen_user
        .keys()
        .filter(|id| !known.contains(id))
        .copied()
        .collect();
    missing.sort_unstable();
    users.extend(missing.into_iter().map(|id| MlUser {
        id,
        age: None,
        gender: String::new(),
        occupation: String::new(),
        zip_code: String::new(),
    }));

    let user_rows: Vec<UserRecord> = users
        .iter()
        .map(|u| UserRecord {
            id: Some(u.id),
            username: format!("ml_user_{}", u.id),
            email: format!("ml_user_{}@movielens.invalid", u.id),
            password_hash: UNUSABLE_PASSWORD_HASH.into(),
            role: "user",
            // MovieLens 100K users are all in the United States.
            preferences: json!({
                "age": u.age,
                "gender": u.gender,
                "occupation": u.occupation,
                "zip_code": u.zip_code,
                "country": "US",
            }),
            created_at: first_seen_user.get(&u.id).copied().unwrap_or(now),
        })
        .collect();
    let item_rows: Vec<ItemRecord> = items
        .iter()
        .map(|i| ItemRecord {
            id: Some(i.id),
            title: i.title.clone(),
            description: i.description(),
            category: i.category(),
            tags: i.genres.clone(),
            features: json!({
                "release_year": i.release_year,
                "genres": i.genres,
                "in_stock": true,
                "source": "movielens",
            }),
            popularity_score: 0.0,
            created_at: first_seen_item.get(&i.id).copied().unwrap_or(now),
        })
        .collect();
    drop((first_seen_user, first_seen_item));

    ensure_ids_are_free(db, &user_rows, &item_rows).await?;
    let users = bulk::insert_users(db, &user_rows).await?;
    let items = bulk::insert_items(db, &item_rows).await?;
    drop((user_rows, item_rows));

    let mut writer = InteractionWriter::begin(db, "MovieLens import", total).await?;
    for r in ratings()? {
        let r = r?;
        writer
            .push(InteractionRecord {
                user_id: r.user_id,
                item_id: r.item_id,
                interaction_type: "rating",
                rating: Some(r.rating),
                weight: 1.0,
                created_at: r.timestamp * 1000,
                source_key: Some(format!("ml-100k:{}:{}", r.user_id, r.item_id)),
            })
            .await?;
    }
    let interactions = writer.finish(db).await?;
    Ok(ImportReport {
        users,
        items,
        interactions,
    })
}

/// The data set keeps its ids; if rows that did not come from it already
/// hold some of them, importing would hang MovieLens ratings on the wrong
/// accounts and items. Refuse, and say which.
async fn ensure_ids_are_free(
    db: &Db,
    users: &[UserRecord],
    items: &[ItemRecord],
) -> anyhow::Result<()> {
    let max_user = users.iter().filter_map(|u| u.id).max().unwrap_or(0);
    let max_item = items.iter().filter_map(|i| i.id).max().unwrap_or(0);
    let clash = bulk::first_other_user(db, max_user, "ml_user_").await?;
    if let Some((id, name)) = clash {
        bail!(
            "user id {id} is already taken by {name:?}; import MovieLens into a database \
             whose ids 1..={max_user} are free (import first, then create accounts)"
        );
    }
    let clash = bulk::first_other_item(db, max_item, r#""source":"movielens""#).await?;
    if let Some((id, title)) = clash {
        bail!(
            "item id {id} is already taken by {title:?}; import MovieLens into an empty catalogue"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouplens_layout_parses_titles_years_and_genres() {
        let dir = std::env::temp_dir().join(format!("ml-gl-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("u.data"),
            "1\t1\t5\t874965758\n2\t1\t3\t876893171\n",
        )
        .unwrap();
        let mut item =
            b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                .to_vec();
        // Latin-1 "é" in a title.
        item.extend_from_slice(
            b"2|Caf\xe9 (1994)|01-Jan-1994||u|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
        );
        std::fs::write(dir.join("u.item"), item).unwrap();
        std::fs::write(dir.join("u.user"), "1|24|M|technician|85711\n").unwrap();
        let data = read_dataset(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(data.ratings.len(), 2);
        assert_eq!(data.items[0].title, "Toy Story");
        assert_eq!(data.items[0].release_year, Some(1995));
        assert_eq!(
            data.items[0].genres,
            vec!["Animation", "Children's", "Comedy"]
        );
        assert_eq!(data.items[1].title, "Café");
        assert_eq!(data.items[1].genres, vec!["Action"]);
        assert_eq!(data.users[0].age, Some(24));
    }
}
