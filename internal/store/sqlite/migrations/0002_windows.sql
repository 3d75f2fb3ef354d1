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
) WITHOUT ROWID;
CREATE TABLE incidents_firstc_15m (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (country, bucket, lag)
) WITHOUT ROWID;
CREATE TABLE incidents_first_1h (
    bucket BIGINT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, lag)
) WITHOUT ROWID;
CREATE TABLE incidents_firstc_1h (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (country, bucket, lag)
) WITHOUT ROWID;
CREATE TABLE incidents_first_1d (
    bucket BIGINT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, lag)
) WITHOUT ROWID;
CREATE TABLE incidents_firstc_1d (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    lag INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (country, bucket, lag)
) WITHOUT ROWID;

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
    ip BLOB NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, ip)
) WITHOUT ROWID;
CREATE INDEX win_ip_top ON win_ip (win, n DESC, ip);
CREATE TABLE win_ipc (
    win INTEGER NOT NULL,
    country TEXT NOT NULL,
    ip BLOB NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, country, ip)
) WITHOUT ROWID;
CREATE INDEX win_ipc_n ON win_ipc (win, n);
CREATE TABLE win_country (
    win INTEGER NOT NULL,
    country TEXT NOT NULL,
    attackers BIGINT NOT NULL,
    PRIMARY KEY (win, country)
) WITHOUT ROWID;
CREATE TABLE win_password (
    win INTEGER NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, password)
) WITHOUT ROWID;
CREATE INDEX win_password_top ON win_password (win, n DESC, password);
CREATE TABLE win_username (
    win INTEGER NOT NULL,
    username TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, username)
) WITHOUT ROWID;
CREATE INDEX win_username_top ON win_username (win, n DESC, username);
CREATE TABLE win_combo (
    win INTEGER NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, username, password)
) WITHOUT ROWID;
CREATE INDEX win_combo_top ON win_combo (win, n DESC, username, password);
CREATE TABLE win_port (
    win INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    port INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (win, protocol, port)
) WITHOUT ROWID;
CREATE INDEX win_port_top ON win_port (win, n DESC, protocol, port);

