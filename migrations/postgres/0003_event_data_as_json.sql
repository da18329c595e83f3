-- Event data and metadata as `json`: the text as the appender wrote it, checked but not
-- parsed into `jsonb`'s binary form and printed again on every read (decision 0023).
-- Nothing queries inside them; the projections hold what is looked up.
ALTER TABLE events
    ALTER COLUMN data TYPE JSON USING data::json,
    ALTER COLUMN metadata TYPE JSON USING metadata::json;
