-- Initial schema of the SQLite statistics store.
-- Devices: one row per (serial, token) a probe reported from.
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL,
    token TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    UNIQUE (serial, token)
);
CREATE INDEX devices_token ON devices (token);

-- Raw rows. Times are Unix seconds; ip is 16 bytes (IPv4 mapped);
-- an unknown country is ''.
CREATE TABLE incidents (
    time BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    ip BLOB NOT NULL,
    country TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incidents_time ON incidents (time);
CREATE INDEX incidents_ip_time ON incidents (ip, time);
CREATE INDEX incidents_device_time ON incidents (device_id, time);
CREATE TABLE passwords (
    time BIGINT NOT NULL,
    trap TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL
);
CREATE INDEX passwords_time ON passwords (time);
CREATE INDEX passwords_password_time ON passwords (password, time);
CREATE TABLE ports (
    time BIGINT NOT NULL,
    port INTEGER NOT NULL,
    protocol TEXT NOT NULL
);
CREATE INDEX ports_time ON ports (time);

-- Rollups: bucket is the start of the bucket (Unix seconds), n the
-- number of raw rows it stands for. The primary key (bucket first) holds
-- the rows of a time range together (WITHOUT ROWID: the table is the
-- key's B-tree, so a range scan reads no other pages), and asserts that a
-- bucket is never rolled up twice. See package sqlbuild for why
-- incidents have three.

CREATE TABLE incidents_15m (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, trap, action)
) WITHOUT ROWID;
CREATE TABLE incidents_dev_15m (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, trap, action, country)
) WITHOUT ROWID;
CREATE INDEX incidents_dev_15m_device ON incidents_dev_15m (device_id, bucket);
CREATE TABLE incidents_ip_15m (
    bucket BIGINT NOT NULL,
    ip BLOB NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, ip)
) WITHOUT ROWID;
CREATE INDEX incidents_ip_15m_ip ON incidents_ip_15m (ip, bucket);
CREATE TABLE passwords_15m (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password, username, trap)
) WITHOUT ROWID;
CREATE INDEX passwords_15m_password ON passwords_15m (password, bucket);
CREATE TABLE ports_15m (
    bucket BIGINT NOT NULL,
    port INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, protocol, port)
) WITHOUT ROWID;

CREATE TABLE incidents_1h (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, trap, action)
) WITHOUT ROWID;
CREATE TABLE incidents_dev_1h (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, trap, action, country)
) WITHOUT ROWID;
CREATE INDEX incidents_dev_1h_device ON incidents_dev_1h (device_id, bucket);
CREATE TABLE incidents_ip_1h (
    bucket BIGINT NOT NULL,
    ip BLOB NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, ip)
) WITHOUT ROWID;
CREATE INDEX incidents_ip_1h_ip ON incidents_ip_1h (ip, bucket);
CREATE TABLE passwords_1h (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password, username, trap)
) WITHOUT ROWID;
CREATE INDEX passwords_1h_password ON passwords_1h (password, bucket);
CREATE TABLE ports_1h (
    bucket BIGINT NOT NULL,
    port INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, protocol, port)
) WITHOUT ROWID;

CREATE TABLE incidents_1d (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, trap, action)
) WITHOUT ROWID;
CREATE TABLE incidents_dev_1d (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, trap, action, country)
) WITHOUT ROWID;
CREATE INDEX incidents_dev_1d_device ON incidents_dev_1d (device_id, bucket);
CREATE TABLE incidents_ip_1d (
    bucket BIGINT NOT NULL,
    ip BLOB NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country, ip)
) WITHOUT ROWID;
CREATE INDEX incidents_ip_1d_ip ON incidents_ip_1d (ip, bucket);
CREATE TABLE passwords_1d (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password, username, trap)
) WITHOUT ROWID;
CREATE INDEX passwords_1d_password ON passwords_1d (password, bucket);
CREATE TABLE ports_1d (
    bucket BIGINT NOT NULL,
    port INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, protocol, port)
) WITHOUT ROWID;

-- Rollup bookkeeping (tbl: 0 incidents, 1 passwords, 2 ports; prec: 0 raw,
-- 1 15m, 2 1h, 3 1d). watermark: every bucket before it is final (0: none
-- yet); kept_from: older rows were deleted by retention.
CREATE TABLE rollup_state (
    tbl INTEGER NOT NULL,
    prec INTEGER NOT NULL,
    watermark BIGINT NOT NULL DEFAULT 0,
    kept_from BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tbl, prec)
);
INSERT INTO rollup_state (tbl, prec) VALUES (0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2), (2, 3);
-- Buckets behind a watermark that received late rows.
CREATE TABLE rollup_dirty (
    tbl INTEGER NOT NULL,
    prec INTEGER NOT NULL,
    bucket BIGINT NOT NULL,
    PRIMARY KEY (tbl, prec, bucket)
);
