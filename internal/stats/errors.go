package stats

import "errors"

// Errors of Engine.Resource. The web view maps them to HTTP statuses:
// ErrUnknownResource 404, ErrBadPeriod and ErrBadParam 400.
var (
	ErrUnknownResource = errors.New("unknown resource")
	ErrBadPeriod       = errors.New("not a valid period")
	ErrBadParam        = errors.New("bad parameter")
)
