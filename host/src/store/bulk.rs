//! Batched inserts for imports and seeding: one multi-row INSERT per batch
//! inside one transaction, `ON CONFLICT DO NOTHING` so a re-run adds nothing.
//! (100,000 single-row inserts would take minutes; batches take seconds.)
//! Also the few reads an import makes of what is already there.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{Any, Transaction, any::AnyArguments, query::Query};

use crate::store::{Db, Dialect};

pub struct UserRecord {
    /// `None` lets the database assign the id.
    pub id: Option<i64>,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub role: &'static str,
    pub preferences: Value,
    pub created_at: i64,
}

pub struct ItemRecord {
    pub id: Option<i64>,
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub features: Value,
    pub popularity_score: f64,
    pub created_at: i64,
}

pub struct InteractionRecord {
    pub user_id: i64,
    pub item_id: i64,
    pub interaction_type: &'static str,
    pub rating: Option<f64>,
    pub weight: f64,
    pub created_at: i64,
    /// A stable key for this event in its source; re-importing skips it.
    pub source_key: Option<String>,
}

/// Rows per statement: far below SQLite's 32,766 and PostgreSQL's 65,535
/// bound parameters, large enough that statement overhead vanishes.
const BATCH_ROWS: usize = 500;

/// `($1, $2, ...), ($n+1, ...)` (or `?` on SQLite: [`Dialect::param`]) for
/// `rows` rows of `cols` columns; columns listed in `nullable_floats` are
/// wrapped as `NULLIF($n, -1)` (see [`crate::store::NULL_F64`]).
fn placeholders(dialect: Dialect, rows: usize, cols: usize, nullable_floats: &[usize]) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            let n = r * cols + c + 1;
            let param = dialect.param(n);
            if nullable_floats.contains(&c) {
                sql.push_str(&format!("NULLIF({param}, -1)"));
            } else {
                sql.push_str(&param);
            }
        }
        sql.push(')');
    }
    sql
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Runs `INSERT INTO {head} VALUES ... ON CONFLICT DO NOTHING` over `rows` in
/// batches; returns how many rows were actually inserted.
async fn insert_batched<'r, T>(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    head: &str,
    cols: usize,
    nullable_floats: &[usize],
    rows: &'r [T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> sqlx::Result<u64> {
    let mut inserted = 0;
    for chunk in rows.chunks(BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO {head} VALUES {} ON CONFLICT DO NOTHING",
            placeholders(dialect, chunk.len(), cols, nullable_floats)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = bind(query, row);
        }
        inserted += query.execute(&mut **tx).await?.rows_affected();
    }
    Ok(inserted)
}

fn bind_user<'q>(q: AnyQuery<'q>, r: &UserRecord) -> AnyQuery<'q> {
    q.bind(r.username.clone())
        .bind(r.email.clone())
        .bind(r.password_hash.clone())
        .bind(r.role)
        .bind(r.preferences.to_string())
        .bind(r.created_at)
        .bind(r.created_at)
}

fn bind_item<'q>(q: AnyQuery<'q>, r: &ItemRecord) -> AnyQuery<'q> {
    q.bind(r.title.clone())
        .bind(r.description.clone())
        .bind(r.category.clone())
        .bind(serde_json::to_string(&r.tags).unwrap_or_else(|_| "[]".into()))
        .bind(r.features.to_string())
        .bind(r.popularity_score)
        .bind(r.created_at)
        .bind(r.created_at)
}

pub async fn insert_users(db: &Db, rows: &[UserRecord]) -> sqlx::Result<u64> {
    let mut tx = db.pool.begin().await?;
    let (with_id, without_id): (Vec<&UserRecord>, Vec<&UserRecord>) =
        rows.iter().partition(|r| r.id.is_some());
    let mut n = insert_batched(
        db.dialect,
        &mut tx,
        "users (id, username, email, password_hash, role, preferences, created_at, updated_at)",
        8,
        &[],
        &with_id,
        |q, r| bind_user(q.bind(r.id), r),
    )
    .await?;
    n += insert_batched(
        db.dialect,
        &mut tx,
        "users (username, email, password_hash, role, preferences, created_at, updated_at)",
        7,
        &[],
        &without_id,
        |q, r| bind_user(q, r),
    )
    .await?;
    tx.commit().await?;
    db.sync_id_sequence("users").await?;
    Ok(n)
}

