package stats

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// SharedCache is a cache several web instances share, so that one of them
// computes a resource and the others read it. Keys are Request keys (no
// secrets: parameters are hashed).
type SharedCache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Lock takes a short lease on key; false when another instance holds
	// it.
	Lock(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// sharedRecord is what goes into the shared cache, gob-encoded: the
// typed rows as they are, so that what an instance reads is what the other
// computed (attacker text that is not UTF-8 included, which a JSON round
// trip turned into U+FFFD).
type sharedRecord struct {
	Computed  time.Time
	End       time.Time
	NoDevices bool
	Graph     []GraphPoint
	Multi     TopSeries
	List      []ListRow
	Countries map[string]int64
	Seen      *SeenData
}

// sharedGet returns a fresh result from the shared cache; when there is
// none and another instance is computing it, it waits for that one a
// little before giving up (the caller then computes).
func (e *Engine) sharedGet(ctx context.Context, f Fetch, end time.Time) (Result, bool) {
	key, p := f.key, f.Period
	get := func() (Result, bool) {
		b, ok, err := e.o.Shared.Get(ctx, key)
		if err != nil {
			e.log.Warn("shared cache read failed", "err", err)
			return Result{}, false
		}
		if !ok {
			return Result{}, false
		}
		r, rend, err := decodeShared(f, b)
		if err != nil {
			e.log.Warn("shared cache entry unreadable", "key", key, "err", err)
			return Result{}, false
		}
		if !rend.Equal(end) || e.o.Now().Sub(r.Computed) >= p.TTL {
			return Result{}, false
		}
		return r, true
	}
	if r, ok := get(); ok {
		return r, true
	}
	locked, err := e.o.Shared.Lock(ctx, key, time.Minute)
	if err != nil || locked {
		return Result{}, false
	}
	for range 40 {
		select {
		case <-ctx.Done():
			return Result{}, false
		case <-time.After(250 * time.Millisecond):
		}
		if r, ok := get(); ok {
			return r, true
		}
	}
	return Result{}, false
}

func (e *Engine) sharedPut(ctx context.Context, key string, r Result, end time.Time) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(sharedRecord{Computed: r.Computed, End: end, NoDevices: r.NoDevices,
		Graph: r.Graph, Multi: r.Multi, List: r.List, Countries: r.Countries, Seen: r.Seen})
	if err == nil {
		err = e.o.Shared.Set(ctx, key, b.Bytes(), 2*r.Period.TTL)
	}
	if err != nil {
		e.log.Warn("shared cache write failed", "err", err)
	}
}

// decodeShared reads a shared record back into typed rows.
func decodeShared(f Fetch, b []byte) (Result, time.Time, error) {
	var rec sharedRecord
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&rec); err != nil {
		return Result{}, time.Time{}, err
	}
	return Result{Name: f.Resource.Name, Resource: f.Resource, Period: f.Period, Computed: rec.Computed, NoDevices: rec.NoDevices,
		Graph: rec.Graph, Multi: rec.Multi, List: rec.List, Countries: rec.Countries, Seen: rec.Seen}, rec.End, nil
}

// Redis is a SharedCache on a Redis server.
type Redis struct {
	c      *redis.Client
	prefix string
}

// NewRedis connects to a Redis URL (redis://host:port/db) and checks the
// connection.
func NewRedis(ctx context.Context, url string) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis %s: %w", opt.Addr, err)
	}
	return &Redis{c: c, prefix: "sentinel:view:"}, nil
}

// Get implements SharedCache.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := r.c.Get(ctx, r.prefix+"rows:"+key).Bytes()
	if err == redis.Nil {
		return nil, false, nil
	}
	return b, err == nil, err
}

// Set implements SharedCache.
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return r.c.Set(ctx, r.prefix+"rows:"+key, val, ttl).Err()
}

// Lock implements SharedCache.
func (r *Redis) Lock(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return r.c.SetNX(ctx, r.prefix+"lock:"+key, 1, ttl).Result()
}

// Clear deletes every entry of this cache (`sentinel view cache clear`).
func (r *Redis) Clear(ctx context.Context) (int, error) {
	n := 0
	iter := r.c.Scan(ctx, 0, r.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := r.c.Del(ctx, iter.Val()).Err(); err != nil {
			return n, err
		}
		n++
	}
	return n, iter.Err()
}

// Close closes the connection.
func (r *Redis) Close() error { return r.c.Close() }
