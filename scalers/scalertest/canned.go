package scalertest

import (
	"net/http"
	"sync"
)

// Canned is the answer of an in-process fake of an HTTP API, which a test changes between samples. Embed it in
// the fake: its handler holds Mu while it records the request and answers (Reply).
type Canned struct {
	Mu     sync.Mutex
	Status int
	Body   string
}

// Set replaces the answer.
func (c *Canned) Set(status int, body string) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	c.Status, c.Body = status, body
}

// Reply writes the answer with contentType; the caller holds Mu.
func (c *Canned) Reply(w http.ResponseWriter, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(c.Status)
	_, _ = w.Write([]byte(c.Body))
}
