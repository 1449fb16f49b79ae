-- A user's history (the feature store reads it for every user it has not
-- cached) read from the index alone (an index-only scan, once the table's
-- pages are marked all-visible; an import vacuums them): a user's rows are
-- a few adjacent index pages instead of one heap page per interaction.
DROP INDEX interactions_user;
CREATE INDEX interactions_user
    ON interactions (user_id, created_at) INCLUDE (item_id, interaction_type, rating, weight);
