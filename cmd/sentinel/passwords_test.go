package main

import (
	"context"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
)

func insertPasswords(t *testing.T, st store.Store, pw string, at time.Time, n int) {
	t.Helper()
	var b store.Batch
	for range n {
		b.Passwords = append(b.Passwords, store.Password{Time: at, Trap: "minipot_telnet", Username: "root", Password: pw})
	}
	if err := st.Insert(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}
