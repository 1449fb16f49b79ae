//! Interactions written as an importer produces them: buffered into chunks
//! of [`CHUNK_ROWS`], each written through one [`bulk::InteractionLoad`],
//! with progress shown, so memory stays flat however many there are.

use super::progress::Progress;
use crate::store::{
    Db,
    bulk::{self, InteractionRecord},
};

/// Rows per write: large enough that statements do not dominate, small
/// enough that memory does not grow with the data set.
const CHUNK_ROWS: usize = 50_000;

pub struct InteractionWriter {
    load: bulk::InteractionLoad,
    chunk: Vec<InteractionRecord>,
    progress: Progress,
}

impl InteractionWriter {
    /// `task` and `total` label the progress ("MovieLens import", the
    /// number of rows to come).
    pub async fn begin(db: &Db, task: &'static str, total: u64) -> anyhow::Result<Self> {
        Ok(Self {
            load: bulk::InteractionLoad::begin(db).await?,
            chunk: Vec::with_capacity(CHUNK_ROWS.min(total as usize)),
            progress: Progress::new(task, "interactions", total),
        })
    }

    pub async fn push(&mut self, row: InteractionRecord) -> anyhow::Result<()> {
        self.chunk.push(row);
        if self.chunk.len() == CHUNK_ROWS {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        self.load.insert(&self.chunk).await?;
        self.progress.advance(self.chunk.len() as u64);
        self.chunk.clear();
        Ok(())
    }

    /// Writes the rest and commits; then sets popularity and (PostgreSQL)
    /// planner statistics from what was loaded. Returns the rows inserted.
    pub async fn finish(mut self, db: &Db) -> anyhow::Result<u64> {
        if !self.chunk.is_empty() {
            self.flush().await?;
        }
        self.progress.finish();
        let inserted = self.load.finish().await?;
        bulk::recompute_popularity(db).await?;
        bulk::refresh_statistics(db).await?;
        Ok(inserted)
    }
}
