//! Content-based: TF-IDF over each item's title, description, category and
//! tags; cosine similarity between a profile (the weighted sum of the
//! user's item vectors) and every item. Needs no interactions on the item
//! side, so brand-new items are recommendable from day one.

use std::collections::HashMap;

use crate::{Profile, sparse::Csr};

/// The text of one item, as the content model sees it.
#[derive(Debug, Clone, Default)]
pub struct ItemText {
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
}

/// Words too common to tell items apart.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "its", "of",
    "on", "or", "that", "the", "this", "to", "was", "with",
];

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
}

/// The terms of an item. Category and tags also count as whole labels
/// (`category:sci-fi`), which match exactly where their words would not.
pub fn terms(item: &ItemText) -> Vec<String> {
    let mut out: Vec<String> = words(&item.title).chain(words(&item.description)).collect();
    if !item.category.trim().is_empty() {
        out.push(format!("category:{}", item.category.trim().to_lowercase()));
        out.extend(words(&item.category));
    }
    for tag in &item.tags {
        if !tag.trim().is_empty() {
            out.push(format!("tag:{}", tag.trim().to_lowercase()));
        }
    }
    out
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Content {
    /// items x terms, TF-IDF rows of unit length.
    vectors: Csr,
    /// terms x items: the postings a profile is matched through.
    postings: Csr,
}

impl Content {
    /// Sublinear tf (1 + ln tf), smooth idf (ln((1 + n) / (1 + df)) + 1), L2
    /// rows: the usual TF-IDF weighting.
    pub fn train(items: &[ItemText]) -> Content {
        let mut vocabulary: HashMap<String, u32> = HashMap::new();
        let mut counts: Vec<(u32, u32, f32)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let mut tf: HashMap<u32, f32> = HashMap::new();
            for term in terms(item) {
                let next = vocabulary.len() as u32;
                let id = *vocabulary.entry(term).or_insert(next);
                *tf.entry(id).or_default() += 1.0;
            }
            counts.extend(tf.into_iter().map(|(t, c)| (i as u32, t, c)));
        }
        let n_terms = vocabulary.len();
        let mut df = vec![0f32; n_terms];
        for &(_, t, _) in &counts {
            df[t as usize] += 1.0;
        }
        let n = items.len() as f32;
        let weighted = counts
            .into_iter()
            .map(|(i, t, c)| {
                let idf = ((1.0 + n) / (1.0 + df[t as usize])).ln() + 1.0;
                (i, t, (1.0 + c.ln()) * idf)
            })
            .collect();
        let vectors = Csr::from_triplets(items.len(), n_terms, weighted).l2_normalized_rows();
        let postings = vectors.transpose();
        Content { vectors, postings }
    }

    /// Cosine similarity of the profile's combined vector to every item.
    pub fn score(&self, profile: &Profile, out: &mut [f32]) {
        self.score_only(profile, None, out);
    }

    /// [`Self::score`] for just the items `only` lists, when given: each
    /// candidate's vector against the profile's, instead of every posting
    /// of the profile's terms; `out[k]` is then item `only[k]`'s score.
    pub fn score_only(&self, profile: &Profile, only: Option<&[u32]>, out: &mut [f32]) {
        let mut query = vec![0f32; self.postings.n_rows];
        for &(i, w) in profile {
            let (ts, vs) = self.vectors.row(i as usize);
            for (&t, &v) in ts.iter().zip(vs) {
                query[t as usize] += w * v;
            }
        }
        let norm = query.iter().map(|q| q * q).sum::<f32>().sqrt();
        if norm == 0.0 {
            return;
        }
        if let Some(items) = only {
            for (&j, o) in items.iter().zip(out.iter_mut()) {
                if (j as usize) < self.vectors.n_rows {
                    let (ts, vs) = self.vectors.row(j as usize);
                    let dot: f32 = ts
                        .iter()
                        .zip(vs)
                        .map(|(&t, &v)| query[t as usize] * v)
                        .sum();
                    *o += dot / norm;
                }
            }
            return;
        }
        for (t, &q) in query.iter().enumerate() {
            if q == 0.0 {
                continue;
            }
            let (items, vs) = self.postings.row(t);
            for (&j, &v) in items.iter().zip(vs) {
                out[j as usize] += q / norm * v;
            }
        }
    }

    /// Cosine similarity of item `i` to every item (itself included).
    pub fn similarities(&self, i: usize, out: &mut [f32]) {
        self.score(&[(i as u32, 1.0)], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(title: &str, category: &str, tags: &[&str]) -> ItemText {
        ItemText {
            title: title.into(),
            description: String::new(),
            category: category.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn terms_are_lowercased_words_and_labels() {
        let t = terms(&item("The Matrix: Reloaded", "Sci-Fi", &["Action"]));
        assert_eq!(
            t,
            [
                "matrix",
                "reloaded",
                "category:sci-fi",
                "sci",
                "fi",
                "tag:action"
            ]
        );
    }

    #[test]
    fn identical_text_has_cosine_one_and_disjoint_text_zero() {
        let c = Content::train(&[
            item("red apple", "fruit", &[]),
            item("red apple", "fruit", &[]),
            item("blue car", "vehicle", &[]),
            item("green apple", "fruit", &[]),
        ]);
        let mut s = vec![0.0; 4];
        c.similarities(0, &mut s);
        assert!((s[0] - 1.0).abs() < 1e-5 && (s[1] - 1.0).abs() < 1e-5);
        assert_eq!(s[2], 0.0);
        assert!(s[3] > 0.3 && s[3] < 1.0, "{}", s[3]);
    }
}