pub async fn insert_items(db: &Db, rows: &[ItemRecord]) -> sqlx::Result<u64> {
    let mut tx = db.pool.begin().await?;
    let (with_id, without_id): (Vec<&ItemRecord>, Vec<&ItemRecord>) =
        rows.iter().partition(|r| r.id.is_some());
    let cols =
        "title, description, category, tags, features, popularity_score, created_at, updated_at";
    let mut n = insert_batched(
        db.dialect,
        &mut tx,
        &format!("items (id, {cols})"),
        9,
        &[],
        &with_id,
        |q, r| bind_item(q.bind(r.id), r),
    )
    .await?;
    n += insert_batched(
        db.dialect,
        &mut tx,
        &format!("items ({cols})"),
        8,
        &[],
        &without_id,
        |q, r| bind_item(q, r),
    )
    .await?;
    tx.commit().await?;
    db.sync_id_sequence("items").await?;
    Ok(n)
}

pub async fn insert_interactions(db: &Db, rows: &[InteractionRecord]) -> sqlx::Result<u64> {
    let mut tx = db.pool.begin().await?;
    let n = insert_interaction_rows(db.dialect, &mut tx, rows, true).await?;
    tx.commit().await?;
    Ok(n)
}

async fn insert_interaction_rows(
    dialect: Dialect,
    tx: &mut Transaction<'static, Any>,
    rows: &[InteractionRecord],
    on_conflict: bool,
) -> sqlx::Result<u64> {
    if dialect == Dialect::Postgres {
        return insert_interaction_arrays(tx, rows, on_conflict).await;
    }
    insert_batched(
        dialect,
        tx,
        "interactions (user_id, item_id, interaction_type, rating, weight, created_at, source_key)",
        7,
        &[3],
        rows,
        |q, r| {
            q.bind(r.user_id)
                .bind(r.item_id)
                .bind(r.interaction_type)
                .bind(crate::store::nullable_f64(r.rating))
                .bind(r.weight)
                .bind(r.created_at)
                .bind(r.source_key.clone())
        },
    )
    .await
}

/// PostgreSQL: all the rows in one statement, a column an array parameter,
/// unnested into rows. Statements of 3,500 bound parameters cost the client
/// and the server more per row than the insert itself.
async fn insert_interaction_arrays(
    tx: &mut Transaction<'static, Any>,
    rows: &[InteractionRecord],
    on_conflict: bool,
) -> sqlx::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut users = ArrayLiteral::with_capacity(rows.len() * 8);
    let mut items = ArrayLiteral::with_capacity(rows.len() * 7);
    let mut kinds = ArrayLiteral::with_capacity(rows.len() * 8);
    let mut ratings = ArrayLiteral::with_capacity(rows.len() * 5);
    let mut weights = ArrayLiteral::with_capacity(rows.len() * 2);
    let mut times = ArrayLiteral::with_capacity(rows.len() * 14);
    let mut keys = ArrayLiteral::with_capacity(rows.len() * 5);
    for r in rows {
        users.number(r.user_id);
        items.number(r.item_id);
        kinds.text(Some(r.interaction_type));
        ratings.float(r.rating);
        weights.float(Some(r.weight));
        times.number(r.created_at);
        keys.text(r.source_key.as_deref());
    }
    let sql = format!(
        "INSERT INTO interactions \
         (user_id, item_id, interaction_type, rating, weight, created_at, source_key) \
         SELECT * FROM unnest(CAST($1 AS BIGINT[]), CAST($2 AS BIGINT[]), CAST($3 AS TEXT[]), \
                              CAST($4 AS DOUBLE PRECISION[]), CAST($5 AS DOUBLE PRECISION[]), \
                              CAST($6 AS BIGINT[]), CAST($7 AS TEXT[])){}",
        if on_conflict {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        }
    );
    let done = sqlx::query(&sql)
        .bind(users.finish())
        .bind(items.finish())
        .bind(kinds.finish())
        .bind(ratings.finish())
        .bind(weights.finish())
        .bind(times.finish())
        .bind(keys.finish())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// A PostgreSQL array literal (`{1,"a b",NULL}`), bound as text and cast:
