package view

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"
)

// The session is the visitor's list of device tokens and a CSRF secret,
// kept in the browser only, in a cookie encrypted and authenticated with
// AES-256-GCM. The reference signs its cookie but does not encrypt it, so
// anyone who sees the cookie reads the tokens (sentinel-view.md §9.5); here
// the tokens never leave the server in clear except in the form the
// visitor typed them into.
const (
	cookieName = "sview_session"
	// sessionVersion is the first byte of the cookie, so that a later
	// format (or key rotation) can be told apart.
	sessionVersion = 1
	// maxTokens bounds the cookie's size (20 tokens ≈ 2 KB encoded).
	maxTokens = 20
	// sessionMaxAge: a session not changed for this long is dropped.
	sessionMaxAge = 180 * 24 * time.Hour
)

type session struct {
	Tokens []string `json:"t,omitempty"`
	CSRF   string   `json:"c"`
	// Issued is when the cookie was last written (Unix seconds).
	Issued int64 `json:"i"`
}

type sessions struct {
	aead cipher.AEAD
	now  func() time.Time
}

func newSessions(key []byte, now func() time.Time) (*sessions, error) {
	if len(key) != 32 {
		return nil, errors.New("view: SessionKey must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sessions{aead: aead, now: now}, nil
}

// load returns the request's session; ok is false when there is none or it
// does not decrypt (tampered, another key, expired): the visitor then
// starts with a fresh, empty session.
func (s *sessions) load(r *http.Request) (sess session, ok bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	ns := s.aead.NonceSize()
	if err != nil || len(raw) < 1+ns || raw[0] != sessionVersion {
		return session{}, false
	}
	plain, err := s.aead.Open(nil, raw[1:1+ns], raw[1+ns:], []byte(cookieName))
	if err != nil {
		return session{}, false
	}
	if json.Unmarshal(plain, &sess) != nil || sess.CSRF == "" || len(sess.Tokens) > maxTokens {
		return session{}, false
	}
	if age := s.now().Sub(time.Unix(sess.Issued, 0)); age > sessionMaxAge {
		return session{}, false
	}
	for _, t := range sess.Tokens {
		if !validToken(t) {
			return session{}, false
		}
	}
	return sess, true
}

// loadOrNew returns the session, or a new one with a fresh CSRF secret
// (not yet saved).
func (s *sessions) loadOrNew(r *http.Request) (session, bool) {
	sess, ok := s.load(r)
	if !ok {
		var b [16]byte
		rand.Read(b[:])
		sess = session{CSRF: base64.RawURLEncoding.EncodeToString(b[:])}
	}
	return sess, ok
}

// save writes the session into the response's cookie: HttpOnly (scripts
// never need it), SameSite=Lax (sent on top-level navigations such as the
// router's add link, not on cross-site POSTs), Secure over TLS.
func (s *sessions) save(w http.ResponseWriter, r *http.Request, sess session) {
	sess.Issued = s.now().Unix()
	plain, _ := json.Marshal(sess)
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = sessionVersion
	rand.Read(out[1 : 1+ns])
	out = s.aead.Seal(out, out[1:1+ns], plain, []byte(cookieName))
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    base64.RawURLEncoding.EncodeToString(out),
		Path:     "/",
		MaxAge:   int(sessionMaxAge / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}

// checkCSRF accepts a POST when the form's csrf field equals the session's
// secret and the browser does not say the request is cross-origin
// (Sec-Fetch-Site, Origin: http.CrossOriginProtection).
func (v *View) checkCSRF(r *http.Request, sess session, ok bool) bool {
	if v.cop.Check(r) != nil || !ok {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// validToken is the reference view's check (§6.5): exactly 64 characters
// of [a-z0-9]. The CRC of devicetoken.Validate is not required, because
// the reference's test identities do not satisfy it.
func validToken(t string) bool {
	if len(t) != 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// tokenID is what the delete buttons send instead of the token itself, so
// that the page never holds the full secret: hex of the first 8 bytes of
// its SHA-256.
func tokenID(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:8])
}

func addToken(toks []string, t string) ([]string, bool) {
	if slices.Contains(toks, t) {
		return toks, true
	}
	if len(toks) >= maxTokens {
		return toks, false
	}
	return append(toks, t), true
}
