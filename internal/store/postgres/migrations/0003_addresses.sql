-- PostgreSQL statistics store, migration 3.
-- The attacker's address on password and port rows, and per-address
-- rollups, for the detail pages of an address (the credentials, ports,
-- traps and actions it used) and of a password (the addresses and
-- countries that tried it). Rows stored before this migration have the
-- address :: (16 zero bytes, shown as unknown) and no country.
ALTER TABLE passwords ADD COLUMN ip BYTEA NOT NULL DEFAULT '\x00000000000000000000000000000000'::bytea;
ALTER TABLE passwords ADD COLUMN country TEXT NOT NULL DEFAULT '';
ALTER TABLE ports ADD COLUMN ip BYTEA NOT NULL DEFAULT '\x00000000000000000000000000000000'::bytea;
-- No index on the raw address: the raw rows serve the last hour, which
-- the time index narrows enough, and every index slows the inserts.

CREATE TABLE incidents_ipt_15m (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, trap, action)
);
CREATE INDEX incidents_ipt_15m_ip ON incidents_ipt_15m (ip, bucket);
CREATE TABLE passwords_ip_15m (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    country TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, username, password, country)
);
CREATE INDEX passwords_ip_15m_ip ON passwords_ip_15m (ip, bucket);
CREATE INDEX passwords_ip_15m_password ON passwords_ip_15m (password, bucket);
CREATE TABLE ports_ip_15m (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    protocol TEXT NOT NULL,
    port INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, protocol, port)
);
CREATE INDEX ports_ip_15m_ip ON ports_ip_15m (ip, bucket);

CREATE TABLE incidents_ipt_1h (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, trap, action)
);
CREATE INDEX incidents_ipt_1h_ip ON incidents_ipt_1h (ip, bucket);
CREATE TABLE passwords_ip_1h (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    country TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, username, password, country)
);
CREATE INDEX passwords_ip_1h_ip ON passwords_ip_1h (ip, bucket);
CREATE INDEX passwords_ip_1h_password ON passwords_ip_1h (password, bucket);
CREATE TABLE ports_ip_1h (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    protocol TEXT NOT NULL,
    port INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, protocol, port)
);
CREATE INDEX ports_ip_1h_ip ON ports_ip_1h (ip, bucket);

CREATE TABLE incidents_ipt_1d (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    trap TEXT NOT NULL,
    action TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, trap, action)
);
CREATE INDEX incidents_ipt_1d_ip ON incidents_ipt_1d (ip, bucket);
CREATE TABLE passwords_ip_1d (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    country TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, username, password, country)
);
CREATE INDEX passwords_ip_1d_ip ON passwords_ip_1d (ip, bucket);
CREATE INDEX passwords_ip_1d_password ON passwords_ip_1d (password, bucket);
CREATE TABLE ports_ip_1d (
    bucket BIGINT NOT NULL,
    ip BYTEA NOT NULL,
    protocol TEXT NOT NULL,
    port INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (bucket, ip, protocol, port)
);
CREATE INDEX ports_ip_1d_ip ON ports_ip_1d (ip, bucket);

-- The traps of an address can be recovered from the raw incidents that
-- retention kept (3 days by default), each precision up to its
-- watermark; older buckets stay empty. The addresses of older password
-- and port rows are unknown, so their rollups start empty and fill as
-- usual.
INSERT INTO incidents_ipt_15m (bucket, ip, trap, action, n)
    SELECT (time / 900) * 900, ip, trap, action, COUNT(*) FROM incidents
    WHERE time < (SELECT watermark FROM rollup_state WHERE tbl = 0 AND prec = 1)
    GROUP BY 1, 2, 3, 4;
INSERT INTO incidents_ipt_1h (bucket, ip, trap, action, n)
    SELECT (bucket / 3600) * 3600, ip, trap, action, SUM(n) FROM incidents_ipt_15m
    WHERE bucket < (SELECT watermark FROM rollup_state WHERE tbl = 0 AND prec = 2)
    GROUP BY 1, 2, 3, 4;
INSERT INTO incidents_ipt_1d (bucket, ip, trap, action, n)
    SELECT (bucket / 86400) * 86400, ip, trap, action, SUM(n) FROM incidents_ipt_1h
    WHERE bucket < (SELECT watermark FROM rollup_state WHERE tbl = 0 AND prec = 3)
    GROUP BY 1, 2, 3, 4;
