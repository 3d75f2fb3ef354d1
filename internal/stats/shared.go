package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

// sharedRecord is what goes into the shared cache.
type sharedRecord struct {
	Computed time.Time       `json:"computed"`
	End      time.Time       `json:"end"`
	Data     json.RawMessage `json:"data"`
}

// sharedGet returns a fresh result from the shared cache; when there is
// none and another instance is computing it, it waits for that one a
// little before giving up (the caller then computes).
func (e *Engine) sharedGet(ctx context.Context, key string, p Period, end time.Time) (Result, bool) {
	get := func() (Result, bool) {
		b, ok, err := e.o.Shared.Get(ctx, key)
		if err != nil {
			e.log.Warn("shared cache read failed", "err", err)
			return Result{}, false
		}
		if !ok {
			return Result{}, false
		}
		r, rend, err := decodeShared(key, b, p)
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
	data, err := json.Marshal(r.Data)
	if err == nil {
		var b []byte
		b, err = json.Marshal(sharedRecord{Computed: r.Computed, End: end, Data: data})
		if err == nil {
			err = e.o.Shared.Set(ctx, key, b, 2*r.Period.TTL)
		}
	}
	if err != nil {
		e.log.Warn("shared cache write failed", "err", err)
	}
}

// decodeShared turns a shared record back into the typed shapes the
// view renders.
func decodeShared(key string, b []byte, p Period) (Result, time.Time, error) {
	var rec sharedRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return Result{}, time.Time{}, err
	}
	name, _, _ := strings.Cut(key, ";")
	res := Catalog[name]
	if res == nil {
		return Result{}, time.Time{}, fmt.Errorf("unknown resource in key")
	}
	out := Result{Name: res.Name, Period: p, Computed: rec.Computed}
	dec := json.NewDecoder(bytes.NewReader(rec.Data))
	dec.UseNumber()
	var err error
	switch res.Shape {
	case Graph:
		var g []GraphPoint
		err = dec.Decode(&g)
		out.Data = g
	case MultiGraph:
		var m MultiGraphData
		err = dec.Decode(&m)
		if err == nil {
			for _, item := range m.Data {
				numbersToInt(item)
			}
		}
		out.Data = m
	case List:
		var l []map[string]any
		err = dec.Decode(&l)
		for _, item := range l {
			numbersToInt(item)
		}
		out.Data = l
	case Map:
		var m map[string]int64
		err = json.Unmarshal(rec.Data, &m)
		out.Data = m
	}
	return out, rec.End, err
}

func numbersToInt(m map[string]any) {
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			i, err := n.Int64()
			if err == nil {
				m[k] = i
			}
		}
	}
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
	b, err := r.c.Get(ctx, r.prefix+"res:"+key).Bytes()
	if err == redis.Nil {
		return nil, false, nil
	}
	return b, err == nil, err
}

// Set implements SharedCache.
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return r.c.Set(ctx, r.prefix+"res:"+key, val, ttl).Err()
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
