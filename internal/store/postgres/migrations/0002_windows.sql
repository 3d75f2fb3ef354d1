-- Derived tables that make long windows fast (see package sqlbuild,
-- first.go and window.go). All are rebuilt from the rollups.

-- First appearances: per bucket of the per-address rollup, how many
-- addresses (and address-country pairs) were last seen lag buckets
-- earlier (lag 0: not within the table's horizon). A distinct count
-- over a wider graph bucket sums the rows whose address was not seen
-- earlier in that graph bucket.
CREATE TABLE incidents_first_15m (
    bucket BIGINT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, lag)
);
CREATE TABLE incidents_firstc_15m (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, lag)
);
CREATE TABLE incidents_first_1h (
    bucket BIGINT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, lag)
);
CREATE TABLE incidents_firstc_1h (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, lag)
);
CREATE TABLE incidents_first_1d (
    bucket BIGINT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, lag)
);
CREATE TABLE incidents_firstc_1d (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, lag)
);

-- Sliding windows: running totals over [wstart, wend) of one rollup
-- precision, per table, moved forward as the rollup's watermark moves.
CREATE TABLE window_state (
    id INTEGER NOT NULL PRIMARY KEY,
    tbl INTEGER NOT NULL,
    prec INTEGER NOT NULL,
    span BIGINT NOT NULL,
    step BIGINT NOT NULL,
    wstart BIGINT NOT NULL DEFAULT 0,
    wend BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tbl, prec, span, step)
);
CREATE TABLE win_ip (
    win INTEGER NOT NULL,
    ip BYTEA NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, ip)
);
CREATE INDEX win_ip_top ON win_ip (win, n DESC, ip);
CREATE TABLE win_ipc (
    win INTEGER NOT NULL,
    country TEXT COLLATE "C" NOT NULL,
    ip BYTEA NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, country, ip)
);
CREATE INDEX win_ipc_n ON win_ipc (win, n);
CREATE TABLE win_country (
    win INTEGER NOT NULL,
    country TEXT COLLATE "C" NOT NULL,
    attackers BIGINT NOT NULL,
    PRIMARY KEY (win, country)
);
CREATE TABLE win_password (
    win INTEGER NOT NULL,
    password TEXT COLLATE "C" NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, password)
);
CREATE INDEX win_password_top ON win_password (win, n DESC, password);
CREATE TABLE win_username (
    win INTEGER NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, username)
);
CREATE INDEX win_username_top ON win_username (win, n DESC, username);
CREATE TABLE win_combo (
    win INTEGER NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    password TEXT COLLATE "C" NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, username, password)
);
CREATE INDEX win_combo_top ON win_combo (win, n DESC, username, password);
