package stats

import (
	"context"

	"github.com/dynfw/sentinel/internal/store"
)

// Querier is what computing statistics needs of a store: running one
// aggregation (store.Store implements it).
type Querier interface {
	Query(ctx context.Context, q store.Query) ([]store.Row, error)
}
