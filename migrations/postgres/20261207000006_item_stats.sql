-- Per item and interaction type: how many interactions, how many of them
-- carry a rating, and the ratings' sum. Kept current by triggers as
-- interactions come and go (cascaded deletes included), so the feature
-- store reads a handful of rows per item instead of counting the item's
-- interactions on every request: that count grows with the item's
-- popularity, this read does not.
--
-- Statement-level triggers over transition tables: a bulk insert of many
-- rows costs one aggregated upsert, not one per row. Rows are upserted in
-- key order so two concurrent batches cannot deadlock on each other.

CREATE TABLE item_stats (
    item_id          BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    interaction_type TEXT   NOT NULL,
    interactions     BIGINT NOT NULL,
    rated            BIGINT NOT NULL,
    rating_sum       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (item_id, interaction_type)
);

INSERT INTO item_stats (item_id, interaction_type, interactions, rated, rating_sum)
SELECT item_id, interaction_type, COUNT(*), COUNT(rating), COALESCE(SUM(rating), 0)
FROM interactions GROUP BY item_id, interaction_type;

CREATE FUNCTION item_stats_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO item_stats (item_id, interaction_type, interactions, rated, rating_sum)
    SELECT item_id, interaction_type, COUNT(*), COUNT(rating), COALESCE(SUM(rating), 0)
    FROM added GROUP BY item_id, interaction_type ORDER BY item_id, interaction_type
    ON CONFLICT (item_id, interaction_type) DO UPDATE SET
        interactions = item_stats.interactions + excluded.interactions,
        rated = item_stats.rated + excluded.rated,
        rating_sum = item_stats.rating_sum + excluded.rating_sum;
    RETURN NULL;
END $$;

CREATE FUNCTION item_stats_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE item_stats s SET
        interactions = s.interactions - r.n,
        rated = s.rated - r.rated,
        rating_sum = s.rating_sum - r.rating_sum
    FROM (SELECT item_id, interaction_type, COUNT(*) AS n, COUNT(rating) AS rated,
                 COALESCE(SUM(rating), 0) AS rating_sum
          FROM removed GROUP BY item_id, interaction_type) r
    WHERE s.item_id = r.item_id AND s.interaction_type = r.interaction_type;
    DELETE FROM item_stats s USING (SELECT DISTINCT item_id, interaction_type FROM removed) r
    WHERE s.item_id = r.item_id AND s.interaction_type = r.interaction_type
      AND s.interactions <= 0;
    RETURN NULL;
END $$;

CREATE TRIGGER item_stats_insert AFTER INSERT ON interactions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION item_stats_add();
CREATE TRIGGER item_stats_delete AFTER DELETE ON interactions
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION item_stats_remove();
-- Interactions are not edited today; should they be, the counts follow:
-- the old rows out, then the new ones in (triggers fire in name order).
CREATE TRIGGER item_stats_update AFTER UPDATE ON interactions
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION item_stats_remove();
CREATE TRIGGER item_stats_update_added AFTER UPDATE ON interactions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION item_stats_add();
