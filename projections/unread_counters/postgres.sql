CREATE TABLE {table} (
    recipient TEXT   NOT NULL,
    category  TEXT   NOT NULL,
    unread    BIGINT NOT NULL,
    unseen    BIGINT NOT NULL,
    PRIMARY KEY (recipient, category)
);
