-- Per item and interaction type: how many interactions, how many of them
-- carry a rating, and the ratings' sum. Kept current by triggers as
-- interactions come and go (cascaded deletes included), so the feature
-- store reads a handful of rows per item instead of counting the item's
-- interactions on every request: that count grows with the item's
-- popularity, this read does not.

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

CREATE TRIGGER item_stats_insert AFTER INSERT ON interactions
BEGIN
    INSERT INTO item_stats (item_id, interaction_type, interactions, rated, rating_sum)
    VALUES (NEW.item_id, NEW.interaction_type, 1, NEW.rating IS NOT NULL, COALESCE(NEW.rating, 0))
    ON CONFLICT (item_id, interaction_type) DO UPDATE SET
        interactions = interactions + 1,
        rated = rated + excluded.rated,
        rating_sum = rating_sum + excluded.rating_sum;
END;

CREATE TRIGGER item_stats_delete AFTER DELETE ON interactions
BEGIN
    UPDATE item_stats SET
        interactions = interactions - 1,
        rated = rated - (OLD.rating IS NOT NULL),
        rating_sum = rating_sum - COALESCE(OLD.rating, 0)
    WHERE item_id = OLD.item_id AND interaction_type = OLD.interaction_type;
    DELETE FROM item_stats
    WHERE item_id = OLD.item_id AND interaction_type = OLD.interaction_type AND interactions <= 0;
END;

-- Interactions are not edited today; should they be, the counts follow.
CREATE TRIGGER item_stats_update AFTER UPDATE OF item_id, interaction_type, rating ON interactions
BEGIN
    UPDATE item_stats SET
        interactions = interactions - 1,
        rated = rated - (OLD.rating IS NOT NULL),
        rating_sum = rating_sum - COALESCE(OLD.rating, 0)
    WHERE item_id = OLD.item_id AND interaction_type = OLD.interaction_type;
    DELETE FROM item_stats
    WHERE item_id = OLD.item_id AND interaction_type = OLD.interaction_type AND interactions <= 0;
    INSERT INTO item_stats (item_id, interaction_type, interactions, rated, rating_sum)
    VALUES (NEW.item_id, NEW.interaction_type, 1, NEW.rating IS NOT NULL, COALESCE(NEW.rating, 0))
    ON CONFLICT (item_id, interaction_type) DO UPDATE SET
        interactions = interactions + 1,
        rated = rated + excluded.rated,
        rating_sum = rating_sum + excluded.rating_sum;
END;