/// the `Any` driver binds no arrays.
struct ArrayLiteral(String);

impl ArrayLiteral {
    fn with_capacity(bytes: usize) -> Self {
        let mut s = String::with_capacity(bytes + 2);
        s.push('{');
        Self(s)
    }

    fn next(&mut self) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
    }

    fn number(&mut self, n: i64) {
        use std::fmt::Write as _;
        self.next();
        let _ = write!(self.0, "{n}");
    }

    /// Non-finite values are stored as NULL (PostgreSQL would take `NaN`,
    /// but nothing downstream can use it).
    fn float(&mut self, x: Option<f64>) {
        use std::fmt::Write as _;
        self.next();
        match x {
            Some(x) if x.is_finite() => {
                let _ = write!(self.0, "{x}");
            }
            _ => self.0.push_str("NULL"),
        }
    }

    /// Quoted, with `"` and `\` escaped, so any text survives.
    fn text(&mut self, text: Option<&str>) {
        self.next();
        match text {
            None => self.0.push_str("NULL"),
            Some(text) => {
                self.0.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        self.0.push('\\');
                    }
                    self.0.push(c);
                }
                self.0.push('"');
            }
        }
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A large load of interactions, chunk by chunk, in one transaction.
///
/// Into an empty table it goes the way databases load fastest: what costs
/// per row is dropped first and rebuilt once at the end from its own stored
/// definition: the secondary indexes, the trigger that counts each insert
/// into `item_stats` (the load counts instead, as the rows go in), and on
/// PostgreSQL the foreign keys and the source key's uniqueness (checked per
/// row, they made a million-row load 3.5 times slower). Into a table that
/// has rows it is a plain batched insert. A load that fails or is dropped
/// before [`InteractionLoad::finish`] rolls back whole, indexes included.
///
/// At 10M rows on SQLite this took the import from 121 s to 60 s (the
/// GROUP BY that counted `item_stats` at the end alone took 51 s).
pub struct InteractionLoad {
    tx: Transaction<'static, Any>,
    dialect: Dialect,
    /// The statements that recreate what was dropped, in order.
    rebuild: Vec<String>,
    /// Dropped UNIQUE constraints (PostgreSQL), re-added first at the end:
    /// rows that repeated a source key meanwhile are removed then (see
    /// `restore_unique`).
    unique: Vec<String>,
    stats: StatsUpkeep,
    inserted: u64,
}

