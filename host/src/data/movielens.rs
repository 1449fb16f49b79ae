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

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, bail};
use serde_json::json;

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

/// Reads whichever layout `dir` holds.
pub fn read_dataset(dir: &Path) -> anyhow::Result<Dataset> {
    if dir.join("u.data").is_file() {
        read_grouplens(dir)
    } else if let Some(inter) = find_with_extension(dir, "inter")? {
        read_atomic(&inter)
    } else {
        bail!(
            "{} holds neither u.data (GroupLens layout) nor a .inter file (atomic layout)",
            dir.display()
        )
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

fn read_ratings(text: &str, skip_header: bool) -> anyhow::Result<Vec<Rating>> {
    let mut ratings = Vec::with_capacity(100_000);
    for (n, line) in text.lines().enumerate().skip(usize::from(skip_header)) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            bail!("line {}: expected 4 tab-separated fields", n + 1);
        }
        ratings.push(Rating {
            user_id: int(f[0], "user id", n + 1)?,
            item_id: int(f[1], "item id", n + 1)?,
            rating: f[2]
                .trim()
                .parse()
                .with_context(|| format!("line {}: bad rating", n + 1))?,
            timestamp: int(f[3], "timestamp", n + 1)?,
        });
    }
    Ok(ratings)
}

fn read_grouplens(dir: &Path) -> anyhow::Result<Dataset> {
    let ratings = read_ratings(&read_text(&dir.join("u.data"))?, false)?;
    let mut items = Vec::new();
    for (n, line) in read_text(&dir.join("u.item"))?.lines().enumerate() {
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
    let users = read_users(&dir.join("u.user"), '|', 0)?;
    Ok(Dataset {
        users,
        items,
        ratings,
    })
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

fn read_atomic(inter: &Path) -> anyhow::Result<Dataset> {
    let ratings = read_ratings(&read_text(inter)?, true)?;
    let stem = inter.with_extension("");
    let mut items = Vec::new();
    let item_file = stem.with_extension("item");
    if item_file.is_file() {
        for (n, line) in read_text(&item_file)?.lines().enumerate().skip(1) {
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
    }
    let users = read_users(&stem.with_extension("user"), '\t', 1)?;
    Ok(Dataset {
        users,
        items,
        ratings,
    })
}

/// Writes the data set; safe to run again (nothing is duplicated).
pub async fn import(db: &Db, data: &Dataset) -> anyhow::Result<ImportReport> {
    let mut first_seen_user: HashMap<i64, i64> = HashMap::new();
    let mut first_seen_item: HashMap<i64, i64> = HashMap::new();
    for r in &data.ratings {
        let ms = r.timestamp * 1000;
        first_seen_user
            .entry(r.user_id)
            .and_modify(|t| *t = (*t).min(ms))
            .or_insert(ms);
        first_seen_item
            .entry(r.item_id)
            .and_modify(|t| *t = (*t).min(ms))
            .or_insert(ms);
    }
    let now = crate::store::now_millis();

    // Users named only in the ratings file still need a row.
    let mut users: Vec<MlUser> = data.users.clone();
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
    let item_rows: Vec<ItemRecord> = data
        .items
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
    let interaction_rows: Vec<InteractionRecord> = data
        .ratings
        .iter()
        .map(|r| InteractionRecord {
            user_id: r.user_id,
            item_id: r.item_id,
            interaction_type: "rating",
            rating: Some(r.rating),
            weight: 1.0,
            created_at: r.timestamp * 1000,
            source_key: Some(format!("ml-100k:{}:{}", r.user_id, r.item_id)),
        })
        .collect();

    ensure_ids_are_free(db, &user_rows, &item_rows).await?;
    let report = ImportReport {
        users: bulk::insert_users(db, &user_rows).await?,
        items: bulk::insert_items(db, &item_rows).await?,
        interactions: bulk::insert_interactions(db, &interaction_rows).await?,
    };
    bulk::recompute_popularity(db).await?;
    bulk::refresh_statistics(db).await?;
    Ok(report)
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

/// Reads and imports, logging what was added and how long it took.
pub async fn import_dir(db: &Db, dir: &Path) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let data = read_dataset(dir)?;
    let report = import(db, &data).await?;
    tracing::info!(
        users = report.users,
        items = report.items,
        interactions = report.interactions,
        read_users = data.users.len(),
        read_items = data.items.len(),
        read_ratings = data.ratings.len(),
        seconds = started.elapsed().as_secs_f64(),
        "MovieLens import finished"
    );
    Ok(report)
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