-- Narrow count rollups: the graphs and top lists that group by trap and
-- action, by country, or by protocol alone (and the totals), those of a
-- visitor's devices, and those of one password, read a few rows per
-- bucket instead of every (country, trap, action), (port, protocol) or
-- (password, username, trap) combination. Filled from the existing
-- rollups.
CREATE TABLE incidents_ta_15m (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, trap, action)
) WITHOUT ROWID;
INSERT INTO incidents_ta_15m (bucket, trap, action, n) SELECT bucket, trap, action, SUM(n) FROM incidents_15m GROUP BY bucket, trap, action;
CREATE TABLE incidents_c_15m (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country)
) WITHOUT ROWID;
INSERT INTO incidents_c_15m (bucket, country, n) SELECT bucket, country, SUM(n) FROM incidents_15m GROUP BY bucket, country;
CREATE TABLE ports_p_15m (
    bucket BIGINT NOT NULL,
    protocol TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, protocol)
) WITHOUT ROWID;
INSERT INTO ports_p_15m (bucket, protocol, n) SELECT bucket, protocol, SUM(n) FROM ports_15m GROUP BY bucket, protocol;
CREATE TABLE incidents_ta_1h (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, trap, action)
) WITHOUT ROWID;
INSERT INTO incidents_ta_1h (bucket, trap, action, n) SELECT bucket, trap, action, SUM(n) FROM incidents_1h GROUP BY bucket, trap, action;
CREATE TABLE incidents_c_1h (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country)
) WITHOUT ROWID;
INSERT INTO incidents_c_1h (bucket, country, n) SELECT bucket, country, SUM(n) FROM incidents_1h GROUP BY bucket, country;
CREATE TABLE ports_p_1h (
    bucket BIGINT NOT NULL,
    protocol TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, protocol)
) WITHOUT ROWID;
INSERT INTO ports_p_1h (bucket, protocol, n) SELECT bucket, protocol, SUM(n) FROM ports_1h GROUP BY bucket, protocol;
CREATE TABLE incidents_ta_1d (
    bucket BIGINT NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, trap, action)
) WITHOUT ROWID;
INSERT INTO incidents_ta_1d (bucket, trap, action, n) SELECT bucket, trap, action, SUM(n) FROM incidents_1d GROUP BY bucket, trap, action;
CREATE TABLE incidents_c_1d (
    bucket BIGINT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, country)
) WITHOUT ROWID;
INSERT INTO incidents_c_1d (bucket, country, n) SELECT bucket, country, SUM(n) FROM incidents_1d GROUP BY bucket, country;
CREATE TABLE ports_p_1d (
    bucket BIGINT NOT NULL,
    protocol TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, protocol)
) WITHOUT ROWID;
INSERT INTO ports_p_1d (bucket, protocol, n) SELECT bucket, protocol, SUM(n) FROM ports_1d GROUP BY bucket, protocol;
CREATE TABLE incidents_devt_15m (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    trap TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, trap)
) WITHOUT ROWID;
CREATE INDEX incidents_devt_15m_device ON incidents_devt_15m (device_id, bucket);
INSERT INTO incidents_devt_15m (bucket, device_id, trap, n) SELECT bucket, device_id, trap, SUM(n) FROM incidents_dev_15m GROUP BY bucket, device_id, trap;
CREATE TABLE incidents_devc_15m (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, country)
) WITHOUT ROWID;
CREATE INDEX incidents_devc_15m_device ON incidents_devc_15m (device_id, bucket);
INSERT INTO incidents_devc_15m (bucket, device_id, country, n) SELECT bucket, device_id, country, SUM(n) FROM incidents_dev_15m GROUP BY bucket, device_id, country;
CREATE TABLE passwords_pw_15m (
    bucket BIGINT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password)
) WITHOUT ROWID;
CREATE INDEX passwords_pw_15m_password ON passwords_pw_15m (password, bucket);
INSERT INTO passwords_pw_15m (bucket, password, n) SELECT bucket, password, SUM(n) FROM passwords_15m GROUP BY bucket, password;
CREATE TABLE passwords_pu_15m (
    bucket BIGINT NOT NULL,
    password TEXT NOT NULL,
    username TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password, username)
) WITHOUT ROWID;
CREATE INDEX passwords_pu_15m_password ON passwords_pu_15m (password, bucket);
INSERT INTO passwords_pu_15m (bucket, password, username, n) SELECT bucket, password, username, SUM(n) FROM passwords_15m GROUP BY bucket, password, username;
CREATE TABLE incidents_devt_1h (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    trap TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, trap)
) WITHOUT ROWID;
CREATE INDEX incidents_devt_1h_device ON incidents_devt_1h (device_id, bucket);
INSERT INTO incidents_devt_1h (bucket, device_id, trap, n) SELECT bucket, device_id, trap, SUM(n) FROM incidents_dev_1h GROUP BY bucket, device_id, trap;
CREATE TABLE incidents_devc_1h (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, country)
) WITHOUT ROWID;
CREATE INDEX incidents_devc_1h_device ON incidents_devc_1h (device_id, bucket);
INSERT INTO incidents_devc_1h (bucket, device_id, country, n) SELECT bucket, device_id, country, SUM(n) FROM incidents_dev_1h GROUP BY bucket, device_id, country;
CREATE TABLE passwords_pw_1h (
    bucket BIGINT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password)
) WITHOUT ROWID;
CREATE INDEX passwords_pw_1h_password ON passwords_pw_1h (password, bucket);
INSERT INTO passwords_pw_1h (bucket, password, n) SELECT bucket, password, SUM(n) FROM passwords_1h GROUP BY bucket, password;
CREATE TABLE passwords_pu_1h (
    bucket BIGINT NOT NULL,
    password TEXT NOT NULL,
    username TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password, username)
) WITHOUT ROWID;
CREATE INDEX passwords_pu_1h_password ON passwords_pu_1h (password, bucket);
INSERT INTO passwords_pu_1h (bucket, password, username, n) SELECT bucket, password, username, SUM(n) FROM passwords_1h GROUP BY bucket, password, username;
CREATE TABLE incidents_devt_1d (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    trap TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, trap)
) WITHOUT ROWID;
CREATE INDEX incidents_devt_1d_device ON incidents_devt_1d (device_id, bucket);
INSERT INTO incidents_devt_1d (bucket, device_id, trap, n) SELECT bucket, device_id, trap, SUM(n) FROM incidents_dev_1d GROUP BY bucket, device_id, trap;
CREATE TABLE incidents_devc_1d (
    bucket BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    country TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, device_id, country)
) WITHOUT ROWID;
CREATE INDEX incidents_devc_1d_device ON incidents_devc_1d (device_id, bucket);
INSERT INTO incidents_devc_1d (bucket, device_id, country, n) SELECT bucket, device_id, country, SUM(n) FROM incidents_dev_1d GROUP BY bucket, device_id, country;
CREATE TABLE passwords_pw_1d (
    bucket BIGINT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password)
) WITHOUT ROWID;
CREATE INDEX passwords_pw_1d_password ON passwords_pw_1d (password, bucket);
INSERT INTO passwords_pw_1d (bucket, password, n) SELECT bucket, password, SUM(n) FROM passwords_1d GROUP BY bucket, password;
CREATE TABLE passwords_pu_1d (
    bucket BIGINT NOT NULL,
    password TEXT NOT NULL,
    username TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, password, username)
) WITHOUT ROWID;
CREATE INDEX passwords_pu_1d_password ON passwords_pu_1d (password, bucket);
INSERT INTO passwords_pu_1d (bucket, password, username, n) SELECT bucket, password, username, SUM(n) FROM passwords_1d GROUP BY bucket, password, username;