/// How `item_stats` keeps up with a load.
enum StatsUpkeep {
    /// The table had rows: its trigger counts each insert.
    Trigger,
    /// The trigger is dropped; rows are counted as they go in, per item and
    /// interaction type, and written at the end (memory: one entry per
    /// item and type, never per row).
    Counting(HashMap<(i64, &'static str), ItemCount>),
    /// A repeated source key made the insert skip rows (SQLite), or rows
    /// were removed after the fact (PostgreSQL, when the UNIQUE constraint
    /// came back): the end counts the loaded table instead.
    Recount,
}

#[derive(Default)]
struct ItemCount {
    interactions: i64,
    rated: i64,
    rating_sum: f64,
}

fn count_row(
    counts: &mut HashMap<(i64, &'static str), ItemCount>,
    item_id: i64,
    kind: &'static str,
    rating: Option<f64>,
) {
    let count = counts.entry((item_id, kind)).or_default();
    count.interactions += 1;
    if let Some(rating) = rating {
        count.rated += 1;
        count.rating_sum += rating;
    }
}

/// What the counting trigger does, over the whole table at once.
const RECOUNT_ITEM_STATS: &str = "INSERT INTO item_stats (item_id, interaction_type, interactions, \
     rated, rating_sum) SELECT item_id, interaction_type, COUNT(*), COUNT(rating), \
     COALESCE(SUM(rating), 0) FROM interactions GROUP BY item_id, interaction_type";

/// The trigger that counts inserted rows into `item_stats` (migration
/// `item_stats`).
const COUNTING_TRIGGER: &str = "item_stats_insert";

impl InteractionLoad {
    pub async fn begin(db: &Db) -> sqlx::Result<Self> {
        let mut tx = db.pool.begin().await?;
        let (any,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM (SELECT 1 FROM interactions LIMIT 1) one")
                .fetch_one(&mut *tx)
                .await?;
        let mut rebuild = Vec::new();
        let mut unique = Vec::new();
        let mut stats = StatsUpkeep::Trigger;
        if any == 0 {
            stats = StatsUpkeep::Counting(HashMap::new());
            if db.dialect == Dialect::Postgres {
                // For the index builds at the end, this transaction only:
                // the default 64 MB sorts a 10M-row index on disk.
                sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
                    .execute(&mut *tx)
                    .await?;
            }
            // (what, name, the statement that creates it). Secondary
            // indexes only, not those behind the primary key or a
            // constraint. On SQLite, foreign keys are plain lookups, and
            // neither they nor UNIQUE can be switched off in a transaction.
            let dropped: Vec<(String, String, String)> = match db.dialect {
                Dialect::Sqlite => {
                    sqlx::query_as(
                        "SELECT upper(type), name, sql FROM sqlite_master \
                         WHERE tbl_name = 'interactions' \
                           AND ((type = 'index' AND sql IS NOT NULL) \
                                OR (type = 'trigger' AND name = $1)) \
                         ORDER BY type, name",
                    )
                    .bind(COUNTING_TRIGGER)
                    .fetch_all(&mut *tx)
                    .await?
                }
                Dialect::Postgres => {
                    sqlx::query_as(
                        "SELECT 'INDEX', CAST(indexname AS TEXT), indexdef FROM pg_indexes \
                         WHERE schemaname = current_schema() AND tablename = 'interactions' \
                           AND indexname NOT IN (SELECT conname FROM pg_constraint \
                                                 WHERE conrelid = 'interactions'::regclass) \
                         UNION ALL \
                         SELECT 'TRIGGER', CAST(tgname AS TEXT), pg_get_triggerdef(oid) \
                         FROM pg_trigger \
                         WHERE tgrelid = 'interactions'::regclass AND tgname = $1 \
                         UNION ALL \
                         SELECT CASE contype WHEN 'f' THEN 'FOREIGN KEY' ELSE 'UNIQUE' END, \
                                CAST(conname AS TEXT), \
                                'ALTER TABLE interactions ADD CONSTRAINT ' \
                                || quote_ident(conname) || ' ' || pg_get_constraintdef(oid) \
                         FROM pg_constraint \
                         WHERE conrelid = 'interactions'::regclass AND contype IN ('f', 'u') \
                         ORDER BY 1, 2",
                    )
                    .bind(COUNTING_TRIGGER)
                    .fetch_all(&mut *tx)
                    .await?
                }
            };
            for (what, name, create) in dropped {
                let drop = match (what.as_str(), db.dialect) {
                    ("FOREIGN KEY" | "UNIQUE", _) => {
                        format!("ALTER TABLE interactions DROP CONSTRAINT \"{name}\"")
                    }
                    ("TRIGGER", Dialect::Postgres) => {
                        format!("DROP TRIGGER \"{name}\" ON interactions")
                    }
                    _ => format!("DROP {what} \"{name}\""),
                };
                sqlx::query(&drop).execute(&mut *tx).await?;
                if what == "UNIQUE" {
                    unique.push(create);
                } else {
                    rebuild.push(create);
                }
            }
        }
        Ok(Self {
            tx,
            dialect: db.dialect,
            rebuild,
            unique,
            stats,
            inserted: 0,
        })
    }

    pub async fn insert(&mut self, rows: &[InteractionRecord]) -> sqlx::Result<u64> {
        // Without the UNIQUE constraint there is nothing to conflict with,
        // and asking costs PostgreSQL a speculative insert per row.
        let on_conflict = self.unique.is_empty();
        let n = insert_interaction_rows(self.dialect, &mut self.tx, rows, on_conflict).await?;
        self.inserted += n;
        let StatsUpkeep::Counting(counts) = &mut self.stats else {
            return Ok(n);
        };
        if n == rows.len() as u64 {
            for r in rows {
                // As stored: the NULL stand-in is no rating.
                let rating = r.rating.filter(|&x| x != crate::store::NULL_F64);
                count_row(counts, r.item_id, r.interaction_type, rating);
            }
        } else {
            // A repeated source key made the insert skip rows, and which is
            // not known: reading the rows back cost more (at 10M ratings with
            // 29% repeats, 18 s) than counting the table once at the end.
            self.stats = StatsUpkeep::Recount;
        }
        Ok(n)
    }

    /// Rebuilds what was dropped, writes what the counting trigger would
    /// have counted, and commits; returns the rows inserted.
    pub async fn finish(mut self) -> sqlx::Result<u64> {
        // Uniqueness first (it may remove rows), then the counts, then the
        // indexes: a recount scans the table faster without them (SQLite,
        // 7M rows: 14 s before, 30 s after).
        for sql in std::mem::take(&mut self.unique) {
            self.restore_unique(&sql).await?;
        }
        match std::mem::replace(&mut self.stats, StatsUpkeep::Trigger) {
            StatsUpkeep::Trigger => {}
            StatsUpkeep::Counting(counts) => {
                let mut rows: Vec<_> = counts.into_iter().collect();
                rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                insert_batched(
                    self.dialect,
                    &mut self.tx,
                    "item_stats (item_id, interaction_type, interactions, rated, rating_sum)",
                    5,
                    &[],
                    &rows,
                    |q, ((item_id, kind), count)| {
                        q.bind(*item_id)
                            .bind(*kind)
                            .bind(count.interactions)
                            .bind(count.rated)
                            .bind(count.rating_sum)
                    },
                )
                .await?;
            }
            StatsUpkeep::Recount => {
                sqlx::query(RECOUNT_ITEM_STATS)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        for sql in &self.rebuild {
            sqlx::query(sql).execute(&mut *self.tx).await?;
        }
        self.tx.commit().await?;
        Ok(self.inserted)
    }

    /// Re-adds a UNIQUE constraint (the source key's). If the load repeated
    /// a key (a file with a line twice), the first row is kept, as `ON
    /// CONFLICT DO NOTHING` would have, and `item_stats` is counted from the
    /// table. Checking per row instead, through the constraint, made a
    /// 10M-row keyed load on PostgreSQL twice as slow.
    async fn restore_unique(&mut self, sql: &str) -> sqlx::Result<()> {
        sqlx::query("SAVEPOINT restore_unique")
            .execute(&mut *self.tx)
            .await?;
        match sqlx::query(sql).execute(&mut *self.tx).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                sqlx::query("ROLLBACK TO SAVEPOINT restore_unique")
                    .execute(&mut *self.tx)
                    .await?;
                let removed = sqlx::query(
                    "DELETE FROM interactions later USING interactions first \
                     WHERE later.source_key = first.source_key AND later.id > first.id",
                )
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
                self.inserted -= removed;
                self.stats = StatsUpkeep::Recount;
                sqlx::query(sql).execute(&mut *self.tx).await?;
            }
            Err(e) => return Err(e),
        }
        sqlx::query("RELEASE SAVEPOINT restore_unique")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

/// Sets each item's popularity to its number of interactions (what
/// recording an interaction through the API maintains incrementally), from
/// the per-item counts the database keeps.
pub async fn recompute_popularity(db: &Db) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE items SET popularity_score = \
         (SELECT COALESCE(SUM(interactions), 0) FROM item_stats WHERE item_id = items.id)",
    )
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Gives PostgreSQL's planner statistics on the tables an import filled,
/// and marks their pages all-visible. A bulk load leaves no statistics, and
/// until autovacuum gets to them (never, where it is off) a user's history
/// joins through a scan of the whole catalogue (91 ms a request at 10M
/// interactions, 2.6 ms once analysed); and without the visibility map a
/// user's history cannot be read from its covering index alone (every row
/// visits the heap). SQLite's planner does without either.
pub async fn refresh_statistics(db: &Db) -> sqlx::Result<()> {
    if db.dialect == Dialect::Postgres {
        // The simple protocol: VACUUM runs outside any transaction block.
        sqlx::raw_sql("VACUUM (ANALYZE) users, items, interactions, item_stats")
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}

/// The ids of the users whose username starts with `prefix` (`_` and `%`
/// match themselves), in insertion order: how a seed reads back the ids
/// the database assigned.
pub async fn user_ids_with_prefix(db: &Db, prefix: &str) -> sqlx::Result<Vec<i64>> {
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE username LIKE $1 ESCAPE '\\' ORDER BY id")
            .bind(format!("{}%", escape_like(prefix)))
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Whether any username starts with `prefix` (`_` and `%` match themselves).
pub async fn any_user_with_prefix(db: &Db, prefix: &str) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM users WHERE username LIKE $1 ESCAPE '\\' LIMIT 1")
            .bind(format!("{}%", escape_like(prefix)))
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.is_some())
}

/// The largest id of `table` (`users` or `items`), 0 if it is empty.
pub async fn max_id(db: &Db, table: &'static str) -> sqlx::Result<i64> {
    let (max,): (Option<i64>,) = sqlx::query_as(&format!("SELECT MAX(id) FROM {table}"))
        .fetch_one(&db.pool)
        .await?;
    Ok(max.unwrap_or(0))
}

/// (id, category) of every item, by id.
pub async fn item_categories(db: &Db) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as("SELECT id, category FROM items ORDER BY id")
        .fetch_all(&db.pool)
        .await
}

/// The first user with an id up to `max_id` whose username does not start
/// with `own_prefix`: an account an import would collide with.
pub async fn first_other_user(
    db: &Db,
    max_id: i64,
    own_prefix: &str,
) -> sqlx::Result<Option<(i64, String)>> {
    sqlx::query_as(
        "SELECT id, username FROM users WHERE id <= $1 AND username NOT LIKE $2 ESCAPE '\\' \
         ORDER BY id LIMIT 1",
    )
    .bind(max_id)
    .bind(format!("{}%", escape_like(own_prefix)))
    .fetch_optional(&db.pool)
    .await
}

/// The first item with an id up to `max_id` whose features do not contain
/// `own_marker` (the importer's `"source":"..."` stamp).
pub async fn first_other_item(
    db: &Db,
    max_id: i64,
    own_marker: &str,
) -> sqlx::Result<Option<(i64, String)>> {
    sqlx::query_as(
        "SELECT id, title FROM items WHERE id <= $1 AND features NOT LIKE $2 ESCAPE '\\' \
         ORDER BY id LIMIT 1",
    )
    .bind(max_id)
    .bind(format!("%{}%", escape_like(own_marker)))
    .fetch_optional(&db.pool)
    .await
}

/// `s` as a LIKE pattern matching itself (escape character `\`).
fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    #[test]
    fn array_literals_quote_text_and_spell_null() {
        let mut a = super::ArrayLiteral::with_capacity(0);
        a.text(Some(r#"a "b",\c{}"#));
        a.text(None);
        assert_eq!(a.finish(), r#"{"a \"b\",\\c{}",NULL}"#);
        let mut a = super::ArrayLiteral::with_capacity(0);
        a.float(Some(3.5));
        a.float(None);
        a.float(Some(f64::NAN));
        a.number(-7);
        assert_eq!(a.finish(), "{3.5,NULL,NULL,-7}");
        assert_eq!(super::ArrayLiteral::with_capacity(0).finish(), "{}");
    }

    #[test]
    fn placeholders_number_every_cell() {
        assert_eq!(
            super::placeholders(super::Dialect::Postgres, 2, 3, &[1]),
            "($1, NULLIF($2, -1), $3), ($4, NULLIF($5, -1), $6)"
        );
        assert_eq!(
            super::placeholders(super::Dialect::Sqlite, 1, 3, &[1]),
            "(?, NULLIF(?, -1), ?)"
        );
    }
}
